"""Property tests over message protection, on the simulated provider and on sspi-rs.

``encrypt``/``decrypt``, ``encrypt_into``/``decrypt_in_place`` and ``sign``/``verify``
call SSPI through bare bindings (no ctypes ``argtypes`` check), so what reaches the C
call is only what this library's own checks let through. Whatever the input: either
the documented exception (``TypeError``, ``ValueError``, an ``SspiError``), or the
exact round trip; never a crash, never a buffer left with the provider.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import sspi_import
from sspi_import.handshake import SecurityContext
from test_fuzz import BOUNDED, DOCUMENTED, JUNK, _blobs

ALICE = sspi_import.Identity("alice", "EXAMPLE", "p4ssw0rd")


@pytest.fixture(params=["sspi_fake", "sspi_rs"])
def provider(request: pytest.FixtureRequest) -> str:
    request.getfixturevalue(request.param)
    return str(request.param)


@contextlib.contextmanager
def _pair(provider: str) -> Iterator[tuple[SecurityContext, SecurityContext]]:
    """A fresh loopback per example: a failed call may leave the sequence numbers moved."""
    identity = ALICE if provider == "sspi_rs" else None
    client, server = sspi_import.loopback("NTLM", identity)
    with client, server:
        yield client, server


def _plain(data: Any) -> bytes | None:
    """The bytes a message call reads from ``data``; ``None`` when it must be refused."""
    if isinstance(data, str):
        return None
    try:
        with memoryview(data) as view:
            plain = view.tobytes()
    except TypeError:
        return None
    return plain or None


def _outs() -> st.SearchStrategy[Any]:
    sizes = st.integers(min_value=0, max_value=400)
    return st.one_of(
        sizes.map(bytearray),
        sizes.map(lambda n: memoryview(bytearray(n))),
        sizes.map(lambda n: memoryview(bytearray(2 * n))[::2]),  # non-contiguous
        sizes.map(bytes),  # read-only
        sizes.map(lambda n: memoryview(bytes(n))),
        st.integers(min_value=1, max_value=100).map(
            lambda n: memoryview(bytearray(4 * n)).cast("I")
        ),
        JUNK,
    )


@BOUNDED
@given(data=_blobs())
def test_encrypt_any_input_round_trips_or_is_refused(provider: str, data: Any) -> None:
    plain = _plain(data)
    with _pair(provider) as (client, server):
        if plain is None:
            with pytest.raises(DOCUMENTED):
                client.encrypt(data)
            return
        assert server.decrypt(client.encrypt(data)) == plain


@BOUNDED
@given(message=_blobs(), flip=st.integers(min_value=0, max_value=10_000))
def test_decrypt_refuses_whatever_the_peer_did_not_send(
    provider: str, message: Any, flip: int
) -> None:
    with _pair(provider) as (client, server):
        with pytest.raises(DOCUMENTED):
            server.decrypt(message)  # arbitrary bytes are not a message of this peer
        sealed = bytearray(client.encrypt(b"a real message"))
        sealed[flip % len(sealed)] ^= 1 + flip % 255  # any one byte changed
        # Never a plaintext other than the one sent. The 4-byte trailer length is our
        # framing, outside what SSPI authenticates: sspi-rs, which reads token and data
        # as one stream, still opens the message when only that length was changed.
        for opened in (server.decrypt, server.decrypt_in_place):
            try:
                result = opened(sealed)
            except DOCUMENTED:
                continue
            assert flip % len(sealed) < 4, "a changed trailer or ciphertext was accepted"
            assert bytes(result) == b"a real message"


@BOUNDED
@given(data=_blobs(), out=_outs())
def test_encrypt_into_any_buffer_round_trips_or_is_refused(
    provider: str, data: Any, out: Any
) -> None:
    plain = _plain(data)
    with _pair(provider) as (client, server):
        try:
            length = client.encrypt_into(data, out)
        except DOCUMENTED:
            usable = (
                isinstance(out, (bytearray, memoryview))
                and not memoryview(out).readonly
                and memoryview(out).c_contiguous
            )
            needed = client.encrypted_size(len(plain)) if plain is not None else 0
            # Refused only for a reason: bad data, or an output it cannot write into.
            assert plain is None or not usable or memoryview(out).nbytes < needed
            return
        assert plain is not None
        with memoryview(out) as view, view.cast("B") as octets:
            sealed = octets[:length].tobytes()
        assert server.decrypt(sealed) == plain
        # The same message decrypts where it is, in a writable copy of its own.
        buffer = bytearray(client.encrypt(data))
        with server.decrypt_in_place(buffer) as opened:
            assert opened == plain


@BOUNDED
@given(data=_blobs(), signature=_blobs())
def test_sign_and_verify_any_input(provider: str, data: Any, signature: Any) -> None:
    plain = _plain(data)
    with _pair(provider) as (client, server):
        if plain is None:
            with pytest.raises(DOCUMENTED):
                client.sign(data)
            return
        try:
            client.sign(data)
        except sspi_import.UnsupportedFunctionError:
            assert provider == "sspi_rs"  # sspi-rs has no MakeSignature: measured, issue 4
            return
        with pytest.raises(DOCUMENTED):
            server.verify(data, signature)  # an arbitrary signature is never accepted
