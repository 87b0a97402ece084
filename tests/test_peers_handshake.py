"""Handshakes against peers nobody here wrote: sspilib and pyspnego, on sspi-rs.

- sspilib's and pyspnego's NTLM clients against an ``sspi_import`` acceptor;
- an ``sspi_import`` initiator (NTLM, and Negotiate) against pyspnego's pure-Python
  acceptor, which reads its users from the file named by ``NTLM_USER_FILE``
  (``DOMAIN:user:password`` lines);
- what sspi-rs does that secur32 does not, measured (docs/guides/real-peers.md quotes
  these tests): its NTLM acceptor checks only the password of its own identity and
  reports whatever user name the client claimed; the flags it reports echo the request;
  ``MakeSignature`` is unsupported; its Negotiate acceptor fails; trailing input bytes
  are ignored, not reported as ``SECBUFFER_EXTRA``. sspi-rs is a test peer, not an
  authority: none of this is Windows behaviour.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import sspi_import
from sspi_import import Credentials, Identity, RequestFlags, SecurityContext
from sspi_import.handshake import DEFAULT_FLAGS

pytestmark = pytest.mark.sspi_rs

spnego = pytest.importorskip("spnego")
sspilib = pytest.importorskip("sspilib")

DOMAIN, USER, PASSWORD = "EXAMPLE", "alice", "Passw0rd!"
IDENTITY = Identity(USER, DOMAIN, PASSWORD)
Step = Callable[[bytes | None], bytes | None]


def accept(client_step: Step, flags: RequestFlags | int = DEFAULT_FLAGS) -> SecurityContext:
    """Run a client (``client_step(in_token) -> out_token``) against an sspi_import acceptor."""
    creds = Credentials.acquire("NTLM", "inbound", IDENTITY)
    server = SecurityContext.acceptor(creds, flags)
    server._owns_credentials = True  # closed with the context
    try:
        token = client_step(None)
        while token is not None and not server.complete:
            reply = server.step(token)
            token = client_step(reply) if reply is not None else None
    except BaseException:
        server.close()
        raise
    assert server.complete
    return server


def pyspnego_client(user: str = f"{DOMAIN}\\{USER}", password: str = PASSWORD) -> Any:
    return spnego.client(
        user,
        password,
        hostname="localhost",
        service="HTTP",
        protocol="ntlm",
        options=spnego.NegotiateOptions.use_ntlm,
    )


@pytest.fixture
def ntlm_user_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pyspnego's acceptor reads its users from ``NTLM_USER_FILE``."""
    path = tmp_path / "ntlm-users"
    path.write_text(f"{DOMAIN}:{USER}:{PASSWORD}\n", encoding="utf-8")
    monkeypatch.setenv("NTLM_USER_FILE", str(path))
    return path


def drive_initiator(client: SecurityContext, server_step: Step) -> None:
    token = client.step(None)
    while token is not None:
        reply = server_step(token)
        if reply is None:
            break
        token = client.step(reply)
    assert client.complete


# Other clients against an sspi_import acceptor ----------------------------------------


def test_sspilib_client(sspi_rs: Path) -> None:
    credential = sspilib.UserCredential(USER, PASSWORD, domain=DOMAIN, protocol="NTLM")
    client = sspilib.ClientSecurityContext(credential=credential, target_name="HTTP/localhost")
    with accept(client.step) as server:
        assert client.complete
        assert server.user_name == f"{DOMAIN}\\{USER}"
        assert server.package_name == "NTLM"


def test_pyspnego_client(sspi_rs: Path) -> None:
    client = pyspnego_client()
    with accept(client.step) as server:
        assert client.complete
        assert server.user_name == f"{DOMAIN}\\{USER}"
        assert server.session_key() == client.session_key


def test_pyspnego_client_with_a_wrong_password_is_refused(sspi_rs: Path) -> None:
    client = pyspnego_client(password="not the password")
    with pytest.raises(sspi_import.LogonDeniedError) as info:
        accept(client.step)
    # Measured: sspi-rs checks the password in CompleteAuthToken, after the accept call
    # succeeded (Windows refuses in AcceptSecurityContext).
    assert info.value.function == "CompleteAuthToken"


# sspi_import against pyspnego's acceptor ----------------------------------------------


def test_initiator_against_pyspnego_acceptor(sspi_rs: Path, ntlm_user_file: Path) -> None:
    server = spnego.server(protocol="ntlm", options=spnego.NegotiateOptions.use_ntlm)
    with (
        Credentials.acquire("NTLM", "outbound", IDENTITY) as creds,
        SecurityContext.initiator(creds, "HTTP/localhost") as client,
    ):
        drive_initiator(client, server.step)
        assert server.complete
        assert server.client_principal == f"{DOMAIN}\\{USER}"
        assert client.session_key() == server.session_key


