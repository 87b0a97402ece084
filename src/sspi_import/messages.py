"""Message protection on every context: sign/verify and encrypt/decrypt.

``encrypt``/``decrypt`` (and ``encrypt_into``/``decrypt_in_place``) speak one wire
layout, ``trailer length (4 bytes LE) || trailer || ciphertext || padding``: the layout
WinRM uses (pywinrm, pypsrp: MS-WSMV's encrypted body). Every call holds the context's
lock (``OwnedHandle``), so calls on one context are serialized: NTLM's sealing state
(RC4 stream, sequence numbers) moves with each message, and providers are not safe for
concurrent calls on one context.

Memory rules: SSPI only reads the caller's data for ``sign``/``verify``, so it gets the
caller's own buffer (``_buffers.readable``, no copy). ``EncryptMessage`` and
``DecryptMessage`` work in place: ``encrypt`` copies the plaintext once, into the new
``bytes`` object it returns (trailer length and trailer room first, exactly the wire
layout), and SSPI encrypts it there; ``decrypt`` copies the trailer and the ciphertext
into new objects and returns the decrypted one as it is (``_cpython.fresh_bytes``). The
caller's objects are never written. A copy that still holds plaintext when the call
fails, or that is not the result, is zeroed. ``encrypt_into`` and ``decrypt_in_place``
work in the caller's own writable buffer instead.
"""

from __future__ import annotations

import ctypes
import struct
from ctypes import byref, c_uint32
from typing import TYPE_CHECKING, Any

from ._buffers import MAX_BUFFER, Blob, WritableBlob, readable, writable
from ._cpython import fresh_bytes, fresh_copy, fresh_slice
from ._handle import OwnedHandle
from ._raw import constants as C  # noqa: N812 - C names, read like the header
from ._raw.structs import SecBuffer, SecBufferDesc, SecHandle
from .errors import InternalError, check, status_info

if TYPE_CHECKING:
    from .context import ContextSizes

__all__ = ["MessageProtection"]

_TRAILER_LENGTH = struct.Struct("<I")
_PREFIX = _TRAILER_LENGTH.size  # a sealed message starts with its trailer length
_INTERNAL_ERROR = status_info("SEC_E_INTERNAL_ERROR").status  # type: ignore[union-attr]


# One ctypes object per message call: the SecBufferDesc with its SecBuffers right behind
# it (and, for EncryptMessage, room for the padding), filled by one struct.pack_into and
# read back by one unpack_from. No array type or SecBuffer object is made per call, and
# the object is passed as the PSecBufferDesc argument itself (ctypes passes its address).
_PADDING_ROOM = 64  # block sizes are 0, 1, 8 or 16; a larger one gets its own buffer


class _Desc2(SecBufferDesc):
    """A ``SecBufferDesc`` followed by its two ``SecBuffer``."""

    _fields_ = [("buffers", SecBuffer * 2)]  # noqa: RUF012 - read once, by ctypes


class _Desc3(SecBufferDesc):
    """A ``SecBufferDesc``, its three ``SecBuffer`` (token, data, padding), padding room."""

    _fields_ = [  # noqa: RUF012 - read once, by ctypes
        ("buffers", SecBuffer * 3),
        ("padding", ctypes.c_char * _PADDING_ROOM),
    ]


# SecBufferDesc and SecBuffer are both {ULONG, ULONG, pointer}: "IIP" in native layout.
_PACK2 = struct.Struct("@" + "IIP" * 3)
_PACK3 = struct.Struct("@" + "IIP" * 4)
_BUFFERS_AT = ctypes.sizeof(SecBufferDesc)
_PADDING_AT: int = _Desc3.padding.offset
_VERSION = C.SECBUFFER_VERSION
_DATA = C.SECBUFFER_DATA
_TOKEN = C.SECBUFFER_TOKEN
_PADDING = C.SECBUFFER_PADDING
_addressof = ctypes.addressof
_HEADS: dict[int, bytes] = {}


