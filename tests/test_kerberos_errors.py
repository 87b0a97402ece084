"""Kerberos failures against a real KDC: each a typed error whose advice fits.

Wrong password, unknown user, unknown SPN, no KDC reachable, and targets sspi-rs cannot
use: the class, the failing call and the advice sspi_import gives for it. The statuses
are sspi-rs's (measured; Windows reports a wrong password as ``SEC_E_LOGON_DENIED`` and
an unknown SPN as ``SEC_E_TARGET_UNKNOWN``); the advice of each names what to check.
Also how sspi-rs finds the KDC: ``SSPI_KDC_URL_<REALM>``, then ``SSPI_KDC_URL``, then the
realm's ``kdc`` in the krb5.conf that ``KRB5_CONFIG`` names.
"""

from __future__ import annotations

import pytest

import sspi_import
from kdc import PASSWORD, REALM, USER, HeimdalRealm
from kerberos import gss_acceptor, gss_pair, initiator
from sspi_import import Identity

pytestmark = [pytest.mark.kerberos, pytest.mark.sspi_rs]

WRONG = "Not-The-Passw0rd"
KRB5_OID = bytes.fromhex("2a864886f712010202")  # 1.2.840.113554.1.2.2, DER
# (package, package list) as in the handshake tests
CHOICES = [("Kerberos", None), ("Negotiate", ["kerberos", "!ntlm"])]
IDS = ["kerberos", "negotiate-no-ntlm"]


def first_step_error(
    package: str = "Kerberos", packages: list[str] | None = None, **ours: object
) -> sspi_import.SspiError:
    with (
        initiator(package, packages=packages, **ours) as context,  # type: ignore[arg-type]
        pytest.raises(sspi_import.SspiError) as info,
    ):
        context.step(None)
    assert info.value.function == "InitializeSecurityContextW"
    return info.value


def no_blob_advice(error: sspi_import.SspiError) -> None:
    for word in ("ExportSecurityContext", "ImportSecurityContextW", "blob"):
        assert word not in str(error)


@pytest.mark.parametrize(("package", "packages"), [*CHOICES, ("Negotiate", None)])
def test_wrong_password(kerberos: HeimdalRealm, package: str, packages: list[str] | None) -> None:
    error = first_step_error(package, packages, identity=Identity(USER, REALM, WRONG))
    assert type(error) is sspi_import.KdcInvalidRequestError
    assert isinstance(error, sspi_import.KerberosError)
    assert "password" in str(error)
    assert WRONG not in str(error)
    assert WRONG not in repr(error)
    no_blob_advice(error)


@pytest.mark.parametrize(("package", "packages"), CHOICES, ids=IDS)
def test_unknown_user(kerberos: HeimdalRealm, package: str, packages: list[str] | None) -> None:
    error = first_step_error(package, packages, identity=Identity("mallory", REALM, PASSWORD))
    assert type(error) is sspi_import.UnknownCredentialsError
    assert "user@REALM" in str(error)  # the advice for a failed InitializeSecurityContextW
    assert "when importing" not in str(error)  # not the import advice
    no_blob_advice(error)


@pytest.mark.parametrize(("package", "packages"), CHOICES, ids=IDS)
def test_unknown_spn(kerberos: HeimdalRealm, package: str, packages: list[str] | None) -> None:
    error = first_step_error(package, packages, target="HTTP/nowhere.example.test")
    assert type(error) is sspi_import.UnknownCredentialsError
    assert "SPN" in str(error)
    no_blob_advice(error)


def negotiate_error(**ours: object) -> sspi_import.SspiError:
    """Negotiate without a package list, against MIT's acceptor: the error our side raises.

    Measured: when Kerberos fails, sspi-rs's first token offers NTLM alone (no error
    yet); MIT's acceptor rejects it, and our second step fails with SEC_E_INTERNAL_ERROR.
    """
    theirs = gss_acceptor()
    with initiator("Negotiate", **ours) as context:  # type: ignore[arg-type]
        token = context.step(None)
        assert token is not None
        assert KRB5_OID not in token  # Kerberos was given up at the first step
        with pytest.raises(sspi_import.SspiError) as info:
            context.step(theirs.step(token))
    assert info.value.function == "InitializeSecurityContextW"
    return info.value


def test_unknown_spn_behind_negotiate_says_how_to_see_it(kerberos: HeimdalRealm) -> None:
    error = negotiate_error(target="HTTP/nowhere.example.test")
    assert type(error) is sspi_import.InternalError
    assert "unknown SPN" in str(error)
    assert "Kerberos package" in str(error)
    assert "!ntlm" in str(error)


@pytest.mark.parametrize(("package", "packages"), CHOICES, ids=IDS)
def test_no_kdc_reachable(no_kdc: int, package: str, packages: list[str] | None) -> None:
    error = first_step_error(package, packages)
    assert type(error) is sspi_import.NoAuthenticatingAuthorityError
    assert "KDC" in str(error)
    assert "reachable" in str(error)


def test_no_kdc_behind_negotiate_says_how_to_see_it(no_kdc: int) -> None:
    error = negotiate_error()
    assert type(error) is sspi_import.InternalError
    assert "unreachable KDC" in str(error)


@pytest.mark.parametrize("name", [f"SSPI_KDC_URL_{REALM}", "SSPI_KDC_URL"])
def test_the_environment_names_the_kdc_before_krb5_conf(
    no_kdc: int, kerberos: HeimdalRealm, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, f"tcp://127.0.0.1:{kerberos.port}")
    pair = gss_pair()
    with pair.ours as ours:
        assert ours.complete


@pytest.mark.parametrize(
    "target",
    ["HTTP@localhost", "HTTP/localhost@EXAMPLE.TEST"],
    ids=["gss-hostbased-form", "realm-qualified"],
)
def test_targets_sspi_rs_cannot_use(kerberos: HeimdalRealm, target: str) -> None:
    # sspi-rs needs exactly service/host: the GSS form fails after the KDC was asked for
    # a TGT; it sends a realm-qualified one as the host name ("localhost@EXAMPLE.TEST"),
    # which the KDC does not know. Measured; the advice of each says what a target is
    # (test_kerberos_library.py), and no target at all is refused before any call.
    error = first_step_error(target=target)
    expected = sspi_import.UnknownCredentialsError if "/" in target else None
    assert type(error) is (expected or sspi_import.InvalidParameterError)
