"""Exporting and importing security contexts: ``export_context`` and ``ImportedContext``.

Ownership is decided here: an ``ImportedContext`` owns the handle it imported and
deletes it exactly once; an ``ExportedContext`` owns the token an export handed out and
closes it exactly once; the buffer SSPI allocates for the packed context is copied once
into ``bytes`` and freed with ``FreeContextBuffer`` before ``export_context`` returns.
"""

from __future__ import annotations

import ctypes
import enum
import os
import struct
from ctypes import byref, c_void_p
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ._buffers import encode_name, readable
from ._context_ops import ContextOperations
from ._foreign import POINTER_BYTES, foreign_pair, is_pywin32_handle, peek_pywin32
from ._handle import OwnedHandle
from ._raw import constants as C  # noqa: N812 - C names, read like the header
from ._raw.loader import api
from ._raw.structs import SecBuffer, SecHandle
from .errors import SspiUnavailableError

if TYPE_CHECKING:
    from typing_extensions import Self

_E = TypeVar("_E", bound="ExportedContext")

__all__ = [
    "ExportFlags",
    "ExportedContext",
    "ImportedContext",
    "SecurityContextBase",
    "export_context",
]

_POINTER_BITS = POINTER_BYTES * 8
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


def _check_token(token: object) -> int | None:
    if token is None:
        return None
    if isinstance(token, bool) or not isinstance(token, int):
        raise TypeError(f"the token must be an int handle or None, not {type(token).__name__}")
    if not 0 <= token <= _MAX_HANDLE_WORD:
        raise ValueError(f"the token {token} is not a {_POINTER_BITS}-bit handle value")
    return token or None


