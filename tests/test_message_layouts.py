"""The message layouts: ``wrap``/``unwrap``, ``wrap_iov``/``unwrap_iov`` and the WinRM guard.

On sspi-rs (the real library in the sspilib wheel) and on ``FakeSspi``, whose NTLM
trailer is 28 bytes and which honours sign-only requests (sspi-rs encrypts anyway and
reports QOP 0, as Windows NTLM is reported to do when confidentiality was negotiated):
``sign_only_round_trip`` holds the guarantee on either behaviour, and the Windows lane
runs it against secur32.
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Iterator

import pytest

import sspi_import
from sspi_import import BufferType, IovBuffer, UnencryptedMessageError
from sspi_import._raw import constants as C  # noqa: N812
from sspi_import.handshake import RequestFlags, SecurityContext

ALICE = sspi_import.Identity("alice", "EXAMPLE", "p4ssw0rd")
Pair = tuple[SecurityContext, SecurityContext]


@pytest.fixture(params=["sspi_rs", "sspi_fake"])
def pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    request.getfixturevalue(request.param)
    identity = ALICE if request.param == "sspi_rs" else None
    client, server = sspi_import.loopback("NTLM", identity)
    with client, server:
        yield client, server


@pytest.fixture
def fake_pair(sspi_fake: object) -> Iterator[Pair]:
    client, server = sspi_import.loopback("NTLM")
    with client, server:
        yield client, server


@pytest.mark.parametrize("size", [0, 1, 2, 100, 70000])
def test_wrap_is_token_then_data(pair: Pair, size: int) -> None:
    client, server = pair
    data = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    trailer = client.sizes().security_trailer
    wrapped = client.wrap(data)
    assert len(wrapped) == trailer + size  # no prefix, no padding from either provider
    assert server.unwrap(wrapped) == data
    # the same bytes open through the IOV form with the token kept apart
    again = server.wrap(data)
    opened = client.unwrap_iov(
        [IovBuffer(BufferType.TOKEN, again[:trailer]), IovBuffer(BufferType.DATA, again[trailer:])]
    )
    assert bytes(opened.buffers[1].data) == data
    assert opened.qop == 0
    assert opened.encrypted


def test_wrap_accepts_every_bytes_like_and_changes_none(pair: Pair) -> None:
    client, server = pair
    source = bytearray(b"leave me alone")
    for data in (bytes(source), source, memoryview(source), memoryview(bytes(source))[2:]):
        assert server.unwrap(client.wrap(data)) == bytes(data)
        assert source == b"leave me alone"


def test_unwrap_does_not_change_its_input(pair: Pair) -> None:
    client, server = pair
    wrapped = bytearray(client.wrap(b"secret payload"))
    kept = bytes(wrapped)
    assert server.unwrap(wrapped) == b"secret payload"
    assert wrapped == kept


def test_encrypt_refuses_the_wrong_qop_before_sspi(pair: Pair) -> None:
    client, _server = pair
    with pytest.raises(ValueError, match="encrypt=False"):
        client.wrap(b"x", qop=C.SECQOP_WRAP_NO_ENCRYPT)
    with pytest.raises(ValueError, match="qop"):
        client.wrap(b"x", qop=-1)
    with pytest.raises(TypeError, match="qop"):
        client.wrap(b"x", qop="0")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seq_no"):
        client.wrap_iov([IovBuffer(BufferType.TOKEN)], seq_no=1 << 32)
    with pytest.raises(TypeError, match="str"):
        client.wrap("text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        client.unwrap(b"")


def sign_only_round_trip(client: SecurityContext, server: SecurityContext) -> bool:
    """``wrap(encrypt=False)`` then ``unwrap``: refused exactly when the data went in the clear.

    What the library guarantees: ``wrap(encrypt=False)`` *asks* for sign-only
    (``SECQOP_WRAP_NO_ENCRYPT``); whether the package honours it is the package's choice.
    ``unwrap`` decides by the QOP ``DecryptMessage`` reports (``pfQOP``): on a context
    that negotiated confidentiality, a message reported sign-only is refused
    (``UnencryptedMessageError``) unless ``allow_unencrypted=True``; a message the
    package sealed anyway opens as usual, and ``unwrap_iov`` reports ``encrypted``.
    Returns whether the package honoured sign-only.
    """
    data = b"in the clear if the package honours sign-only"
    signed = client.wrap(data, encrypt=False)
    in_clear = data in signed
    if in_clear:
        with pytest.raises(UnencryptedMessageError) as caught:
            server.unwrap(signed)
        assert caught.value.qop & C.SECQOP_WRAP_NO_ENCRYPT
        assert server.unwrap(client.wrap(data, encrypt=False), allow_unencrypted=True) == data
    else:
        # Sealed although sign-only was asked for: nothing went in the clear, nothing to
        # refuse. Were it refused, the provider would have reported SECQOP_WRAP_NO_ENCRYPT
        # for an encrypted message, and unwrap would need to decide by the bytes instead.
        assert server.unwrap(signed) == data
    token_size = client.sizes().security_trailer
    wrapped = client.wrap_iov(
        [IovBuffer(BufferType.TOKEN), IovBuffer(BufferType.DATA, data)], encrypt=False
    )
    assert not wrapped.encrypted  # what was asked for
    token, wire = (bytes(b.data) for b in wrapped.buffers)
    assert len(token) <= token_size
    opened = server.unwrap_iov(
        [IovBuffer(BufferType.TOKEN, token), IovBuffer(BufferType.DATA, wire)],
        allow_unencrypted=True,
    )
    assert bytes(opened.buffers[1].data) == data
    assert opened.encrypted == (wire != data), f"QOP 0x{opened.qop:08X} for what was sent"
    assert (wire == data) == in_clear  # the package is consistent from one message to the next
    return in_clear


def test_sign_only_is_refused_exactly_when_sent_in_the_clear(
    pair: Pair, request: pytest.FixtureRequest
) -> None:
    client, server = pair
    assert server.flags & RequestFlags.CONFIDENTIALITY
    honoured = sign_only_round_trip(client, server)
    # FakeSspi honours sign-only; sspi-rs seals anyway and reports QOP 0.
    assert honoured == ("sspi_fake" in request.fixturenames)


def test_sign_only_is_refused_where_confidentiality_was_negotiated(fake_pair: Pair) -> None:
    client, server = fake_pair
    assert server.flags & RequestFlags.CONFIDENTIALITY
    signed = client.wrap(b"in the clear", encrypt=False)
    assert b"in the clear" in signed  # FakeSspi honours SECQOP_WRAP_NO_ENCRYPT
    with pytest.raises(UnencryptedMessageError) as caught:
        server.unwrap(signed)
    assert caught.value.qop == C.SECQOP_WRAP_NO_ENCRYPT
    assert "in the clear" not in str(caught.value)
    # the refused message was consumed; the next ones open, and opting in accepts it
    assert server.unwrap(client.wrap(b"sealed")) == b"sealed"
    assert server.unwrap(client.wrap(b"ok", encrypt=False), allow_unencrypted=True) == b"ok"
    # the IOV form refuses it the same way, and reports the QOP when allowed
    result = client.wrap_iov(
        [IovBuffer(BufferType.TOKEN), IovBuffer(BufferType.DATA, b"iov clear")], encrypt=False
    )
    assert not result.encrypted
    token, data = (bytes(b.data) for b in result.buffers)
    assert data == b"iov clear"
    with pytest.raises(UnencryptedMessageError):
        server.unwrap_iov([IovBuffer(BufferType.TOKEN, token), IovBuffer(BufferType.DATA, data)])
    again = client.wrap_iov(
        [IovBuffer(BufferType.TOKEN), IovBuffer(BufferType.DATA, b"iov clear")], encrypt=False
    )
    token, data = (bytes(b.data) for b in again.buffers)
    opened = server.unwrap_iov(
        [IovBuffer(BufferType.TOKEN, token), IovBuffer(BufferType.DATA, data)],
        allow_unencrypted=True,
    )
    assert opened.qop == C.SECQOP_WRAP_NO_ENCRYPT
    assert not opened.encrypted


def test_sign_only_opens_where_confidentiality_was_not_negotiated(sspi_fake: object) -> None:
    flags = RequestFlags.MUTUAL_AUTH | RequestFlags.INTEGRITY
    client, server = sspi_import.loopback("NTLM", flags=flags)
    with client, server:
        assert not server.flags & RequestFlags.CONFIDENTIALITY
        assert server.unwrap(client.wrap(b"integrity only", encrypt=False)) == b"integrity only"


def test_unencrypted_error_pickles() -> None:
    error = pickle.loads(pickle.dumps(UnencryptedMessageError(C.SECQOP_WRAP_NO_ENCRYPT)))
    assert isinstance(error, UnencryptedMessageError)
    assert isinstance(error, ValueError)
    assert error.qop == C.SECQOP_WRAP_NO_ENCRYPT


def test_wrap_iov_works_in_the_callers_buffer(pair: Pair) -> None:
    client, server = pair
    body = bytearray(b"zero-copy body")
    token = bytearray(client.sizes().security_trailer)
    result = client.wrap_iov([IovBuffer(BufferType.TOKEN, token), IovBuffer(BufferType.DATA, body)])
    assert body != b"zero-copy body"  # encrypted where it is
    out_token, out_body = result.buffers
    assert isinstance(out_body.data, memoryview)
    assert out_body.data.obj is body
    assert bytes(out_token.data) == bytes(token)[: len(out_token.data)]
    opened = server.unwrap_iov(
        [IovBuffer(BufferType.TOKEN, token), IovBuffer(BufferType.DATA, body)]
    )
    assert body == b"zero-copy body"  # decrypted where it is
    assert opened.buffers[1].data.obj is body  # type: ignore[union-attr]


def test_unwrap_iov_stream_points_data_into_the_callers_buffer(pair: Pair) -> None:
    client, server = pair
    message = bytearray(client.wrap(b"stream me"))
    result = server.unwrap_iov([IovBuffer(BufferType.STREAM, message), IovBuffer(BufferType.DATA)])
    data = result.buffers[1].data
    assert isinstance(data, memoryview)
    assert data.obj is message
    assert bytes(data) == b"stream me"


def test_readonly_with_checksum_is_signed_not_encrypted(fake_pair: Pair) -> None:
    client, server = fake_pair
    header = b"PDU header"
    result = client.wrap_iov(
        [
            IovBuffer(BufferType.READONLY_WITH_CHECKSUM, header),
            IovBuffer(BufferType.DATA, b"stub data"),
            IovBuffer(BufferType.TOKEN),
        ]
    )
    sent = [bytes(b.data) for b in result.buffers]
    assert sent[0] == header
    assert sent[1] != b"stub data"
    opened = server.unwrap_iov(
        [
            IovBuffer(BufferType.READONLY_WITH_CHECKSUM, header),
            IovBuffer(BufferType.DATA, sent[1]),
            IovBuffer(BufferType.TOKEN, sent[2]),
        ]
    )
    assert bytes(opened.buffers[1].data) == b"stub data"
    changed = client.wrap_iov(
        [
            IovBuffer(BufferType.READONLY_WITH_CHECKSUM, header),
            IovBuffer(BufferType.DATA, b"more"),
            IovBuffer(BufferType.TOKEN),
        ]
    )
    parts = [bytes(b.data) for b in changed.buffers]
    with pytest.raises(sspi_import.MessageAlteredError):
        server.unwrap_iov(
            [
                IovBuffer(BufferType.READONLY_WITH_CHECKSUM, b"PDU HEADER"),
                IovBuffer(BufferType.DATA, parts[1]),
                IovBuffer(BufferType.TOKEN, parts[2]),
            ]
        )


def test_iov_buffers_are_checked_before_sspi(pair: Pair) -> None:
    client, _server = pair
    with pytest.raises(ValueError, match="unknown buffer type"):
        IovBuffer(99, b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="str"):
        IovBuffer(BufferType.DATA, "text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="size"):
        IovBuffer(BufferType.TOKEN, -1)
    with pytest.raises(ValueError, match="at least one"):
        client.wrap_iov([])
    with pytest.raises(TypeError, match="IovBuffer"):
        client.wrap_iov([b"raw"])  # type: ignore[list-item]
    assert IovBuffer(1, b"x").type is BufferType.DATA  # type: ignore[arg-type]


def test_reprs_show_no_bytes() -> None:
    text = repr(IovBuffer(BufferType.DATA, b"password=hunter2"))
    assert "hunter2" not in text
    assert "16 bytes" in text
    result = sspi_import.IovResult((sspi_import.IovOutput(BufferType.DATA, b"hunter2"),), 0)
    assert "hunter2" not in repr(result)


def test_closed_context_refuses_every_layout(pair: Pair) -> None:
    client, _server = pair
    client.close()
    for call in (
        lambda: client.wrap(b"x"),
        lambda: client.unwrap(b"x" * 20),
        lambda: client.wrap_iov([IovBuffer(BufferType.TOKEN)]),
        lambda: client.unwrap_iov([IovBuffer(BufferType.STREAM, b"x" * 20)]),
    ):
        with pytest.raises(ValueError, match="closed"):
            call()


# The WinRM layout's guard ----------------------------------------------------------------


def test_decrypt_refuses_a_declared_trailer_that_cannot_be_right(pair: Pair) -> None:
    client, server = pair
    trailer = client.sizes().security_trailer
    sealed = client.encrypt(b"winrm body")
    body = sealed[4:]
    for declared in (0, 1, trailer - 1, trailer + 1, 0xFFFF):
        frame = struct.pack("<I", declared) + body + bytes(max(0, declared - len(body)))
        with pytest.raises(ValueError, match=f"declares a {declared}-byte trailer"):
            server.decrypt(frame)
        with pytest.raises(ValueError, match="trailer"):
            server.decrypt_in_place(bytearray(frame))
    assert server.decrypt(sealed) == b"winrm body"  # nothing reached SSPI: still in step


def test_ntlm_trailer_is_exactly_16_on_sspi_rs(sspi_rs: object) -> None:
    client, server = sspi_import.loopback("NTLM", ALICE)
    with client, server:
        assert client.sizes().security_trailer == 16
        wrapped = client.wrap(b"GSS-API wrap")
        with pytest.raises(ValueError, match=r"1-byte trailer.*exactly 16.*unwrap\(\)"):
            server.decrypt(wrapped)
        assert server.unwrap(wrapped) == b"GSS-API wrap"
        assert server.decrypt(client.encrypt(b"then WinRM")) == b"then WinRM"


# Windows: real NTLM (the Windows lane runs these) ---------------------------------------


@pytest.mark.windows_sspi
@pytest.mark.parametrize("size", [0, 1, 16, 17, 65536, 1 << 20])
def test_windows_ntlm_wrap_unwrap_and_the_guard(size: int) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client, server:
        assert client.sizes().security_trailer == 16
        data = bytes(i % 253 for i in range(size))
        assert server.unwrap(client.wrap(data)) == data
        assert client.unwrap(server.wrap(data)) == data
        wrapped = client.wrap(b"GSS-API wrap")
        with pytest.raises(ValueError, match="exactly 16"):
            server.decrypt(wrapped)
        assert server.unwrap(wrapped) == b"GSS-API wrap"
        assert server.decrypt(client.encrypt(b"WinRM")) == b"WinRM"


@pytest.mark.windows_sspi
def test_windows_ntlm_sign_only_is_refused_exactly_when_sent_in_the_clear() -> None:
    # With confidentiality negotiated, Windows NTLM is reported to ignore the sign-only
    # request and seal anyway (gss-ntlmssp issue 77: NTLM cannot say it on the wire).
    # Either way the guarantee must hold; the log says which way Windows went.
    client, server = sspi_import.loopback("NTLM")
    with client, server:
        assert server.flags & RequestFlags.CONFIDENTIALITY
        honoured = sign_only_round_trip(client, server)
    outcome = "honoured" if honoured else "sealed anyway"
    print(f"Windows NTLM, confidentiality negotiated: sign-only {outcome}")
