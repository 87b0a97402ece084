"""Exporting and importing security contexts: ``export_context`` and ``ImportedContext``.

Ownership is decided here: an ``ImportedContext`` owns the handle it imported and
deletes it exactly once; an ``ExportedContext`` owns the token an export handed out and
closes it exactly once; the buffer SSPI allocates for the packed context is copied once
into ``bytes`` and freed with ``FreeContextBuffer`` before ``export_context`` returns.
"""

from __future__ import annotations

import ctypes
import enum
from ctypes import byref, c_void_p
from typing import TYPE_CHECKING, Any

from ._buffers import encode_name, readable
from ._handle import OwnedHandle
from ._raw import constants as C  # noqa: N812 - C names, read like the header
from ._raw.loader import api
from ._raw.structs import SecBuffer, SecHandle

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "ExportFlags",
    "ExportedContext",
    "ImportedContext",
    "SecurityContextBase",
    "export_context",
]

_POINTER_BITS = ctypes.sizeof(c_void_p) * 8
_MAX_HANDLE_WORD = (1 << _POINTER_BITS) - 1


class ExportFlags(enum.IntFlag):
    """``fFlags`` of ``ExportSecurityContext``.

    ``SECPKG_CONTEXT_EXPORT_TO_KERNEL`` is deliberately absent: it is for kernel-mode
    callers only, and ``export_context`` refuses it before calling SSPI.
    """

    NONE = 0
    """Export a copy; the source context stays usable."""
    RESET_NEW = C.SECPKG_CONTEXT_EXPORT_RESET_NEW
    """Reset the new context's message sequence numbers to zero."""
    DELETE_OLD = C.SECPKG_CONTEXT_EXPORT_DELETE_OLD
    """Delete the source context: it is consumed and must never be deleted again."""


_ALLOWED_FLAGS = ExportFlags.RESET_NEW | ExportFlags.DELETE_OLD


def _check_flags(flags: object) -> int:
    if isinstance(flags, bool) or not isinstance(flags, int):
        raise TypeError(f"flags must be ExportFlags (an int), not {type(flags).__name__}")
    if flags & C.SECPKG_CONTEXT_EXPORT_TO_KERNEL:
        raise ValueError(
            "SECPKG_CONTEXT_EXPORT_TO_KERNEL is for kernel-mode callers only; "
            "a user-mode process cannot export to the kernel"
        )
    if flags < 0 or flags & ~_ALLOWED_FLAGS:
        raise ValueError(
            f"unknown export flags {int(flags):#x}: use ExportFlags.NONE, RESET_NEW, DELETE_OLD"
        )
    return int(flags)


def _check_token(token: object) -> int | None:
    if token is None:
        return None
    if isinstance(token, bool) or not isinstance(token, int):
        raise TypeError(f"the token must be an int handle or None, not {type(token).__name__}")
    if not 0 <= token <= _MAX_HANDLE_WORD:
        raise ValueError(f"the token {token} is not a {_POINTER_BITS}-bit handle value")
    return token or None


class SecurityContextBase(OwnedHandle[SecHandle]):
    """What every context of this library shares: an owned ``CtxtHandle``.

    ``close()`` deletes the context (``DeleteSecurityContext``) exactly once;
    ``detach()`` returns the raw ``(dwLower, dwUpper)`` pair and gives up ownership.
    """

    __slots__ = ()
    _kind = "security context"

    @property
    def package(self) -> str | None:
        """The security package the context belongs to, when known."""
        return None

    def _release(self, handle: SecHandle) -> None:
        self._lib.DeleteSecurityContext(byref(handle))

    def _public(self, handle: SecHandle) -> tuple[int, int]:
        return (handle.dwLower, handle.dwUpper)

    def export(self, flags: ExportFlags | int = ExportFlags.NONE) -> ExportedContext:
        """Serialize this context for another process: ``export_context(self, flags)``."""
        return export_context(self, flags)


