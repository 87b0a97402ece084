"""Real contexts from sspi-rs (the SSPI library in the sspilib wheel): what it really does.

Every fact asserted here was measured against the sspi-rs the wheel bundles; where it
lacks a call, the test pins the exact error so a new sspi-rs release shows up.
"""

from __future__ import annotations

import gc
import pathlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

import sspi_import
from sspi_import import library
from sspi_import.handshake import DEFAULT_FLAGS, RequestFlags, SecurityContext, loopback

pytestmark = pytest.mark.sspi_rs

ALICE = sspi_import.Identity("alice", "EXAMPLE", "p4ssw0rd")
UNSUPPORTED = 0x80090302


@dataclass
class Tracker:
    """Handles sspi-rs handed out and took back, and the handshake statuses, in order."""

    credentials: set[tuple[int, int]] = field(default_factory=set)
    contexts: set[tuple[int, int]] = field(default_factory=set)
    freed_credentials: list[tuple[int, int]] = field(default_factory=list)
    deleted_contexts: list[tuple[int, int]] = field(default_factory=list)
    statuses: list[tuple[str, int]] = field(default_factory=list)

    def check_no_leaks(self) -> None:
        gc.collect()
        assert sorted(self.freed_credentials) == sorted(self.credentials)
        assert sorted(self.deleted_contexts) == sorted(self.contexts)


def drop(box: list[Any]) -> None:
    """Drop the only reference and collect: the finalizer runs here."""
    box.clear()
    gc.collect()


def _words(arg: Any) -> tuple[int, int]:
    handle = getattr(arg, "_obj", arg)  # byref(handle), or the handle itself
    return (handle.dwLower, handle.dwUpper)


@pytest.fixture
def tracker(sspi_rs: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Tracker]:
    """Wraps the bound sspi-rs functions to record every handle made and released."""
    lib = library.api()
    seen = Tracker()

    def wrap(name: str, after: Callable[[tuple[Any, ...], int], None]) -> None:
        real = getattr(lib, name)

        def wrapper(*args: Any) -> int:
            status: int = real(*args)
            if status >= 0:  # a failed call made or released nothing: nothing recorded
                after(args, status)
            return status

        monkeypatch.setattr(lib, name, wrapper)

    def wrap_handshake(name: str, index: int) -> None:
        real = getattr(lib, name)

        def wrapper(*args: Any) -> int:
            before = None if args[1] is None else _words(args[1])
            try:
                status: int = real(*args)
            finally:
                # Measured: sspi-rs rewrites dwUpper on later steps, failed ones included
                # (the handle goes in and out), so its current value replaces the old one.
                if before is not None:
                    seen.contexts.discard(before)
                    seen.contexts.add(_words(args[index]))
            if status < 0:  # failed: statuses records the successful calls only
                return status
            if before is None:  # a successful first call made the context
                seen.contexts.add(_words(args[index]))
            seen.statuses.append((name, status))
            return status

        monkeypatch.setattr(lib, name, wrapper)

    wrap("AcquireCredentialsHandleW", lambda a, s: seen.credentials.add(_words(a[7])))
    wrap("FreeCredentialsHandle", lambda a, s: seen.freed_credentials.append(_words(a[0])))
    wrap_handshake("InitializeSecurityContextW", 8)
    wrap_handshake("AcceptSecurityContext", 5)
    wrap("CompleteAuthToken", lambda a, s: seen.statuses.append(("CompleteAuthToken", s)))
    wrap("DeleteSecurityContext", lambda a, s: seen.deleted_contexts.append(_words(a[0])))
    yield seen
    seen.check_no_leaks()


@pytest.fixture
def pair(tracker: Tracker) -> Iterator[tuple[SecurityContext, SecurityContext]]:
    client, server = loopback("NTLM", ALICE)
    with client, server:
        yield client, server


