"""What an export produces: ``ExportedContext``, and the export itself.

The blob is a plain immutable value. The token handle a package may hand out with it is
the only thing an export owns, so only the token carries a finalizer (``_tokens.Token``,
an owner): an export without a token is an ordinary object, freed for nothing.
Crossing processes (``for_process``, pickling, ``to_bytes``) is decided here too: a
token is valid in one process only, so it is duplicated for the receiver
(``_tokens.duplicate``), and a payload's token is owned once per process. Receiving a
copy (unpickling, ``from_bytes``) makes no OS call and refuses nothing: what cannot be
used here is refused where it is used, and a token the receiver pulls from the exporter
(``for_any_process``) is pulled there (``_Received``). A worker pool unpickles its tasks
outside the task, where an error breaks the pool instead of reaching ``future.result()``.

``export_context`` makes the ``ExportSecurityContext`` call for every export, of a
context of this library (through its owner: the call holds its lock, and a
``DELETE_OLD`` export consumes it) or of a handle from elsewhere.
"""

from __future__ import annotations

import contextlib
import enum
import os
import struct
import threading
from ctypes import c_void_p, string_at
from typing import TYPE_CHECKING, Any, TypeVar

from ._buffers import encode_name
from ._checks import integer, ulong
from ._cpython import is_pywin32_handle, peek_pywin32
from ._foreign import foreign_pair
from ._handle import Closeable
from ._raw import constants as C  # noqa: N812 - C names, read like the header
from ._raw.structs import SecBuffer, SecHandle
from ._tokens import KIND, MAX_HANDLE, Token, duplicate, duplicating_library, take
from .errors import SspiUnavailableError, report_cleanup
from .library import api, call
from .messages import MessageProtection
from .processes import HasPid, target_pid

if TYPE_CHECKING:
    from typing_extensions import Self

    from .adopt import ForeignContextHandle
    from .context import SecurityContextBase

__all__ = ["ExportFlags", "ExportedContext", "HasPid", "export_context"]

_E = TypeVar("_E", bound="ExportedContext")
_POINTER_BITS = MAX_HANDLE.bit_length()
_DELETE_OLD = C.SECPKG_CONTEXT_EXPORT_DELETE_OLD
_ALLOWED_FLAGS = C.SECPKG_CONTEXT_EXPORT_RESET_NEW | C.SECPKG_CONTEXT_EXPORT_DELETE_OLD
_VALID_FLAGS = {v: v for v in range(_ALLOWED_FLAGS + 1) if not v & ~_ALLOWED_FLAGS}


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


def check_export_flags(flags: object) -> int:
    """The ``fFlags`` of an export: ``RESET_NEW``/``DELETE_OLD``, ``TO_KERNEL`` refused."""
    if type(flags) is int or type(flags) is ExportFlags:
        value: int | None = _VALID_FLAGS.get(flags)
        if value is not None:  # the usual call: one look-up
            return value
    if isinstance(flags, enum.Enum) and not isinstance(flags, ExportFlags):
        # RequestFlags.MUTUAL_AUTH is 2, as DELETE_OLD is: a mix-up, not a request.
        raise TypeError(f"export flags are ExportFlags, not {type(flags).__name__}")
    number = integer(flags, "flags (ExportFlags)")
    if number < 0 or number & ~(_ALLOWED_FLAGS | C.SECPKG_CONTEXT_EXPORT_TO_KERNEL):
        raise ValueError(
            f"unknown export flags {number:#x}: use ExportFlags.NONE, RESET_NEW, DELETE_OLD"
        )
    if number & C.SECPKG_CONTEXT_EXPORT_TO_KERNEL:
        raise ValueError(
            "SECPKG_CONTEXT_EXPORT_TO_KERNEL is for kernel-mode callers only; "
            "a user-mode process cannot export to the kernel"
        )
    return number  # an int of another type (an int subclass): its value is valid


