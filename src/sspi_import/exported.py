"""What an export produces: ``ExportedContext``, the packed context and its token.

The blob is a plain immutable value. The token handle a package may hand out with it is
the only thing an export owns, so only the token carries a finalizer (``_Token``, an
``OwnedHandle``): an export without a token is an ordinary object, freed for nothing.
Crossing processes (``for_process``, pickling, ``to_bytes``) is decided here too: a
token is valid in one process only and must be duplicated for the receiver.
"""

from __future__ import annotations

import os
import struct
from ctypes import byref, c_void_p
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ._buffers import encode_name
from ._handle import Closeable, OwnedHandle
from ._raw import constants as C  # noqa: N812 - C names, read like the header
from ._raw.loader import api
from ._raw.structs import POINTER_BYTES
from .errors import SspiUnavailableError, check_win32

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["ExportedContext", "HasPid"]

_E = TypeVar("_E", bound="ExportedContext")

_POINTER_BITS = POINTER_BYTES * 8
_MAX_HANDLE_WORD = (1 << _POINTER_BITS) - 1
_KIND = "exported context's token"


def _check_token(token: object) -> int | None:
    if token is None:
        return None
    if isinstance(token, bool) or not isinstance(token, int):
        raise TypeError(f"the token must be an int handle or None, not {type(token).__name__}")
    if not 0 <= token <= _MAX_HANDLE_WORD:
        raise ValueError(f"the token {token} is not a {_POINTER_BITS}-bit handle value")
    return token or None


class _Token(OwnedHandle[int]):
    """The token handle an export handed out: closed once, with ``CloseHandle``."""

    __slots__ = ("_package",)  # named in the warning when the token is forgotten
    _kind = _KIND
    _how_to_move = "To send it to another process, use the ExportedContext's for_process(target)"
    _package: str | None

    @classmethod
    def own(cls, handle: int, package: str | None, lib: Any) -> _Token:
        """Take ownership of ``handle``; ``lib`` may be ``None`` (bound on first use)."""
        token = cls.__new__(cls)
        token._package = package
        token._own(lib, handle)
        return token

    def bound_lib(self) -> Any:
        # A copy restored from pickle or to_bytes() binds its library on first use:
        # the receiving process may install one (use_library) after unpickling.
        if self._lib is None:
            self._lib = api()
        return self._lib

    def _release(self, handle: int) -> None:
        check_win32(self.bound_lib().CloseHandle(handle), "CloseHandle")

    def _public(self, handle: int) -> int:
        return handle

    def _describe(self, *, closed: bool) -> str:
        state = "closed" if closed else "open"
        return f"<ExportedContext token package={self._package!r} {state}>"