class SecurityContextBase(ContextOperations):
    """What every context of this library shares: an owned ``CtxtHandle``.

    Also everything an existing context can do (``ContextOperations``): ``user_name``,
    ``package_name``, ``sizes()``, ``lifespan``, ``session_key()``, ``flags``, ``sign``,
    ``verify``, ``encrypt``, ``decrypt`` and ``impersonate()``.

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

    def _consumed(self) -> None:
        """An export with ``DELETE_OLD`` deleted the context: release what it held besides."""


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
        token_value = None if token is None else _check_token(token)
        if type(buffer_type) is not int or not 0 <= buffer_type <= 0xFFFF_FFFF:
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

    To send it to another process: ``for_process(process)`` makes a copy whose token is
    duplicated into that process (and never closed here); pickle that copy or write it
    with ``to_bytes()``. The receiver's copy (unpickled, or ``from_bytes``) owns the token.
    """

    # Immutable without a __setattr__ hook: the public fields are read-only properties,
    # and __slots__ leaves no room for new attributes.
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
        self._token_lib().CloseHandle(handle)

    def _public(self, handle: int) -> int:
        return handle

    def _describe(self, *, closed: bool) -> str:
        token = "no token" if self._handle is None else "token"
        return (
            f"<ExportedContext package={self._package!r} blob=<{len(self._blob)} bytes> "
            f"buffer_type={self._buffer_type} {token}>"
        )

    # Crossing processes -----------------------------------------------------------

    def _token_lib(self) -> Any:
        # A copy restored from pickle or to_bytes() binds its library on first use:
        # the receiving process may install one (use_library) after unpickling.
        if self._lib is None:
            self._lib = api()
        return self._lib

    def _transfer_token(self) -> tuple[int, int]:
        """``(token, target pid)`` to serialize; refuses a token valid only here."""
        if self._handle is not None:
            raise TypeError(
                "this ExportedContext owns a token that is valid only in this process; "
                "call for_process(target) and send that copy (its token is duplicated "
                "into the target process), or close()/detach() the token first"
            )
        return 0, 0

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle: package, blob, buffer type, and a token duplicated for the receiver.

        The restored copy owns its token (closes it once); it is meant for the process
        the token was duplicated into (``for_process``) and refuses to unpickle anywhere
        else. A context whose token is valid only here cannot be pickled.
        """
        token, pid = self._transfer_token()
        return (_restore_exported, (self._package, self._blob, self._buffer_type, token, pid))

    def to_bytes(self) -> bytes:
        """Serialize to a versioned byte layout that ``from_bytes`` reads back.

        Layout (little-endian)::

            magic  b"SSPX"                4 bytes
            version                       1 byte   (1)
            flags                         1 byte   (bit 0: has token, bit 1: has package)
            package length                2 bytes  (UTF-8 bytes)
            buffer type                   4 bytes  (SecBuffer.BufferType)
            token                         8 bytes  (0 when none)
            target pid                    4 bytes  (0 when no token)
            blob length                   4 bytes
            package (UTF-8), then blob

        The same ownership rules as pickling apply: the token must have been duplicated
        for the receiving process (``for_process``), which owns it once read back.
        """
        token, pid = self._transfer_token()
        package = b"" if self._package is None else self._package.encode("utf-8")
        flags = (_HAS_TOKEN if token else 0) | (_HAS_PACKAGE if self._package is not None else 0)
        head = _LAYOUT.pack(
            _MAGIC,
            _LAYOUT_VERSION,
            flags,
            len(package),
            self._buffer_type,
            token,
            pid,
            len(self._blob),
        )
        return head + package + self._blob

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> ExportedContext:
        """Read what ``to_bytes`` wrote; ``ValueError`` for anything else.

        A token in it is owned by the result (closed once), and only in the process it
        was duplicated for: elsewhere this raises ``ValueError``.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"from_bytes() takes bytes, not {type(data).__name__}")
        raw = bytes(data)
        if len(raw) < _LAYOUT.size:
            raise ValueError("not an exported context: too short for its header")
        magic, version, flags, package_length, buffer_type, token, pid, blob_length = (
            _LAYOUT.unpack_from(raw)
        )
        if magic != _MAGIC:
            raise ValueError("not an exported context: bad magic")
        if version != _LAYOUT_VERSION:
            raise ValueError(f"exported context layout version {version} is not supported")
        if flags & ~(_HAS_TOKEN | _HAS_PACKAGE):
            raise ValueError(f"exported context has unknown flags {flags:#x}")
        if len(raw) != _LAYOUT.size + package_length + blob_length:
            raise ValueError("exported context is truncated or has trailing bytes")
        if bool(flags & _HAS_TOKEN) != bool(token) or bool(token) != bool(pid):
            raise ValueError("exported context has an inconsistent token field")
        if not flags & _HAS_PACKAGE and package_length:
            raise ValueError("exported context has an inconsistent package field")
        start = _LAYOUT.size + package_length
        package: str | None = None
        if flags & _HAS_PACKAGE:
            try:
                package = raw[_LAYOUT.size : start].decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError("exported context has a package name that is not UTF-8") from None
        return _restore_exported(package, raw[start:], buffer_type, token, pid)

    def _copy_as(self, kind: type[_E], lib: Any) -> _E:
        """A new value of ``kind`` with this one's package, blob and buffer type, no token."""
        copy = kind.__new__(kind)
        copy._package, copy._blob, copy._buffer_type = (
            self._package,
            self._blob,
            self._buffer_type,
        )
        copy._lib = lib
        copy._handle = None
        return copy

    def for_process(self, process: int | _HasPid) -> ExportedContext:
        """A copy for another process, with the token duplicated into that process.

        ``process`` is a pid, or a started ``multiprocessing.Process`` /
        ``subprocess.Popen`` (anything with an int ``.pid``). The token is duplicated
        with ``OpenProcess`` + ``DuplicateHandle(DUPLICATE_SAME_ACCESS)``; the copy's
        token is valid in the target process only, so the copy never closes it here
        (``closed`` is ``True``); send it (pickle or ``to_bytes``) and the receiver owns
        it. For this very process the copy owns a fresh duplicate. With no token, the
        copy is a plain copy. Off Windows duplicating needs a library that simulates it
        (``sspi_import.testing.FakeSspi`` does); otherwise ``SspiUnavailableError``.
        The original keeps its own token: close it when done.
        """
        pid = _target_pid(process)
        if self._handle is None:
            if isinstance(self, _TargetCopy):
                raise ValueError(
                    f"this copy's token belongs to process {self._target_pid}; "
                    "duplicate from the original ExportedContext"
                )
            return _restore_exported(self._package, self._blob, self._buffer_type, 0, 0)
        lib = self._token_lib()
        if not (lib.has("OpenProcess") and lib.has("DuplicateHandle")):
            raise SspiUnavailableError(
                f"{lib.description} cannot duplicate a token into another process: that "
                "needs Windows (kernel32 DuplicateHandle) or a provider that simulates it "
                "(sspi_import.testing.FakeSspi). Close or detach the token and send the "
                "context without it"
            )
        current = lib.GetCurrentProcess()
        target = c_void_p()
        if pid == os.getpid():
            lib.DuplicateHandle(
                current, self._handle, current, byref(target), 0, False, C.DUPLICATE_SAME_ACCESS
            )
            copy = self._copy_as(ExportedContext, lib)
            copy._handle = target.value or None
            return copy
        process_handle = lib.OpenProcess(_PROCESS_DUP_HANDLE, False, pid)
        try:
            lib.DuplicateHandle(
                current,
                self._handle,
                process_handle,
                byref(target),
                0,
                False,
                C.DUPLICATE_SAME_ACCESS,
            )
        finally:
            lib.CloseHandle(process_handle)
        remote = self._copy_as(_TargetCopy, lib)
        remote._handle = None  # valid in the target process only: never closed here
        remote._target_token = target.value or 0
        remote._target_pid = pid
        return remote


