"""Every Python snippet in README.md and docs/ runs as written, or says it is a fragment.

A block is a fragment when its first line is a comment ``# fragment: <why>`` (visible to
the reader: "this does not run alone"). A block whose first line is ``# file: NAME.py``
is a module the page's other blocks import (a worker pool's task must be importable by
its workers): it is written as that file, importable, before each block of its page
runs. Every other ```` ```python ```` block is executed, each in a fresh namespace, with
``FakeSspi`` installed unless the block installs a provider itself (Windows behaviour is
never claimed: the block runs on the simulation). ``test_*`` functions the block defines
are called too, when they take no argument.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import sspi_import
from sspi_import.testing import FakeSspi

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
FRAGMENT = re.compile(r"#\s*fragment:\s*\S")
FILE = re.compile(r"#\s*file:\s*(\w+\.py)\b")

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

    @property
    def file_name(self) -> str | None:
        """The module file the block is (``# file: NAME.py``), or ``None``."""
        match = FILE.match(self.first_line.strip())
        return None if match is None else match[1]


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
RUNNABLE = [s for s in ALL if not s.fragment and s.file_name is None]
FILES = [s for s in ALL if s.file_name is not None]


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


def _write_files(page: str, directory: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The page's ``# file:`` blocks as modules in ``directory``, importable (children too)."""
    names = []
    for block in FILES:
        if block.page == page and block.file_name is not None:
            (directory / block.file_name).write_text(block.code, encoding="utf-8")
            names.append(block.file_name.removesuffix(".py"))
    if names:
        monkeypatch.syspath_prepend(str(directory))  # spawned workers get sys.path too
    return names


def test_every_file_block_is_imported_by_its_page() -> None:
    for block in FILES:
        stem = (block.file_name or "").removesuffix(".py")
        users = [s for s in RUNNABLE if s.page == block.page and f"from {stem} import" in s.code]
        assert users, f"{block.page}:{block.line}: no block of the page imports {stem}"


@pytest.mark.parametrize("snippet", [_param(s) for s in RUNNABLE])
@pytest.mark.usefixtures("_logging_restored")
def test_snippet_runs(snippet: Snippet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    modules = _write_files(snippet.page, tmp_path, monkeypatch)
    try:
        _run_snippet(snippet)
    finally:
        for name in modules:  # imported from this test's directory: not for the next one
            sys.modules.pop(name, None)


def _run_snippet(snippet: Snippet) -> None:
    code = compile(snippet.code, f"{snippet.page}:{snippet.line}", "exec")
    namespace: dict[str, Any] = {"__name__": "__main__"}  # as a script: its main guard runs
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


# The API pages: a heading, prose, then the directive of the module the heading names ----

REFERENCE = sorted((ROOT / "docs" / "reference").glob("*.md"))
GLUED = re.compile(r"[a-z][:.;,][A-Z]")  # "provider:The": two sentences run together


def paragraphs(text: str) -> list[str]:
    """The prose paragraphs of a page: no fenced code, directive, option, table or comment."""
    text = re.sub(r"^```.*?^```[ \t]*$", "", text, flags=re.DOTALL | re.MULTILINE)
    found = []
    for block in re.split(r"\n\s*\n", text):
        if not block.strip() or block.lstrip().startswith((":::", "|", "<!--", "#")):
            continue
        if block.startswith("    "):  # the options of a ::: directive
            continue
        found.append(block)
    return found


def test_the_reference_pages_are_found() -> None:
    assert len(REFERENCE) >= 12
    assert ROOT / "docs" / "reference" / "handoff.md" in REFERENCE


@pytest.mark.parametrize("page", REFERENCE, ids=lambda p: p.name)
def test_reference_page_reads_as_prose(page: Path) -> None:
    # Issue 22 §5: handoff.md and testing.md began with " export and import" and
    # " the simulated provider:The guide: ...", left over from their old titles.
    text = page.read_text(encoding="utf-8")
    heading = text.splitlines()[0]
    assert re.fullmatch(r"# \S.*\S", heading), heading
    named = re.match(r"# `(sspi_import(?:\.\w+)*)`: \S", heading)
    directives = re.findall(r"^::: (\S+)", text, flags=re.MULTILINE)
    if directives:  # a module page documents the module its heading names, first
        assert named is not None, heading
        assert directives[0] == named[1], (heading, directives)
    for paragraph in paragraphs(text):
        assert re.match(r"[A-Z`\[*!(]", paragraph), f"{page.name}: starts oddly: {paragraph!r}"
        prose = re.sub(r"`[^`]*`|\]\([^)]*\)", "", paragraph)  # code spans, link targets
        assert not GLUED.search(prose), f"{page.name}: sentences run together: {paragraph!r}"


def test_the_prose_check_catches_the_old_breakage() -> None:
    old = "# `sspi_import.testing`: Testing\n\n the simulated provider:The guide.\n\n::: x\n"
    (paragraph,) = paragraphs(old)
    assert not re.match(r"[A-Z`\[*!(]", paragraph)
    assert GLUED.search(paragraph)


# The hand-off the README and the home page open with ------------------------------------


@pytest.mark.parametrize("page", ["README.md", "docs/index.md"])
def test_the_opening_handoff_runs_with_its_stand_ins(page: str) -> None:
    # Issue 22 §5: the home page showed ImportedContext(package, blob, token) and left
    # "duplicate the token into it" to the reader. Both pages now show for_process and
    # from_exported; the fragment runs here with what it says it needs.
    snippet = next(s for s in ALL if s.page == page)
    assert snippet.fragment
    assert ".for_process(worker)" in snippet.code, snippet.code
    assert "ImportedContext.from_exported(" in snippet.code, snippet.code
    with FakeSspi(user="EXAMPLE\\alice") as fake:
        client, server = sspi_import.loopback("NTLM")
        sent: list[bytes] = []
        namespace: dict[str, Any] = {
            "__name__": "__snippet__",
            "server_context": server,
            "worker": os.getpid(),  # the copy round-trips through to_bytes in this process
            "send_to_worker": sent.append,
        }
        with client, server:
            exec(compile(snippet.code, f"{page}:{snippet.line}", "exec"), namespace)
        assert len(sent) == 1
        assert namespace["exported"].closed
        fake.assert_no_leaks()


# The error reference (docs/gen_errors.py) --------------------------------------------


def _gen_errors() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_errors", ROOT / "docs" / "gen_errors.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _overview_rows() -> list[list[str]]:
    table = _gen_errors().error_table().split("\n\n## Every code", 1)[0]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()]


def test_success_codes_are_not_said_to_raise() -> None:
    # Issue 22 §5: SEC_E_OK and every SEC_I_* were listed as raising SspiError; they are
    # returned (errors.check passes every code without the severity bit).
    from sspi_import._raw.status_codes import STATUS_CODES

    sections = _gen_errors().error_table().split("### ")[1:]
    outcome = {row[0].split("`")[1]: row[-1] for row in _overview_rows()[2:]}
    success = [s for s, value, *_ in STATUS_CODES if value < 0x8000_0000 and s in outcome]
    assert "SEC_E_OK" in success
    assert "SEC_I_CONTINUE_NEEDED" in success
    for symbol in success:
        assert outcome[symbol] == "none: returned", symbol
        (section,) = [s for s in sections if s.startswith(symbol + " ")]
        assert "raises `sspi_import." not in section, section
        assert "a success code: returned, never raised" in section, section
    assert outcome["SEC_E_NOT_OWNER"] == "`NotOwnerError`"
    assert outcome["SEC_E_CANNOT_INSTALL"] == "`SspiError`"


def test_the_error_overview_fits_the_page_at_1280_px() -> None:
    # Measured with headless Chromium at 1280 px: the old table (four columns, 96 characters
    # in its widest cells) overflowed its 720 px by 109 px; three columns of at most 78
    # characters fit (74 when this was written).
    rows = _overview_rows()
    assert len(rows[0]) == 3, rows[0]
    widest = [
        max(
            len(part)
            for row in rows[2:]
            for part in re.sub(r"`|\]\(#[^)]*\)|\[", "", row[i]).split("<br>")
        )
        for i in range(3)
    ]
    assert sum(widest) <= 78, widest


def test_readers_are_told_fakesspi_speaks_no_real_protocol() -> None:
    # Issue 22 §3: nothing said a FakeSspi server cannot serve requests-ntlm or curl.
    # tests/test_fake_wire.py holds the claim itself; the example's --help is held in
    # tests/test_http_ntlm_server.py.
    guide = " ".join((ROOT / "docs" / "guides" / "testing.md").read_text().split())
    assert "**not NTLM, Kerberos or SPNEGO messages**" in guide
    assert "cannot talk to it" in guide
    docstring = " ".join((FakeSspi.__doc__ or "").split())
    assert "**not** NTLM, Kerberos or SPNEGO messages" in docstring
    assert "no real client or server" in docstring


POOLS = [s for s in RUNNABLE if 'get_context("spawn")' in s.code]


def test_the_pool_examples_are_found() -> None:
    assert len(POOLS) >= 2


@pytest.mark.parametrize("snippet", [_param(s) for s in POOLS])
def test_a_pool_example_runs_as_a_script(snippet: Snippet, tmp_path: Path) -> None:
    """What a reader does: the block saved as a script and run, its workers spawned.

    A ``spawn`` pool's workers import the script that started them, so its parent's part
    must be behind ``if __name__ == "__main__":``; in-process (``test_snippet_runs``)
    that cannot be seen. The parent gets the simulated provider the page says to install.
    """
    import subprocess

    for block in FILES:
        if block.page == snippet.page and block.file_name is not None:
            (tmp_path / block.file_name).write_text(block.code, encoding="utf-8")
    script = tmp_path / "example.py"
    script.write_text(snippet.code, encoding="utf-8")
    launcher = (
        "import runpy\n"
        "from sspi_import.testing import install_fake\n"
        "install_fake()\n"
        f"runpy.run_path({str(script)!r}, run_name='__main__')\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]))
    done = subprocess.run(
        [sys.executable, "-c", launcher],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "served EXAMPLE\\alice"