class ExportedContext(Closeable):
    """A serialized security context: the value ``export_context`` returns.

    Immutable: ``package`` (``str``, or ``None`` when the source could not tell),
    ``blob`` (``bytes``, the packed context: secret, never shown in ``repr``),
    ``buffer_type`` (the ``SecBuffer`` type SSPI reported) and ``token`` (the token
    handle the package handed out, or ``None``). The token is owned: ``close()`` (or
    ``with`` exit) closes it once, from any thread; ``detach()`` hands it to the caller.
    A token never closed is closed when the object is collected, with a
    ``ResourceWarning``.

    To send it to another process: ``for_process(process)`` makes a copy whose token is
    duplicated into that process (and never closed here); pickle that copy or write it
    with ``to_bytes()``. The receiver's copy (unpickled, or ``from_bytes``) owns the token.
    """

    # Immutable without a __setattr__ hook: the public fields are read-only properties,
    # and __slots__ leaves no room for new attributes.
    __slots__ = ("__weakref__", "_blob", "_buffer_type", "_package", "_token")
    _token: _Token | None

    def __init__(
        self,
        package: str | None,
        blob: bytes,
        buffer_type: int = C.SECBUFFER_EMPTY,
        token: int | None = None,
    ) -> None:
        self._token = None
        if package is not None:
            encode_name(package)  # the same rules as for import
        if type(blob) is not bytes:
            raise TypeError(f"blob must be bytes, not {type(blob).__name__}")
        if not blob:
            raise ValueError("the blob is empty")
        if isinstance(buffer_type, bool) or not isinstance(buffer_type, int):
            raise TypeError("buffer_type must be an int")
        if not 0 <= buffer_type <= 0xFFFF_FFFF:
            raise ValueError(f"buffer_type {buffer_type} is not a 32-bit value")
        self._package = package
        self._blob = blob
        self._buffer_type = buffer_type
        value = _check_token(token)
        if value is not None:
            self._token = _Token.own(value, package, api())

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
        token = self._token
        return None if token is None else token._handle

    @property
    def closed(self) -> bool:
        """``True`` once the token is closed or detached (always, when there was none)."""
        token = self._token
        return token is None or token._handle is None

    def close(self) -> None:
        """Close the token (``CloseHandle``). Safe to call again, and from several threads."""
        token = self._token
        if token is not None:
            token.close()

    def detach(self) -> int:
        """Give up the token and return it; the caller must close it."""
        token = self._token
        if token is None:
            raise ValueError(f"the {_KIND} is closed; there is no handle to detach")
        result: int = token.detach()
        return result

    def __copy__(self) -> Self:
        # An immutable value: the copy is the object itself, so the token keeps one owner.
        return self

    def __deepcopy__(self, memo: object) -> Self:
        return self

    def _describe(self, *, closed: bool) -> str:
        token = "token" if not closed else "no token"
        return (
            f"<ExportedContext package={self._package!r} blob=<{len(self._blob)} bytes> "
            f"buffer_type={self._buffer_type} {token}>"
        )

    # Crossing processes -----------------------------------------------------------

    def _transfer_token(self) -> tuple[int, int]:
        """``(token, target pid)`` to serialize; refuses a token valid only here."""
        if not self.closed:
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

    def _copy_as(self, kind: type[_E]) -> _E:
        """A new value of ``kind`` with this one's package, blob and buffer type, no token."""
        copy = kind.__new__(kind)
        copy._package, copy._blob, copy._buffer_type = (
            self._package,
            self._blob,
            self._buffer_type,
        )
        copy._token = None
        return copy

    def for_process(self, process: int | HasPid) -> ExportedContext:
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
        token = self._token
        handle = None if token is None else token._handle
        if token is None or handle is None:  # no token to duplicate: a plain copy
            return self._copy_as(ExportedContext)
        lib = token.bound_lib()
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
            duplicated = lib.DuplicateHandle(
                current, handle, current, byref(target), 0, False, C.DUPLICATE_SAME_ACCESS
            )
            check_win32(duplicated, "DuplicateHandle")
            copy = self._copy_as(ExportedContext)
            if target.value:
                copy._token = _Token.own(target.value, self._package, lib)
            return copy
        process_handle = check_win32(
            lib.OpenProcess(_PROCESS_DUP_HANDLE, False, pid), "OpenProcess"
        )
        try:
            duplicated = lib.DuplicateHandle(
                current,
                handle,
                process_handle,
                byref(target),
                0,
                False,
                C.DUPLICATE_SAME_ACCESS,
            )
            check_win32(duplicated, "DuplicateHandle")
        finally:
            check_win32(lib.CloseHandle(process_handle), "CloseHandle")
        remote = self._copy_as(_TargetCopy)  # valid in the target process only: not ours
        remote._target_token = target.value or 0
        remote._target_pid = pid
        return remote


class HasPid(Protocol):
    """A process object ``for_process`` accepts: anything with an ``int`` ``.pid``.

    ``multiprocessing.Process`` and ``subprocess.Popen`` are two; ``pid`` is ``None``
    for a process that has not started, which ``for_process`` refuses.
    """

    @property
    def pid(self) -> int | None:
        """The process id, or ``None`` before the process has started."""
        ...


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
    value = _check_token(token)
    if value is not None:
        exported._token = _Token.own(value, package, None)  # library bound on first use
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

    def for_process(self, process: int | HasPid) -> ExportedContext:
        """Refused: duplicate from the original, whose token is valid in this process."""
        _target_pid(process)  # the same argument errors as the original's
        raise ValueError(
            f"this copy's token belongs to process {self._target_pid}; "
            "duplicate from the original ExportedContext"
        )

    def _transfer_token(self) -> tuple[int, int]:
        return self._target_token, self._target_pid

    def _describe(self, *, closed: bool) -> str:
        return (
            f"<ExportedContext package={self._package!r} blob=<{len(self._blob)} bytes> "
            f"buffer_type={self._buffer_type} token for process {self._target_pid}>"
        )
