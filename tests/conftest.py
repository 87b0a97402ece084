"""Shared fixtures: the C stub library, a checked FakeSspi, a scripted provider at the mocked
raw boundary, the real sspi-rs provider, a Heimdal KDC for the Kerberos lane, and a clean
loader.

Tests that need the real Windows SSPI carry the shipped plugin's marker
``@pytest.mark.windows_sspi`` (``sspi_import.testing.pytest_plugin``), which skips them
elsewhere with the reason: the project uses its own plugin, as its users do.

Every test starts and ends with no library installed, so nothing leaks from one test's
``use_library`` into the next.

The Kerberos lane (tests marked ``kerberos``) needs Heimdal's KDC, python-gssapi and the
``krb5`` package (for pyspnego's Kerberos); ``bash .ci/kerberos`` prepares all of it (as
root). Where they are missing the tests skip, saying so; with
``SSPI_IMPORT_REQUIRE_KERBEROS=1`` (what ``.ci/run`` sets for the lane) a skip of a
``kerberos`` test is a failure instead.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import pathlib
import sys
from collections.abc import Generator, Iterator
from typing import Any

import pytest
from pytest_mock import MockerFixture

import sspi_import
from kdc import HeimdalRealm, KdcUnavailableError, closed_port, heimdal_tools
from scripted_sspi import Provider
from sspi_import import library
from sspi_import.testing import FakeSspi
from stubs import ENV_VAR as STUB_ENV_VAR
from stubs import Stub, StubUnavailable, stub_source

ON_WINDOWS = sys.platform == "win32"
REQUIRE_KERBEROS = "SSPI_IMPORT_REQUIRE_KERBEROS"
_PREPARE = "`bash .ci/kerberos .venv/bin/python` prepares it (as root: apt, then wheels)"


@pytest.fixture(autouse=True)
def _clean_loader(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(library.ENV_VAR, raising=False)
    previous = library.swap(None)
    yield
    gc.collect()  # finalizers of this test's leftovers run now, while it can still fail
    library.swap(previous)


@pytest.fixture(scope="session")
def stub_build(tmp_path_factory: pytest.TempPathFactory) -> Stub:
    """The C stub: the prebuilt one ``SSPI_IMPORT_STUB_LIBRARY`` names, else built with gcc.

    A named stub that does not load fails the tests (it was asked for); a stub that
    cannot be built here skips them with the reason (no gcc, or none for this
    interpreter's architecture). See tests/stubs.py.
    """
    prebuilt = stub_source()
    if prebuilt is not None:
        try:
            return Stub(prebuilt)
        except StubUnavailable as exc:
            pytest.fail(f"{STUB_ENV_VAR} names a stub that does not load: {exc}", pytrace=False)
    try:
        return Stub.build(tmp_path_factory.mktemp("stub"))
    except StubUnavailable as exc:
        pytest.skip(str(exc))  # says why: no gcc, none for this architecture, a failed build


@pytest.fixture
def stub(stub_build: Stub) -> Iterator[Stub]:
    """The C stub, reset and installed as the SSPI library; no live handles at the end."""
    stub_build.reset()
    sspi_import.use_library(stub_build.path)
    yield stub_build
    gc.collect()
    assert stub_build.live_contexts() == 0, "the test leaked security contexts"
    assert stub_build.live_buffers() == 0, "the test leaked SSPI buffers"
    assert stub_build.live_tokens() == 0, "the test leaked token handles"
    assert stub_build.bad_frees() == 0, "FreeContextBuffer was called on a bad pointer"
    assert stub_build.bad_closes() == 0, "CloseHandle was called on a bad handle"


@pytest.fixture
def fake() -> Iterator[FakeSspi]:
    """A FakeSspi installed for the test; a leak or a misuse left at the end fails it.

    For the simulated provider's own tests (``tests/test_fake*.py``) and the module tests
    that run on it; a test module that needs another check defines its own ``fake``, which
    wins.
    """
    with FakeSspi() as installed:
        yield installed
        gc.collect()
    installed.assert_no_leaks()
    assert installed.misuses == []


@pytest.fixture
def provider(mocker: MockerFixture) -> Iterator[Provider]:
    """A scripted SSPI (``scripted_sspi.Provider``) at the mocked raw boundary; every
    output token it handed out must have been freed at the end.

    For ``test_handshake.py`` and ``test_context.py``; a test module with a ``provider``
    of its own (a parameter naming a real or simulated provider) overrides it.
    """
    fake = Provider(mocker)
    yield fake
    gc.collect()
    assert sorted(fake.freed) == sorted(fake.allocated), "an output token was not freed"


@pytest.fixture(scope="session")
def sspi_rs_path() -> pathlib.Path:
    """Path of the sspi-rs library bundled in the sspilib wheel (skips where absent)."""
    if ON_WINDOWS:
        pytest.skip("sspilib bundles no sspi-rs on Windows: secur32 is the provider there")
    try:
        return sspi_import.find_sspi_rs()
    except sspi_import.SspiUnavailableError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def sspi_rs(sspi_rs_path: pathlib.Path) -> pathlib.Path:
    """sspi-rs installed as the SSPI library for the test."""
    sspi_import.use_library(sspi_rs_path)
    return sspi_rs_path


# Markers this suite adds itself (the shipped plugin registers windows_sspi; pyproject.toml
# registers sspi_rs, which tests also set by hand).
_FIXTURE_MARKERS = {
    "sspi_rs": ("sspi_rs", "sspi_rs_path"),
    "stub": ("stub", "stub_build"),
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "stub: needs the C stub library (tests/stubs.py), set for every test using it"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the sspi-rs or the stub fixtures, however indirectly.

    The lanes select and account for them by marker: the Wine lane deselects
    ``sspi_rs`` by name (.ci/wine_deselect.txt; sspi-rs does not exist on Windows), and
    a skip of either is visible in the JUnit report's markers.
    """
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        # A fixture parametrized by fixture name (request.getfixturevalue(request.param),
        # as test_messages' `pair` is) shows only its parameter.
        callspec = getattr(item, "callspec", None)
        if callspec is not None:
            names.update(v for v in callspec.params.values() if isinstance(v, str))
        for marker, fixtures in _FIXTURE_MARKERS.items():
            if names.intersection(fixtures) and item.get_closest_marker(marker) is None:
                item.add_marker(marker)


def _kerberos_unavailable() -> str | None:
    """Why the Kerberos lane cannot run in this interpreter on this machine, or ``None``."""
    if ON_WINDOWS:
        return "the Kerberos lane runs sspi-rs against a Heimdal KDC: Linux only"
    for module, what in (
        ("gssapi", "python-gssapi (MIT GSSAPI, the acceptor)"),
        ("krb5", "the krb5 package (pyspnego's Kerberos needs it)"),
        ("spnego", "pyspnego"),
    ):
        if importlib.util.find_spec(module) is None:
            return f"{what} is not installed in this interpreter: {_PREPARE}"
    try:
        heimdal_tools()
        sspi_import.find_sspi_rs()
    except (KdcUnavailableError, sspi_import.SspiUnavailableError) as exc:
        return f"{exc}; {_PREPARE}"
    return None


@pytest.fixture(scope="session")
def heimdal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeimdalRealm]:
    """A Heimdal realm with its KDC on a free port of 127.0.0.1, for the whole session.

    Skips (with the reason and what to run) where the tools are missing; a KDC that
    does not start where they are present is a failure, with its log.
    """
    reason = _kerberos_unavailable()
    if reason is not None:
        pytest.skip(reason)
    realm = HeimdalRealm.create(tmp_path_factory.mktemp("heimdal"))
    try:
        yield realm
    finally:
        realm.stop()