def test_ntlm_handshake_statuses(tracker: Tracker) -> None:
    client, server = loopback("NTLM", ALICE)
    with client, server:
        assert tracker.statuses == [
            ("InitializeSecurityContextW", 0x00090312),  # SEC_I_CONTINUE_NEEDED
            ("AcceptSecurityContext", 0x00090312),
            ("InitializeSecurityContextW", 0x00000000),  # SEC_E_OK
            ("AcceptSecurityContext", 0x00090313),  # SEC_I_COMPLETE_NEEDED
            ("CompleteAuthToken", 0x00000000),
        ]
        assert client.complete
        assert server.complete
        assert len(tracker.contexts) == 2
        assert len(tracker.credentials) == 2
    assert client.closed
    assert server.closed
    assert client.credentials.closed
    assert server.credentials.closed
    assert len(tracker.deleted_contexts) == 2
    assert len(tracker.freed_credentials) == 2


def test_granted_flags_both_sides(pair: tuple[SecurityContext, SecurityContext]) -> None:
    client, server = pair
    assert client.flags == DEFAULT_FLAGS
    assert server.flags == DEFAULT_FLAGS  # translated from ASC_RET_* bits
    assert client.expiry is None  # sspi-rs reports 0 ticks
    assert server.expiry is None


def test_names_and_package(pair: tuple[SecurityContext, SecurityContext]) -> None:
    client, server = pair
    assert server.user_name == "EXAMPLE\\alice"
    with pytest.raises(sspi_import.NoCredentialsError) as info:
        _ = client.user_name  # sspi-rs knows the client's user only on the server side
    assert info.value.function == "QueryContextAttributesW"
    assert client.package_name == "NTLM"
    assert server.package_name == "NTLM"
    assert client.package == "NTLM"


def test_sizes_and_session_key(pair: tuple[SecurityContext, SecurityContext]) -> None:
    client, server = pair
    expected = sspi_import.ContextSizes(
        max_token=2010, max_signature=16, block_size=0, security_trailer=16
    )
    assert client.sizes() == expected
    assert server.sizes() == expected
    assert server.sizes() is server.sizes()
    key = client.session_key()
    assert len(key) == 16
    assert key == server.session_key()


def test_encrypt_decrypt_both_directions(pair: tuple[SecurityContext, SecurityContext]) -> None:
    client, server = pair
    message = client.encrypt(b"to the server")
    assert message[:4] == (16).to_bytes(4, "little")  # the trailer length
    assert len(message) == 4 + 16 + len(b"to the server")  # RC4: no padding
    assert b"to the server" not in message
    assert server.decrypt(message) == b"to the server"
    assert client.decrypt(server.encrypt(bytearray(b"to the client"))) == b"to the client"
    assert server.decrypt(client.encrypt(memoryview(b"again"))) == b"again"


def test_tampered_ciphertext(pair: tuple[SecurityContext, SecurityContext]) -> None:
    client, server = pair
    message = bytearray(client.encrypt(b"tamper with me"))
    message[-1] ^= 1
    with pytest.raises(sspi_import.MessageAlteredError) as info:
        server.decrypt(message)
    assert info.value.status == 0x8009030F
    assert info.value.function == "DecryptMessage"
    # sspi-rs keeps going: the next message still decrypts
    assert server.decrypt(client.encrypt(b"next")) == b"next"


@pytest.mark.parametrize(
    ("call", "function"),
    [
        (lambda c, s: c.sign(b"data"), "MakeSignature"),
        (lambda c, s: s.verify(b"data", b"\x01" + b"\0" * 15), "VerifySignature"),
        (lambda c, s: s.export(), "ExportSecurityContext"),
        (lambda c, s: s.lifespan, "QueryContextAttributesW"),
        (lambda c, s: super(SecurityContext, s).flags, "QueryContextAttributesW"),
        (lambda c, s: s.impersonate().__enter__(), "ImpersonateSecurityContext"),
    ],
    ids=["sign", "verify", "export", "lifespan", "attr-flags", "impersonate"],
)
def test_unsupported_calls(
    pair: tuple[SecurityContext, SecurityContext],
    call: Callable[[SecurityContext, SecurityContext], Any],
    function: str,
) -> None:
    client, server = pair
    with pytest.raises(sspi_import.UnsupportedFunctionError) as info:
        call(client, server)
    assert info.value.status == UNSUPPORTED
    assert info.value.function == function