def check_token(token: object) -> int | None:
    """A token argument: ``None``, or an ``int`` that fits a handle (0 means none)."""
    if token is None:
        return None
    value = integer(token, "the token (an int handle, or None)")
    if not 0 <= value <= MAX_HANDLE:
        raise ValueError(f"the token {value} is not a {_POINTER_BITS}-bit handle value")
    return value or None


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
    duplicated into that process (and never closed here), ``for_any_process()`` one whose
    token the receiver pulls from this process where it uses it (the copy a worker pool
    can send); pickle that copy or write it with ``to_bytes()``. Receiving it (unpickling,
    ``from_bytes``) makes no OS call and does not fail; the receiver's copy owns the
    token, from the first use for a pulled one (see ``from_bytes``).
    """

    # Immutable without a __setattr__ hook: the public fields are read-only properties,
    # and __slots__ leaves no room for new attributes.
    __slots__ = ("__weakref__", "_blob", "_buffer_type", "_package", "_token")
    _token: Token | None

    def __init__(
        self,
        package: str | None,
        blob: bytes,
        buffer_type: int = C.SECBUFFER_EMPTY,
        token: int | None = None,
    ) -> None:
        if getattr(self, "_blob", None) is not None:  # would drop the token it owns
            raise TypeError("this ExportedContext is already set up; make a new object")
        if package is not None:
            encode_name(package)  # the same rules as for import
            if len(package) > 0x3FFF and len(package.encode("utf-8")) > 0xFFFF:
                raise ValueError("the package name is longer than 65,535 UTF-8 bytes")
        if type(blob) is not bytes:
            raise TypeError(f"blob must be bytes, not {type(blob).__name__}")
        if not blob:
            raise ValueError("the blob is empty")
        kind = ulong(buffer_type, "buffer_type")
        value = check_token(token)
        lib = None if value is None else api()
        self._token = None
        self._package = package
        self._buffer_type = kind
        self._blob = blob
        if value is not None:
            self._token = Token.own(value, package, lib)

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
        """The token handle, or ``None`` (none was exported, or it was closed/detached).

        On a received ``for_any_process()`` copy, reading it is a use: it pulls the token
        from the exporter (see ``from_bytes``). On a received copy that cannot be used
        here (its token duplicated for another process, or owned by an earlier read of
        the same payload), it raises that ``ValueError``.
        """
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
        self._check_importable()  # a copy that must not be used here says why
        token = self._token
        if token is None:
            raise ValueError(f"the {KIND} is closed; there is no handle to detach")
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

    def _check_importable(self) -> None:
        """Raise ``ValueError`` when this value must not be imported in this process."""

    def _transfer_token(self) -> tuple[int, int, int]:
        """``(token, pid, flags)`` to serialize; refuses a token valid only here."""
        if not self.closed:
            raise TypeError(
                "this ExportedContext owns a token that is valid only in this process, so it "
                "cannot be pickled or written with to_bytes() as it is. Make a copy for the "
                "receiver and send that: for_process(pid) duplicates the token into the "
                "process with that pid (for this very process: for_process(os.getpid())); "
                "for_any_process() lets the receiver duplicate it from this process, whatever "
                "its pid. Or close()/detach() the token to send the context without it"
            )
        return 0, 0, 0

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle: package, blob, buffer type, and a token duplicated for the receiver.

        Unpickling is ``from_bytes`` without the bytes: no OS call, no failure; see
        there for what the restored copy owns and where it refuses to be used. A
        context whose token is valid only here cannot be pickled.
        """
        token, pid, flags = self._transfer_token()
        args = (self._package, self._blob, self._buffer_type, token, pid, flags)
        return (_restore_exported, args)

    def to_bytes(self) -> bytes:
        """Serialize to a versioned byte layout that ``from_bytes`` reads back.

        Layout (little-endian)::

            magic  b"SSPX"                4 bytes
            version                       1 byte   (1)
            flags                         1 byte   (bit 0: has token, bit 1: has package,
                                                    bit 2: the receiver duplicates the
                                                    token from the pid below)
            package length                2 bytes  (UTF-8 bytes)
            buffer type                   4 bytes  (SecBuffer.BufferType)
            token                         8 bytes  (0 when none)
            pid                           4 bytes  (0 when no token: the process the
                                                    token was duplicated for, or with
                                                    bit 2 the exporter's)
            blob length                   4 bytes
            package (UTF-8), then blob

        The same ownership rules as pickling apply: the token must have been duplicated
        for the receiving process (``for_process``), which owns it once read back, or be
        left for the receiver to pull (``for_any_process``).
        """
        package = b"" if self._package is None else self._package.encode("utf-8")
        token, pid, extra = self._transfer_token()  # last: it may hand the token over
        flags = (_HAS_TOKEN if token else 0) | (_HAS_PACKAGE if self._package is not None else 0)
        head = _LAYOUT.pack(
            _MAGIC,
            _LAYOUT_VERSION,
            flags | extra,
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

        Reading a well-formed payload makes no OS call and does not fail: what cannot be
        used here is refused where it is used (``ImportedContext.from_exported``,
        ``token``), so in a worker the error reaches the task's caller.

        - A ``for_process`` token is owned by the result (closed once), in the process it
          was duplicated for, by the first copy read there; a copy read in another
          process, or a second one read here, owns nothing and is refused at use
          (``ValueError``, saying why).
        - A ``for_any_process`` token is *pulled* from the exporter where the copy is
          first used (``from_exported``, ``token``, ``detach``): ``OpenProcess`` on the
          exporter + ``DuplicateHandle``. From then on the copy owns the duplicate;
          never used, it owns nothing (no finalizer, no warning). Each copy read pulls
          its own. The pull needs a provider that duplicates handles in this process
          (secur32; ``sspi_import.testing.install_fake`` in a pool worker) and the
          exporter alive with its export open; otherwise it raises, saying which:
          ``SspiUnavailableError``, ``ProcessLookupError`` (the exporter exited),
          ``OSError`` (it closed its export too early), ``PermissionError`` (another
          user).
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"from_bytes() takes bytes, not {type(data).__name__}")
        with memoryview(data) as view:
            if view.nbytes > _MAX_PAYLOAD:  # refused before it is copied
                raise ValueError(
                    f"not an exported context: {view.nbytes} bytes is more than the layout "
                    f"can describe ({_MAX_PAYLOAD})"
                )
            # Read where it lies: only the package and the blob are copied, once a valid
            # header says how long they are (a large input that is no payload is refused
            # without a copy of it).
            whole = view if view.c_contiguous else memoryview(view.tobytes())
            with whole.cast("B") as raw:
                package, blob, buffer_type, token, pid, flags = _read_payload(raw)
        return _restore_exported(package, blob, buffer_type, token, pid, flags)

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

    def _open_token(self) -> Token | None:
        """The token, checked to be open, or ``None`` when there is none to send."""
        token = self._token
        if token is None or token._handle is None:
            return None
        return token

    def _token_to_use(self) -> Token | None:
        """The open token for a copy or an import; ``None`` only when there never was one.

        Once it was closed or detached, a copy or an import would go without it, and the
        imported context without its client's token: refused, saying so.
        """
        token = self._open_token()
        if token is None and self._token is not None:
            raise self._closed_token()
        return token

    @staticmethod
    def _closed_token() -> ValueError:
        return ValueError(
            "this ExportedContext's token was closed (or detached): a copy or an import "
            "now would go without it, and the imported context could not impersonate its "
            "client. Copy and import before closing it (with a pool: close it in the "
            "task's done callback); for another hand-off, export the context again"
        )

    def for_process(self, process: int | HasPid) -> ExportedContext:
        """A copy for another process, with the token duplicated into that process.

        ``process`` is a pid, or a started ``multiprocessing.Process`` /
        ``subprocess.Popen`` (anything with an int ``.pid``). The token is duplicated
        with ``OpenProcess`` + ``DuplicateHandle(DUPLICATE_SAME_ACCESS)``; the copy's
        token is valid in the target process only, so the copy never closes it here
        (``closed`` is ``True``) and refuses to be imported here; send it (pickle or
        ``to_bytes``) and the receiver owns it. With no token, the copy is a plain copy;
        once the token was closed or detached, ``ValueError`` (a copy would go without it).
        Off Windows duplicating needs a library that simulates it
        (``sspi_import.testing.FakeSspi`` does); otherwise ``SspiUnavailableError``.
        The original keeps its own token: close it when done.

        For this very process (``os.getpid()``) the copy owns a fresh duplicate, and
        pickling it or ``to_bytes()`` hands that duplicate to the payload (the copy is
        closed afterwards): read it back once, here, with ``from_bytes``.

        On Windows, ``subprocess.Popen([sys.executable, ...])`` inside a venv starts a
        launcher whose pid is not the worker's: start Python workers with
        ``start_python_child`` (or ``multiprocessing``), or send ``for_any_process()``.
        """
        pid = target_pid(process)
        token = self._token_to_use()
        if token is None:  # no token to duplicate: a plain copy
            return self._copy_as(ExportedContext)
        lib = duplicating_library(token._library())
        handle, pin = token._pin()  # not closed by another thread while duplicated
        try:
            me = os.getpid()
            value = duplicate(lib, me, handle, pid)
        finally:
            pin.release()
        if pid == me:
            local = self._copy_as(_LocalCopy)
            if value:
                local._token = Token.own(value, self._package, lib)
            return local
        remote = self._copy_as(_TargetCopy)  # valid in the target process only: not ours
        remote._target_token = value
        remote._target_pid = pid
        return remote

    def for_any_process(self) -> ExportedContext:
        """A copy whose token the receiver pulls from this process, whatever its pid.

        The copy carries this process's pid and the token's value here; where the
        receiver uses its copy (``ImportedContext.from_exported``), it opens this
        process (``OpenProcess`` with ``PROCESS_DUP_HANDLE``) and duplicates the token
        into itself, so the hand-off reaches the process that imports however it was
        started (a worker pool's worker, a venv launcher, a shell, a service). The
        price: this ``ExportedContext`` must keep its token open until the receiver has
        imported (close it when its answer arrives: with a pool,
        ``future.add_done_callback(lambda _: exported.close())``); closed too early,
        the receiver's import raises ``OSError`` saying so. The receiver needs
        ``PROCESS_DUP_HANDLE`` on this process (the same user has it; it lets the
        receiver duplicate *any* handle of this process, so send to workers you trust
        as much as this process). The copy owns nothing (``closed`` is ``True``) and
        refuses to be imported here. With no token, a plain copy; once the token was
        closed or detached, ``ValueError``.
        """
        token = self._token_to_use()
        if token is None:
            return self._copy_as(ExportedContext)
        token._check_usable()  # not the parent's token, in a fork child
        duplicating_library(token._library())  # refuse now, not in the receiver
        pulled = self._copy_as(_PullCopy)
        pulled._source = token
        return pulled


