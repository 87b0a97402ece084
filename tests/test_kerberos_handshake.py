"""Kerberos against a real KDC: sspi_import (sspi-rs) initiates, MIT GSSAPI accepts.

A Heimdal KDC on 127.0.0.1 (``tests/kdc.py``), the user ``bob@EXAMPLE.TEST``, the service
``HTTP/localhost`` with its keytab; the acceptor is python-gssapi, or pyspnego over it.
Kerberos, and Negotiate choosing Kerberos (with and without a package list that excludes
NTLM): three tokens with mutual authentication, equal session keys, and what
``package_name``, ``sizes()`` and ``flags`` report. sspi-rs is a test peer, not an
authority: the values pinned here are sspi-rs's, measured, not Windows behaviour (its
limits are in ``test_kerberos_limits.py``).
"""

from __future__ import annotations

from typing import Any

import pytest

from kdc import PASSWORD, REALM, SERVICE, USER, HeimdalRealm
from kerberos import (
    DEFAULT_FLAGS,
    PRINCIPAL,
    connect,
    gss_acceptor,
    gss_pair,
    gss_session_key,
    gss_step,
    initiator,
    spnego_pair,
)
from sspi_import import ContextSizes, Identity, RequestFlags

pytestmark = [pytest.mark.kerberos, pytest.mark.sspi_rs]

# (package, package list): Kerberos itself, and Negotiate with and without NTLM excluded.
CHOICES = [
    ("Kerberos", None),
    ("Negotiate", None),
    ("Negotiate", ["kerberos", "!ntlm"]),
]
IDS = ["kerberos", "negotiate", "negotiate-no-ntlm"]
# The mechanism OIDs as they appear, DER-encoded, in a SPNEGO NegTokenInit.
KRB5_OID = bytes.fromhex("2a864886f712010202")  # 1.2.840.113554.1.2.2
NTLM_OID = bytes.fromhex("2b06010401823702020a")  # 1.3.6.1.4.1.311.2.2.10
SPNEGO_OID = bytes.fromhex("2b0601050502")  # 1.3.6.1.5.5.2


@pytest.mark.parametrize(("package", "packages"), CHOICES, ids=IDS)
def test_mutual_authentication_with_mit_gssapi(
    kerberos: HeimdalRealm, package: str, packages: list[str] | None
) -> None:
    pair = gss_pair(package, packages=packages)
    with pair.ours as ours:
        theirs = pair.theirs
        assert ours.complete
        assert theirs.complete
        assert len(pair.tokens) == 2  # AP-REQ, AP-REP; our last step sends nothing
        assert str(theirs.initiator_name) == PRINCIPAL
        assert theirs.mech.dotted_form == "1.2.840.113554.1.2.2"  # Kerberos, also under SPNEGO
        assert theirs.actual_flags & 2  # GSS_C_MUTUAL_FLAG: the acceptor answered
        assert ours.session_key() == gss_session_key(theirs)
        assert len(ours.session_key()) == 32  # aes256-cts: the user's only key type


@pytest.mark.parametrize(("package", "packages"), CHOICES, ids=IDS)
def test_mutual_authentication_with_pyspnego(
    kerberos: HeimdalRealm, package: str, packages: list[str] | None
) -> None:
    pair = spnego_pair(package, packages=packages)
    with pair.ours as ours:
        theirs = pair.theirs
        assert ours.complete
        assert theirs.complete
        assert theirs.client_principal == PRINCIPAL
        assert theirs.negotiated_protocol == "kerberos"
        assert ours.session_key() == theirs.session_key


@pytest.mark.parametrize(("package", "packages"), CHOICES, ids=IDS)
def test_first_token_says_what_was_offered(
    kerberos: HeimdalRealm, package: str, packages: list[str] | None
) -> None:
    with initiator(package, packages=packages) as ours:
        token = ours.step(None)
    assert token is not None
    if package == "Kerberos":  # a bare GSS-API Kerberos AP-REQ
        assert token[:2] == b"\x60\x82"
        assert KRB5_OID in token[:20]
        assert SPNEGO_OID not in token[:20]
    else:  # a SPNEGO NegTokenInit listing the mechanisms
        assert SPNEGO_OID in token[:20]
        assert KRB5_OID in token
        assert (NTLM_OID in token) is (packages is None)


@pytest.mark.parametrize(
    "identity",
    [
        Identity(USER, REALM, PASSWORD),
        Identity(f"{USER}@{REALM}", "", PASSWORD),
        Identity(USER, REALM.lower(), PASSWORD),
    ],
    ids=["user-and-realm", "user-principal-name", "lower-case-realm"],
)
def test_identity_forms_that_log_on(kerberos: HeimdalRealm, identity: Identity) -> None:
    pair = gss_pair(identity=identity)
    with pair.ours as ours:
        assert ours.complete
    assert str(pair.theirs.initiator_name) == PRINCIPAL


@pytest.mark.parametrize(("package", "packages"), CHOICES, ids=IDS)
def test_package_name_sizes_and_flags_as_sspi_rs_reports_them(
    kerberos: HeimdalRealm, package: str, packages: list[str] | None
) -> None:
    pair = gss_pair(package, packages=packages)
    with pair.ours as ours:
        theirs = pair.theirs
        # sspi-rs: "Kerberos" for a Kerberos context; a Negotiate context says "Negotiate"
        # (not the chosen package: pinned in test_kerberos_limits.py).
        assert ours.package_name == package
        # sspi-rs's numbers, measured (Windows' Kerberos may differ): an AES token is
        # 60 bytes and needs no padding.
        assert ours.sizes() == ContextSizes(
            max_token=48000, max_signature=16, block_size=0, security_trailer=60
        )
        assert len(ours.wrap(b"x")) == ours.sizes().security_trailer + 1
        # The flags granted are the ones asked for (sspi-rs reports the request).
        assert ours.flags == DEFAULT_FLAGS
        expected = {"mutual_authentication", "replay_detection", "out_of_sequence_detection"}
        expected |= {"confidentiality", "integrity"}
        assert expected <= _names(theirs)


def test_fewer_flags_are_reported_as_asked(kerberos: HeimdalRealm) -> None:
    asked = RequestFlags.MUTUAL_AUTH | RequestFlags.INTEGRITY | RequestFlags.CONFIDENTIALITY
    pair = gss_pair(flags=asked)
    with pair.ours as ours:
        assert ours.complete
        assert ours.flags == asked
        assert pair.theirs.unwrap(ours.wrap(b"works")).message == b"works"
    assert {"mutual_authentication", "confidentiality", "integrity"} <= _names(pair.theirs)


def test_many_contexts_from_one_set_of_credentials(kerberos: HeimdalRealm) -> None:
    # One logon (one TGT request) serves several handshakes: each is a new AP-REQ.
    from sspi_import import Credentials, SecurityContext

    with Credentials.acquire("Kerberos", "outbound", Identity(USER, REALM, PASSWORD)) as creds:
        keys = []
        for _ in range(3):
            pair = connect(
                lambda: SecurityContext.initiator(creds, SERVICE), gss_acceptor, gss_step
            )
            with pair.ours as ours:
                assert ours.complete
                keys.append(ours.session_key())
                assert keys[-1] == gss_session_key(pair.theirs)
    assert len(set(keys)) == 3  # a fresh session key per context


def _names(acceptor: Any) -> set[str]:
    return {flag.name for flag in acceptor.actual_flags}
