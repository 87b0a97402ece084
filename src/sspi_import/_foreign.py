"""Context handles that come from elsewhere: raw pairs, ctypes, pywin32's integer and object.

pywin32's ``PyCtxtHandle.Detach()`` returns the ``SecHandle`` bytes read as one
little-endian unsigned integer (16 bytes on 64-bit Windows, 8 on 32-bit), or ``-1`` for an
invalid handle (``SecInvalidateHandle`` sets both words to all ones). A ``PyCtxtHandle``
object itself is a plain ``PyObject`` header followed by its ``CtxtHandle`` (no virtual
methods), so its handle can be read in place when a caller must not take it over.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any, TypeGuard

from ._raw.structs import SecHandle

__all__ = [
    "foreign_pair",
    "handle_from_int",
    "handle_to_int",
    "is_pywin32_handle",
    "peek_pywin32",
    "raw_pair",
]

POINTER_BYTES = ctypes.sizeof(ctypes.c_void_p)


def _word_max(pointer_bytes: int) -> int:
    return (1 << (8 * pointer_bytes)) - 1


_NATIVE_MAX = _word_max(POINTER_BYTES)


def raw_pair(value: object, pointer_bytes: int = POINTER_BYTES) -> tuple[int, int]:
    """Check a ``(dwLower, dwUpper)`` tuple: two ints that fit a pointer each."""
    if type(value) is tuple and len(value) == 2 and pointer_bytes == POINTER_BYTES:
        lower, upper = value
        # The usual call, in one expression: exact ints, in range, not the invalid handle.
        if (
            type(lower) is int
            and type(upper) is int
            and 0 <= lower <= _NATIVE_MAX
            and 0 <= upper < _NATIVE_MAX
        ):
            return lower, upper
    if not isinstance(value, tuple) or len(value) != 2:
        raise TypeError("a raw context handle is a (dwLower, dwUpper) tuple of two ints")
    lower, upper = value
    for word in (lower, upper):
        if isinstance(word, bool) or not isinstance(word, int):
            raise TypeError("a raw context handle is a (dwLower, dwUpper) tuple of two ints")
        if not 0 <= word <= _word_max(pointer_bytes):
            raise ValueError(f"handle words must be {8 * pointer_bytes}-bit unsigned ints")
    if lower == upper == _word_max(pointer_bytes):
        raise ValueError("the handle is invalid (SecInvalidateHandle: both words all ones)")
    return lower, upper


def handle_from_int(value: object, pointer_bytes: int = POINTER_BYTES) -> tuple[int, int]:
    """Split pywin32's ``PyCtxtHandle.Detach()`` integer into ``(dwLower, dwUpper)``.

    ``pointer_bytes`` is 8 on 64-bit Windows and 4 on 32-bit (the interpreter's by default).
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"a handle integer is an int, not {type(value).__name__}")
    if value == -1:
        raise ValueError(
            "-1 is pywin32's invalid handle: the PyCtxtHandle was already detached or deleted"
        )
    bits = 8 * pointer_bytes
    if not 0 <= value < 1 << (2 * bits):
        raise ValueError(
            f"{value} is not a SecHandle integer: pywin32 gives a {2 * bits}-bit unsigned value"
        )
    return raw_pair((value & _word_max(pointer_bytes), value >> bits), pointer_bytes)


def handle_to_int(lower: int, upper: int, pointer_bytes: int = POINTER_BYTES) -> int:
    """The integer pywin32 would give for ``(dwLower, dwUpper)``: the inverse of the above."""
    raw_pair((lower, upper), pointer_bytes)
    return lower | upper << (8 * pointer_bytes)


def is_pywin32_handle(obj: object) -> TypeGuard[Any]:
    """Whether ``obj`` looks like pywin32's ``PyCtxtHandle`` (duck-typed: pywin32 is optional)."""
    kind = type(obj)
    return kind.__name__ == "PyCtxtHandle" and callable(getattr(obj, "Detach", None))


_HEADER = object.__basicsize__  # the PyObject header every pywin32 object starts with


def peek_pywin32(obj: Any) -> tuple[int, int]:
    """Read a ``PyCtxtHandle``'s handle without detaching it (pywin32 keeps ownership)."""
    if type(obj).__basicsize__ != _HEADER + ctypes.sizeof(SecHandle):
        raise TypeError(
            "this pywin32 build lays out PyCtxtHandle in an unknown way, so its handle "
            "cannot be read without taking it over: use sspi_import.adopt_context(handle)"
        )
    handle = SecHandle.from_address(id(obj) + _HEADER)
    if handle.dwLower == handle.dwUpper == _word_max(POINTER_BYTES):
        raise ValueError(
            "the PyCtxtHandle has no handle: never initialized, already detached or deleted"
        )
    return handle.dwLower, handle.dwUpper


def foreign_pair(
    handle: object, from_pywin32: Callable[[Any], tuple[int, int]]
) -> tuple[int, int] | None:
    """``(dwLower, dwUpper)`` of a raw pair, a pywin32 integer or a ``PyCtxtHandle``.

    ``from_pywin32`` decides what happens to a ``PyCtxtHandle``: read in place
    (``peek_pywin32``) or taken over (detached). ``None`` for any other kind of object,
    so each caller says in its own words what it accepts.
    """
    if isinstance(handle, tuple):
        return raw_pair(handle)
    if isinstance(handle, int) and not isinstance(handle, bool):
        return handle_from_int(handle)
    if is_pywin32_handle(handle):
        return from_pywin32(handle)
    return None
