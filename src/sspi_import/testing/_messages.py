"""Message protection: MakeSignature, VerifySignature, EncryptMessage, DecryptMessage.

The trailer (``SECBUFFER_TOKEN``) is a 4-byte header (signed, sealed), the 8-byte
sequence number and a truncated HMAC-SHA256 over the data; sealing XORs the writable
data buffers with a keystream of the sender's key and the sequence number. Tampering,
replay and reflection fail as on Windows (``SEC_E_MESSAGE_ALTERED``,
``SEC_E_OUT_OF_SEQUENCE``).
"""

from __future__ import annotations

import ctypes
import struct
from typing import Any

from .._raw import constants as C  # noqa: N812 - C names, read like the header
from .._raw.status_codes import (
    SEC_E_BUFFER_TOO_SMALL,
    SEC_E_INCOMPLETE_MESSAGE,
    SEC_E_INVALID_TOKEN,
    SEC_E_MESSAGE_ALTERED,
    SEC_E_OK,
    SEC_E_OUT_OF_SEQUENCE,
    SEC_E_QOP_NOT_SUPPORTED,
)
from .._raw.structs import SecBuffer
from . import _wire
from ._args import (
    FaultError,
    buffers,
    of_type,
    put_ulong,
    read,
)
from ._state import State

__all__ = ["Messages"]

_UNSEALED = C.SECBUFFER_READONLY | C.SECBUFFER_READONLY_WITH_CHECKSUM  # signed, not sealed


class Messages(State):
    """The message functions of ``FakeSspi``."""

    # Messages -------------------------------------------------------------------

    @staticmethod
    def _trailer(items: list[SecBuffer]) -> SecBuffer:
        tokens = of_type(items, C.SECBUFFER_TOKEN)
        if not tokens:
            raise FaultError(SEC_E_INVALID_TOKEN)
        return tokens[0]

    def _protect(self, ph: Any, qop: int, p_message: Any, function: str, seal: bool) -> int:
        ctx = self._ready(ph, function)
        if qop not in (0, C.SECQOP_WRAP_NO_ENCRYPT) or (not seal and qop):
            return SEC_E_QOP_NOT_SUPPORTED
        encrypt = seal and qop == 0
        items = buffers(p_message)
        trailer = self._trailer(items)
        if not trailer.pvBuffer or trailer.cbBuffer < _wire.SIGNATURE_SIZE:
            return SEC_E_BUFFER_TOO_SMALL
        data = of_type(items, C.SECBUFFER_DATA)
        seq = struct.pack("<Q", ctx.send_seq)
        header = struct.pack("<I", (1 if seal else 0) | (2 if encrypt else 0))
        if encrypt:
            self._xor_data(ctx.key(b"seal", ctx.role), seq, data)
        tag = _wire.mac(ctx.key(b"sign", ctx.role), header, seq, *(read(b) for b in data))
        ctypes.memmove(trailer.pvBuffer, header + seq + tag, _wire.SIGNATURE_SIZE)
        trailer.cbBuffer = _wire.SIGNATURE_SIZE
        for padding in of_type(items, C.SECBUFFER_PADDING):
            padding.cbBuffer = 0
        ctx.send_seq += 1
        return SEC_E_OK

    def _unprotect(self, ph: Any, p_message: Any, pf_qop: Any, function: str, seal: bool) -> int:
        ctx = self._ready(ph, function)
        items = buffers(p_message)
        streams = of_type(items, C.SECBUFFER_STREAM)
        if streams:  # the whole message in one buffer: split it as real packages do
            items = self._split_stream(streams[0], items)
        trailer = read(self._trailer(items))
        if len(trailer) < _wire.SIGNATURE_SIZE:
            return SEC_E_INVALID_TOKEN
        header, seq, tag = trailer[:4], trailer[4:12], trailer[12 : _wire.SIGNATURE_SIZE]
        data = of_type(items, C.SECBUFFER_DATA)
        expected = _wire.mac(ctx.key(b"sign", ctx.peer), header, seq, *(read(b) for b in data))
        (kind,) = struct.unpack("<I", header)
        if tag != expected or bool(kind & 1) != seal:
            return SEC_E_MESSAGE_ALTERED
        if struct.unpack("<Q", seq)[0] != ctx.recv_seq:
            return SEC_E_OUT_OF_SEQUENCE
        if kind & 2:
            self._xor_data(ctx.key(b"seal", ctx.peer), seq, data)
        ctx.recv_seq += 1
        put_ulong(pf_qop, C.SECQOP_WRAP_NO_ENCRYPT if seal and not kind & 2 else 0)
        return SEC_E_OK

    @staticmethod
    def _split_stream(stream: SecBuffer, items: list[SecBuffer]) -> list[SecBuffer]:
        """``token || data`` in a ``SECBUFFER_STREAM``: the ``SECBUFFER_DATA`` is pointed in it."""
        outputs = of_type(items, C.SECBUFFER_DATA)
        if not outputs or not stream.pvBuffer:
            raise FaultError(SEC_E_INVALID_TOKEN)
        if stream.cbBuffer < _wire.SIGNATURE_SIZE:
            raise FaultError(SEC_E_INCOMPLETE_MESSAGE)
        token = SecBuffer(_wire.SIGNATURE_SIZE, C.SECBUFFER_TOKEN, stream.pvBuffer)
        data = outputs[0]
        data.pvBuffer = stream.pvBuffer + _wire.SIGNATURE_SIZE
        data.cbBuffer = stream.cbBuffer - _wire.SIGNATURE_SIZE
        return [token, data]

    @staticmethod
    def _xor_data(key: bytes, nonce: bytes, data: list[SecBuffer]) -> None:
        writable = [b for b in data if not b.BufferType & _UNSEALED and b.cbBuffer]
        plain = b"".join(read(b) for b in writable)
        mixed = _wire.keystream_xor(key, nonce, plain)
        offset = 0
        for buffer in writable:
            ctypes.memmove(buffer.pvBuffer, mixed[offset:], buffer.cbBuffer)
            offset += buffer.cbBuffer

    def _MakeSignature(self, ph: Any, qop: int, p_message: Any, seq_no: int) -> int:  # noqa: N802
        return self._protect(ph, qop, p_message, "MakeSignature", seal=False)

    def _VerifySignature(self, ph: Any, p_message: Any, seq_no: int, pf_qop: Any) -> int:  # noqa: N802
        return self._unprotect(ph, p_message, pf_qop, "VerifySignature", seal=False)

    def _EncryptMessage(self, ph: Any, qop: int, p_message: Any, seq_no: int) -> int:  # noqa: N802
        return self._protect(ph, qop, p_message, "EncryptMessage", seal=True)

    def _DecryptMessage(self, ph: Any, p_message: Any, seq_no: int, pf_qop: Any) -> int:  # noqa: N802
        return self._unprotect(ph, p_message, pf_qop, "DecryptMessage", seal=True)
