r"""Test without Windows, and test failures on Windows: ``FakeSspi``, ``FaultInjector``.

``FakeSspi`` implements every SSPI call the library makes as ctypes callbacks with the
real prototypes, so code under test runs exactly as against ``secur32.dll``::

    from sspi_import.testing import FakeSspi

    with FakeSspi(user="EXAMPLE\\alice") as fake:
        ...  # establish, export, import contexts
        fake.assert_no_leaks()

For a whole process with no ``with`` block around it (a worker pool's workers),
``install_fake(...)`` installs one for good: ``ProcessPoolExecutor(initializer=install_fake)``.

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

from ._fake import FakeSspi, install_fake
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
    "install_fake",
]
