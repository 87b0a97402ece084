"""Fail unless a JUnit XML report shows its tests ran: nothing failed, nothing skipped unexpectedly.

Usage::

    python .ci/check_junit.py junit-windows.xml [--marker windows_sspi]
    python .ci/check_junit.py junit.xml --whole-suite [--allow-skip windows_sspi]

The report must come from pytest run with the ``junit_markers`` plugin
(``-p junit_markers`` with ``.ci`` on ``PYTHONPATH``), which records every test's
markers. Two modes:

- ``--marker M`` (the default, ``windows_sspi``): at least one test with the marker
  passed. The real-SSPI step of the GitHub Windows jobs.
- ``--whole-suite``: the report is a whole suite (the Linux lane, the Wine lane): at
  least one test passed, whatever its markers.

In both, a skipped test fails the check unless it carries a marker named by
``--allow-skip`` (on Linux, ``windows_sspi``: those tests say why they skip there);
expected skips are counted and their reasons printed, one line per reason. Exit status:

- 0 when that holds and nothing in the report failed or errored;
- 1 otherwise: an unexpected skip (``pytest.skip``, ``skipif``, ``xfail``, whatever its
  markers), a module skipped at collection (``pytest.skip(allow_module_level=True)``,
  ``importorskip``: pytest records it as a ``<testcase>`` with ``<skipped>`` and no
  markers, because no test of it was ever collected, so it is never expected), a
  failure, an error (a collection error is a ``<testcase>`` with ``<error>``), or no
  test that should have passed;
- 2 when the report is missing or unreadable, or a test passed without a markers
  property (the plugin was not loaded, so the report cannot say which tests are which).

This turns "the tests were quietly skipped" into a red build: no gcc (the stub tests),
no sspilib (the sspi-rs tests), no secur32, including the case where a whole module
skipped before its tests were seen.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

PROPERTY = "markers"
DEFAULT_MARKER = "windows_sspi"
_REASON_MAX = 300


class ReportError(Exception):
    """The report cannot be used: missing, not XML, or without marker properties."""


@dataclass
class Tally:
    """What the report says: the marker's tests that passed, and everything that did not run.

    ``skipped`` and ``failed`` hold every testcase of the report, whatever its markers
    (a module skipped or broken at collection has none); ``marked`` counts the
    testcases that carry the marker, whatever their outcome.
    """

    marked: int = 0
    passed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)
    all_passed: int = 0
    """Tests that passed, whatever their markers."""
    expected_skips: list[str] = field(default_factory=list)
    """Skipped tests that carry an ``allow_skip`` marker (not in ``skipped``)."""


def _markers(case: ET.Element) -> set[str] | None:
    for prop in case.iter("property"):
        if prop.get("name") == PROPERTY:
            return set((prop.get("value") or "").split())
    return None


def _reason(element: ET.Element) -> str:
    """The skip reason or error message of a ``<skipped>``/``<error>``/``<failure>``."""
    message = (element.get("message") or "").strip()
    text = (element.text or "").strip()
    # Collection outcomes carry a fixed message and the real reason in the text.
    if text and message in {"", "collection skipped", "collection failure"}:
        reason = " ".join(text.split())
        if message:
            reason = f"{message}: {reason}"
    else:
        reason = message
    if len(reason) > _REASON_MAX:
        reason = reason[: _REASON_MAX - 3] + "..."
    return reason


def tally(report: Path, marker: str, allow_skip: frozenset[str] = frozenset()) -> Tally:
    """Read ``report``: the tests that carry ``marker``, and every skip, failure and error.

    A skipped test that carries one of the ``allow_skip`` markers is counted in
    ``expected_skips``, not in ``skipped``.
    """
    try:
        root = ET.parse(report).getroot()  # noqa: S314 - our own pytest's report
    except (OSError, ET.ParseError) as exc:
        raise ReportError(f"cannot read the JUnit report {report}: {exc}") from None
    result = Tally()
    unmarked_passes: list[str] = []
    for case in root.iter("testcase"):
        markers = _markers(case)
        classname = case.get("classname", "")
        name = f"{classname}::{case.get('name', '')}" if classname else case.get("name", "")
        if markers is None:
            name = f"{name} (no markers: at collection, or the plugin was not loaded)"
        elif marker in markers:
            result.marked += 1
        outcome = case.find("skipped")
        if outcome is not None:
            expected = markers is not None and not markers.isdisjoint(allow_skip)
            (result.expected_skips if expected else result.skipped).append(name)
            result.reasons[name] = _reason(outcome)
            continue
        outcome = case.find("error")
        if outcome is None:
            outcome = case.find("failure")
        if outcome is not None:
            result.failed.append(name)
            result.reasons[name] = _reason(outcome)
            continue
        result.all_passed += 1
        if markers is None:
            unmarked_passes.append(name)
        elif marker in markers:
            result.passed.append(name)
    if unmarked_passes:
        raise ReportError(
            f"{report} records no markers for {len(unmarked_passes)} passed test(s): run "
            "pytest with -p junit_markers (with .ci on PYTHONPATH) so the report says which "
            "tests are which"
        )
    return result


def main(argv: list[str] | None = None) -> int:
    """Check the report; print a summary; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="JUnit XML written by pytest --junitxml")
    parser.add_argument(
        "--marker",
        default=DEFAULT_MARKER,
        help=f"marker whose tests must pass, at least one (default: {DEFAULT_MARKER})",
    )
    parser.add_argument(
        "--whole-suite",
        action="store_true",
        help="the report is a whole suite: at least one test must pass, whatever its markers",
    )
    parser.add_argument(
        "--allow-skip",
        metavar="MARKER",
        action="append",
        default=[],
        help="a skipped test carrying MARKER is expected, not a failure (repeatable)",
    )
    args = parser.parse_args(argv)
    allow = frozenset(args.allow_skip)
    try:
        result = tally(args.report, args.marker, allow)
    except ReportError as exc:
        print(f"check_junit: {exc}", file=sys.stderr)
        return 2
    if args.whole_suite:
        print(
            f"check_junit: {result.all_passed} passed, "
            f"{len(result.expected_skips)} skipped as expected "
            f"({', '.join(sorted(allow)) or 'none allowed'}), "
            f"{len(result.skipped)} skipped unexpectedly, "
            f"{len(result.failed)} failed or errored"
        )
    else:
        print(
            f"check_junit: {result.marked} '{args.marker}' tests, {len(result.passed)} passed; "
            f"in the whole report {len(result.skipped)} skipped, "
            f"{len(result.failed)} failed or errored"
        )
    reasons: dict[str, int] = {}
    for name in result.expected_skips:
        reasons[result.reasons[name]] = reasons.get(result.reasons[name], 0) + 1
    for reason, count in sorted(reasons.items()):
        print(f"  expected skip x{count}: {reason}")
    for name in result.skipped:
        print(f"  skipped: {name}: {result.reasons[name]}")
    for name in result.failed:
        print(f"  failed:  {name}: {result.reasons[name]}")
    status = 0
    if args.whole_suite and not result.all_passed:
        print("check_junit: no test passed; this lane must run the suite", file=sys.stderr)
        status = 1
    elif not args.whole_suite and not result.passed:
        print(
            f"check_junit: no '{args.marker}' test passed; this lane must run them",
            file=sys.stderr,
        )
        status = 1
    if result.skipped:
        print(
            "check_junit: nothing may be skipped here but tests marked "
            f"{', '.join(sorted(allow)) or '(none)'} (a module skipped at collection counts): "
            "every test of this lane must run, or be deselected by name with its reason",
            file=sys.stderr,
        )
        status = 1
    if result.failed:
        print("check_junit: every test of this lane must pass", file=sys.stderr)
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
