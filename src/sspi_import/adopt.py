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

from ._buffers import encode_name
from ._foreign import (
    ForeignContextHandle,
    PyCtxtHandleLike,
    foreign_pair,
    handle_from_int,
    handle_to_int,
    raw_pair,
)
from ._raw.structs import SecHandle
from .context import SecurityContextBase
from .errors import InvalidHandleError, SspiError, SspiUnavailableError
from .library import api

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


def adopt_context(handle: ForeignContextHandle, package: str | None = None) -> AdoptedContext:
    """Own an existing security context handle from now on.

    ``handle`` is a ``(dwLower, dwUpper)`` tuple, a ctypes ``SecHandle``, the integer
    pywin32's ``PyCtxtHandle.Detach()`` returns (``-1``, its invalid handle, is refused),
    or a pywin32 ``PyCtxtHandle`` itself, which is detached so that pywin32 never deletes
    the context. A handle with either word all ones is refused (``SecIsValidHandle``).
    ``package`` is looked up from the context (``SECPKG_ATTR_PACKAGE_INFO``, or the
    negotiated package for Negotiate) when not given; a provider that cannot say leaves
    it ``None``. That lookup also checks the handle: one the provider does not know
    (``SEC_E_INVALID_HANDLE``: not a context of this process and library, or already
    deleted) raises ``InvalidHandleError``, and nothing is adopted or deleted. Should the
    lookup fail otherwise (an interrupt, an access violation reported as ``OSError``),
    the adopted context is deleted before the exception propagates: the handle was taken
    over, and nothing else would free it.

    The handle must be valid in this process and for the current library
    (``use_library``); with ``package`` given, nothing checks that before the first call
    that uses it.
    """
    if package is not None:
        encode_name(package)  # the import rules, checked before anything is taken over
    lib = api()  # SspiUnavailableError here, before a pywin32 object is detached
    lower, upper = _take_handle(handle)
    context = AdoptedContext.__new__(AdoptedContext)
    context._adopted_package = package
    context._own(lib, SecHandle(lower, upper))
    if package is None:
        try:
            context._adopted_package = context.package_name
        except InvalidHandleError:
            # Not a context this provider knows: nothing to own, and nothing to delete.
            context.detach()
            raise
        except (SspiError, SspiUnavailableError):
            pass  # the provider may not tell (no attribute, no query): export works without
        except BaseException:
            # Anything else (an interrupt, ctypes' OSError for an access violation) ends
            # the adoption: what was taken is deleted now, not left to the finalizer.
            with contextlib.suppress(Exception):
                context.close()
            raise
    return context
