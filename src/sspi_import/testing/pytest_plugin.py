"""pytest plugin of ``sspi_import``: ``sspi_fake``, ``sspi_faults`` and ``windows_sspi``.

Installed with ``sspi-import``, it loads by itself (entry point ``pytest11`` named
``sspi_import``); without the entry point, load it with
``pytest -p sspi_import.testing.pytest_plugin`` or, in a ``conftest.py``,
``pytest_plugins = ["sspi_import.testing.pytest_plugin"]``. It works on pytest 7.0
and newer (no hook wrappers, so any pluggy pytest accepts).

``sspi_fake`` (a ``FakeSspi``)
    A fresh ``sspi_import.testing.FakeSspi`` installed as the SSPI library for the
    test (the previous library comes back afterwards)::

        from sspi_import.testing import FakeSspi

        def test_handoff(sspi_fake: FakeSspi) -> None:
            sspi_fake.fail("ImportSecurityContextW", "SEC_E_NOT_OWNER")
            ...

    At teardown it fails the test (an error in teardown) if the test left anything to
    a finalizer: every ``ResourceWarning`` an ``sspi_import`` owner emits during the
    test and the ``gc.collect()`` after it is recorded, whatever the warning filters
    say, and named in the failure. Then it checks that every context, credential
    handle, buffer and token was released, that no callback raised
    (``FakeSspi.assert_no_leaks``), and that nothing was freed or deleted twice
    (``FakeSspi.misuses``; clear the list in a test that does it on purpose). A test
    that failed, errored in setup, was skipped inside or xfailed is not checked. To
    drop an owner on purpose, catch its warning with ``pytest.warns(ResourceWarning)``.

``sspi_faults`` (a ``FaultInjector``)
    A ``FaultInjector`` over the default real provider (``SSPI_IMPORT_LIBRARY``, else
    secur32 on Windows) installed for the test; skipped, with the reason, where there
    is none. ``sspi_faults_factory(library)`` installs one over any library (a path,
    ``sspi_import.find_sspi_rs()``, a ``ctypes`` library, a ``FakeSspi``).

``@pytest.mark.windows_sspi``
    The test needs the real Windows SSPI (secur32.dll). Off Windows it is skipped,
    with the reason shown in ``pytest -rs``.
"""

from __future__ import annotations

import gc
import sys
import warnings
from collections.abc import Callable, Iterator

import pytest

from .. import library as _library
from ..errors import SspiUnavailableError
from ._fake import FakeSspi
from ._faults import FaultInjector, Library

__all__ = [
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_runtest_makereport",
    "sspi_fake",
    "sspi_faults",
    "sspi_faults_factory",
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


_UNCHECKED = pytest.StashKey[bool]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    """Remember that setup or the test raised (failed, skipped, xfailed): no leak check.

    A plain hook, not a wrapper, so it runs on every pluggy pytest 7.0+ accepts.
    """
    if call.when in ("setup", "call") and call.excinfo is not None:
        item.stash[_UNCHECKED] = True


def _is_ours(message: warnings.WarningMessage) -> bool:
    if not issubclass(message.category, ResourceWarning):
        return False
    source = message.source
    if source is not None:
        return type(source).__module__.split(".")[0] == "sspi_import"
    return "sspi_import" in message.filename.replace("\\", "/")


@pytest.fixture
def sspi_fake(request: pytest.FixtureRequest) -> Iterator[FakeSspi]:
    """A fresh ``FakeSspi`` installed for the test; leaks fail the test at teardown."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)  # ahead of every other filter
        with FakeSspi() as fake:
            yield fake
            gc.collect()  # objects the test dropped release their handles now
    leaked = [m for m in caught if _is_ours(m)]
    for message in caught:  # everything else goes on to pytest's own filters
        if message not in leaked:
            warnings.warn_explicit(
                message.message,
                message.category,
                message.filename,
                message.lineno,
                source=message.source,
            )
    if request.node.stash.get(_UNCHECKED, False):
        return
    if leaked:
        lines = "; ".join(str(m.message) for m in leaked)
        pytest.fail(f"sspi_fake: left to a finalizer (close it or use 'with'): {lines}")
    fake.assert_no_leaks()
    assert not fake.misuses, f"FakeSspi: handles misused: {fake.misuses}"


@pytest.fixture
def sspi_faults_factory() -> Iterator[Callable[[Library], FaultInjector]]:
    """Install a ``FaultInjector`` over the library given; the old one comes back after."""
    installed: list[FaultInjector] = []

    def install(library: Library) -> FaultInjector:
        injector = FaultInjector(library)
        injector.__enter__()
        installed.append(injector)
        return injector

    yield install
    for injector in reversed(installed):
        injector.__exit__(None, None, None)


@pytest.fixture
def sspi_faults() -> Iterator[FaultInjector]:
    """A ``FaultInjector`` over the default real provider; skips where there is none."""
    try:
        injector = FaultInjector()
    except SspiUnavailableError as exc:
        pytest.skip(f"sspi_faults: {exc}")
    previous = _library.swap(_library.load(injector, injector.description))
    try:
        yield injector
    finally:
        _library.swap(previous)
