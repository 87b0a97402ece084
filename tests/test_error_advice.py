"""Errors through the public API carry the advice of the call that failed, and Kerberos
statuses come out as the ``KerberosError`` family: on FakeSspi, with the failure injected.

The Kerberos lane (``test_kerberos_*.py``) meets the same statuses from sspi-rs and a
real KDC; these show that each call path of the library passes its function name along,
so the message fits the call (a bad peer token is not called a corrupt exported blob).
"""

from __future__ import annotations

import pytest

import sspi_import
from sspi_import import Credentials, Identity, SecurityContext
from sspi_import.errors import _CALL_ADVICE
from sspi_import.testing import FakeSspi

SECRET = "S3cret-Kerberos-pw"
EXPORT_WORDS = ("ExportSecurityContext", "ImportSecurityContextW", "blob", "DELETE_OLD")


def assert_fits(error: sspi_import.SspiError, symbol: str, function: str) -> None:
    assert error.symbol == symbol
    assert error.function == function
    assert _CALL_ADVICE[(symbol, function)] in str(error)
    for word in EXPORT_WORDS:
        assert word not in str(error)


def test_a_bad_peer_token_is_not_called_a_blob(sspi_fake: FakeSspi) -> None:
    with (
        Credentials.acquire("Kerberos", "inbound") as creds,
        SecurityContext.acceptor(creds) as server,
        pytest.raises(sspi_import.InvalidTokenError) as info,
    ):
        server.step(b"not a token from any client")
    assert_fits(info.value, "SEC_E_INVALID_TOKEN", "AcceptSecurityContext")


@pytest.mark.parametrize(
    ("function", "symbol", "error"),
    [
        ("InitializeSecurityContextW", "SEC_E_INVALID_TOKEN", sspi_import.InvalidTokenError),
        ("InitializeSecurityContextW", "SEC_E_INVALID_HANDLE", sspi_import.InvalidHandleError),
        ("AcceptSecurityContext", "SEC_E_INVALID_HANDLE", sspi_import.InvalidHandleError),
        (
            "AcceptSecurityContext",
            "SEC_E_UNSUPPORTED_FUNCTION",
            sspi_import.UnsupportedFunctionError,
        ),
    ],
)
def test_handshake_failures_advise_on_the_handshake(
    sspi_fake: FakeSspi, function: str, symbol: str, error: type[sspi_import.SspiError]
) -> None:
    sspi_fake.fail(function, symbol)  # type: ignore[arg-type]
    with pytest.raises(error) as info:
        sspi_import.loopback("Kerberos")
    assert_fits(info.value, symbol, function)


@pytest.mark.parametrize(
    ("symbol", "error"),
    [
        ("SEC_E_UNSUPPORTED_FUNCTION", sspi_import.UnsupportedFunctionError),
        ("SEC_E_INVALID_HANDLE", sspi_import.InvalidHandleError),
    ],
)
def test_query_failures_advise_on_the_query(
    sspi_fake: FakeSspi, symbol: str, error: type[sspi_import.SspiError]
) -> None:
    client, server = sspi_import.loopback("Kerberos")
    with client, server:
        sspi_fake.fail("QueryContextAttributesW", symbol)
        with pytest.raises(error) as info:
            client.lifespan  # noqa: B018 - the query is the point
    assert_fits(info.value, symbol, "QueryContextAttributesW")


@pytest.mark.parametrize(
    ("symbol", "error"),
    [
        ("SEC_E_UNSUPPORTED_FUNCTION", sspi_import.UnsupportedFunctionError),
        ("SEC_E_INVALID_HANDLE", sspi_import.InvalidHandleError),
        ("SEC_E_NO_IMPERSONATION", sspi_import.SspiError),
    ],
)
def test_impersonation_failures_advise_on_impersonation(
    sspi_fake: FakeSspi, symbol: str, error: type[sspi_import.SspiError]
) -> None:
    client, server = sspi_import.loopback("Kerberos")
    with client, server:
        sspi_fake.fail("ImpersonateSecurityContext", symbol)
        with pytest.raises(error) as info, server.impersonate():
            pass
    assert_fits(info.value, symbol, "ImpersonateSecurityContext")


