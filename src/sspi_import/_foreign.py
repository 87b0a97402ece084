"""Context handles made outside this library: the forms they come in, checked.

A ``(dwLower, dwUpper)`` pair; pywin32's ``PyCtxtHandle.Detach()`` integer, the
``SecHandle`` bytes read as one little-endian unsigned integer (16 bytes on 64-bit
Windows, 8 on 32-bit), or ``-1`` for an invalid handle; a ``PyCtxtHandle`` itself (read
in place by ``_cpython.peek_pywin32``, or detached). Like the SDK's ``SecIsValidHandle``,
a handle with either word all ones is invalid. ``adopt`` takes such handles over;
``export_context`` exports them without taking them over.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeAlias

from ._checks import integer
from ._cpython import is_pywin32_handle
from ._raw.structs import POINTER_BYTES, SecHandle

__all__ = [
    "ForeignContextHandle",
    "PyCtxtHandleLike",
    "foreign_pair",
    "handle_from_int",
    "handle_to_int",
    "raw_pair",
]


def _word_max(pointer_bytes: int) -> int:
    return (1 << (8 * pointer_bytes)) - 1


_NATIVE_MAX = _word_max(POINTER_BYTES)


def raw_pair(value: object, pointer_bytes: int = POINTER_BYTES) -> tuple[int, int]:
    """Check a ``(dwLower, dwUpper)`` tuple: two ints that fit a pointer each, valid."""
    if type(value) is tuple and len(value) == 2 and pointer_bytes == POINTER_BYTES:
        lower, upper = value
        # The usual call, in one expression: exact ints, in range, not an invalid handle.
        if (
            type(lower) is int
            and type(upper) is int
            and 0 <= lower < _NATIVE_MAX
            and 0 <= upper < _NATIVE_MAX
        ):
            return lower, upper
    if not isinstance(value, tuple) or len(value) != 2:
        raise TypeError("a raw context handle is a (dwLower, dwUpper) tuple of two ints")
    lower, upper = value
    for word in (lower, upper):
        integer(word, "each word of a raw context handle (a (dwLower, dwUpper) tuple of two ints)")
        if not 0 <= word <= _word_max(pointer_bytes):
            raise ValueError(f"handle words must be {8 * pointer_bytes}-bit unsigned ints")
    if _word_max(pointer_bytes) in (lower, upper):
        raise ValueError(
            "the handle is invalid: a word is all ones (SecIsValidHandle; "
            "SecInvalidateHandle sets both)"
        )
    return lower, upper


def handle_from_int(value: object, pointer_bytes: int = POINTER_BYTES) -> tuple[int, int]:
    """Split pywin32's ``PyCtxtHandle.Detach()`` integer into ``(dwLower, dwUpper)``.

    ``pointer_bytes`` is 8 on 64-bit Windows and 4 on 32-bit (the interpreter's by default).
    """
    value = integer(value, "a handle integer")
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


class PyCtxtHandleLike(Protocol):
    """pywin32's ``PyCtxtHandle``, as this library uses it: ``Detach()`` gives the handle.

    ``Detach()`` returns the handle packed in one integer and makes pywin32 give it up,
    so that it never deletes the context.
    """

    def Detach(self) -> int:  # noqa: N802 - pywin32's name
        """Give up the handle and return it as one integer."""
        ...


ForeignContextHandle: TypeAlias = SecHandle | tuple[int, int] | int | PyCtxtHandleLike
"""A context handle made outside this library: a ctypes ``SecHandle`` (``CtxtHandle``),
a ``(dwLower, dwUpper)`` pair, the integer pywin32's ``Detach()`` returns, or a pywin32
``PyCtxtHandle``."""