@pytest.mark.parametrize("usage", ["inbound", "both"])
def test_acceptor_credentials_without_an_identity_say_to_pass_one(
    sspi_rs: pathlib.Path, usage: Any
) -> None:
    # Issue 22 §3: sspi-rs answers SEC_E_INVALID_PARAMETER, whose generic advice ("Check
    # flags, buffer types and buffer counts") sent the reader nowhere useful.
    with pytest.raises(sspi_import.InvalidParameterError) as info:
        sspi_import.Credentials.acquire("NTLM", usage)
    message = str(info.value)
    assert "credentials for an acceptor (inbound) with no identity" in message
    assert "Identity(user, domain, password)" in message
    assert info.value.symbol == "SEC_E_INVALID_PARAMETER"  # the same error, explained
    with sspi_import.Credentials.acquire("NTLM", usage, ALICE):
        pass  # with an identity it works


def test_the_identity_advice_is_for_that_failure_only(sspi_rs: pathlib.Path) -> None:
    identity = sspi_import.Identity("alice", "EXAMPLE", "p4ssw0rd")
    # sspi-rs answers SEC_E_INVALID_PARAMETER to an initiator without an identity too.
    for args in [("NTLM", "outbound"), ("NoSuchPackage", "inbound", identity)]:
        with pytest.raises(sspi_import.SspiError) as info:  # not an acceptor without identity
            sspi_import.Credentials.acquire(*args)  # type: ignore[arg-type]
        assert "no identity" not in str(info.value), args


def test_import_unsupported(tracker: Tracker) -> None:
    with pytest.raises(sspi_import.UnsupportedFunctionError) as info:
        sspi_import.ImportedContext("NTLM", b"not a context")
    assert info.value.function == "ImportSecurityContextW"


def test_negotiate_fails_on_the_second_accept(tracker: Tracker) -> None:
    with pytest.raises(sspi_import.InternalError) as info:
        loopback("Negotiate", ALICE)
    assert info.value.function == "AcceptSecurityContext"
    assert tracker.statuses == [
        ("InitializeSecurityContextW", 0x00090312),
        ("AcceptSecurityContext", 0x00090312),
        ("InitializeSecurityContextW", 0x00090312),
    ]
    assert len(tracker.contexts) == 2  # both existed, and check_no_leaks sees them deleted


def test_kerberos_needs_a_kdc(tracker: Tracker) -> None:
    with pytest.raises(sspi_import.NoAuthenticatingAuthorityError) as info:
        loopback("Kerberos", ALICE)
    assert info.value.function == "InitializeSecurityContextW"
    assert tracker.contexts == set()  # the first call failed: no context existed
    assert len(tracker.credentials) == 2


def test_no_identity_is_refused(tracker: Tracker) -> None:
    with pytest.raises(sspi_import.InvalidParameterError) as info:
        sspi_import.Credentials.acquire("NTLM")
    assert info.value.function == "AcquireCredentialsHandleW"


def test_manual_handshake_and_leak_check(tracker: Tracker) -> None:
    with (
        sspi_import.Credentials.acquire("NTLM", "outbound", ALICE) as client_creds,
        sspi_import.Credentials.acquire("NTLM", "inbound", ALICE) as server_creds,
        SecurityContext.initiator(client_creds, None, RequestFlags.INTEGRITY) as client,
        SecurityContext.acceptor(server_creds, RequestFlags.INTEGRITY) as server,
    ):
        token = client.step(None)
        assert token is not None
        assert token.startswith(b"NTLMSSP\0\x01\0\0\0")
        token = server.step(token)
        assert token is not None
        assert token.startswith(b"NTLMSSP\0\x02\0\0\0")
        token = client.step(token)
        assert token is not None
        assert token.startswith(b"NTLMSSP\0\x03\0\0\0")
        assert client.complete
        assert server.step(token) is None
        assert server.complete
        assert repr(server) == "<SecurityContext acceptor package='NTLM' complete>"
    # the contexts did not own the credentials: the 'with' closed them
    assert client_creds.closed
    assert server_creds.closed


def test_forgotten_context_is_finalized(tracker: Tracker) -> None:
    client, server = loopback("NTLM", ALICE)
    server.close()
    box = [client]
    del client
    with pytest.warns(ResourceWarning, match="unclosed <SecurityContext initiator"):
        drop(box)
