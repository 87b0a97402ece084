"""pytest plugin: write each test's marker names into the JUnit XML report.

Load it with ``-p junit_markers`` (``.ci`` on ``PYTHONPATH``). Every ``<testcase>`` then
carries ``<property name="markers" value="windows_sspi ..."/>``, which ``.ci/check_junit.py``
reads to count the tests of one marker, whatever ``-m`` selected. A module skipped or
broken at collection yields no test, so its ``<testcase>`` has no such property:
``check_junit`` counts it as skipped or failed all the same.
"""

from __future__ import annotations

import pytest

PROPERTY = "markers"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Record the marker names of every collected test as a report property."""
    for item in items:
        names = sorted({mark.name for mark in item.iter_markers()})
        item.user_properties.append((PROPERTY, " ".join(names)))
