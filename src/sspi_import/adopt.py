"""Contexts established by other code: ``adopt_context`` and the foreign handle forms.

Servers that authenticate with pywin32 (``win32security``, its ``sspi`` module, and the
packages built on them) hold their context in a ``PyCtxtHandle``; other code holds a raw
``CtxtHandle``. ``adopt_context`` wraps such a handle in a context of this library that
owns it from then on: ``close()`` deletes it once, a forgotten one is deleted by its
finalizer, ``detach()`` gives it back, and every query, message operation and
``export()`` works.

The forms a foreign handle comes in: a ``(dwLower, dwUpper)`` pair; pywin32's
``PyCtxtHandle.Detach()`` integer, the ``SecHandle`` bytes read as one little-endian
unsigned integer (16 bytes on 64-bit Windows, 8 on 32-bit), or ``-1`` for an invalid
handle; a ``PyCtxtHandle`` itself (read in place by ``_cpython.peek_pywin32``). Like the
SDK's ``SecIsValidHandle``, a handle with either word all ones is invalid.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Callable
from typing import Any, Protocol, TypeAlias

from ._buffers import encode_name
from ._cpython import is_pywin32_handle
from ._raw.loader import api
from ._raw.structs import POINTER_BYTES, SecHandle
from .context import SecurityContextBase
from .errors import SspiError, SspiUnavailableError

__all__ = [
    "AdoptedContext",
    "ForeignContextHandle",
    "PyCtxtHandleLike",
    "SecHandle",
    "adopt_context",
    "foreign_pair",
    "handle_from_int",
    "handle_to_int",
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
        if isinstance(word, bool) or not isinstance(word, int):
            raise TypeError("a raw context handle is a (dwLower, dwUpper) tuple of two ints")
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


class AdoptedContext(SecurityContextBase):
    """A context established elsewhere and taken over by ``adopt_context``.

    It is complete (there is no handshake left to step); ``package`` is the package it
    belongs to, or ``None`` if neither the caller nor the provider could tell. Its
    credentials belong to the code that established it.
    """

    __slots__ = ("_adopted_package",)
    _adopted_package: str | None

    @property
    def package(self) -> str | None:
        """The package given to ``adopt_context``, or looked up from the context."""
        return self._adopted_package

    @property
    def complete(self) -> bool:
        """Always ``True``: the context was established before it was adopted."""
        return True

    @property
    def expiry(self) -> datetime.datetime | None:
        """When the context expires, from ``SECPKG_ATTR_LIFESPAN``."""
        return self.lifespan[1]

    def _describe(self, *, closed: bool) -> str:
        state = "closed" if closed else "open"
        return f"<AdoptedContext package={self._adopted_package!r} {state}>"


def _take_handle(handle: object) -> tuple[int, int]:
    if isinstance(handle, SecurityContextBase):
        raise TypeError("this context already belongs to sspi_import: use it directly")
    if isinstance(handle, SecHandle):
        return raw_pair((handle.dwLower, handle.dwUpper))
    # A PyCtxtHandle is detached first: pywin32 will never delete it, one owner remains.
    pair = foreign_pair(handle, lambda pywin32: handle_from_int(pywin32.Detach()))
    if pair is not None:
        return pair
    raise TypeError(
        "adopt_context() takes a (dwLower, dwUpper) tuple, a ctypes SecHandle, the int that "
        "pywin32's PyCtxtHandle.Detach() returns, or a PyCtxtHandle, "
        f"not {type(handle).__name__}"
    )


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


def adopt_context(handle: ForeignContextHandle, package: str | None = None) -> AdoptedContext:
    """Own an existing security context handle from now on.

    ``handle`` is a ``(dwLower, dwUpper)`` tuple, a ctypes ``SecHandle``, the integer
    pywin32's ``PyCtxtHandle.Detach()`` returns (``-1``, its invalid handle, is refused),
    or a pywin32 ``PyCtxtHandle`` itself, which is detached so that pywin32 never deletes
    the context. A handle with either word all ones is refused (``SecIsValidHandle``).
    ``package`` is looked up from the context (``SECPKG_ATTR_PACKAGE_INFO``, or the
    negotiated package for Negotiate) when not given; a provider that cannot say leaves
    it ``None``. Should that lookup fail otherwise (an interrupt, an access violation
    reported as ``OSError``), the adopted context is deleted before the exception
    propagates: the handle was taken over, and nothing else would free it.

    The handle must be valid in this process and for the current library
    (``use_library``); nothing checks that before the first call that uses it.
    """
    if package is not None:
        encode_name(package)  # the import rules, checked before anything is taken over
    lib = api()  # SspiUnavailableError here, before a pywin32 object is detached
    lower, upper = _take_handle(handle)
    context = object.__new__(AdoptedContext)
    context._adopted_package = package
    context._own(lib, SecHandle(lower, upper))
    if package is None:
        try:
            context._adopted_package = context.package_name
        except (SspiError, SspiUnavailableError):
            pass  # the provider may not tell (no attribute, no query): export works without
        except BaseException:
            # Anything else (an interrupt, ctypes' OSError for an access violation) ends
            # the adoption: what was taken is deleted now, not left to the finalizer.
            with contextlib.suppress(Exception):
                context.close()
            raise
    return context