class ImportedContext(SecurityContextBase):
    """A security context imported from a packed blob; deleted on ``close()`` or ``with`` exit.

    Importing happens at construction, like ``open()``::

        with ImportedContext("NTLM", blob, token) as ctx:
            ...

    ``blob`` is the packed context (``bytes``, ``bytearray``, ``memoryview``); SSPI reads
    it in place, without a copy, where the buffer allows. ``token`` is the token handle
    from the export (or ``None``); it stays owned by the caller (or its
    ``ExportedContext``). Bad input raises ``TypeError``/``ValueError`` before any call;
    a failed import raises the ``SspiError`` subclass for the status.
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
        self._handle = None  # the finalizer must see a consistent object if we raise
        name = encode_name(package)
        keepalive, address, length = readable(blob)
        token_value = _check_token(token)
        if isinstance(buffer_type, bool) or not isinstance(buffer_type, int):
            raise TypeError("buffer_type must be an int (a SECBUFFER_* value)")
        if not 0 <= buffer_type <= 0xFFFF_FFFF:
            raise ValueError(f"buffer_type {buffer_type} is not a 32-bit value")
        lib = api()
        handle = SecHandle()
        packed = SecBuffer(length, buffer_type, address)
        lib.ImportSecurityContextW(name, byref(packed), token_value, byref(handle))
        del keepalive
        self._package = package
        self._lib = lib
        self._handle = handle

    @classmethod
    def from_exported(cls, exported: ExportedContext, package: str | None = None) -> Self:
        """Import what ``export_context`` produced, with its package, buffer type and token.

        ``package`` overrides (or supplies, when the export could not tell) the package.
        """
        if not isinstance(exported, ExportedContext):
            raise TypeError(f"expected an ExportedContext, not {type(exported).__name__}")
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


class ExportedContext(OwnedHandle[int]):
    """A serialized security context: the value ``export_context`` returns.

    Immutable: ``package`` (``str``, or ``None`` when the source could not tell),
    ``blob`` (``bytes``, the packed context: secret, never shown in ``repr``),
    ``buffer_type`` (the ``SecBuffer`` type SSPI reported) and ``token`` (the token
    handle the package handed out, or ``None``). The token is owned: ``close()`` (or
    ``with`` exit) closes it once; ``detach()`` hands it to the caller.
    """

    __slots__ = ("_blob", "_buffer_type", "_package")
    _kind = "exported context's token"

    def __init__(
        self,
        package: str | None,
        blob: bytes,
        buffer_type: int = C.SECBUFFER_EMPTY,
        token: int | None = None,
    ) -> None:
        self._handle = None
        if package is not None:
            encode_name(package)  # the same rules as for import
        if type(blob) is not bytes:
            raise TypeError(f"blob must be bytes, not {type(blob).__name__}")
        if not blob:
            raise ValueError("the blob is empty")
        if isinstance(buffer_type, bool) or not isinstance(buffer_type, int):
            raise TypeError("buffer_type must be an int")
        self._package = package
        self._blob = blob
        self._buffer_type = buffer_type
        token = _check_token(token)
        self._lib = api() if token is not None else None
        self._handle = token

    @property
    def package(self) -> str | None:
        """The package the context belongs to, or ``None`` when unknown."""
        return self._package

    @property
    def blob(self) -> bytes:
        """The packed context. Secret: anyone holding it can import the context."""
        return self._blob

    @property
    def buffer_type(self) -> int:
        """The ``SecBuffer.BufferType`` SSPI returned with the blob."""
        return self._buffer_type

    @property
    def token(self) -> int | None:
        """The token handle, or ``None`` (none was exported, or it was closed/detached)."""
        return self._handle

    @property
    def closed(self) -> bool:
        """``True`` once the token is closed or detached (always, when there was none)."""
        return self._handle is None

    def _release(self, handle: int) -> None:
        self._lib.CloseHandle(handle)

    def _public(self, handle: int) -> int:
        return handle

    def _describe(self, *, closed: bool) -> str:
        token = "no token" if self._handle is None else "token"
        return (
            f"<ExportedContext package={self._package!r} blob=<{len(self._blob)} bytes> "
            f"buffer_type={self._buffer_type} {token}>"
        )

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_"):
            raise AttributeError(f"ExportedContext is immutable; cannot set {name!r}")
        super().__setattr__(name, value)


def _source_handle(context: object) -> tuple[SecHandle, SecurityContextBase | None]:
    """The handle to export, and the library object that owns it (if any)."""
    if isinstance(context, SecurityContextBase):
        return context._live(), context
    if isinstance(context, SecHandle):
        return context, None
    if isinstance(context, tuple):
        if len(context) != 2 or not all(
            isinstance(w, int) and not isinstance(w, bool) for w in context
        ):
            raise TypeError("a raw context handle is a (dwLower, dwUpper) tuple of two ints")
        if not all(0 <= w <= _MAX_HANDLE_WORD for w in context):
            raise ValueError(f"handle words must be {_POINTER_BITS}-bit unsigned ints")
        return SecHandle(*context), None
    raise TypeError(
        "export_context() takes a context of this library, a ctypes SecHandle or a "
        f"(dwLower, dwUpper) tuple, not {type(context).__name__}"
    )


def export_context(
    context: SecurityContextBase | SecHandle | tuple[int, int],
    flags: ExportFlags | int = ExportFlags.NONE,
) -> ExportedContext:
    """Serialize ``context`` with ``ExportSecurityContext`` so another process can import it.

    ``context`` is a context of this library, a ctypes ``SecHandle``, or a raw
    ``(dwLower, dwUpper)`` pair from elsewhere (not taken over). With
    ``ExportFlags.DELETE_OLD`` SSPI deletes the source: a context of this library is then
    marked closed and never deleted again. The packed buffer SSPI allocates is copied
    once and freed with ``FreeContextBuffer`` whatever happens.
    """
    fflags = _check_flags(flags)
    handle, owner = _source_handle(context)
    consuming = owner is not None and bool(fflags & C.SECPKG_CONTEXT_EXPORT_DELETE_OLD)
    if consuming:
        assert owner is not None
        taken = owner._take()  # no other thread may delete what SSPI is about to
        if taken is None:
            raise ValueError("the security context is closed; it cannot be exported")
        handle = taken
    lib = api()
    packed = SecBuffer()
    token = c_void_p()
    try:
        lib.ExportSecurityContext(byref(handle), fflags, byref(packed), byref(token))
    except BaseException:
        if consuming:
            assert owner is not None
            owner._handle = handle  # the export failed: the source is still ours
        if packed.pvBuffer:
            lib.FreeContextBuffer(packed.pvBuffer)
        raise
    exported = ExportedContext.__new__(ExportedContext)
    exported._package = owner.package if owner is not None else None
    exported._blob = b""
    exported._buffer_type = packed.BufferType
    exported._lib = lib
    exported._handle = token.value or None  # owned from here, even if the copy fails
    try:
        if packed.pvBuffer:
            exported._blob = ctypes.string_at(packed.pvBuffer, packed.cbBuffer)
    finally:
        if packed.pvBuffer:
            lib.FreeContextBuffer(packed.pvBuffer)
    return exported
