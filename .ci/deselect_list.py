"""pytest plugin: deselect the tests that one list names, each under its reason, and say so.

Load it with ``-p deselect_list`` (``.ci`` on ``PYTHONPATH``) and name the list with
``--deselect-list=FILE`` (repeatable). ``.ci/windows_deselect.txt`` names what no Windows
interpreter runs (POSIX-only tests, sspi-rs, Linux programs): the GitHub Windows jobs and
the Wine lane use it; ``.ci/wine_deselect.txt`` names what Wine's secur32 cannot do:
the Wine lane (``.ci/wine_lane``) adds it. A file is sections, each a reason in brackets
and the selectors it covers::

    # a comment
    [Wine's secur32 has no ExportSecurityContext: SEC_E_UNSUPPORTED_FUNCTION]
    tests/test_windows_handoff.py
    tests/test_cli_packages.py::test_packages_on_windows
    marker:sspi_rs

A selector is a test id, or a prefix of one that ends at a ``::`` or ``[`` boundary (a
file, a class, a parametrized test without its parameters), or ``marker:NAME`` for every
test that carries the marker. The run fails before any test runs (a usage error) when
the list cannot be read, a selector has no reason, a reason has no selector, or a
selector matches no collected test: a stale entry would otherwise hide nothing and say
something false. The terminal summary prints every reason with its count, so the log
says what did not run and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

OPTION = "--deselect-list"
MARKER_PREFIX = "marker:"


@dataclass
class Entry:
    """One selector of a list, its reason and the tests it deselected."""

    selector: str
    reason: str
    source: str
    line: int
    matched: list[str] = field(default_factory=list)

    def matches(self, item: pytest.Item) -> bool:
        """Whether ``item`` is one of the tests this selector names."""
        if self.selector.startswith(MARKER_PREFIX):
            return item.get_closest_marker(self.selector[len(MARKER_PREFIX) :]) is not None
        nodeid = item.nodeid
        return nodeid == self.selector or nodeid.startswith(
            (self.selector + "::", self.selector + "[")
        )


def parse(text: str, source: str = "<list>") -> list[Entry]:
    """The entries of a list file; ``pytest.UsageError`` names the first bad line."""
    entries: list[Entry] = []
    reason: str | None = None
    reason_line = 0
    covered = True
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            if not line.endswith("]") or not line[1:-1].strip():
                raise pytest.UsageError(f"{source}:{number}: a reason is '[text]': {raw!r}")
            if not covered:
                raise pytest.UsageError(f"{source}:{reason_line}: reason without a selector")
            reason, reason_line, covered = line[1:-1].strip(), number, False
            continue
        if reason is None:
            raise pytest.UsageError(f"{source}:{number}: selector {line!r} before any [reason]")
        if " " in line or (line.startswith(MARKER_PREFIX) and line == MARKER_PREFIX):
            raise pytest.UsageError(f"{source}:{number}: not a test id or marker: {raw!r}")
        entries.append(Entry(line, reason, source, number))
        covered = True
    if not covered:
        raise pytest.UsageError(f"{source}:{reason_line}: reason without a selector")
    return entries


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--deselect-list=FILE`` (repeatable)."""
    parser.addoption(
        OPTION,
        metavar="FILE",
        action="append",
        default=[],
        help="deselect the tests this file names, each under its [reason] (.ci/deselect_list.py)",
    )


_KEY = pytest.StashKey[list[Entry]]()


def pytest_configure(config: pytest.Config) -> None:
    """Read and check the list before collection (a bad list is a usage error)."""
    paths = config.getoption(OPTION)
    if not paths:
        return
    entries: list[Entry] = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise pytest.UsageError(f"cannot read the deselect list {path}: {exc}") from None
        entries += parse(text, str(path))
    config.stash[_KEY] = entries


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect what the list names; refuse an entry that matches nothing."""
    entries = config.stash.get(_KEY, None)
    if entries is None:
        return
    kept: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    for item in items:
        entry = next((e for e in entries if e.matches(item)), None)
        if entry is None:
            kept.append(item)
        else:
            entry.matched.append(item.nodeid)
            deselected.append(item)
    stale = [e for e in entries if not e.matched]
    if stale:
        names = ", ".join(f"{e.selector} ({e.source}:{e.line})" for e in stale)
        raise pytest.UsageError(
            f"deselect list entries that match no collected test; remove or correct them: {names}"
        )
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Every reason with its count, then each selector with its own."""
    entries = config.stash.get(_KEY, None)
    if not entries:
        return
    by_reason: dict[str, list[Entry]] = {}
    for entry in entries:
        by_reason.setdefault(entry.reason, []).append(entry)
    total = sum(len(e.matched) for e in entries)
    lists = ", ".join(config.getoption(OPTION))
    terminalreporter.section(f"deselected by {lists}: {total} tests")
    for reason, group in by_reason.items():
        count = sum(len(e.matched) for e in group)
        terminalreporter.write_line(f"{count:4d}  {reason}")
        for entry in group:
            terminalreporter.write_line(f"        {len(entry.matched):4d}  {entry.selector}")
