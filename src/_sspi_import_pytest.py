"""The pytest plugin of sspi-import, as its entry point loads it (see below for why here).

Documented, and importable for ``-p``/``pytest_plugins``, as
``sspi_import.testing.pytest_plugin``. It loads in every pytest session of an environment
that has sspi-import installed, where pytest also parses and rewrites each module of the
distribution that is imported. So it is a top-level module, like hypothesis's
``_hypothesis_pytestplugin``: loading it imports nothing of ``sspi_import`` (not even the
package), the fixtures import what they need when a test asks for one, and it is short.
"""

from __future__ import annotations

import sys

import pytest

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing; type checkers know it
if TYPE_CHECKING:
    from collections.abc import Iterator

    from _pytest.nodes import Node

    from sspi_import.testing import FakeSspi, FaultInjector, FaultInjectorFactory

_MARKER = "windows_sspi"
_DLL = "secur32.dll"
_UNCHECKED = pytest.StashKey[bool]()


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``windows_sspi`` marker (so ``--strict-markers`` accepts it)."""
    line = f"{_MARKER}: needs the real Windows SSPI ({_DLL}); skipped elsewhere"
    if line not in config.getini("markers"):  # also loaded by -p or pytest_plugins
        config.addinivalue_line("markers", line)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked ``windows_sspi`` when not running on Windows."""
    if sys.platform != "win32":  # not an early return: mypy --platform win32 would flag it
        skip = pytest.mark.skip(reason=f"needs the real Windows SSPI ({_DLL}); this is not Windows")
        marked: dict[int, bool] = {}  # per parent node: shared by its items, walked once
        for item in items:
            if _marked(item, marked):
                item.add_marker(skip)


def _marked(node: Node, seen: dict[int, bool]) -> bool:
    """``node.get_closest_marker(_MARKER) is not None``, each parent looked at once."""
    if any(mark.name == _MARKER for mark in node.own_markers):
        return True
    parent = node.parent
    if parent is None:
        return False
    found = seen.get(id(parent))
    if found is None:
        found = seen[id(parent)] = _marked(parent, seen)
    return found


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    """Remember that setup or the test raised (failed, skipped, xfailed): no leak check.

    A plain hook, not a wrapper, so it runs on every pluggy pytest 7.0+ accepts.
    """
    if call.when in ("setup", "call") and call.excinfo is not None:
        item.stash[_UNCHECKED] = True


@pytest.fixture
def sspi_fake(request: pytest.FixtureRequest) -> Iterator[FakeSspi]:
    """A fresh ``FakeSspi`` installed for the test; leaks fail the test at teardown."""
    from sspi_import.testing._fixtures import fake

    yield from fake(request, _UNCHECKED)


@pytest.fixture
def sspi_faults_factory(request: pytest.FixtureRequest) -> Iterator[FaultInjectorFactory]:
    """Install a ``FaultInjector`` over the library given; the old one comes back after."""
    from sspi_import.testing._fixtures import faults_factory

    _fake_first(request)
    yield from faults_factory()


@pytest.fixture
def sspi_faults(request: pytest.FixtureRequest) -> Iterator[FaultInjector]:
    """A ``FaultInjector`` over the default real provider; skips where there is none."""
    from sspi_import.testing._fixtures import faults

    _fake_first(request)
    yield from faults()


def _fake_first(request: pytest.FixtureRequest) -> None:
    """Set ``sspi_fake`` up first when the test asks for both, whatever the order.

    Each puts back the library it found, so they must be undone in the reverse order:
    an injector set up before the fake would put the test's fake back after it.
    """
    if "sspi_fake" in request.fixturenames:
        request.getfixturevalue("sspi_fake")
