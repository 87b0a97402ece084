"""pytest plugin of ``sspi_import``: the ``sspi_fake`` fixture and the ``windows_sspi`` marker.

Installed with ``sspi-import``, it loads by itself (entry point ``pytest11`` named
``sspi_import``); without the entry point, load it with
``pytest -p sspi_import.testing.pytest_plugin`` or, in a ``conftest.py``,
``pytest_plugins = ["sspi_import.testing.pytest_plugin"]``.

``sspi_fake``
    A fresh ``sspi_import.testing.FakeSspi`` installed as the SSPI library for the
    test (the previous library comes back afterwards). At teardown it checks that the
    test released every context, credential handle, buffer and token, that no
    callback raised (``FakeSspi.assert_no_leaks``), and that nothing was freed or
    deleted twice (``FakeSspi.misuses``; clear the list in a test that does it on
    purpose). A test that already failed is not also reported for leaks. Configure it
    before use::

        def test_handoff(sspi_fake):
            sspi_fake.fail("ImportSecurityContextW", "SEC_E_NOT_OWNER")
            ...

    To start from other settings (user, packages, machine), install your own
    ``FakeSspi`` in a ``with`` block inside the test instead.

``@pytest.mark.windows_sspi``
    The test needs the real Windows SSPI (secur32.dll). Off Windows it is skipped,
    with the reason shown in ``pytest -rs``.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Generator, Iterator

import pytest

from ._fake import FakeSspi

__all__ = [
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_runtest_makereport",
    "sspi_fake",
]

_MARKER = "windows_sspi"
_SKIP_REASON = "needs the real Windows SSPI (secur32.dll); this is not Windows"


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``windows_sspi`` marker (so ``--strict-markers`` accepts it)."""
    config.addinivalue_line(
        "markers", f"{_MARKER}: needs the real Windows SSPI (secur32.dll); skipped elsewhere"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked ``windows_sspi`` when not running on Windows."""
    if sys.platform != "win32":  # not an early return: mypy --platform win32 would flag it
        skip = pytest.mark.skip(reason=_SKIP_REASON)
        for item in items:
            if item.get_closest_marker(_MARKER) is not None:
                item.add_marker(skip)


_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember whether the test itself failed, so ``sspi_fake`` does not pile on."""
    report = yield
    if report.when == "call" and report.failed:
        item.stash[_FAILED] = True
    return report


@pytest.fixture
def sspi_fake(request: pytest.FixtureRequest) -> Iterator[FakeSspi]:
    """A fresh ``FakeSspi`` installed for the test; leaks fail the test at teardown."""
    with FakeSspi() as fake:
        yield fake
        gc.collect()  # objects the test dropped release their handles now
    if request.node.stash.get(_FAILED, False):
        return
    fake.assert_no_leaks()
    assert not fake.misuses, f"FakeSspi: handles misused: {fake.misuses}"
