"""What the library offers for Kerberos, against the lane's KDC (issue 21, part 2, phase 2).

- 2.3: ``SSPI_LOG_PATH`` is honoured: sspi-rs writes why a login failed (a wrong
  password: "pre-authentication") to the file, and at ``SSPI_LOG_LEVEL=trace`` it writes
  key material too (what docs/debugging.md warns about);
- 2.4: ``Credentials.set_kdc_proxy`` names the KDC per credentials: with the krb5.conf of
  ``KRB5_CONFIG`` pointing at a closed port, a login through it completes;
- 2.6: what a Kerberos target looks like is said before the call (no target) or in the
  error (the forms sspi-rs refuses).

sspi-rs as the client, MIT GSSAPI as the server, a Heimdal KDC: none of it is Windows.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import sspi_import
from kdc import PASSWORD, REALM, SERVICE, USER, HeimdalRealm, closed_port
from kerberos import (
    DEFAULT_FLAGS,
    IDENTITY,
    PRINCIPAL,
    connect,
    gss_acceptor,
    gss_session_key,
    gss_step,
    initiator,
)
from sspi_import import Credentials, SecurityContext

pytestmark = [pytest.mark.kerberos, pytest.mark.sspi_rs]


# 2.3: the provider's own reasons ------------------------------------------------------

WRONG_PASSWORD_LOGIN = textwrap.dedent(
    f"""
    import sspi_import
    sspi_import.use_library(sspi_import.find_sspi_rs())
    identity = sspi_import.Identity({USER!r}, {REALM!r}, "not the password")
    with sspi_import.Credentials.acquire("Kerberos", "outbound", identity) as creds:
        with sspi_import.SecurityContext.initiator(creds, {SERVICE!r}) as context:
            try:
                context.step(None)
            except sspi_import.KdcInvalidRequestError:
                print("refused as expected")
    """
)
GOOD_LOGIN = textwrap.dedent(
    f"""
    import sspi_import
    sspi_import.use_library(sspi_import.find_sspi_rs())
    identity = sspi_import.Identity({USER!r}, {REALM!r}, {PASSWORD!r})
    with sspi_import.Credentials.acquire("Kerberos", "outbound", identity) as creds:
        with sspi_import.SecurityContext.initiator(creds, {SERVICE!r}) as context:
            assert context.step(None)
            print("AP-REQ made")
    """
)


def logged(kerberos: HeimdalRealm, log: Path, script: str, **env: str) -> str:
    """Run ``script`` in a fresh process (sspi-rs's logger starts once per process)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SSPI_LOG")}
    environment.update({**kerberos.env, "SSPI_LOG_PATH": str(log), **env})
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_sspi_log_path_gets_the_reason_of_a_wrong_password(
    kerberos: HeimdalRealm, tmp_path: Path
) -> None:
    log = tmp_path / "sspi-rs.log"
    stdout = logged(kerberos, log, WRONG_PASSWORD_LOGIN)
    assert "refused as expected" in stdout
    text = log.read_text(encoding="utf-8", errors="replace")
    assert "pre-authentication information was invalid" in text  # what the KDC said
    assert "KdcInvalidRequest" in text


def test_at_trace_level_the_log_holds_keys(kerberos: HeimdalRealm, tmp_path: Path) -> None:
    # Why docs/debugging.md warns: at "trace" sspi-rs's log holds the authenticator's
    # subkey (what protects the context's messages) in clear.
    log = tmp_path / "sspi-rs.log"
    assert "AP-REQ made" in logged(kerberos, log, GOOD_LOGIN, SSPI_LOG_LEVEL="trace")
    assert "key_value" in log.read_text(encoding="utf-8", errors="replace")


def test_at_debug_level_the_log_holds_the_exchange_keys_redacted(
    kerberos: HeimdalRealm, tmp_path: Path
) -> None:
    # What docs/debugging.md says of "debug" (this sspi-rs): the Kerberos messages, with
    # the session key written as "Secret" and no key value.
    log = tmp_path / "sspi-rs.log"
    assert "AP-REQ made" in logged(kerberos, log, GOOD_LOGIN, SSPI_LOG_LEVEL="debug")
    text = log.read_text(encoding="utf-8", errors="replace")
    assert "KdcReq" in text
    assert "session_key: Secret" in text
    assert "key_value" not in text


# 2.4: the KDC per credentials ---------------------------------------------------------


def through(
    url: str | None, package: str = "Kerberos", packages: list[str] | None = None
) -> SecurityContext:
    """Our initiator, its credentials' KDC set to ``url`` (``None``: not set); owns both."""
    credentials = Credentials.acquire(package, "outbound", IDENTITY, packages=packages)
    try:
        if url is not None:
            credentials.set_kdc_proxy(url)
        context = SecurityContext.initiator(credentials, SERVICE, DEFAULT_FLAGS)
    except BaseException:
        credentials.close()
        raise
    context._owns_credentials = True
    return context


@pytest.mark.parametrize("scheme", ["tcp", "udp"])
@pytest.mark.parametrize(
    ("package", "packages"),
    [("Kerberos", None), ("Negotiate", ["kerberos", "!ntlm"])],
    ids=["kerberos", "negotiate-no-ntlm"],
)
def test_set_kdc_proxy_reaches_the_kdc_krb5_conf_does_not_name(
    no_kdc: int,
    kerberos: HeimdalRealm,
    scheme: str,
    package: str,
    packages: list[str] | None,
) -> None:
    url = f"{scheme}://127.0.0.1:{kerberos.port}"
    pair = connect(lambda: through(url, package, packages), gss_acceptor, gss_step)
    with pair.ours as ours:
        assert ours.complete
        assert str(pair.theirs.initiator_name) == PRINCIPAL
        assert ours.session_key() == gss_session_key(pair.theirs)


def test_the_control_without_it_no_kdc_is_reached(no_kdc: int) -> None:
    with through(None) as ours, pytest.raises(sspi_import.NoAuthenticatingAuthorityError):
        ours.step(None)


def test_set_kdc_proxy_comes_before_sspi_kdc_url(
    kerberos: HeimdalRealm, monkeypatch: pytest.MonkeyPatch
) -> None:
    with closed_port() as port:
        monkeypatch.setenv("SSPI_KDC_URL", f"tcp://127.0.0.1:{port}")  # refuses
        pair = connect(lambda: through(f"tcp://127.0.0.1:{kerberos.port}"), gss_acceptor, gss_step)
    with pair.ours as ours:
        assert ours.complete


# 2.6: what a Kerberos target looks like -----------------------------------------------


@pytest.mark.parametrize(
    ("package", "packages"),
    [("Kerberos", None), ("Negotiate", ["kerberos", "!ntlm"])],
    ids=["kerberos", "negotiate-no-ntlm"],
)
def test_no_target_is_refused_before_the_kdc_is_asked(
    kerberos: HeimdalRealm, package: str, packages: list[str] | None
) -> None:
    asked = kerberos.log.read_text(encoding="utf-8").count("AS-REQ")
    with (
        pytest.raises(ValueError, match="needs the server's SPN as target_name, service/host"),
        initiator(package, packages=packages, target=None),
    ):
        pass
    assert kerberos.log.read_text(encoding="utf-8").count("AS-REQ") == asked  # not asked


def test_the_gss_form_is_refused_with_what_a_target_looks_like(kerberos: HeimdalRealm) -> None:
    with (
        initiator(target="HTTP@localhost") as ours,
        pytest.raises(sspi_import.InvalidParameterError) as info,
    ):
        ours.step(None)
    assert "service/host: HTTP/web.example.com" in str(info.value)
    assert "not the GSS-API form" in str(info.value)


def test_a_realm_suffix_is_explained(kerberos: HeimdalRealm) -> None:
    with (
        initiator(target=f"{SERVICE}@{REALM}") as ours,
        pytest.raises(sspi_import.UnknownCredentialsError) as info,
    ):
        ours.step(None)
    assert "takes no @REALM after the SPN" in str(info.value)
