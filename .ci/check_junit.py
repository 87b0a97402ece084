"""Fail unless a JUnit XML report shows tests of one marker ran and none was skipped.

Usage::

    python .ci/check_junit.py junit-windows.xml [--marker windows]

The report must come from pytest run with the ``junit_markers`` plugin
(``-p junit_markers`` with ``.ci`` on ``PYTHONPATH``), which records every test's
markers. Exit status: 0 when at least one test has the marker and none of those was
skipped, failed or errored; 1 otherwise; 2 when the report is missing, unreadable or
carries no marker information. On the Windows lanes this turns "the real-SSPI tests
were quietly skipped" into a red build.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

PROPERTY = "markers"


class ReportError(Exception):
    """The report cannot be used: missing, not XML, or without marker properties."""


@dataclass
class Tally:
    """What happened to the tests that carry the marker."""

    passed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """How many tests carry the marker."""
        return len(self.passed) + len(self.skipped) + len(self.failed)


def _markers(case: ET.Element) -> set[str] | None:
    for prop in case.iter("property"):
        if prop.get("name") == PROPERTY:
            return set((prop.get("value") or "").split())
    return None


def tally(report: Path, marker: str) -> Tally:
    """Read ``report`` and sort the tests that carry ``marker`` by outcome."""
    try:
        root = ET.parse(report).getroot()  # noqa: S314 - our own pytest's report
    except (OSError, ET.ParseError) as exc:
        raise ReportError(f"cannot read the JUnit report {report}: {exc}") from None
    result = Tally()
    cases = list(root.iter("testcase"))
    with_markers = 0
    for case in cases:
        markers = _markers(case)
        if markers is None:
            continue
        with_markers += 1
        if marker not in markers:
            continue
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        if case.find("skipped") is not None:
            result.skipped.append(name)
        elif case.find("failure") is not None or case.find("error") is not None:
            result.failed.append(name)
        else:
            result.passed.append(name)
    if cases and not with_markers:
        raise ReportError(
            f"{report} records no markers: run pytest with -p junit_markers "
            "(with .ci on PYTHONPATH) so the report says which tests are which"
        )
    return result


def main(argv: list[str] | None = None) -> int:
    """Check the report; print a summary; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="JUnit XML written by pytest --junitxml")
    parser.add_argument("--marker", default="windows", help="marker to count (default: windows)")
    args = parser.parse_args(argv)
    try:
        result = tally(args.report, args.marker)
    except ReportError as exc:
        print(f"check_junit: {exc}", file=sys.stderr)
        return 2
    print(
        f"check_junit: {result.total} '{args.marker}' tests: {len(result.passed)} passed, "
        f"{len(result.skipped)} skipped, {len(result.failed)} failed or errored"
    )
    for name in result.skipped:
        print(f"  skipped: {name}")
    for name in result.failed:
        print(f"  failed:  {name}")
    if result.total == 0:
        print(f"check_junit: no '{args.marker}' test ran; this lane must run them", file=sys.stderr)
        return 1
    if result.skipped or result.failed:
        print(f"check_junit: every '{args.marker}' test must run and pass here", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
