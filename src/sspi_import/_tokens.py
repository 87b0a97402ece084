"""The token an export hands out, and moving it to another process.

A token is a kernel handle, valid in one process only. ``Token`` owns one (closed once,
with ``CloseHandle``, through the ownership mechanism of ``_handle``). ``duplicate``
copies one into (or out of) another process with ``OpenProcess`` + ``DuplicateHandle``;
the opened process handle is closed whatever happens. ``take`` makes the owner of a
token read from a payload, once per process: a second read of the same payload would
make a second owner of the same handle (closed twice), so it is refused, saying why.
"""

from __future__ import annotations

import contextlib
import os
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


def take(value: int, package: str | None) -> Token:
    """The owner of a token read from a payload made for this process, once per value.

    The registry takes no lock: a finalizer (a forgotten token's) may run inside any
    allocation, and must not wait for a lock its own thread holds.
    """
    token = Token.own(value, package, None)  # library bound on first use
    if _taken.setdefault(value, token) is not token:
        token.detach()  # not ours: another ExportedContext here owns that handle
        raise ValueError(
            f"this payload's token ({value}) is already owned by an ExportedContext read "
            "from it in this process: a payload's token can be taken once (two owners "
            "would close it twice). Use that ExportedContext, or ask the sender for a "
            "new payload (for_process or for_any_process again)"
        )
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


def duplicate(lib: Any, from_pid: int, handle: int, to_pid: int) -> int:
    """``DuplicateHandle(DUPLICATE_SAME_ACCESS)`` of ``handle`` from one process to another.

    One of the two is this process; the other is opened with ``PROCESS_DUP_HANDLE``
    (not at all when both are this process). Returns the new handle's value, valid in
    ``to_pid``. The process handle is closed whatever happens; when the duplication
    failed, its error is the one raised.
    """
    me = os.getpid()
    current = call(lib, "GetCurrentProcess")
    other = to_pid if from_pid == me else from_pid
    opened = None
    if other != me:
        try:
            opened = call(lib, "OpenProcess", C.PROCESS_DUP_HANDLE, False, other)
        except OSError as exc:
            exc.strerror = (
                f"cannot open process {other} to duplicate the token "
                f"{'into' if other == to_pid else 'from'} it: {exc.strerror}. The process "
                "may not exist any more, or run as another user (PROCESS_DUP_HANDLE is "
                "needed on it)"
            )
            raise
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
    finally:
        if opened is not None:
            with contextlib.suppress(Exception):  # the duplication's own outcome is what matters
                call(lib, "CloseHandle", opened)
    return target.value or 0