def test_the_same_status_from_import_keeps_the_blob_advice(sspi_fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("Kerberos")
    with client, server, server.export() as exported:
        sspi_fake.fail("ImportSecurityContextW", "SEC_E_INVALID_TOKEN")
        with pytest.raises(sspi_import.InvalidTokenError) as info:
            sspi_import.ImportedContext.from_exported(exported)
    info_ = sspi_import.status_info("SEC_E_INVALID_TOKEN")
    assert info_ is not None
    assert str(info.value).endswith(info_.advice)
    assert "ExportSecurityContext" in str(info.value)


@pytest.mark.parametrize(
    ("symbol", "error"),
    [
        ("SEC_E_KDC_INVALID_REQUEST", sspi_import.KdcInvalidRequestError),
        ("SEC_E_KDC_UNKNOWN_ETYPE", sspi_import.KdcUnknownEtypeError),
        ("SEC_E_TIME_SKEW", sspi_import.TimeSkewError),
        ("SEC_E_NO_KERB_KEY", sspi_import.NoKerberosKeyError),
        ("SEC_E_DELEGATION_POLICY", sspi_import.TicketError),
    ],
)
def test_kdc_statuses_from_a_handshake_are_kerberos_errors(
    sspi_fake: FakeSspi, symbol: str, error: type[sspi_import.SspiError]
) -> None:
    sspi_fake.fail("InitializeSecurityContextW", symbol)
    with (
        Credentials.acquire("Kerberos", "outbound", Identity("bob", "EX.TEST", SECRET)) as creds,
        SecurityContext.initiator(creds, "HTTP/server.example.test") as client,
        pytest.raises(sspi_import.KerberosError) as info,
    ):
        client.step(None)
    assert type(info.value) is error
    assert info.value.symbol == symbol
    assert info.value.function == "InitializeSecurityContextW"
    assert SECRET not in str(info.value)


def test_credentials_without_an_identity_on_sspi_rs_say_to_pass_one(sspi_rs: object) -> None:
    """sspi-rs has no logged-on user: the first thing a newcomer tries must say so."""
    with pytest.raises(sspi_import.InvalidParameterError) as info:
        sspi_import.loopback("NTLM")
    assert "AcquireCredentialsHandleW" in str(info.value)
    assert "pass an explicit Identity(user, domain, password)" in str(info.value)


def test_an_import_with_a_token_of_another_process_says_how_to_move_it(
    sspi_fake: FakeSspi,
) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client, server, server.export() as exported:
        sspi_fake.fail("ImportSecurityContextW", "SEC_E_INVALID_HANDLE")
        with pytest.raises(sspi_import.InvalidHandleError) as info:
            sspi_import.ImportedContext.from_exported(exported)
    assert "An import: the token handle passed with the blob" in str(info.value)
    assert "for_process(pid)" in str(info.value)


def test_an_acceptor_failing_without_a_code_names_sspi_rs_negotiate(sspi_fake: FakeSspi) -> None:
    with (
        Credentials.acquire("NTLM", "outbound") as out,
        Credentials.acquire("NTLM", "inbound") as into,
    ):
        client = SecurityContext.initiator(out, "host/example")
        server = SecurityContext.acceptor(into)
        with client, server:
            token = client.step(None)
            sspi_fake.fail("AcceptSecurityContext", "SEC_E_INTERNAL_ERROR")
            with pytest.raises(sspi_import.InternalError) as info:
                server.step(token)
    assert_fits(info.value, "SEC_E_INTERNAL_ERROR", "AcceptSecurityContext")
    assert "sspi-rs's Negotiate acceptor" in str(info.value)


def test_impersonating_with_the_initiator_says_to_use_the_acceptor(sspi_fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client, server, pytest.raises(sspi_import.SspiError) as info, client.impersonate():
        pass
    assert_fits(info.value, "SEC_E_NO_IMPERSONATION", "ImpersonateSecurityContext")
    assert "the acceptor's context, not the initiator's" in str(info.value)


def test_a_package_name_in_the_wrong_case_on_sspi_rs_says_so(sspi_rs: object) -> None:
    with pytest.raises(sspi_import.PackageNotFoundError) as info:
        Credentials.acquire("ntlm", "outbound", Identity("u", "D", "p"))
    assert_fits(info.value, "SEC_E_SECPKG_NOT_FOUND", "AcquireCredentialsHandleW")
    assert "exact case" in str(info.value)