_MAGIC = b"SSPX"
_LAYOUT_VERSION = 1
_HAS_TOKEN, _HAS_PACKAGE, _PULL = 0x1, 0x2, 0x4
_LAYOUT = struct.Struct("<4sBBHIQII")
_MAX_PAYLOAD = _LAYOUT.size + 0xFFFF + 0xFFFF_FFFF  # the package and blob length fields


def _read_payload(raw: memoryview) -> tuple[str | None, bytes, int, int, int, int]:
    """``(package, blob, buffer type, token, pid, pull flag)`` of a ``to_bytes`` layout."""
    if len(raw) < _LAYOUT.size:
        raise ValueError("not an exported context: too short for its header")
    magic, version, flags, package_length, buffer_type, token, pid, blob_length = (
        _LAYOUT.unpack_from(raw)
    )
    if magic != _MAGIC:
        raise ValueError("not an exported context: bad magic")
    if version != _LAYOUT_VERSION:
        raise ValueError(f"exported context layout version {version} is not supported")
    if flags & ~(_HAS_TOKEN | _HAS_PACKAGE | _PULL):
        raise ValueError(f"exported context has unknown flags {flags:#x}")
    if len(raw) != _LAYOUT.size + package_length + blob_length:
        raise ValueError("exported context is truncated or has trailing bytes")
    if bool(flags & _HAS_TOKEN) != bool(token) or bool(token) != bool(pid):
        raise ValueError("exported context has an inconsistent token field")
    if flags & _PULL and not flags & _HAS_TOKEN:
        raise ValueError("exported context has an inconsistent token field")
    if not flags & _HAS_PACKAGE and package_length:
        raise ValueError("exported context has an inconsistent package field")
    start = _LAYOUT.size + package_length
    package: str | None = None
    if flags & _HAS_PACKAGE:
        try:
            package = str(raw[_LAYOUT.size : start], "utf-8")
        except UnicodeDecodeError:
            raise ValueError("exported context has a package name that is not UTF-8") from None
    return package, bytes(raw[start:]), buffer_type, token, pid, flags & _PULL


