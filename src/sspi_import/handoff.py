"""Handing a context to another process: ``export_context``, ``ImportedContext``, ``ExportFlags``.

Ownership is decided here: an ``ImportedContext`` owns the handle it imported and
deletes it exactly once; the buffer SSPI allocates for the packed context is copied once
into ``bytes`` and freed with ``FreeContextBuffer`` before ``export_context`` returns;
the token an export hands out goes to the ``ExportedContext`` (``exported``). An export
that SSPI completed always reaches the caller: a cleanup step that fails after it
(``FreeContextBuffer``, closing the credentials a ``loopback`` context owns) is reported
as a ``CleanupWarning`` that carries the export.
"""

from __future__ import annotations

import contextlib
import enum
from _thread import allocate_lock as _new_lock
from ctypes import c_void_p, string_at
from typing import TYPE_CHECKING, Any

from ._buffers import _NAMES, MAX_BUFFER, encode_name, free_context_buffer, readable
from ._cpython import bytes_address, is_pywin32_handle, peek_pywin32
from ._handle import report_cleanup
from ._raw import constants as C  # noqa: N812 - C names, read like the header
from ._raw.loader import api
from ._raw.structs import SecBuffer, SecHandle
from .adopt import ForeignContextHandle, foreign_pair
from .context import SecurityContextBase
from .errors import SspiError, check
from .exported import ExportedContext, _check_token, _Token

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["ExportFlags", "ImportedContext", "export_context"]


class ExportFlags(enum.IntFlag):
    """``fFlags`` of ``ExportSecurityContext``.

    ``SECPKG_CONTEXT_EXPORT_TO_KERNEL`` is deliberately absent: it is for kernel-mode
    callers only, and ``export_context`` refuses it before calling SSPI.
    """

    NONE = 0
    """Export a copy; the source context stays usable."""
    RESET_NEW = C.SECPKG_CONTEXT_EXPORT_RESET_NEW
    """Reset the new context to its initial state (Microsoft's words for this flag)."""
    DELETE_OLD = C.SECPKG_CONTEXT_EXPORT_DELETE_OLD
    """Delete the source context: it is consumed and must never be deleted again."""


_ALLOWED_FLAGS = ExportFlags.RESET_NEW | ExportFlags.DELETE_OLD
_UNKNOWN_FLAGS = ~int(_ALLOWED_FLAGS)  # plain ints: enum operators cost a call each
_FLAG_TYPES = frozenset({int, ExportFlags})  # not bool: True == 1 would pass the dict below
_VALID_FLAGS = {v: v for v in range(int(_ALLOWED_FLAGS) + 1) if not v & _UNKNOWN_FLAGS}


def _check_flags(flags: object) -> int:
    if type(flags) in _FLAG_TYPES:  # the usual call: one look-up instead of five checks
        value: int | None = _VALID_FLAGS.get(flags)  # type: ignore[call-overload]
        if value is not None:
            return value
    if isinstance(flags, bool) or not isinstance(flags, int):
        raise TypeError(f"flags must be ExportFlags (an int), not {type(flags).__name__}")
    value = int(flags)
    if value & C.SECPKG_CONTEXT_EXPORT_TO_KERNEL:
        raise ValueError(
            "SECPKG_CONTEXT_EXPORT_TO_KERNEL is for kernel-mode callers only; "
            "a user-mode process cannot export to the kernel"
        )
    if value < 0 or value & _UNKNOWN_FLAGS:
        raise ValueError(
            f"unknown export flags {value:#x}: use ExportFlags.NONE, RESET_NEW, DELETE_OLD"
        )
    return value


