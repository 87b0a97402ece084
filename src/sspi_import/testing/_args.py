"""Reading what callers pass to the simulated functions, and the statuses returned.

Pointers arrive as ctypes objects or ints, exactly as the prototypes declare them.
Anything malformed becomes a ``FaultError`` carrying the status the callback returns.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterable
from ctypes import c_void_p
from typing import Any

from .._raw import constants as C  # noqa: N812 - C names, read like the header
from .._raw.status_codes import (
    SEC_E_INVALID_PARAMETER,
    SEC_E_UNKNOWN_CREDENTIALS,
)
from .._raw.structs import SecBuffer, SecBufferDesc

# The statuses the simulated functions return, unsigned as generated; the guard
# (_guard.FakeGuard) hands them to ctypes as the signed SECURITY_STATUS C returns.
POINTER_MASK = (1 << (ctypes.sizeof(c_void_p) * 8)) - 1

_set_last_error = getattr(ctypes, "set_last_error", None)  # Windows only


def kernel_failure(error: int) -> int:
    """``FALSE``/``NULL`` with ``error`` as the last error, where ctypes keeps one.

    The prototypes are declared with ``use_last_error`` on Windows, callbacks included:
    ctypes hands the value set here to the caller's ``ctypes.get_last_error()`` (left
    unset, the caller would read whatever an earlier call left there).
    """
    if _set_last_error is not None:
        _set_last_error(error)
    return 0


EPOCH_TICKS = 116_444_736_000_000_000  # 1601 to 1970 in 100 ns ticks
NEVER = 0x7FFF_FFFF_FFFF_FFFF


class FaultError(Exception):
    """Raised inside an implementation to return ``status`` from the callback."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def filetime(seconds: float) -> int:
    """A ``TimeStamp`` (100 ns ticks since 1601) for a ``time.time()`` value."""
    return int(seconds * 10_000_000) + EPOCH_TICKS


def read_wstr(address: int | None) -> str | None:
    """A NUL-terminated UTF-16 string at ``address`` (``None`` for NULL).

    Read one unit at a time, never past the terminator: the caller's buffer may end there.
    """
    if not address:
        return None
    end = address
    limit = address + 2 * 32767
    from_address = ctypes.c_uint16.from_address
    while end < limit and from_address(end).value:
        end += 2
    raw = ctypes.string_at(address, end - address)
    try:
        return raw.decode("utf-16-le")
    except UnicodeDecodeError:
        raise FaultError(SEC_E_INVALID_PARAMETER) from None


def read_counted(address: int | None, length: int) -> str:
    """``length`` UTF-16 units at ``address`` (a counted string of an identity)."""
    if not address or not length:
        return ""
    try:
        return ctypes.string_at(address, 2 * length).decode("utf-16-le")
    except UnicodeDecodeError:
        raise FaultError(SEC_E_UNKNOWN_CREDENTIALS) from None


def buffers(desc: Any) -> list[SecBuffer]:
    """The ``SecBuffer`` views of a ``PSecBufferDesc`` (empty for NULL)."""
    if not desc:
        return []
    d: SecBufferDesc = desc.contents
    if d.ulVersion != C.SECBUFFER_VERSION or d.cBuffers > 64:
        raise FaultError(SEC_E_INVALID_PARAMETER)
    if d.cBuffers and not d.pBuffers:
        raise FaultError(SEC_E_INVALID_PARAMETER)
    return [d.pBuffers[i] for i in range(d.cBuffers)]


def of_type(items: Iterable[SecBuffer], kind: int) -> list[SecBuffer]:
    """The buffers of ``kind`` (attribute bits such as ``SECBUFFER_READONLY`` ignored)."""
    return [b for b in items if b.BufferType & ~C.SECBUFFER_ATTRMASK == kind]


def read(buffer: SecBuffer) -> bytes:
    """A copy of a buffer's bytes."""
    if not buffer.cbBuffer:
        return b""
    if not buffer.pvBuffer:
        raise FaultError(SEC_E_INVALID_PARAMETER)
    return ctypes.string_at(buffer.pvBuffer, buffer.cbBuffer)


def put_ulong(pointer: Any, value: int) -> None:
    """Write an optional ``ULONG``/``TimeStamp`` output."""
    if pointer:
        pointer[0] = value
