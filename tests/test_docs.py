"""Every Python snippet in README.md and docs/ runs as written, or says it is a fragment.

A block is a fragment when its first line is a comment ``# fragment: <why>`` (visible to
the reader: "this does not run alone"). Every other ```` ```python ```` block is executed,
each in a fresh namespace, with ``FakeSspi`` installed unless the block installs a
provider itself (Windows behaviour is never claimed: the block runs on the simulation).
``test_*`` functions the block defines are called too, when they take no argument.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from sspi_import.testing import FakeSspi

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
FRAGMENT = re.compile(r"#\s*fragment:\s*\S")

# Blocks in pages other sessions own, not yet runnable nor marked as fragments: each
# is expected to fail (strict), keyed by page and first code line so that line moves do
# not matter. Mark the block (first line "# fragment: ...") or make it run, then delete
# its entry here: a block that starts to run fails this list (XPASS, strict).
PENDING: dict[tuple[str, str], str] = {}


class Snippet(NamedTuple):
    """One ```` ```python ```` block: where it is and its code."""

    page: str
    line: int
    code: str

    @property
    def first_line(self) -> str:
        """The block's first non-blank line."""
        return next((ln for ln in self.code.splitlines() if ln.strip()), "")

    @property
    def fragment(self) -> bool:
        """Marked as not runnable alone."""
        return bool(FRAGMENT.match(self.first_line.strip()))


def pages() -> list[Path]:
    """README.md and every Markdown page under docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def snippets() -> list[Snippet]:
    """Every python block of every page, in order."""
    found = []
    for path in pages():
        text = path.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 2  # the first line of code
            found.append(Snippet(path.relative_to(ROOT).as_posix(), line, match.group(1)))
    return found


ALL = snippets()
RUNNABLE = [s for s in ALL if not s.fragment]


def _param(snippet: Snippet) -> Any:
    reason = PENDING.get((snippet.page, snippet.first_line))
    marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
    return pytest.param(snippet, id=f"{snippet.page}:{snippet.line}", marks=marks)


def test_the_collector_finds_the_snippets() -> None:
    assert len(ALL) >= 9, [f"{s.page}:{s.line}" for s in ALL]
    assert any(s.page == "README.md" for s in ALL)
    assert any(s.fragment for s in ALL)
    assert RUNNABLE, "no snippet runs at all"


def test_pending_entries_are_still_there() -> None:
    # A stale entry would hide nothing, but says something false: keep the list true.
    keys = {(s.page, s.first_line) for s in RUNNABLE}
    assert sorted(set(PENDING) - keys) == []


@pytest.fixture
def _logging_restored() -> Iterator[None]:
    """A snippet may configure logging (docs/debugging.md does): undo it afterwards.

    Left at DEBUG, every later test would build a record per SSPI call.
    """
    loggers = [logging.getLogger(), logging.getLogger("sspi_import")]
    saved = [(logger, logger.level, list(logger.handlers)) for logger in loggers]
    yield
    for logger, level, handlers in saved:
        logger.setLevel(level)
        for handler in logger.handlers[:]:
            if handler not in handlers:
                logger.removeHandler(handler)


@pytest.mark.parametrize("snippet", [_param(s) for s in RUNNABLE])
@pytest.mark.usefixtures("_logging_restored")
def test_snippet_runs(snippet: Snippet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code = compile(snippet.code, f"{snippet.page}:{snippet.line}", "exec")
    namespace: dict[str, Any] = {"__name__": "__snippet__"}
    provider = (
        contextlib.nullcontext() if "FakeSspi(" in snippet.code else FakeSspi(user="EXAMPLE\\alice")
    )
    with provider:
        exec(code, namespace)  # the documentation's own code
        for name, value in list(namespace.items()):
            if name.startswith("test_") and callable(value):
                value()
        if isinstance(provider, FakeSspi):
            provider.assert_no_leaks()


def test_snippets_leave_logging_as_they_found_it() -> None:
    # Runs after the snippets (file order): the debugging page's DEBUG level is undone.
    assert logging.getLogger("sspi_import").level == logging.NOTSET