def _restore_exported(
    package: str | None, blob: bytes, buffer_type: int, token: int, pid: int, flags: int = 0
) -> ExportedContext:
    """Rebuild a pickled or ``to_bytes`` copy. Makes no OS call and refuses nothing.

    What cannot be used here is refused where it is used (``from_exported``, ``token``),
    so a worker pool's unpickler never fails (a pool breaks when it does) and the error
    reaches the caller of the task: a token made for another process, a payload read
    twice here, a token to pull (pulled on first use, by ``_Received``).
    """
    exported = ExportedContext(package, blob, buffer_type)
    value = check_token(token)
    if value is None:
        return exported
    if flags & _PULL:  # the exporter's handle: pulled where it is used
        received = exported._copy_as(_Received)
        received._from_pid, received._from_value = pid, value
        return received
    if pid != os.getpid():  # a handle of another process: nothing here to own
        misdelivered = exported._copy_as(_Misdelivered)
        misdelivered._target_token, misdelivered._target_pid = value, pid
        return misdelivered
    owner = take(value, package)  # once per process: two owners would close it twice
    if owner is None:
        refused = exported._copy_as(_TakenAlready)
        refused._value = value
        return refused
    exported._token = owner
    return exported


class _OutboundCopy(ExportedContext):
    """A copy made to be sent to a receiver: it owns no token and is never imported here."""

    __slots__ = ()

    def for_process(self, process: int | HasPid) -> ExportedContext:
        """Refused: duplicate from the original, whose token is valid in this process."""
        target_pid(process)  # the same argument errors as the original's
        raise ValueError(
            "this is a copy made for sending; call for_process() on the original "
            "ExportedContext (the one export_context() returned), whose token is open here"
        )

    def for_any_process(self) -> ExportedContext:
        """Refused: make the copy from the original."""
        raise ValueError(
            "this is a copy made for sending; call for_any_process() on the original "
            "ExportedContext (the one export_context() returned)"
        )


