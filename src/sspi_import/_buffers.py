"""Caller memory handed to SSPI without copies, SSPI memory freed, UTF-16 both ways.

SSPI only reads an import blob, so the DLL is given the address of the caller's own
buffer: ``bytes`` and writable buffers (``bytearray``, writable ``memoryview``, ``mmap``)
are never copied. Only buffers ctypes cannot address without copying (read-only views
of part of an object, non-contiguous views) are copied once, to contiguous bytes.
"""

from __future__ import annotations

import ctypes
import mmap
from typing import Any

from ._cpython import bytes_address

__all__ = [
    "MAX_BUFFER",
    "Blob",
    "WritableBlob",
    "copyable",
    "encode_name",
    "read_utf16z",
    "readable",
    "writable",
]

MAX_BUFFER = 0xFFFF_FFFF  # SecBuffer.cbBuffer is a ULONG
Blob = bytes | bytearray | memoryview
WritableBlob = bytearray | memoryview | mmap.mmap


def _check_length(length: int, what: str) -> None:
    if length == 0:
        raise ValueError(f"the {what} is empty")
    if length > MAX_BUFFER:
        raise ValueError(
            f"the {what} is {length} bytes; SSPI buffers hold at most {MAX_BUFFER} bytes"
        )


def readable(data: object, what: str = "blob") -> tuple[Any, int, int]:
    """Return ``(keepalive, address, length)`` for a non-empty buffer SSPI will only read.

    ``keepalive`` (what ``copyable`` returns) must stay referenced until the call
    returns. Raises ``TypeError`` for anything that is not a bytes-like object (``str``
    included) and ``ValueError`` for an empty or oversized one.
    """
    if type(data) is bytes:  # the usual case, without copyable's call
        length = len(data)
        if 0 < length <= MAX_BUFFER:
            return data, bytes_address(data), length  # _cpython: no copy, no ctypes.cast
    source, length = copyable(data, what)
    if type(source) is bytes:
        return source, bytes_address(source), length
    # The view keeps the caller's buffer exported (a bytearray cannot be resized under
    # SSPI); c_char, not c_char * n, so no ctypes array type is made (and kept) per length.
    return source, ctypes.addressof(ctypes.c_char.from_buffer(source)), length


def copyable(data: object, what: str = "blob") -> tuple[Any, int]:
    """Return ``(source, length)``: ``readable`` without the address, to copy from.

    ``source`` is ``data`` itself if it is ``bytes``, else ``bytes`` (the whole object a
    read-only view covers, or a copy of what ctypes cannot address) or a writable,
    contiguous, one-dimensional byte view of the caller's memory. Raises as ``readable``.
    """
    if type(data) is bytes:
        length = len(data)
        if not 0 < length <= MAX_BUFFER:
            _check_length(length, what)
        return data, length
    if isinstance(data, str) or not _is_buffer(data):
        raise TypeError(
            f"the {what} must be bytes, bytearray or memoryview, not {type(data).__name__}"
        )
    view = memoryview(data)  # type: ignore[arg-type]  # checked by _is_buffer
    _check_length(view.nbytes, what)
    if not view.c_contiguous:
        copy = view.tobytes()
        return copy, len(copy)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    if view.readonly:
        whole = view.obj
        if type(whole) is bytes and len(whole) == view.nbytes:
            return whole, view.nbytes
        copy = view.tobytes()
        return copy, len(copy)
    return view, view.nbytes


def writable(data: object, what: str) -> tuple[memoryview, int, int]:
    """Return ``(view, address, length)`` for a non-empty buffer SSPI will write in place.

    ``view`` is a one-dimensional byte view of the caller's own memory (``bytearray``,
    writable ``memoryview``, ``mmap``, ctypes arrays...): nothing is copied. Raises
    ``TypeError`` for read-only buffers (``bytes``) and non-buffers, ``ValueError`` for
    empty, oversized or non-contiguous ones.
    """
    if type(data) is bytearray:
        view = memoryview(data)
    elif type(data) is memoryview and not data.readonly and data.c_contiguous:
        # A view of our own, never the caller's: its export of the buffer lasts while the
        # call runs, even if another thread releases the caller's view meanwhile (which
        # would let a bytearray be resized under SSPI).
        view = memoryview(data) if data.format == "B" and data.ndim == 1 else data.cast("B")
    else:
        if isinstance(data, str) or not _is_buffer(data):
            raise TypeError(
                f"the {what} must be a writable buffer such as bytearray, not {type(data).__name__}"
            )
        view = memoryview(data)  # type: ignore[arg-type]  # checked by _is_buffer
        if view.readonly:
            raise TypeError(
                f"the {what} must be writable (bytearray, writable memoryview), "
                f"not a read-only {type(data).__name__}"
            )
        if not view.c_contiguous:
            raise ValueError(f"the {what} must be contiguous; SSPI works on one block of memory")
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
    length = view.nbytes
    if not 0 < length <= MAX_BUFFER:
        _check_length(length, what)
    # c_char, not c_char * n: one type for every length (ctypes keeps every array type
    # it ever made), and the address is all that is needed.
    return view, ctypes.addressof(ctypes.c_char.from_buffer(view)), length


def _is_buffer(data: object) -> bool:
    try:
        memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        return False
    return True


_NAMES: dict[str, bytes] = {}


def encode_name(name: object, what: str = "package name") -> bytes:
    """UTF-16LE with a NUL terminator, cached: names repeat on every call."""
    encoded = _NAMES.get(name) if type(name) is str else None
    if encoded is not None:
        return encoded
    if not isinstance(name, str):
        raise TypeError(f"the {what} must be a str, not {type(name).__name__}")
    if not name:
        raise ValueError(f"the {what} is empty")
    if "\0" in name:
        raise ValueError(f"the {what} contains a NUL character")
    try:
        encoded = name.encode("utf-16-le") + b"\0\0"
    except UnicodeEncodeError:
        raise ValueError(f"the {what} contains a lone surrogate; it cannot be UTF-16") from None
    if len(_NAMES) < 256 and len(name) <= 64:  # bounded: names come from code, rarely
        _NAMES[name] = encoded  # from users (a received payload's, of any length)
    return encoded


def read_utf16z(address: int) -> str:
    """Decode the NUL-terminated UTF-16LE string SSPI returned at ``address``.

    Not ``ctypes.wstring_at``: ``wchar_t`` is 4 bytes outside Windows.
    """
    units = ctypes.cast(address, ctypes.POINTER(ctypes.c_uint16))
    length = 0
    while units[length]:
        length += 1
    return ctypes.string_at(address, 2 * length).decode("utf-16-le", "surrogatepass")