@pytest.fixture
def kerberos(heimdal: HeimdalRealm, monkeypatch: pytest.MonkeyPatch) -> HeimdalRealm:
    """The realm in this process's environment, sspi-rs installed: the lane's every test.

    ``KRB5_CONFIG`` (read by sspi-rs and MIT), ``KRB5_KTNAME`` (MIT's acceptor), a private
    credential and replay cache; ``SSPI_KDC_URL*`` removed so that only the realm's
    krb5.conf says where the KDC is.
    """
    for name, value in heimdal.env.items():
        monkeypatch.setenv(name, value)
    for name in list(os.environ):
        if name.startswith("SSPI_KDC_URL"):
            monkeypatch.delenv(name)
    sspi_import.use_library(sspi_import.find_sspi_rs())
    return heimdal


@pytest.fixture
def no_kdc(
    kerberos: HeimdalRealm, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> Iterator[int]:
    """The realm's krb5.conf with its KDC moved to a port of 127.0.0.1 that refuses."""
    with closed_port() as port:
        conf = tmp_path / "krb5.conf"
        text = kerberos.conf.read_text(encoding="utf-8")
        conf.write_text(text.replace(f"127.0.0.1:{kerberos.port}", f"127.0.0.1:{port}"))
        monkeypatch.setenv("KRB5_CONFIG", str(conf))
        yield port


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """With ``SSPI_IMPORT_REQUIRE_KERBEROS=1``, a skipped ``kerberos`` test fails.

    CI runs the lane as root on Debian, where ``.ci/kerberos`` installed everything: a
    skip there means the lane did not run, which must not pass as green. (An expected
    failure, ``xfail``, is not a skip.)
    """
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if (
        report.skipped
        and not hasattr(report, "wasxfail")
        and os.environ.get(REQUIRE_KERBEROS) == "1"
        and item.get_closest_marker("kerberos") is not None
    ):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        report.outcome = "failed"
        report.longrepr = f"{REQUIRE_KERBEROS}=1, but the Kerberos test skipped: {reason}"


def pytest_collection_finish(session: pytest.Session) -> None:
    """Freeze what exists once the tests are collected: modules, classes, test items.

    Every test ends with a full ``gc.collect()`` (above, and in the plugin's
    ``sspi_fake``) so that its leftovers are finalized while it can still fail. A full
    collection walks every tracked object; frozen ones are never garbage here and are
    skipped, which takes the suite's collections from most of a second to milliseconds
    late in a run. Objects the tests make are not frozen, so their cycles are still found.
    """
    gc.collect()
    gc.freeze()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak",
        action="store_true",
        default=False,
        help="run the soak tests at full size (1,000,000 import/close cycles and 100,000 "
        "contexts left to the finalizer); the default run is small enough for seconds",
    )