def _head(trailer: int) -> bytes:
    """What every sealed message starts with: its trailer length, then room for the trailer.

    Made once per trailer size; ``encrypt`` looks in ``_HEADS`` first.
    """
    head = _HEADS[trailer] = _TRAILER_LENGTH.pack(trailer) + bytes(trailer)
    return head


def _trailer_length(message: Any, length: int) -> int:
    """The trailer length a sealed message starts with, checked against its size."""
    if length < _PREFIX:
        raise ValueError("the message is shorter than its 4-byte trailer length")
    (trailer,) = _TRAILER_LENGTH.unpack_from(message)
    if _PREFIX + trailer > length:
        raise ValueError(
            f"the message says its trailer is {trailer} bytes but holds only {length - _PREFIX}"
        )
    return int(trailer)


def _assemble(token: tuple[int, int], data: tuple[int, int], padding: tuple[int, int]) -> bytes:
    """The wire message from wherever the provider left its three ``(length, address)``."""
    parts = [ctypes.string_at(at, size) if size else b"" for size, at in (token, data, padding)]
    return _TRAILER_LENGTH.pack(token[0]) + b"".join(parts)


# Field positions in what _PACK2/_PACK3 unpack: the descriptor, then each SecBuffer's
# (cbBuffer, BufferType, pvBuffer).
_FIRST, _SECOND, _THIRD = 3, 6, 9
_LENGTH, _TYPE, _AT = 0, 1, 2


def _data_buffer(fields: tuple[int, ...]) -> tuple[int, int]:
    """``(length, address)`` of the data buffer in an unpacked two-buffer descriptor."""
    for buffer in (_SECOND, _FIRST):  # DecryptMessage leaves the data second; look at both
        if fields[buffer + _TYPE] == _DATA:
            return fields[buffer + _LENGTH], fields[buffer + _AT]
    raise InternalError(_INTERNAL_ERROR, "DecryptMessage", "no data buffer came back")


