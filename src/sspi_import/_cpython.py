"""CPython object-layout tricks, fenced: each with its probe, its fallback and its tests.

Nothing else in the package reads an object's memory through ``id()``. What is here:

- ``BYTES_OFFSET``: where a ``bytes`` object's data starts from ``id()``, probed at import
  (``None`` where the probe fails or the interpreter is not CPython). With it, the
  address of a ``bytes`` object's data costs an addition instead of a ``ctypes.cast``
  (the hot path of every import and message call).
- ``fresh_bytes``, ``fresh_slices``, ``fresh_copy``: a ``bytes`` object nobody else has
  seen yet and the address of its data, for ``encrypt``/``decrypt`` to fill in place
  before handing it out (what C code does after ``PyBytes_FromStringAndSize(NULL, n)``).
  Only objects of 2 bytes or more are made this way: CPython shares the 0- and 1-byte
  objects. ``None`` without the offset: callers then work in a ``bytearray`` and copy
  out once.
- ``peek_pywin32``: the ``CtxtHandle`` inside a pywin32 ``PyCtxtHandle``, read in place
  (the object is a ``PyObject`` header followed by the handle), checked by
  ``__basicsize__``; an unknown layout is refused rather than guessed.

``tests/test_cpython_tricks.py`` holds each against its probe and its fallback.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any, TypeGuard

from ._raw.structs import SecHandle

__all__ = [
    "BYTES_OFFSET",
    "bytes_address",
    "fresh_bytes",
    "fresh_copy",
    "fresh_slices",
    "is_pywin32_handle",
    "peek_pywin32",
]


def _bytes_data_offset() -> int | None:
    if sys.implementation.name != "cpython":
        return None
    offset = sys.getsizeof(b"") - 1
    probes = (b"sspi_import", bytes(range(40)), b"\0" * 3)
    ok = all(
        id(p) + offset == ctypes.cast(ctypes.c_char_p(p), ctypes.c_void_p).value for p in probes
    )
    return offset if ok else None


BYTES_OFFSET = _bytes_data_offset()
"""Where a ``bytes`` object's data starts, from ``id()``; ``None`` if not probed true."""


def bytes_address(data: bytes) -> int:
    """Address of the first byte of ``data`` (SSPI must only read it, unless it is ours)."""
    if BYTES_OFFSET is not None:
        return id(data) + BYTES_OFFSET
    return ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0


def fresh_bytes(head: bytes, tail: Any) -> tuple[bytes, int] | None:
    """``(head + tail, address of its data)``: a new object, to be filled before use.

    ``head`` and ``tail`` are non-empty (so the result is new and longer than one byte,
    never one of CPython's shared objects). ``None`` where the offset is unknown.
    """
    offset = BYTES_OFFSET
    if offset is None:
        return None
    made: bytes = head + tail
    return made, id(made) + offset


def fresh_slices(
    source: bytes, start: int, middle: int, stop: int
) -> tuple[bytes, int, bytes, int] | None:
    """``source[start:middle]`` and ``source[middle:stop]`` as new objects, with addresses.

    ``(first, its address, second, its address)``, or ``None`` if either could be a
    shared object: shorter than 2 bytes (CPython's singletons), or the whole of
    ``source`` (which slicing returns itself).
    """
    offset = BYTES_OFFSET
    if offset is None or middle - start < 2 or stop - middle < 2:
        return None
    if start == 0 and middle >= len(source):  # (the second is then empty, refused above)
        return None
    first = source[start:middle]
    second = source[middle:stop]
    return first, id(first) + offset, second, id(second) + offset


def fresh_copy(address: int, length: int) -> tuple[bytes, int] | None:
    """A new ``bytes`` copy of ``length`` bytes at ``address`` (at least 2), and its address."""
    offset = BYTES_OFFSET
    if offset is None or length < 2:
        return None
    made = ctypes.string_at(address, length)
    return made, id(made) + offset


_HEADER = object.__basicsize__  # the PyObject header every pywin32 object starts with
_ALL_ONES = (1 << (8 * ctypes.sizeof(ctypes.c_void_p))) - 1


def is_pywin32_handle(obj: object) -> TypeGuard[Any]:
    """Whether ``obj`` looks like pywin32's ``PyCtxtHandle`` (duck-typed: pywin32 is optional)."""
    return type(obj).__name__ == "PyCtxtHandle" and callable(getattr(obj, "Detach", None))


def peek_pywin32(obj: Any) -> tuple[int, int]:
    """Read a ``PyCtxtHandle``'s handle without detaching it (pywin32 keeps ownership)."""
    kind = type(obj)
    # The size alone is not enough: on 3.10 a plain class with __dict__ and __weakref__
    # slots is also a header plus two pointers. pywin32's object has neither.
    if (
        kind.__basicsize__ != _HEADER + ctypes.sizeof(SecHandle)
        or kind.__dictoffset__
        or kind.__weakrefoffset__
    ):
        raise TypeError(
            "this pywin32 build lays out PyCtxtHandle in an unknown way, so its handle "
            "cannot be read without taking it over: use sspi_import.adopt_context(handle)"
        )
    handle = SecHandle.from_address(id(obj) + _HEADER)
    if handle.dwLower == _ALL_ONES or handle.dwUpper == _ALL_ONES:
        raise ValueError(
            "the PyCtxtHandle has no handle: never initialized, already detached or deleted"
        )
    return handle.dwLower, handle.dwUpper