class _TargetCopy(_OutboundCopy):
    """What ``for_process`` returns for another process: the token is not ours to close."""

    __slots__ = ("_target_pid", "_target_token")
    _target_pid: int
    _target_token: int

    @property
    def token(self) -> int | None:
        """The token's value in the target process (not valid here)."""
        return self._target_token or None

    def _check_importable(self) -> None:
        raise ValueError(
            f"this copy was made by for_process({self._target_pid}): its token is a handle "
            f"in process {self._target_pid} and means nothing (or another handle) here. "
            f"Send it there (to_bytes() or pickle) and import it in process "
            f"{self._target_pid}; to import in this process, use the original "
            "ExportedContext, or for_process(os.getpid())"
        )

    def for_process(self, process: int | HasPid) -> ExportedContext:
        """Refused: duplicate from the original, whose token is valid in this process."""
        target_pid(process)  # the same argument errors as the original's
        raise ValueError(
            f"this copy's token belongs to process {self._target_pid}; duplicate from the "
            "original: call for_process() on the ExportedContext export_context() returned"
        )

    def _transfer_token(self) -> tuple[int, int, int]:
        return self._target_token, self._target_pid, 0

    def _describe(self, *, closed: bool) -> str:
        return (
            f"<ExportedContext package={self._package!r} blob=<{len(self._blob)} bytes> "
            f"buffer_type={self._buffer_type} token for process {self._target_pid}>"
        )


