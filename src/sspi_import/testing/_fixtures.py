"""What the pytest plugin's fixtures do; the plugin module only declares them.

The entry point loads the top-level ``_sspi_import_pytest`` in every pytest session of
an environment that has sspi-import installed; its fixtures import this module, and the
library with it, only when a test asks for one.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator

import pytest

from .. import library as _library
from ..errors import SspiUnavailableError
from ._fake import FakeSspi
from ._faults import FaultInjector, FaultInjectorFactory, Library
from ._leakwatch import LeakWatch

__all__ = ["fake", "faults", "faults_factory", "leak_report"]

ADVICE = "; close it or use 'with'"
"""How the finalizer's ``ResourceWarning`` ends (``_handle``): said once in the report."""


def leak_report(messages: Iterable[str]) -> str:
    """The teardown failure for the owners a test left to their finalizer, advice once."""
    leaked = "; ".join(message.removesuffix(ADVICE) for message in messages)
    return (
        f"sspi_fake: left to a finalizer: {leaked}. Close each one or use 'with' (to drop "
        "one on purpose, catch its warning: pytest.warns(ResourceWarning))"
    )


def fake(request: pytest.FixtureRequest, unchecked: pytest.StashKey[bool]) -> Iterator[FakeSspi]:
    """``sspi_fake``: a fresh ``FakeSspi`` installed for the test; leaks fail its teardown.

    ``unchecked`` is set in the item's stash when setup or the test raised.
    """
    if "recwarn" in request.fixturenames:  # outside the watch, whatever the order asked
        request.getfixturevalue("recwarn")
    with LeakWatch() as watch, FakeSspi() as simulated:
        yield simulated
        gc.collect()  # objects the test dropped release their handles now
    if request.node.stash.get(unchecked, False):
        return
    if watch.leaked:
        pytest.fail(leak_report(str(m.message) for m in watch.leaked))
    simulated.assert_no_leaks()
    assert not simulated.misuses, f"FakeSspi: handles misused: {simulated.misuses}"


def faults_factory() -> Iterator[FaultInjectorFactory]:
    """``sspi_faults_factory``: installs injectors for the test; the old library after."""
    installed: list[FaultInjector] = []

    def install(library: Library) -> FaultInjector:
        injector = FaultInjector(library)
        injector.__enter__()
        installed.append(injector)
        return injector

    yield install
    for injector in reversed(installed):
        injector.__exit__(None, None, None)


def faults() -> Iterator[FaultInjector]:
    """``sspi_faults``: an injector over the default real provider; skips where none."""
    try:
        injector = FaultInjector()
    except SspiUnavailableError as exc:
        pytest.skip(f"sspi_faults: {exc}")
    previous = _library.swap(_library.load(injector, injector.description))
    try:
        yield injector
    finally:
        _library.swap(previous)
