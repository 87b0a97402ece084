"""What a Kerberos target looks like, said before the call or in the error (issue 21, 2.6).

A Kerberos initiator without a target is refused before any call (Kerberos asks the KDC
for a ticket to a named service); NTLM and Negotiate with NTLM allowed keep going
without one. A target the provider refuses (``SEC_E_INVALID_PARAMETER``) gets advice
that says what a Kerberos target is. On the simulated provider, and on sspi-rs (no KDC
needed: the refusals come before the first call). The Kerberos lane shows sspi-rs's own
refusals of the other forms (test_kerberos_library.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import sspi_import
from sspi_import import Credentials, Identity, SecurityContext
from sspi_import.testing import FakeSspi

BOB = Identity("bob", "EXAMPLE.TEST", "Krb-Passw0rd")


@pytest.mark.parametrize("package", ["Kerberos", "kerberos"])
def test_a_kerberos_initiator_without_a_target_is_refused_before_any_call(package: str) -> None:
    with (
        FakeSspi(packages=(package,)) as fake,
        Credentials.acquire(package, "outbound", BOB) as creds,
    ):
        with pytest.raises(ValueError, match="needs the server's SPN") as info:
            SecurityContext.initiator(creds)
        assert "service/host" in str(info.value)
        assert "'HTTP/web.example.com'" in str(info.value)
        assert fake.calls("InitializeSecurityContextW") == 0
    fake.assert_no_leaks()


@pytest.mark.parametrize("package", ["NTLM", "Negotiate"])
def test_ntlm_and_negotiate_may_go_without_one(sspi_fake: FakeSspi, package: str) -> None:
    with (
        Credentials.acquire(package, "outbound", BOB) as creds,
        SecurityContext.initiator(creds) as context,
    ):
        assert context.step(None)


def test_a_refused_target_gets_advice_on_what_a_target_is(sspi_fake: FakeSspi) -> None:
    sspi_fake.fail("InitializeSecurityContextW", "SEC_E_INVALID_PARAMETER")
    with (
        Credentials.acquire("Kerberos", "outbound", BOB) as creds,
        SecurityContext.initiator(creds, "HTTP@web.example.com") as context,
        pytest.raises(sspi_import.InvalidParameterError) as info,
    ):
        context.step(None)
    text = str(info.value)
    assert "service/host: HTTP/web.example.com" in text
    assert "not the GSS-API form HTTP@web.example.com" in text
    assert "not @REALM" in text
    assert text == str(sspi_import.SspiError(0x8009035D, "InitializeSecurityContextW"))
    # other calls keep the general advice
    assert "service/host" not in sspi_import.explain("SEC_E_INVALID_PARAMETER")
    assert "service/host" in sspi_import.explain(
        "SEC_E_INVALID_PARAMETER", "InitializeSecurityContextW"
    )


def test_the_realm_hint_is_in_the_unknown_credentials_advice() -> None:
    text = sspi_import.explain("SEC_E_UNKNOWN_CREDENTIALS", "InitializeSecurityContextW")
    assert "takes no @REALM after the SPN" in text


@pytest.mark.parametrize(
    ("packages", "refused"),
    [
        (["kerberos", "!ntlm"], True),
        (["Kerberos", "!NTLM"], True),
        ("kerberos,!ntlm", True),
        (["kerberos", "ntlm"], False),
        (["!kerberos"], False),
    ],
)
def test_negotiate_without_ntlm_needs_a_target_too(
    sspi_rs: Path, packages: list[str] | str, refused: bool
) -> None:
    # sspi-rs takes the package list (the simulated provider does not): the acquisition
    # asks no KDC, and the refusal comes before the first call.
    with Credentials.acquire("Negotiate", "outbound", BOB, packages=packages) as creds:
        listed = packages.split(",") if isinstance(packages, str) else packages
        assert creds.packages == tuple(listed)
        if refused:
            with pytest.raises(ValueError, match="a Negotiate initiator needs the server's SPN"):
                SecurityContext.initiator(creds)
        else:
            SecurityContext.initiator(creds).close()


def test_credentials_without_a_package_list_say_none(sspi_fake: FakeSspi) -> None:
    with Credentials.acquire("Negotiate", "outbound", BOB) as creds:
        assert creds.packages is None
