"""The token an export hands out, and moving it to another process.

A token is a kernel handle, valid in one process only. ``Token`` owns one (closed once,
with ``CloseHandle``, through the ownership mechanism of ``_handle``). ``duplicate``
copies one into (or out of) another process with ``OpenProcess`` + ``DuplicateHandle``;
the opened process handle is closed whatever happens, and a failure says its cause and
what to do. ``take`` makes the owner of a token read from a payload, once per process: a
second read of the same payload would make a second owner of the same handle (closed
twice), so it gets none (``exported`` refuses that copy where it is used, saying why).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import weakref
from ctypes import byref, c_void_p
from typing import Any, ClassVar

from ._handle import OwnedHandle
from ._raw import constants as C  # noqa: N812 - C names, read like the header
from ._raw.structs import POINTER_BYTES
from .errors import SspiUnavailableError
from .library import call

__all__ = ["MAX_HANDLE", "Token", "duplicate", "duplicating_library", "take"]

MAX_HANDLE = (1 << (8 * POINTER_BYTES)) - 1
KIND = "exported context's token"


class Token(OwnedHandle[int]):
    """The token handle an export handed out: closed once, with ``CloseHandle``."""

    _FREE: ClassVar[str] = "CloseHandle"
    _kind: ClassVar[str] = KIND
    _how_to_move: ClassVar[str] = (
        "To send it to another process, use the ExportedContext's for_process(target)"
    )
    _package: str | None = None  # named in the warning when the token is forgotten
    _from_payload: int | None = None  # the value it was taken under (take), if it was

    def __init__(self) -> None:
        raise TypeError("tokens come from export_context() and ExportedContext.from_bytes()")

    @classmethod
    def own(cls, handle: int, package: str | None, lib: Any) -> Token:
        """Take ownership of ``handle``; ``lib`` may be ``None`` (bound on first use)."""
        token = cls.__new__(cls)
        token._package = package
        token._own(lib, handle)
        return token

    def _public(self, handle: int) -> int:
        return handle

    _RELEASES: ClassVar[bool] = True  # a payload's token leaves the registry

    def _released(self) -> None:
        if self._from_payload is not None:
            _forget(self)

    def detach(self) -> int:
        """Give up the token and return it; the caller must close it."""
        value: int = super().detach()
        self._released()  # a payload's value may be taken again once the caller closed it
        return value

    def _describe(self, *, closed: bool) -> str:
        state = "closed" if closed else "open"
        return f"<ExportedContext token package={self._package!r} {state}>"


# The payload tokens owned in this process, by value. Weak: a token an interrupt kept
# from reaching its ExportedContext is freed by its finalizer, not kept here for ever.
_taken: weakref.WeakValueDictionary[int, Token] = weakref.WeakValueDictionary()


def take(value: int, package: str | None) -> Token | None:
    """The owner of a token read from a payload made for this process, once per value.

    ``None`` when an ``ExportedContext`` here already owns that value (the payload was
    read twice): two owners would close it twice. The registry takes no lock: a
    finalizer (a forgotten token's) may run inside any allocation, and must not wait for
    a lock its own thread holds.
    """
    token = Token.own(value, package, None)  # library bound on first use
    if _taken.setdefault(value, token) is not token:
        token.detach()  # not ours: another ExportedContext here owns that handle
        return None
    token._from_payload = value
    return token


def _forget(token: Token) -> None:
    value = token._from_payload
    if value is not None and _taken.get(value) is token:
        _taken.pop(value, None)


def duplicating_library(lib: Any) -> Any:
    """``lib`` if it can duplicate handles between processes; ``SspiUnavailableError`` if not."""
    if not (lib.has("OpenProcess") and lib.has("DuplicateHandle")):
        raise SspiUnavailableError(
            f"{lib.description} cannot duplicate a token between processes: that "
            "needs Windows (kernel32 DuplicateHandle) or a provider that simulates it "
            "(sspi_import.testing.FakeSspi). Close or detach the token and send the "
            "context without it"
        )
    return lib


def duplicate(lib: Any, from_pid: int, handle: int, to_pid: int, *, pull: bool = False) -> int:
    """``DuplicateHandle(DUPLICATE_SAME_ACCESS)`` of ``handle`` from one process to another.

    One of the two is this process; the other is opened with ``PROCESS_DUP_HANDLE``
    (not at all when both are this process). Returns the new handle's value, valid in
    ``to_pid``. The process handle is closed whatever happens; when the duplication
    failed, its error is the one raised. A failure says its cause and what to do:
    ``ProcessLookupError`` when the other process does not exist (any more),
    ``PermissionError`` when it may not be opened (another user), and, for a token
    pulled from the exporter, ``OSError`` (``EBADF``) when the exporter's handle is not
    open any more (it closed its export too early). ``pull``: a received copy's pull,
    also when the exporter is this very process.
    """
    me = os.getpid()
    pulling = pull or from_pid != me
    other = from_pid if pulling else to_pid
    current = call(lib, "GetCurrentProcess")
    opened = None
    if other != me:
        try:
            opened = call(lib, "OpenProcess", C.PROCESS_DUP_HANDLE, False, other)
        except OSError as exc:
            raise _cannot_open(other, pulling=pulling, error=exc) from exc
    source = current if from_pid == me else opened
    target_process = current if to_pid == me else opened
    target = c_void_p()
    try:
        call(
            lib,
            "DuplicateHandle",
            source,
            handle,
            target_process,
            byref(target),
            0,
            False,
            C.DUPLICATE_SAME_ACCESS,
        )
    except OSError as exc:
        if pulling and exc.errno in (None, errno.EBADF):  # EBADF: ERROR_INVALID_HANDLE
            raise _not_open(from_pid, handle, exc) from exc
        raise
    finally:
        if opened is not None:
            with contextlib.suppress(Exception):  # the duplication's own outcome is what matters
                call(lib, "CloseHandle", opened)
    return target.value or 0


# Why a process could not be opened: Windows says it with the error (87 is EINVAL, 5 is
# EACCES: PermissionError); a simulated kernel32 off Windows has no error to give, so
# the pid is probed with signal 0 there (never on Windows, where os.kill terminates).
_GONE, _DENIED = "gone", "denied"
_CLOSE_WHEN_DONE = (
    "keep the ExportedContext open until the worker has imported the context, and close "
    "it when the worker's answer arrives (with a pool: "
    "future.add_done_callback(lambda _: exported.close()))"
)


def _why(pid: int, error: OSError) -> str | None:
    if isinstance(error, ProcessLookupError) or error.errno == errno.EINVAL:
        return _GONE
    if isinstance(error, PermissionError):
        return _DENIED
    if error.errno is None and sys.platform != "win32":
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return _GONE
        except PermissionError:
            return _DENIED
        except OverflowError:  # past pid_t: no process can have it
            return _GONE
        except OSError:
            return None
    return None


def _cannot_open(pid: int, *, pulling: bool, error: OSError) -> OSError:
    """The error for an ``OpenProcess`` of ``pid`` that failed: its cause, what to do."""
    why = _why(pid, error)
    if pulling and why == _GONE:
        return ProcessLookupError(
            errno.ESRCH,
            f"cannot pull the token from the exporting process {pid}: it does not exist "
            "any more (it has exited). The exporter must stay alive until the worker has "
            f"imported the context: {_CLOSE_WHEN_DONE}",
        )
    if pulling and why == _DENIED:
        return PermissionError(
            errno.EACCES,
            f"cannot pull the token from the exporting process {pid}: this process may "
            "not open it (OpenProcess with PROCESS_DUP_HANDLE was denied: the worker runs "
            "as another user than the exporter, or at a lower integrity level). Run the "
            "worker as the exporter's user, or have the exporter push the token with "
            "for_process(worker)",
        )
    if why == _GONE:
        return ProcessLookupError(
            errno.ESRCH,
            f"cannot duplicate the token into process {pid}: there is no such process "
            f"(it has exited, or {pid} is not its pid). Pass the running worker itself "
            "(a started multiprocessing.Process or subprocess.Popen, started with "
            "sspi_import.start_python_child in a Windows venv), or send "
            "for_any_process() and let the worker pull the token",
        )
    if why == _DENIED:
        return PermissionError(
            errno.EACCES,
            f"cannot duplicate the token into process {pid}: it may not be opened for "
            "that (OpenProcess with PROCESS_DUP_HANDLE was denied: it runs as another "
            "user, or at a higher integrity level). Run the worker as this process's "
            "user",
        )
    direction = "from" if pulling else "into"
    return OSError(
        error.errno,
        f"cannot open process {pid} to duplicate the token {direction} it: "
        f"{error.strerror}. The process may have exited, or run as another user "
        "(PROCESS_DUP_HANDLE is needed on it)",
    )


def _not_open(pid: int, handle: int, error: OSError) -> OSError:
    """The error for a pull whose ``DuplicateHandle`` failed: the exporter closed it."""
    return OSError(
        errno.EBADF,
        f"cannot pull the token from the exporting process {pid}: its handle {handle:#x} "
        f"is not open there any more ({error.strerror}). The exporter closed its "
        "ExportedContext, or let it be collected, before this process pulled the token: "
        f"{_CLOSE_WHEN_DONE}",
    )