class _PullCopy(_OutboundCopy):
    """What ``for_any_process`` returns: the receiver duplicates the original's token."""

    __slots__ = ("_source",)
    _source: Token

    @property
    def token(self) -> int | None:
        """The original's token value in this process (owned by the original)."""
        return self._source._handle

    def _check_importable(self) -> None:
        raise ValueError(
            "this copy was made by for_any_process() to be sent: the receiver pulls the "
            "token from this process where it uses the copy (ImportedContext."
            "from_exported). To import here, use the original ExportedContext"
        )

    def _transfer_token(self) -> tuple[int, int, int]:
        value = self._source._handle
        if value is None:
            raise ValueError(
                "the original ExportedContext's token was closed, so the receiver could not "
                "pull it: call for_any_process() on an export whose token is open, and "
                "keep it open until the receiver has imported the context"
            )
        self._source._check_usable()  # not the parent's token, in a fork child
        return value, os.getpid(), _PULL

    def _describe(self, *, closed: bool) -> str:
        return (
            f"<ExportedContext package={self._package!r} blob=<{len(self._blob)} bytes> "
            f"buffer_type={self._buffer_type} token for the receiver to duplicate>"
        )


class _LocalCopy(ExportedContext):
    """What ``for_process(os.getpid())`` returns: owns a duplicate it can serialize once."""

    __slots__ = ()

    def _transfer_token(self) -> tuple[int, int, int]:
        token = self._token
        if token is None:
            return 0, 0, 0
        if token._handle is None:
            raise ValueError(
                "this copy's token was closed, or already handed to a payload (to_bytes() "
                "or pickle hand it over once): call for_process(os.getpid()) on the "
                "original ExportedContext again for another copy"
            )
        return token.detach(), os.getpid(), 0  # the payload owns it from here


class _Misdelivered(_TargetCopy):
    """A received copy whose token was duplicated for another process: refused at use."""

    __slots__ = ()

    def _check_importable(self) -> None:
        raise ValueError(
            f"this exported context's token was duplicated for process "
            f"{self._target_pid}, not for this one ({os.getpid()}), so only that process "
            "can use it. The sender must call for_process() with this process's pid; if "
            "it passed a subprocess.Popen of sys.executable in a Windows venv, that pid "
            "is the venv launcher's: start the worker with "
            "sspi_import.start_python_child(), or send for_any_process() instead, which "
            "this process pulls from the sender (a worker pool allows only that)"
        )

    @property
    def token(self) -> int | None:
        """Refused: the token is a handle of the process it was duplicated for."""
        self._check_importable()
        return None  # pragma: no cover - refused above

    def for_process(self, process: int | HasPid) -> ExportedContext:
        """Refused: the token is not a handle of this process (see ``token``)."""
        target_pid(process)  # the same argument errors as the original's
        self._check_importable()
        raise AssertionError  # pragma: no cover - refused above

    def for_any_process(self) -> ExportedContext:
        """Refused: the token is not a handle of this process (see ``token``)."""
        self._check_importable()
        raise AssertionError  # pragma: no cover - refused above


class _TakenAlready(ExportedContext):
    """A second read, in this process, of a payload whose token is owned here already."""

    __slots__ = ("_value",)
    _value: int

    def _refusal(self) -> ValueError:
        return ValueError(
            f"this payload's token ({self._value}) is already owned by an "
            "ExportedContext read from it in this process: a payload's token can be "
            "taken once (two owners would close it twice). Use that ExportedContext, or "
            "ask the sender for a new payload (for_process or for_any_process again)"
        )

    def _check_importable(self) -> None:
        raise self._refusal()

    @property
    def token(self) -> int | None:
        """Refused: another ``ExportedContext`` here owns this payload's token."""
        raise self._refusal()

    def _transfer_token(self) -> tuple[int, int, int]:
        raise self._refusal()

    def for_process(self, process: int | HasPid) -> ExportedContext:
        """Refused: the token is owned by the first read of the payload."""
        target_pid(process)
        raise self._refusal()

    def for_any_process(self) -> ExportedContext:
        """Refused: the token is owned by the first read of the payload."""
        raise self._refusal()


