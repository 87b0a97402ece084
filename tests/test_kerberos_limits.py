"""What sspi-rs lacks as a Kerberos peer, each pinned by a strict xfail that names it.

Every test here asserts what a correct Kerberos peer does; sspi-rs (as bundled in the
sspilib wheel) does not, so each is an expected failure with ``strict=True`` (pyproject):
the day sspi-rs changes, the test passes, the run fails, and whoever reads it updates
the lane and docs/guides/real-peers.md. ``raises=`` names the exact failure where there
is one, so a different breakage is not mistaken for the known one. None of this is
Windows behaviour; it is sspi-rs's, measured against MIT GSSAPI and a Heimdal KDC.

Where the failure could be the realm's or MIT's rather than sspi-rs's, a control test
shows the realm can do it (an MIT initiator delegates to the same acceptor).
"""

from __future__ import annotations

from typing import Any

import pytest

import sspi_import
from kdc import PASSWORD, REALM, SERVICE, SERVICE_PASSWORD, USER, HeimdalRealm
from kerberos import (
    DEFAULT_FLAGS,
    PRINCIPAL,
    ApRepRefusedError,
    Pair,
    gss_acceptor,
    gss_iov_wrap,
    gss_pair,
    gss_step,
    initiator,
    iov_bytes,
    shake,
)
from sspi_import import (
    BufferType,
    ChannelBindings,
    Credentials,
    Identity,
    IovBuffer,
    RequestFlags,
    SecurityContext,
    UnencryptedMessageError,
)

pytestmark = [pytest.mark.kerberos, pytest.mark.sspi_rs]

BINDINGS = b"tls-server-end-point:" + bytes(range(32))
OTHER_BINDINGS = b"tls-server-end-point:" + bytes(range(32, 64))


def xfail(
    reason: str, raises: type[BaseException] | tuple[type[BaseException], ...]
) -> pytest.MarkDecorator:
    """A strict expected failure of sspi-rs, with the exception it fails with today."""
    return pytest.mark.xfail(reason=f"sspi-rs: {reason}", raises=raises, strict=True)


@pytest.fixture
def gss(kerberos: HeimdalRealm) -> Any:
    pair = gss_pair()
    with pair.ours:
        yield pair


# Messages ---------------------------------------------------------------------------


@xfail(
    "a peer's gss_wrap does not open with unwrap: sspi-rs assumes the 28-byte rotation "
    "(RRC) Windows uses, MIT sends RRC 0 (SEC_E_MESSAGE_ALTERED; sspilib fails the same)",
    sspi_import.MessageAlteredError,
)
def test_peer_gss_wrap_opens_with_unwrap(gss: Pair[Any]) -> None:
    assert gss.ours.unwrap(gss.theirs.wrap(b"from MIT", True).message) == b"from MIT"


@xfail(
    "a peer's gss_wrap does not open with unwrap_iov(STREAM, DATA) either (the rotation)",
    sspi_import.MessageAlteredError,
)
def test_peer_gss_wrap_opens_with_unwrap_iov_stream(gss: Pair[Any]) -> None:
    message = gss.theirs.wrap(b"from MIT", True).message
    result = gss.ours.unwrap_iov(
        [IovBuffer(BufferType.STREAM, message), IovBuffer(BufferType.DATA)]
    )
    assert iov_bytes(result.buffers[1]) == b"from MIT"


@xfail(
    "a sign-only wrap (SECQOP_WRAP_NO_ENCRYPT) is encrypted anyway: the peer sees an "
    "encrypted message",
    AssertionError,
)
def test_our_sign_only_wrap_is_not_encrypted(gss: Pair[Any]) -> None:
    data = b"signed, in the clear" * 4
    message = gss.ours.wrap(data, encrypt=False)
    result = gss.theirs.unwrap(message)
    assert result.message == data
    assert not result.encrypted
    assert data in message


@xfail(
    "a peer's sign-only message is reported with QOP 0, as if it had been encrypted",
    AssertionError,
)
def test_peer_sign_only_iov_is_reported_unencrypted(gss: Pair[Any]) -> None:
    header, body = gss_iov_wrap(gss.theirs, b"in the clear", confidential=False)
    result = gss.ours.unwrap_iov(
        [IovBuffer(BufferType.TOKEN, header), IovBuffer(BufferType.DATA, bytearray(body))],
        allow_unencrypted=True,
    )
    assert iov_bytes(result.buffers[1]) == b"in the clear"
    assert not result.encrypted


@xfail(
    "a peer's sign-only gss_wrap opens as if encrypted, so unwrap cannot refuse the "
    "downgrade on a confidential context (UnencryptedMessageError is never raised)",
    pytest.fail.Exception,
)
def test_peer_sign_only_wrap_is_refused_as_a_downgrade(gss: Pair[Any]) -> None:
    message = gss.theirs.wrap(b"in the clear", False).message
    with pytest.raises(UnencryptedMessageError):
        gss.ours.unwrap(message)


@xfail(
    "MakeSignature is not implemented (SEC_E_UNSUPPORTED_FUNCTION)",
    sspi_import.UnsupportedFunctionError,
)
def test_sign_verifies_at_the_peer(gss: Pair[Any]) -> None:
    gss.theirs.verify_signature(b"signed", gss.ours.sign(b"signed"))


@xfail(
    "VerifySignature is not implemented (SEC_E_UNSUPPORTED_FUNCTION)",
    sspi_import.UnsupportedFunctionError,
)
def test_peer_signature_verifies(gss: Pair[Any]) -> None:
    gss.ours.verify(b"signed", gss.theirs.get_signature(b"signed"))


# The handshake ----------------------------------------------------------------------