def test_negotiate_initiator_against_pyspnego_acceptor(sspi_rs: Path, ntlm_user_file: Path) -> None:
    """sspi-rs as a Negotiate *initiator* works (SPNEGO around NTLM)."""
    server = spnego.server(protocol="negotiate")
    with (
        Credentials.acquire("Negotiate", "outbound", IDENTITY) as creds,
        SecurityContext.initiator(creds, "HTTP/localhost") as client,
    ):
        drive_initiator(client, server.step)
        assert server.complete
        assert server.negotiated_protocol == "ntlm"
        assert server.client_principal == f"{DOMAIN}\\{USER}"


def test_pyspnego_acceptor_refuses_a_wrong_password(sspi_rs: Path, ntlm_user_file: Path) -> None:
    server = spnego.server(protocol="ntlm", options=spnego.NegotiateOptions.use_ntlm)
    wrong = Identity(USER, DOMAIN, "not the password")
    with (
        Credentials.acquire("NTLM", "outbound", wrong) as creds,
        SecurityContext.initiator(creds, "HTTP/localhost") as client,
        pytest.raises(spnego.exceptions.SpnegoError),
    ):
        drive_initiator(client, server.step)


# What sspi-rs does that secur32 does not (measured; not Windows behaviour) ------------


def test_sspi_rs_reports_whatever_user_name_the_client_claimed(sspi_rs: Path) -> None:
    """Only the password of the acceptor's own identity is checked, not the user name."""
    client = pyspnego_client(user="EVIL\\administrator")
    with accept(client.step) as server:
        assert server.user_name == "EVIL\\administrator"


def test_sspi_rs_granted_flags_echo_the_request(sspi_rs: Path) -> None:
    """NTLM cannot delegate; sspi-rs reports DELEGATE (and DCE style) granted anyway."""
    asked = RequestFlags.DELEGATE | RequestFlags.USE_DCE_STYLE | RequestFlags.IDENTIFY
    with accept(pyspnego_client().step, asked | RequestFlags.INTEGRITY) as server:
        assert server.flags == asked | RequestFlags.INTEGRITY
    with accept(pyspnego_client().step, RequestFlags.INTEGRITY) as server:
        assert server.flags == RequestFlags.INTEGRITY


def test_sspi_rs_has_no_make_signature(sspi_rs: Path) -> None:
    with accept(pyspnego_client().step) as server:
        with pytest.raises(sspi_import.UnsupportedFunctionError) as info:
            server.sign(b"message")
        assert info.value.function == "MakeSignature"


def test_sspi_rs_negotiate_acceptor_fails(sspi_rs: Path) -> None:
    with pytest.raises(sspi_import.InternalError) as info:
        sspi_import.loopback("Negotiate", IDENTITY)
    assert info.value.function == "AcceptSecurityContext"
    client = spnego.client(
        f"{DOMAIN}\\{USER}", PASSWORD, hostname="localhost", service="HTTP", protocol="negotiate"
    )
    with Credentials.acquire("Negotiate", "inbound", IDENTITY) as creds:
        server = SecurityContext.acceptor(creds)
        with server, pytest.raises(sspi_import.SspiError):  # noqa: PT012 - the whole exchange
            token = client.step()
            while token is not None:
                reply = server.step(token)
                token = client.step(reply) if reply is not None else None


def test_sspi_rs_does_not_report_extra(sspi_rs: Path) -> None:
    """Windows reports bytes after a token as SECBUFFER_EXTRA (ctx.extra); sspi-rs does not.

    Measured: the tail is taken as part of the message, the step succeeds with no EXTRA,
    and the logon fails at the end (NTLM's MIC covers the messages as received).
    """
    client = pyspnego_client()
    with Credentials.acquire("NTLM", "inbound", IDENTITY) as creds:
        server = SecurityContext.acceptor(creds)
        with server:
            negotiate = client.step()
            challenge = server.step(negotiate + b"NEXT MESSAGE")
            assert server.extra == b""
            assert challenge is not None
            authenticate = client.step(challenge)
            with pytest.raises(sspi_import.LogonDeniedError):
                server.step(authenticate)


def test_sspi_rs_refuses_a_truncated_token_for_good(sspi_rs: Path) -> None:
    """Windows answers SEC_E_INCOMPLETE_MESSAGE where the package supports it (retry with
    more, see ctx.extra / IncompleteMessageError); sspi-rs fails the step instead."""
    client = pyspnego_client()
    with Credentials.acquire("NTLM", "inbound", IDENTITY) as creds:
        server = SecurityContext.acceptor(creds)
        with server:
            negotiate = client.step()
            with pytest.raises(sspi_import.InternalError):
                server.step(negotiate[:10])
            with pytest.raises(ValueError, match="failed"):
                server.step(negotiate)