_pulling = threading.Lock()  # a received copy's state changes; no call is made under it


class _Received(ExportedContext):
    """A received ``for_any_process`` copy: the token is pulled from the exporter on use.

    Until then it owns nothing (a copy never used is an ordinary object: nothing to
    close, no finalizer); its first use (``from_exported``, ``token``, ``detach``,
    ``for_process``, ``for_any_process``) duplicates the exporter's handle into this
    process, and from then on it owns that duplicate as an ``ExportedContext`` from an
    export owns its token. ``close()`` before any use drops the pull. Sent on unused
    (pickle, ``to_bytes``), it carries the exporter's pid and handle on, for the next
    receiver to pull.
    """

    __slots__ = ("_from_pid", "_from_value")
    _from_pid: int
    _from_value: int  # the exporter's handle; 0 once pulled or dropped

    @property
    def token(self) -> int | None:
        """The token here, pulled from the exporter now if it was not yet.

        Raises what the pull raises: ``ProcessLookupError`` (the exporter exited),
        ``OSError`` (it closed its export too early), ``PermissionError`` (it may not be
        opened: another user), ``SspiUnavailableError`` (no provider here duplicates
        handles).
        """
        token = self._open_token()
        return None if token is None else token._handle

    @property
    def closed(self) -> bool:
        """``False`` while the token waits to be pulled; then as for any export."""
        return not self._from_value and super().closed

    def close(self) -> None:
        """Drop the pull if it has not happened, or close the pulled token."""
        with _pulling:
            self._from_value = 0
        super().close()

    def detach(self) -> int:
        """Pull the token (if not yet), give it up and return it: the caller closes it."""
        self._open_token()
        return super().detach()

    def _open_token(self) -> Token | None:
        if self._from_value and self._token is None:
            self._pull()
        return super()._open_token()

    def _token_to_use(self) -> Token | None:
        token = self._open_token()
        if token is None:  # a pull copy always carries a token: it was dropped or closed
            raise self._closed_token()
        return token

    def _pull(self) -> None:
        """Duplicate the exporter's handle into this process and own it (once)."""
        pid, value = self._from_pid, self._from_value
        try:
            lib = duplicating_library(api())
        except SspiUnavailableError as exc:
            raise SspiUnavailableError(
                f"cannot pull the exported context's token from process {pid}: {exc} "
                "In a worker pool, give every worker its provider as it starts (the pool's "
                "initializer): secur32 on Windows needs nothing; the simulated provider "
                "is installed by initializer=sspi_import.testing.install_fake"
            ) from None
        handle = duplicate(lib, pid, value, os.getpid(), pull=True)
        pulled = Token.own(handle, self._package, lib) if handle else None
        with _pulling:
            won = self._from_value == value and self._token is None
            if won:
                self._token, self._from_value = pulled, 0
        if not won and pulled is not None:  # closed meanwhile, or another thread pulled
            pulled.close()

    def _transfer_token(self) -> tuple[int, int, int]:
        if self._from_value and self._token is None:
            return self._from_value, self._from_pid, _PULL  # on to the next receiver
        return super()._transfer_token()

    def _describe(self, *, closed: bool) -> str:
        if not self._from_value:
            return super()._describe(closed=closed)
        return (
            f"<ExportedContext package={self._package!r} blob=<{len(self._blob)} bytes> "
            f"buffer_type={self._buffer_type} token to pull from process {self._from_pid}>"
        )


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
    library is then marked closed and never deleted again (also if an interrupt lands
    right after the call), and a pywin32 object is detached so that pywin32 never
    deletes it either. The packed buffer SSPI allocates is copied once and freed with
    ``FreeContextBuffer`` whatever happens.

    The export holds the context's lock: it waits for a call another thread is making
    on the context, and ``close()`` waits for it. An export SSPI completed is never
    lost: if a cleanup step after it fails, the export is returned and a
    ``CleanupWarning`` (carrying it as ``.result``) reports the failure; where warnings
    are errors, that warning is raised instead, still carrying the export.
    """
    # context is an owner (a context of this library: the call holds its lock, and with
    # DELETE_OLD consumes it) or a foreign handle (never taken over). What SSPI hands out
    # (the packed buffer, the token) is freed if anything goes wrong after the call, an
    # interrupt included.
    fflags = 0 if flags is ExportFlags.NONE else check_export_flags(flags)
    packed = SecBuffer()
    token = c_void_p()
    owner = context if isinstance(context, MessageProtection) else None  # not credentials
    package = None
    if owner is not None:
        package = _package_to_import(owner)
        lib = owner._lib or owner._library()  # a context always has its library
        try:
            if fflags & _DELETE_OLD:
                owner._consume("ExportSecurityContext", fflags, packed, token)
            else:
                owner._call("ExportSecurityContext", fflags, packed, token)
        except BaseException:
            _discard(lib, packed.pvBuffer, token.value)
            raise
    else:
        handle = _foreign_handle(context)
        lib = api()
        try:
            call(lib, "ExportSecurityContext", handle, fflags, packed, token)
        except BaseException:
            _discard(lib, packed.pvBuffer, token.value)
            raise
    return _exported(lib, context, owner, package, fflags, packed, token.value)


NEGOTIATE_IMPORTS_AS = "negotiated"
"""The name a Negotiate context's export records for the import: ONE switch.

