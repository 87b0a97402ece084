r"""Test without Windows, and test failures on Windows: ``FakeSspi``, ``FaultInjector``.

``FakeSspi`` implements every SSPI call the library makes as ctypes callbacks with the
real prototypes, so code under test runs exactly as against ``secur32.dll``::

    from sspi_import.testing import FakeSspi

    with FakeSspi(user="EXAMPLE\\alice") as fake:
        ...  # establish, export, import contexts
        fake.assert_no_leaks()

``FaultInjector`` wraps a real provider (secur32 by default on Windows, sspi-rs, any
path) and makes chosen calls fail with chosen statuses, everything else going to the
real library.

With pytest, the plugin ``sspi_import.testing.pytest_plugin`` (loaded automatically
once ``sspi-import`` is installed) gives each test a fresh, installed ``FakeSspi``
(``sspi_fake``) or ``FaultInjector`` (``sspi_faults``) and checks for leaks afterwards;
``sspi_faults_factory`` is a ``FaultInjectorFactory`` (it takes a ``Library``).

``FakeSspi`` speaks its own handshake tokens, not NTLM, Kerberos or SPNEGO messages: it
can stand on both sides of a handshake that this library runs, but no real client or
server (requests-ntlm, curl, a browser, pyspnego) can talk to it.

Packed contexts are authenticated with a key derived from the ``machine`` name, so a
blob exported by one process's ``FakeSspi`` imports in another process whose
``FakeSspi`` simulates the same machine, and nowhere else.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing; type checkers know it
if TYPE_CHECKING:  # for type checkers; at run time __getattr__ imports on first use
    from ._fake import FakeSspi
    from ._faults import FaultInjector, FaultInjectorFactory, Library, default_library
    from ._names import SspiFunction
    from ._state import Misuse, Outstanding

__all__ = [
    "FakeSspi",
    "FaultInjector",
    "FaultInjectorFactory",
    "Library",
    "Misuse",
    "Outstanding",
    "SspiFunction",
    "default_library",
]

_HOMES = {
    "FakeSspi": "_fake",
    "FaultInjector": "_faults",
    "FaultInjectorFactory": "_faults",
    "Library": "_faults",
    "default_library": "_faults",
    "SspiFunction": "_names",
    "Misuse": "_state",
    "Outstanding": "_state",
}
"""The module of each public name: imported the first time the name is used, so the
pytest plugin (a submodule of this package) loads none of them in a session that never
asks for a fixture."""


def _load(name: str) -> object:
    """The public name ``name``, imported from its module on first use, then kept here."""
    module = _HOMES.get(name)
    if module is None:
        raise AttributeError(f"module 'sspi_import.testing' has no attribute {name!r}")
    value = getattr(__import__(f"{__name__}.{module}", fromlist=["_"]), name)
    globals()[name] = value
    return value


def _dir() -> list[str]:
    return sorted({*globals(), *__all__})


if not TYPE_CHECKING:  # hidden from type checkers: an unknown name stays an error there
    __getattr__ = _load
    __dir__ = _dir