class ImportedContext(SecurityContextBase):
    """A security context imported from a packed blob; deleted on ``close()`` or ``with`` exit.

    Importing happens at construction, like ``open()``::

        with ImportedContext("NTLM", blob, token) as ctx:
            ...

    ``blob`` is the packed context (``bytes``, ``bytearray``, ``memoryview``); SSPI reads
    it in place, without a copy, where the buffer allows. ``token`` is the token handle
    from the export (or ``None``), a handle of *this* process; it stays owned by the
    caller (or its ``ExportedContext``), who may close it once the import returned.
    Microsoft does not say whether ``ImportSecurityContextW`` borrows or takes the
    token; this follows the plausible reading (it keeps its own reference), to be
    confirmed by the Windows lane (``test_windows_handoff.py``, the two token-ownership
    tests). Bad input raises ``TypeError``/``ValueError`` before any call; a failed
    import raises the ``SspiError`` subclass for the status.

    For a Negotiate context, ``export_context`` records the negotiated package
    (``NTLM`` or ``Kerberos``) as the name to import under (``NEGOTIATE_IMPORTS_AS``).
    """

    __slots__ = ("_package",)

    def __init__(
        self,
        package: str,
        blob: bytes | bytearray | memoryview,
        token: int | None = None,
        *,
        buffer_type: int = C.SECBUFFER_EMPTY,
    ) -> None:
        # OwnedHandle._own, inlined (the import is a hot path): refuses a second
        # __init__, and leaves a consistent object for the finalizer if we raise below.
        if getattr(self, "_lock", None) is not None:
            raise TypeError(f"this {self._kind} is already set up; make a new object")
        self._lock = _new_lock()
        self._pins = 0
        self._parked = None
        self._handle = None
        name = _NAMES.get(package) if type(package) is str else None  # encode_name's cache
        if name is None:
            name = encode_name(package)
        if type(blob) is bytes and 0 < len(blob) <= MAX_BUFFER:  # readable(), inlined
            keepalive, address, length = blob, bytes_address(blob), len(blob)
        else:
            keepalive, address, length = readable(blob)
        token_value = None if token is None else _check_token(token)
        if type(buffer_type) is not int or not 0 <= buffer_type <= 0xFFFF_FFFF:
            if isinstance(buffer_type, bool) or not isinstance(buffer_type, int):
                raise TypeError("buffer_type must be an int (a SECBUFFER_* value)")
            if not 0 <= buffer_type <= 0xFFFF_FFFF:
                raise ValueError(f"buffer_type {buffer_type} is not a 32-bit value")
        self._package = package
        lib = self._lib = api()
        handle = SecHandle()
        packed = SecBuffer(length, buffer_type, address)
        status = lib.ImportSecurityContextW(name, packed, token_value, handle)  # byref in C
        del keepalive
        check(status, "ImportSecurityContextW")
        self._handle = handle  # owned from here

    @classmethod
    def from_exported(cls, exported: ExportedContext, package: str | None = None) -> Self:
        """Import what ``export_context`` produced, with its package, buffer type and token.

        ``package`` overrides (or supplies, when the export could not tell) the package.
        A copy made for sending (``for_process(other pid)``, ``for_any_process()``) is
        refused with ``ValueError`` before any call: its token is not a handle of this
        process.
        """
        if not isinstance(exported, ExportedContext):
            raise TypeError(f"expected an ExportedContext, not {type(exported).__name__}")
        exported._check_importable()
        name = package if package is not None else exported.package
        if name is None:
            raise ValueError(
                "the exported context does not say which package it belongs to; "
                "pass it: ImportedContext.from_exported(exported, package='NTLM')"
            )
        return cls(name, exported.blob, exported.token, buffer_type=exported.buffer_type)

    @property
    def package(self) -> str:
        """The package name the context was imported with."""
        return self._package

    def _describe(self, *, closed: bool) -> str:
        state = "closed" if closed else "open"
        return f"<ImportedContext package={self._package!r} {state}>"


_DELETE_OLD = C.SECPKG_CONTEXT_EXPORT_DELETE_OLD
_NONE = ExportFlags.NONE

NEGOTIATE_IMPORTS_AS = "negotiated"
"""The name a Negotiate context's export records for the import: ONE switch.

``"negotiated"``: the package Negotiate chose (``NTLM``/``Kerberos``, what
``package_name`` reports), which is whose packed context ``ExportSecurityContext``
returns. ``"credentials"``: the name the credentials were acquired with
(``"Negotiate"``). The Windows lane imports under both names
(``test_windows_handoff.py``) and fails, naming this switch, if the default does not
work there. ``ImportedContext.from_exported(exported, package=...)`` overrides it.
"""


def _package_to_import(context: SecurityContextBase) -> str | None:
    """The package name an export of ``context`` records (see ``NEGOTIATE_IMPORTS_AS``)."""
    package = context.package
    negotiate = package is not None and package.lower() == "negotiate"
    if negotiate and NEGOTIATE_IMPORTS_AS == "negotiated":
        with contextlib.suppress(SspiError, ValueError):  # unanswered, or closed
            return context.package_name  # before the export: DELETE_OLD deletes it
    return package