@xfail(
    "without MUTUAL_AUTH the initiator waits for an AP-REP the acceptor never sends: "
    "it never completes",
    AssertionError,
)
def test_completes_without_mutual_auth(kerberos: HeimdalRealm) -> None:
    theirs = gss_acceptor()
    with initiator(flags=DEFAULT_FLAGS & ~RequestFlags.MUTUAL_AUTH) as ours:
        token = ours.step(None)
        assert token is not None
        assert theirs.step(token) is None  # the acceptor is done and sends nothing
        assert theirs.complete
        assert ours.complete


def test_control_the_realm_lets_an_mit_initiator_delegate(kerberos: HeimdalRealm) -> None:
    import gssapi
    import gssapi.raw

    name = gssapi.Name(PRINCIPAL, gssapi.NameType.kerberos_principal)
    acquired = gssapi.raw.acquire_cred_with_password(name, PASSWORD.encode(), usage="initiate")
    credentials = gssapi.Credentials(base=acquired.creds)
    target = gssapi.Name("HTTP@localhost", gssapi.NameType.hostbased_service)
    flags = gssapi.RequirementFlag.delegate_to_peer | gssapi.RequirementFlag.mutual_authentication
    client = gssapi.SecurityContext(name=target, creds=credentials, usage="initiate", flags=flags)
    theirs = gss_acceptor()
    client.step(theirs.step(client.step()))
    assert client.complete
    assert theirs.delegated_creds is not None


@xfail(
    "DELEGATE is reported granted, but no forwarded ticket reaches the acceptor",
    AssertionError,
)
def test_delegate_is_reported_only_when_sent(kerberos: HeimdalRealm) -> None:
    pair = gss_pair(flags=DEFAULT_FLAGS | RequestFlags.DELEGATE)
    with pair.ours as ours:
        reported = bool(ours.flags & RequestFlags.DELEGATE)
    assert reported == (pair.theirs.delegated_creds is not None)


@xfail(
    "it cannot be a Kerberos acceptor: its credentials are always a client's "
    "(SEC_E_INVALID_HANDLE, 'Kerberos server properties are not initialized')",
    sspi_import.InvalidHandleError,
)
def test_kerberos_acceptor(kerberos: HeimdalRealm) -> None:
    service = Identity(SERVICE, REALM, SERVICE_PASSWORD)
    with (
        Credentials.acquire("Kerberos", "inbound", service) as credentials,
        SecurityContext.acceptor(credentials) as server,
        initiator() as client,
    ):
        token = client.step(None)
        while not (client.complete and server.complete):
            assert token is not None
            reply = server.step(token)
            token = client.step(reply) if reply is not None else None


@xfail(
    "with channel bindings the initiator refuses the acceptor's reply "
    "(SEC_E_INVALID_TOKEN at the second step)",
    ApRepRefusedError,
)
def test_channel_bindings_complete(kerberos: HeimdalRealm) -> None:
    theirs = gss_acceptor(BINDINGS)
    with initiator(channel_bindings=ChannelBindings(application_data=BINDINGS)) as ours:
        shake(ours, gss_step(theirs))
        assert ours.complete


@xfail(
    "its AP-REQ carries no channel-binding hash MIT checks: MIT accepts one made with "
    "other bindings than its own",
    pytest.fail.Exception,
)
def test_other_channel_bindings_are_refused_by_the_peer(kerberos: HeimdalRealm) -> None:
    from gssapi.raw import GSSError

    theirs = gss_acceptor(OTHER_BINDINGS)
    with initiator(channel_bindings=ChannelBindings(application_data=BINDINGS)) as ours:
        token = ours.step(None)
        assert token is not None
        with pytest.raises(GSSError):
            theirs.step(token)


@xfail(
    "an AP-REP whose sequence number DER-encodes in fewer than 4 bytes is refused "
    "('invalid ApRep sequence number'): MIT picks it at random, 1 handshake in ~128 fails",
    ApRepRefusedError,
)
def test_every_acceptor_sequence_number_is_accepted(kerberos: HeimdalRealm) -> None:
    # 2,000 handshakes: with the fault, all pass with probability (127/128)**2000 < 1e-6;
    # a failure comes after about 128 (a second or two).
    with Credentials.acquire("Kerberos", "outbound", Identity(USER, REALM, PASSWORD)) as creds:
        for _ in range(2000):
            with SecurityContext.initiator(creds, SERVICE) as ours:
                shake(ours, gss_step(gss_acceptor()))


# Queries ----------------------------------------------------------------------------


@xfail(
    "a Kerberos initiator's user name is not answered (SEC_E_NO_CREDENTIALS)",
    sspi_import.NoCredentialsError,
)
def test_user_name(gss: Pair[Any]) -> None:
    assert gss.ours.user_name == PRINCIPAL


@xfail(
    "the lifespan of a Kerberos context is not answered (SEC_E_UNSUPPORTED_FUNCTION)",
    sspi_import.UnsupportedFunctionError,
)
def test_lifespan(gss: Pair[Any]) -> None:
    start, expiry = gss.ours.lifespan
    assert start is not None
    assert expiry is not None
    assert start < expiry


@xfail(
    "a Negotiate context names Negotiate, not the package it chose (Kerberos)",
    AssertionError,
)
def test_negotiate_names_the_chosen_package(kerberos: HeimdalRealm) -> None:
    pair = gss_pair("Negotiate")
    with pair.ours as ours:
        assert ours.package_name == "Kerberos"


@xfail(
    "a Kerberos context cannot be exported (SEC_E_UNSUPPORTED_FUNCTION): the hand-off "
    "this library is for needs Windows",
    sspi_import.UnsupportedFunctionError,
)
def test_export(gss: Pair[Any]) -> None:
    with gss.ours.export() as exported:
        assert exported.package == "Kerberos"
