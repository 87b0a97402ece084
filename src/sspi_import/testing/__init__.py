r"""Test without Windows: ``FakeSspi``, a simulated SSPI provider, and a pytest plugin.

``FakeSspi`` implements every SSPI call the library makes as ctypes callbacks with the
real prototypes, so code under test runs exactly as against ``secur32.dll``::

    from sspi_import.testing import FakeSspi

    with FakeSspi(user="EXAMPLE\\alice") as fake:
        ...  # establish, export, import contexts
        fake.assert_no_leaks()

With pytest, the ``sspi_fake`` fixture of ``sspi_import.testing.pytest_plugin`` (loaded
automatically once ``sspi-import`` is installed) gives each test a fresh, installed
``FakeSspi`` and checks for leaks afterwards.

Packed contexts are authenticated with a key derived from the ``machine`` name, so a
blob exported by one process's ``FakeSspi`` imports in another process whose
``FakeSspi`` simulates the same machine, and nowhere else.
"""

from __future__ import annotations

from ._fake import FakeSspi, Misuse, Outstanding

__all__ = ["FakeSspi", "Misuse", "Outstanding"]