class _HasPid(Protocol):
    @property
    def pid(self) -> int | None: ...


_PROCESS_DUP_HANDLE = 0x0040  # winnt.h: OpenProcess access right for DuplicateHandle
_MAGIC = b"SSPX"
_LAYOUT_VERSION = 1
_HAS_TOKEN, _HAS_PACKAGE = 0x1, 0x2
_LAYOUT = struct.Struct("<4sBBHIQII")


def _target_pid(process: object) -> int:
    pid = process if isinstance(process, int) else getattr(process, "pid", None)
    if pid is None and hasattr(process, "pid"):
        raise ValueError("the process has not started: it has no pid yet")
    if isinstance(pid, bool) or not isinstance(pid, int):
        raise TypeError(
            "for_process() takes a pid or a process object with a .pid, "
            f"not {type(process).__name__}"
        )
    if not 0 < pid <= 0xFFFF_FFFF:
        raise ValueError(f"{pid} is not a process id")
    return pid


def _restore_exported(
    package: str | None, blob: bytes, buffer_type: int, token: int, pid: int
) -> ExportedContext:
    """Rebuild a pickled or ``to_bytes`` copy; it owns its token, in its target process."""
    if token and pid != os.getpid():
        raise ValueError(
            f"this exported context's token was duplicated for process {pid}, not for this "
            f"one ({os.getpid()}); only that process can use it"
        )
    exported = ExportedContext(package, blob, buffer_type)
    exported._lib = None  # bound on first use: see ExportedContext._token_lib
    exported._handle = _check_token(token)
    return exported


class _TargetCopy(ExportedContext):
    """What ``for_process`` returns for another process: the token is not ours to close."""

    __slots__ = ("_target_pid", "_target_token")
    _target_pid: int
    _target_token: int

    @property
    def token(self) -> int | None:
        """The token's value in the target process (not valid here)."""
        return self._target_token or None

    def _transfer_token(self) -> tuple[int, int]:
        return self._target_token, self._target_pid

    def _describe(self, *, closed: bool) -> str:
        return (
            f"<ExportedContext package={self._package!r} blob=<{len(self._blob)} bytes> "
            f"buffer_type={self._buffer_type} token for process {self._target_pid}>"
        )


def _source_handle(context: object) -> tuple[SecHandle, SecurityContextBase | None]:
    """The handle to export, and the library object that owns it (if any)."""
    if isinstance(context, SecurityContextBase):
        return context._live(), context
    if isinstance(context, SecHandle):
        return context, None
    pair = foreign_pair(context, peek_pywin32)  # pywin32 keeps its object: read in place
    if pair is not None:
        return SecHandle(*pair), None
    raise TypeError(
        "export_context() takes a context of this library, a ctypes SecHandle, a "
        "(dwLower, dwUpper) tuple, pywin32's PyCtxtHandle or the int its Detach() returns, "
        f"not {type(context).__name__}"
    )


def export_context(
    context: SecurityContextBase | SecHandle | tuple[int, int] | int | Any,
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
    """
    fflags = _check_flags(flags)
    handle, owner = _source_handle(context)
    delete_old = bool(fflags & C.SECPKG_CONTEXT_EXPORT_DELETE_OLD)
    consuming = owner is not None and delete_old
    if consuming:
        assert owner is not None
        taken = owner._take()  # no other thread may delete what SSPI is about to
        if taken is None:
            raise ValueError("the security context is closed; it cannot be exported")
        handle = taken
    lib = owner._lib if owner is not None else api()  # the library the context came from
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
    if consuming:
        assert owner is not None
        owner._consumed()
    elif delete_old and is_pywin32_handle(context):
        context.Detach()  # SSPI deleted it: pywin32 must not delete it again
    pointer = packed.pvBuffer  # each ctypes field read builds a new int: read once
    exported = ExportedContext.__new__(ExportedContext)
    exported._package = owner.package if owner is not None else None
    exported._blob = b""
    exported._buffer_type = packed.BufferType
    exported._lib = lib
    exported._handle = token.value or None  # owned from here, even if the copy fails
    if pointer:
        try:
            exported._blob = ctypes.string_at(pointer, packed.cbBuffer)
        finally:
            lib.FreeContextBuffer(pointer)
    return exported