class MessageProtection(OwnedHandle[SecHandle]):
    """``sign``, ``verify``, ``encrypt``, ``decrypt`` and their in-place forms."""

    __slots__ = ("_sizes",)
    _sizes: ContextSizes  # set on first sizes()

    def sizes(self) -> ContextSizes:  # pragma: no cover - defined by SecurityContextBase
        """Token, signature, block and trailer sizes of the context."""
        raise NotImplementedError

    def _cached_sizes(self) -> ContextSizes:
        try:
            return self._sizes
        except AttributeError:
            return self.sizes()

    # EncryptMessage and DecryptMessage go through the bare bindings (_raw.functions._bare):
    # byref() for the pointers, plain ints. The lock is held for the call (OwnedHandle).

    def _encrypt_message(self, desc: Any) -> None:
        with self._lock:
            handle = self._handle
            if handle is None:
                raise self._closed_error()
            status = self._lib.EncryptMessage_bare(byref(handle), 0, byref(desc), 0)
        check(status, "EncryptMessage")

    def _decrypt_message(self, desc: Any) -> None:
        qop = c_uint32()
        with self._lock:
            handle = self._handle
            if handle is None:
                raise self._closed_error()
            status = self._lib.DecryptMessage_bare(byref(handle), byref(desc), 0, byref(qop))
        check(status, "DecryptMessage")

    def _refuse_closed(self) -> None:
        """Fail early, before plaintext is copied; the call itself checks again, locked."""
        if self._handle is None:
            raise self._closed_error()

    def sign(self, data: Blob) -> bytes:
        """Sign ``data`` (``MakeSignature``) and return the signature alone.

        The peer checks it with ``verify(data, signature)``. The package numbers the
        messages itself (``MessageSeqNo`` 0), so verify them in the order signed.
        """
        keepalive, address, length = readable(data, "message")
        signature = (ctypes.c_char * self._cached_sizes().max_signature)()
        desc = _Desc2()
        at = _addressof(desc)
        _PACK2.pack_into(
            desc, 0, _VERSION, 2, at + _BUFFERS_AT,
            length, _DATA, address,
            len(signature), _TOKEN, _addressof(signature),
        )  # fmt: skip
        self._call("MakeSignature", 0, desc, 0)
        del keepalive
        fields = _PACK2.unpack_from(desc)
        return ctypes.string_at(fields[_SECOND + _AT], fields[_SECOND + _LENGTH])

    def verify(self, data: Blob, signature: Blob) -> None:
        """Check ``signature`` over ``data`` (``VerifySignature``).

        Returns nothing; raises ``MessageAlteredError`` when either was tampered with
        and ``OutOfSequenceError`` for a replayed or missing message.
        """
        keep_data, data_address, data_length = readable(data, "message")
        keep_sig, sig_address, sig_length = readable(signature, "signature")
        desc = _Desc2()
        at = _addressof(desc)
        _PACK2.pack_into(
            desc, 0, _VERSION, 2, at + _BUFFERS_AT,
            data_length, _DATA, data_address,
            sig_length, _TOKEN, sig_address,
        )  # fmt: skip
        self._call("VerifySignature", desc, 0, c_uint32())
        del keep_data, keep_sig

    def encrypted_size(self, length: int) -> int:
        """The most bytes ``encrypt`` returns, and ``encrypt_into`` needs, for ``length`` bytes.

        ``4 + sizes().security_trailer + length + sizes().block_size``: the trailer
        length, the largest trailer, the message and the largest padding. The message
        ``encrypt_into`` writes is usually shorter by the block size (no padding).
        """
        if length < 0:
            raise ValueError(f"a message length cannot be negative, not {length}")
        sizes = self._cached_sizes()
        return _PREFIX + sizes.security_trailer + length + sizes.block_size

    def encrypt(self, data: Blob) -> bytes:
        """Encrypt ``data`` (``EncryptMessage``) into one self-describing message.

        Wire layout (what ``decrypt`` reads)::

            trailer length (4 bytes, little-endian) | trailer | ciphertext | padding

        The trailer is the ``SECBUFFER_TOKEN`` SSPI filled (its real length, which can
        be shorter than ``sizes().security_trailer``); the padding is empty for stream
        ciphers such as NTLM's RC4. ``data`` is not changed; to write the message into
        a buffer of your own instead, use ``encrypt_into``.

        The trailer length is framing, outside what SSPI authenticates: if it is changed
        in transit, ``decrypt`` fails, or, with a provider that reads trailer and
        ciphertext as one stream (sspi-rs does), still returns the original plaintext.
        The trailer and the ciphertext cannot be changed undetected.
        """
        try:  # _cached_sizes() inlined: encrypt is the hot path
            sizes = self._sizes
        except AttributeError:
            sizes = self.sizes()
        trailer, block = sizes.security_trailer, sizes.block_size
        if type(data) is bytes and 0 < len(data) <= MAX_BUFFER:
            source: Any = data
            length = len(data)
        else:
            source, _address, length = readable(data, "message")
        self._refuse_closed()  # before the plaintext is copied
        # The message is sealed in place in the bytes object returned: a new object
        # that nobody else has seen yet (_cpython.fresh_bytes).
        fresh = fresh_bytes(_HEADS.get(trailer) or _head(trailer), source)
        if fresh is None:  # not CPython: seal in a bytearray, copy out once
            out = bytearray(_PREFIX + trailer + length + block)
            with memoryview(out) as view:
                return bytes(view[: self.encrypt_into(source, out)])
        sealed, sealed_at = fresh
        token_at = sealed_at + _PREFIX
        data_at = token_at + trailer
        desc = _Desc3()
        at = _addressof(desc)
        if block <= _PADDING_ROOM:
            padding_at = at + _PADDING_AT
        else:
            room = bytearray(block)
            padding_at = _addressof(ctypes.c_char.from_buffer(room))
        _PACK3.pack_into(
            desc, 0, _VERSION, 3, at + _BUFFERS_AT,
            trailer, _TOKEN, token_at,
            length, _DATA, data_at,
            block, _PADDING, padding_at,
        )  # fmt: skip
        try:
            self._encrypt_message(desc)
        except BaseException:
            ctypes.memset(data_at, 0, length)  # still the plaintext
            raise
        _, _, _, t_len, _, t_at, d_len, _, d_at, p_len, _, p_at = _PACK3.unpack_from(desc)
        if t_len == trailer and p_len == 0 and d_len == length and d_at == data_at == t_at + t_len:
            return sealed
        message = _assemble((t_len, t_at), (d_len, d_at), (p_len, p_at))
        ctypes.memset(data_at, 0, length)  # plaintext, if the provider wrote elsewhere
        return message

    def encrypt_into(self, data: Blob, out: WritableBlob) -> int:
        """Encrypt ``data`` into the start of ``out``; return the message's length.

        Writes exactly what ``encrypt`` returns (same wire layout) into ``out``, a
        writable buffer such as a ``bytearray`` (reusable from one message to the next)
        of at least ``encrypted_size(len(data))`` bytes, and copies nothing else: the
        plaintext is copied once into ``out`` and encrypted there. ``data`` may itself
        be a view of ``out`` (any overlap is handled). The bytes of ``out`` after the
        returned length are unspecified. If SSPI fails, the plaintext copied into
        ``out`` is zeroed before the error is raised.

        Raises ``TypeError`` for a read-only ``out`` (``bytes``) and ``ValueError`` when
        ``out`` is too small.
        """
        sizes = self._cached_sizes()
        trailer, block = sizes.security_trailer, sizes.block_size
        target, base, room = writable(out, "output buffer")
        source, _address, length = readable(data, "message")
        needed = _PREFIX + trailer + length + block
        if room < needed:
            raise ValueError(
                f"the output buffer holds {room} bytes; encrypting {length} bytes needs "
                f"{needed} (encrypted_size({length}))"
            )
        self._refuse_closed()  # before the plaintext is copied
        token_at = base + _PREFIX
        data_at = token_at + trailer
        start = _PREFIX + trailer
        # First, as data may overlap out: a memoryview slice assignment is a memmove in
        # C (overlap-safe), without the ffi round trip of ctypes.memmove.
        target[start : start + length] = source
        del source
        _TRAILER_LENGTH.pack_into(target, 0, trailer)
        desc = _Desc3()
        at = _addressof(desc)
        _PACK3.pack_into(
            desc, 0, _VERSION, 3, at + _BUFFERS_AT,
            trailer, _TOKEN, token_at,
            length, _DATA, data_at,
            block, _PADDING, data_at + length,
        )  # fmt: skip
        try:
            self._encrypt_message(desc)
        except BaseException:
            ctypes.memset(data_at, 0, length)  # the plaintext we copied there
            raise
        _, _, _, t_len, _, t_at, d_len, _, d_at, p_len, _, p_at = _PACK3.unpack_from(desc)
        exact = t_len == trailer and t_at == token_at and d_len == length and d_at == data_at
        if exact and (not p_len or (p_at == data_at + length and p_len <= block)):
            written: int = needed - block + p_len
            return written
        message = _assemble((t_len, t_at), (d_len, d_at), (p_len, p_at))
        ctypes.memset(data_at, 0, length)  # plaintext, if the provider wrote elsewhere
        if len(message) > room:
            raise InternalError(
                _INTERNAL_ERROR, "EncryptMessage", "the message outgrew encrypted_size"
            )
        ctypes.memmove(base, message, len(message))
        return len(message)

    def decrypt(self, data: Blob) -> bytes:
        """Decrypt a message ``encrypt`` produced on the peer (``DecryptMessage``).

        Raises ``ValueError`` for a message too short for its own layout, and the
        provider's error (``MessageAlteredError`` on tampering) when SSPI rejects it.
        ``data`` is not changed; to decrypt a writable buffer where it is, without a
        copy, use ``decrypt_in_place``.
        """
        if type(data) is bytes and _PREFIX <= len(data) <= MAX_BUFFER:
            source: Any = data
            address = 0
            length = len(data)
            (trailer,) = _TRAILER_LENGTH.unpack_from(data)
            if _PREFIX + trailer > length:
                _trailer_length(data, length)  # raises
        else:
            source, address, length = readable(data, "message")
            trailer = _trailer_length(source, length)
        start = _PREFIX + trailer
        size = length - start
        # Private copies of the trailer and of the ciphertext, new objects nobody else
        # has seen (_cpython); the ciphertext is decrypted in place and returned as it is.
        if address:
            token = fresh_copy(address + _PREFIX, trailer)
            fresh = fresh_copy(address + start, size)
        else:
            token = fresh_slice(source, _PREFIX, start)
            fresh = fresh_slice(source, start, length)
        if token is None or fresh is None:  # too short to be new objects, or not CPython
            return self._decrypt_copy(source)
        body, body_at = fresh
        desc = _Desc2()
        at = _addressof(desc)
        _PACK2.pack_into(
            desc, 0, _VERSION, 2, at + _BUFFERS_AT,
            trailer, _TOKEN, token[1],
            size, _DATA, body_at,
        )  # fmt: skip
        try:
            self._decrypt_message(desc)
            fields = _PACK2.unpack_from(desc)
            if (
                fields[_SECOND + _AT] == body_at
                and fields[_SECOND + _LENGTH] == size
                and fields[_SECOND + _TYPE] == _DATA
            ):
                return body
            d_len, d_at = _data_buffer(fields)
            plain = ctypes.string_at(d_at, d_len)
        except BaseException:
            ctypes.memset(body_at, 0, size)  # may be partly decrypted
            raise
        ctypes.memset(body_at, 0, size)  # decrypted in place: plaintext
        return plain

    def _decrypt_copy(self, message: Any) -> bytes:
        work = bytearray(message)
        try:
            with self.decrypt_in_place(work) as plain:
                return bytes(plain)
        finally:
            work[:] = bytes(len(work))  # decrypted in place: plaintext

    def decrypt_in_place(self, buffer: WritableBlob) -> memoryview:
        """Decrypt the message in ``buffer`` where it is; return a view of the plaintext.

        ``buffer`` is a writable buffer (``bytearray``, writable ``memoryview``, ``mmap``)
        holding exactly one message ``encrypt`` or ``encrypt_into`` produced on the peer.
        SSPI decrypts it in place: nothing is copied, and the result is a ``memoryview``
        of ``buffer`` covering the plaintext. While that view (or a slice of it) exists,
        a ``bytearray`` cannot change size; release it (``with`` or ``release()``) to
        resize. The other bytes of ``buffer`` (trailer length, trailer) are left as
        they are. If SSPI rejects the message, the ciphertext part of ``buffer`` is
        zeroed (it may hold partly decrypted bytes) and the error is raised.

        Raises ``TypeError`` for a read-only buffer (``bytes``: use ``decrypt``),
        ``ValueError`` for a message too short for its own layout.
        """
        view, base, length = writable(buffer, "message")
        trailer = _trailer_length(view, length)
        start = _PREFIX + trailer
        body_length = length - start
        desc = _Desc2()
        at = _addressof(desc)
        _PACK2.pack_into(
            desc, 0, _VERSION, 2, at + _BUFFERS_AT,
            trailer, _TOKEN, base + _PREFIX,
            body_length, _DATA, base + start,
        )  # fmt: skip
        try:
            self._decrypt_message(desc)
            d_len, d_at = _data_buffer(_PACK2.unpack_from(desc))
            if d_len and not base <= d_at <= base + length - d_len:
                # The provider put the plaintext elsewhere: bring it into the buffer.
                if d_len > body_length:
                    raise InternalError(
                        _INTERNAL_ERROR, "DecryptMessage", "the plaintext outgrew the message"
                    )
                ctypes.memmove(base + start, d_at, d_len)
                d_at = base + start
        except BaseException:
            ctypes.memset(base + start, 0, body_length)
            raise
        first = d_at - base if d_len else start
        return view[first : first + d_len]