``"negotiated"``: the package Negotiate chose (``NTLM``/``Kerberos``, what
``package_name`` reports), which is whose packed context ``ExportSecurityContext``
returns. ``"credentials"``: the name the credentials were acquired with
(``"Negotiate"``). The Windows lane imports under both names
(``test_windows_handoff.py``) and fails, naming this switch, if the default does not
work there. ``ImportedContext.from_exported(exported, package=...)`` overrides it.
"""


def _package_to_import(context: Any) -> str | None:
    """The package name an export of ``context`` records (see ``NEGOTIATE_IMPORTS_AS``)."""
    package: str | None = context.package
    negotiate = package is not None and package.lower() == "negotiate"
    if negotiate and NEGOTIATE_IMPORTS_AS == "negotiated":
        try:
            return str(context.package_name)  # before the export: DELETE_OLD deletes it
        except (OSError, ValueError):  # unanswered, or closed
            pass
    return package


def _exported(
    lib: Any,
    context: object,
    owner: Any,
    package: str | None,
    fflags: int,
    packed: SecBuffer,
    token: int | None,
) -> ExportedContext:
    """The ``ExportedContext`` of a completed export; SSPI's buffer freed in any case."""
    pointer = packed.pvBuffer  # each ctypes field read builds a new int: read once
    cleanup: list[BaseException] = []
    exported = ExportedContext.__new__(ExportedContext)
    exported._package = package
    exported._buffer_type = packed.BufferType
    exported._blob = b""
    exported._token = None
    try:
        exported._token = Token.own(token, package, lib) if token else None
        if pointer:
            exported._blob = string_at(pointer, packed.cbBuffer)
    except BaseException:  # no memory for the copy: nothing can be handed out
        exported.close()
        raise
    finally:
        if pointer:
            try:
                call(lib, "FreeContextBuffer", pointer)
            except Exception as exc:  # the export happened: report, never lose it
                cleanup.append(exc)
    if fflags & _DELETE_OLD:
        if owner is not None:
            try:
                owner._consumed()
            except Exception as exc:  # the export happened: report, never lose it
                cleanup.append(exc)
        elif is_pywin32_handle(context):
            context.Detach()  # SSPI deleted it: pywin32 must not delete it again
    if cleanup:
        return report_cleanup(exported, cleanup, "ExportSecurityContext")
    return exported


def _discard(lib: Any, pointer: int | None, token: int | None) -> None:
    """After a failed (or interrupted) export: free whatever SSPI handed out anyway.

    The export's own error is what the caller needs; a failure here must not replace it.
    """
    if pointer:
        with contextlib.suppress(Exception):  # the export's error is the one to raise
            call(lib, "FreeContextBuffer", pointer)
    if token:
        with contextlib.suppress(Exception):  # the export's error is the one to raise
            Token.own(token, None, lib).close()
