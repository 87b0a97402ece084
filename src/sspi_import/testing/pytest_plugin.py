"""pytest plugin of ``sspi_import``: ``sspi_fake``, ``sspi_faults`` and ``windows_sspi``.

Installed with ``sspi-import``, it loads by itself (entry point ``pytest11`` named
``sspi_import``); without the entry point, load it with
``pytest -p sspi_import.testing.pytest_plugin`` or, in a ``conftest.py``,
``pytest_plugins = ["sspi_import.testing.pytest_plugin"]``. Turn it off with
``pytest -p no:sspi_import`` (or ``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1``, which turns off
every installed plugin). It works on pytest 7.0 and newer (no hook wrappers, so any
pluggy pytest accepts).

It costs nothing measurable in a session that does not use it: the entry point loads
``_sspi_import_pytest``, a short top-level module that imports nothing of the library
(not even this package), so pytest has next to nothing more to import or rewrite; a
fixture imports what it needs when a test asks for it. This module re-exports it
(``benchmarks/bench_plugin_startup.py`` measures the cost).

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
    say, and named in the failure. Every other warning goes where it would have gone
    without the fixture (pytest's summary, ``recwarn``, ``pytest.warns``, ``-W
    error``), as it happens. Then it checks that every context, credential handle,
    buffer and token was released, that no callback raised
    (``FakeSspi.assert_no_leaks``), and that nothing was freed or deleted twice
    (``FakeSspi.misuses``; clear the list in a test that does it on purpose). A test
    that failed, errored in setup, was skipped inside or xfailed is not checked. To
    drop an owner on purpose, catch its warning with ``pytest.warns(ResourceWarning)``.
    A test that also asks for ``recwarn`` gets it set up first, whatever the order of
    the arguments, so that ``recwarn`` sees the test's warnings and the fixture its
    leaks.

    Its tokens are the simulated provider's own, not NTLM, Kerberos or SPNEGO
    messages: no real client or server can talk to it.

``sspi_faults`` (a ``FaultInjector``)
    A ``FaultInjector`` over the default real provider (``SSPI_IMPORT_LIBRARY``, else
    secur32 on Windows) installed for the test; skipped, with the reason, where there
    is none. ``sspi_faults_factory(library)`` installs one over any library (a path,
    ``sspi_import.find_sspi_rs()``, a ``ctypes`` library, a ``FakeSspi``); annotate it
    as ``sspi_import.testing.FaultInjectorFactory``.

``@pytest.mark.windows_sspi``
    The test needs the real Windows SSPI (secur32.dll). Off Windows it is skipped,
    with the reason shown in ``pytest -rs``.
"""

from __future__ import annotations

from _sspi_import_pytest import (
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_runtest_makereport,
    sspi_fake,
    sspi_faults,
    sspi_faults_factory,
)

__all__ = [
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_runtest_makereport",
    "sspi_fake",
    "sspi_faults",
    "sspi_faults_factory",
]
