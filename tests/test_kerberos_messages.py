"""Kerberos messages between sspi_import (sspi-rs) and MIT GSSAPI, in every layout that works.

Each layout in each direction sspi-rs allows: ``wrap`` -> ``gss_unwrap``; ``wrap_iov`` ->
``gss_unwrap_iov`` (token, data, padding), and as one ``token || data`` message;
``gss_wrap_iov`` -> ``unwrap_iov``; DCE/RPC-style signed headers (``READONLY_WITH_CHECKSUM``
<-> ``sign_only``) both ways; ``encrypt`` <-> pyspnego's WinRM layout (``unwrap_winrm``,
``wrap_winrm``), also in place. What does not work (a peer's ``gss_wrap`` -> our
``unwrap``, sign-only, sign/verify) is pinned in ``test_kerberos_limits.py``.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest

from kdc import HeimdalRealm
from kerberos import Pair, gss_iov_unwrap, gss_iov_wrap, gss_pair, iov_bytes, spnego_pair
from sspi_import import BufferType, IovBuffer

pytestmark = [pytest.mark.kerberos, pytest.mark.sspi_rs]

SIZES = [0, 1, 15, 16, 17, 1000, 65536, 100_000]
WINRM_SIZES = SIZES[1:]  # encrypt() refuses an empty message; wrap() takes one
HEADER = b"a DCE/RPC header"  # signed, never encrypted
TRAILER = b"and a trailer"


def payload(size: int) -> bytes:
    return bytes((i * 11 + 5) % 256 for i in range(size))


@pytest.fixture
def gss(kerberos: HeimdalRealm) -> Any:
    pair = gss_pair()
    with pair.ours:
        yield pair


@pytest.fixture(params=["Kerberos", "Negotiate"])
def winrm(request: pytest.FixtureRequest, kerberos: HeimdalRealm) -> Any:
    pair = spnego_pair(request.param)
    with pair.ours:
        yield pair


def test_wrap_opens_with_gss_unwrap(gss: Pair[Any]) -> None:
    for size in SIZES:
        data = payload(size)
        message = gss.ours.wrap(data)
        assert len(message) == 60 + size  # the token (AES: 60 bytes) || data, no padding
        if size >= 16:
            assert data[:16] not in message  # encrypted
        result = gss.theirs.unwrap(message)
        assert result.message == data
        assert result.encrypted


def test_both_directions_interleaved(gss: Pair[Any]) -> None:
    # Ours: wrap; theirs: gss_wrap_iov (what opens on our side); each side's sequence
    # numbers stay in step however the messages alternate.
    for n in range(5):
        mine = f"ours {n}".encode()
        assert gss.theirs.unwrap(gss.ours.wrap(mine)).message == mine
        theirs = f"theirs {n}".encode() * (n + 1)
        header, sealed = gss_iov_wrap(gss.theirs, theirs)
        result = gss.ours.unwrap_iov(
            [IovBuffer(BufferType.TOKEN, header), IovBuffer(BufferType.DATA, bytearray(sealed))]
        )
        assert iov_bytes(result.buffers[1]) == theirs
        assert result.encrypted


@pytest.mark.parametrize("with_padding", [True, False], ids=["token-data-padding", "token-data"])
def test_wrap_iov_opens_with_gss_unwrap_iov(gss: Pair[Any], with_padding: bool) -> None:
    data = payload(1000)
    buffers = [IovBuffer(BufferType.TOKEN), IovBuffer(BufferType.DATA, bytearray(data))]
    if with_padding:
        buffers.append(IovBuffer(BufferType.PADDING))
    result = gss.ours.wrap_iov(buffers)
    token, sealed = iov_bytes(result.buffers[0]), iov_bytes(result.buffers[1])
    assert len(token) == 60
    assert sealed != data
    parts = [("data", sealed)]
    if with_padding:
        parts.append(("padding", iov_bytes(result.buffers[2])))
    assert gss_iov_unwrap(gss.theirs, token, *parts) == (data, True)


def test_wrap_iov_as_one_message_opens_with_gss_unwrap(gss: Pair[Any]) -> None:
    data = payload(333)
    result = gss.ours.wrap_iov(
        [IovBuffer(BufferType.TOKEN), IovBuffer(BufferType.DATA, bytearray(data))]
    )
    message = iov_bytes(result.buffers[0]) + iov_bytes(result.buffers[1])
    assert gss.theirs.unwrap(message).message == data


def test_gss_wrap_iov_opens_with_unwrap_iov_in_place(gss: Pair[Any]) -> None:
    data = payload(4096)
    header, sealed = gss_iov_wrap(gss.theirs, data)
    room = bytearray(sealed)
    result = gss.ours.unwrap_iov(
        [IovBuffer(BufferType.TOKEN, header), IovBuffer(BufferType.DATA, room)]
    )
    opened = result.buffers[1].data
    assert isinstance(opened, memoryview)  # decrypted where it was: no copy
    assert bytes(opened) == data
    assert bytes(room[: len(data)]) == data


def test_signed_headers_both_ways(gss: Pair[Any]) -> None:
    data = payload(100)
    # ours -> theirs: header and trailer signed, data encrypted, token apart
    result = gss.ours.wrap_iov(
        [
            IovBuffer(BufferType.READONLY_WITH_CHECKSUM, HEADER),
            IovBuffer(BufferType.DATA, bytearray(data)),
            IovBuffer(BufferType.READONLY_WITH_CHECKSUM, TRAILER),
            IovBuffer(BufferType.TOKEN),
        ]
    )
    out = [iov_bytes(b) for b in result.buffers]
    assert (out[0], out[2]) == (HEADER, TRAILER)  # left as they were
    opened = gss_iov_unwrap(
        gss.theirs, out[3], ("sign_only", HEADER), ("data", out[1]), ("sign_only", TRAILER)
    )
    assert opened == (data, True)
    # a header changed in transit is caught by the peer
    again = gss.ours.wrap_iov(
        [
            IovBuffer(BufferType.READONLY_WITH_CHECKSUM, HEADER),
            IovBuffer(BufferType.DATA, bytearray(data)),
            IovBuffer(BufferType.TOKEN),
        ]
    )
    token, sealed = iov_bytes(again.buffers[2]), iov_bytes(again.buffers[1])
    from gssapi.raw import GSSError

    with pytest.raises(GSSError):
        gss_iov_unwrap(gss.theirs, token, ("sign_only", b"A" + HEADER[1:]), ("data", sealed))


def test_signed_headers_from_the_peer(gss: Pair[Any]) -> None:
    import gssapi.raw
    from gssapi.raw import IOV, IOVBufferType
    from gssapi.raw import IOVBuffer as GssBuffer

    data = payload(100)
    iov = IOV(
        GssBuffer(IOVBufferType.sign_only, False, HEADER),
        GssBuffer(IOVBufferType.header, True, None),
        GssBuffer(IOVBufferType.data, False, data),
        GssBuffer(IOVBufferType.padding, True, None),
        std_layout=False,
    )
    gssapi.raw.wrap_iov(gss.theirs, iov, confidential=True)
    token = bytes(iov[1].value or b"")
    sealed = bytes(iov[2].value or b"") + bytes(iov[3].value or b"")
    result = gss.ours.unwrap_iov(
        [
            IovBuffer(BufferType.READONLY_WITH_CHECKSUM, HEADER),
            IovBuffer(BufferType.TOKEN, token),
            IovBuffer(BufferType.DATA, bytearray(sealed)),
        ]
    )
    assert iov_bytes(result.buffers[2]) == data


def frame(header: bytes, data: bytes) -> bytes:
    return struct.pack("<I", len(header)) + header + data


def unframe(message: bytes) -> tuple[bytes, bytes]:
    (length,) = struct.unpack_from("<I", message)
    return message[4 : 4 + length], message[4 + length :]


def test_encrypt_opens_with_pyspnego_unwrap_winrm(winrm: Pair[Any]) -> None:
    for size in WINRM_SIZES:
        data = payload(size)
        message = winrm.ours.encrypt(data)
        header, sealed = unframe(message)
        assert len(header) == 60
        assert winrm.theirs.unwrap_winrm(header, sealed) == data


def test_pyspnego_wrap_winrm_opens_with_decrypt(winrm: Pair[Any]) -> None:
    for size in WINRM_SIZES:
        data = payload(size)
        wrapped = winrm.theirs.wrap_winrm(data)
        assert winrm.ours.decrypt(frame(wrapped.header, wrapped.data)) == data


def test_winrm_in_place_both_ways(winrm: Pair[Any]) -> None:
    data = payload(5000)
    out = bytearray(winrm.ours.encrypted_size(len(data)))
    written = winrm.ours.encrypt_into(data, out)
    assert winrm.theirs.unwrap_winrm(*unframe(bytes(out[:written]))) == data
    wrapped = winrm.theirs.wrap_winrm(data)
    room = bytearray(frame(wrapped.header, wrapped.data))
    assert bytes(winrm.ours.decrypt_in_place(room)) == data


def test_wrap_opens_with_pyspnego_unwrap(winrm: Pair[Any]) -> None:
    data = payload(777)
    result = winrm.theirs.unwrap(winrm.ours.wrap(data))
    assert result.data == data
    assert result.encrypted