def _foreign_handle(context: object) -> SecHandle:
    """The handle to export from a context that is not ours (never taken over)."""
    if isinstance(context, SecHandle):
        return context
    pair = foreign_pair(context, peek_pywin32)  # pywin32 keeps its object: read in place
    if pair is not None:
        return SecHandle(*pair)
    raise TypeError(
        "export_context() takes a context of this library, a ctypes SecHandle, a "
        "(dwLower, dwUpper) tuple, pywin32's PyCtxtHandle or the int its Detach() returns, "
        f"not {type(context).__name__}"
    )


def export_context(
    context: SecurityContextBase | ForeignContextHandle,
    flags: ExportFlags | int = ExportFlags.NONE,
) -> ExportedContext:
    """Serialize ``context`` with ``ExportSecurityContext`` so another process can import it.

    ``context`` is a context of this library, or a handle from elsewhere, which is not
    taken over: a ctypes ``SecHandle``, a raw ``(dwLower, dwUpper)`` pair, the integer
    pywin32's ``PyCtxtHandle.Detach()`` returns, or a pywin32 ``PyCtxtHandle`` (read in
    place). With ``ExportFlags.DELETE_OLD`` SSPI deletes the source: a context of this
    library is then marked closed and never deleted again, and a pywin32 object is
    detached so that pywin32 never deletes it either. The packed buffer SSPI allocates
    is copied once and freed with ``FreeContextBuffer`` whatever happens.

    The export holds the context's lock: it waits for a call another thread is making
    on the context, and ``close()`` waits for it. An export SSPI completed is never
    lost: if a cleanup step after it fails, the export is returned and a
    ``CleanupWarning`` (carrying it as ``.result``) reports the failure; where warnings
    are errors, that warning is raised instead, still carrying the export.
    """
    fflags = 0 if flags is _NONE else _check_flags(flags)
    packed = SecBuffer()
    token = c_void_p()
    owner: SecurityContextBase | None = None
    if isinstance(context, SecurityContextBase):
        owner = context
        lib = context._lib  # the library the context came from
        package = _package_to_import(context)
        with context._lock:
            handle = context._handle
            if handle is None:
                raise context._closed_error()
            if fflags & _DELETE_OLD and context._pins:
                raise ValueError(
                    "the security context is being impersonated; it cannot be exported "
                    "with DELETE_OLD until the impersonation ends"
                )
            status = lib.ExportSecurityContext(handle, fflags, packed, token)  # byref in C
            if status >= 0 and fflags & _DELETE_OLD:
                context._handle = None  # SSPI deleted it: never again by us
    else:
        package = None
        handle = _foreign_handle(context)
        lib = api()
        status = lib.ExportSecurityContext(handle, fflags, packed, token)
    pointer = packed.pvBuffer  # each ctypes field read builds a new int: read once
    if status < 0:
        _discard(lib, pointer, token.value)
    check(status, "ExportSecurityContext")  # raises a failure; logs every status
    cleanup: list[BaseException] = []
    if fflags & _DELETE_OLD:
        if owner is not None:
            try:
                owner._consumed()
            except Exception as exc:  # the export happened: report, never lose it
                cleanup.append(exc)
        elif is_pywin32_handle(context):
            context.Detach()  # SSPI deleted it: pywin32 must not delete it again
    exported = ExportedContext.__new__(ExportedContext)
    exported._package = package
    exported._buffer_type = packed.BufferType
    value = token.value
    exported._token = _Token.own(value, package, lib) if value else None  # owned already
    if not pointer:
        exported._blob = b""
    else:
        try:
            exported._blob = string_at(pointer, packed.cbBuffer)
        except BaseException:  # no memory for the copy: nothing can be handed out
            exported.close()
            raise
        finally:
            try:
                free_context_buffer(lib, pointer)
            except Exception as exc:
                cleanup.append(exc)
    if cleanup:
        return report_cleanup(exported, cleanup, "ExportSecurityContext")
    return exported


def _discard(lib: Any, pointer: int | None, token: int | None) -> None:
    """After a failed export: free whatever SSPI handed out anyway (none should).

    The export's own error is what the caller needs; a failure here must not replace it.
    """
    if pointer:
        with contextlib.suppress(Exception):
            free_context_buffer(lib, pointer)
    if token:
        with contextlib.suppress(Exception):
            _Token.own(token, None, lib).close()
