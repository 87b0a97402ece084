"""Which simulated tokens each process has open, for another process's ``DuplicateHandle``.

Windows refuses to duplicate a handle that is not open in its process
(``ERROR_INVALID_HANDLE``): a worker that pulls the token after the exporter closed its
export gets that. Each process's ``FakeSspi`` is its own object, so to answer the same
way a fake records the tokens open in its process where another process can read them:
a file per process, ``<temp>/sspi-import-fake-<uid>/<pid>``, one byte per token number
(how many of this process's fakes have that number open), mapped into memory, so
opening or closing a token costs a byte written, not a system call. A fake asked to pull
a token from process ``pid`` reads that byte.

Token numbers are the process's, not one fake's (``new_number``): Windows never gives an
open handle's value to another handle, and a token one fake leaked must not make another
fake's closed token read as open. A number is recorded at ``number % SLOTS``, so a token
leaked 65,536 tokens earlier at the same slot would do that; a process without a file
(none could be made) is not known, and its tokens read as open, as before this record.

The file is made with the process's first token and removed when the process exits
normally; the next process that makes one removes those of processes that died. A fork
child starts its own (the parent's stays the parent's).
"""

from __future__ import annotations

import atexit
import contextlib
import mmap
import os
import sys
import tempfile
import threading

__all__ = ["SLOTS", "closed", "is_open", "issued", "new_number", "opened"]

SLOTS = 1 << 16
"""Token numbers recorded (a byte each: the file is 64 KiB, sparse where it can be)."""

_lock = threading.Lock()
_next_number = 1  # the process's next token number (a fork child goes on from its parent's)
_board: mmap.mmap | None = None  # this process's, made with its first token
_owner = 0  # the pid that made _board; after a fork the child makes its own
_path = ""
_unusable = False  # the directory could not be made safely: record nothing


def _directory() -> str | None:
    """The per-user directory of the records, made private; ``None`` if it is not ours."""
    uid = os.getuid() if hasattr(os, "getuid") else None
    name = "sspi-import-fake" if uid is None else f"sspi-import-fake-{uid}"
    path = os.path.join(tempfile.gettempdir(), name)
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.stat(path)
    except OSError:
        return None
    if uid is not None and (info.st_uid != uid or info.st_mode & 0o022):
        return None  # someone else's, or writable by others: trust nothing in it
    return path


def _remove_the_dead(directory: str) -> None:
    """Remove the records of processes that died without removing their own."""
    with contextlib.suppress(OSError):
        names = os.listdir(directory)
        for name in names:
            if not name.isdigit() or int(name) == os.getpid():
                continue
            if sys.platform != "win32":
                try:
                    os.kill(int(name), 0)
                    continue  # alive (or another user's: not ours to judge)
                except ProcessLookupError:
                    pass
                except OSError:
                    continue
            # Windows: a live process keeps its record mapped, and a mapped file cannot
            # be removed, so the removal itself tells the dead from the living.
            with contextlib.suppress(OSError):
                os.remove(os.path.join(directory, name))


def _mine() -> mmap.mmap | None:
    """The record of this process, made on first use; ``None`` if none can be made."""
    global _board, _owner, _path, _unusable
    pid = os.getpid()
    if _board is not None and _owner == pid:
        return _board
    if _unusable:
        return None
    directory = _directory()
    if directory is None:
        _unusable = True
        return None
    _remove_the_dead(directory)
    path = os.path.join(directory, str(pid))
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o600)
        try:
            os.ftruncate(fd, SLOTS)
            board = mmap.mmap(fd, SLOTS)
        finally:
            os.close(fd)
    except OSError:
        _unusable = True
        return None
    _board, _owner, _path = board, pid, path
    if not _registered:
        _register()
    return board


_registered = False


def _register() -> None:
    global _registered
    _registered = True
    atexit.register(_remove)
    if hasattr(os, "register_at_fork"):  # the child's record is its own
        os.register_at_fork(after_in_child=_forget)


def _forget() -> None:
    """In a fork child: the parent's record is not ours (left mapped, never written)."""
    global _board, _owner, _unusable
    _board, _owner, _unusable = None, 0, False


def _remove() -> None:
    """At exit: unmap and remove this process's record (not a fork parent's)."""
    global _board
    board = _board
    if board is None or _owner != os.getpid():
        return
    _board = None
    with contextlib.suppress(OSError, ValueError):
        board.close()
        os.remove(_path)


def new_number() -> int:
    """A token number no fake of this process has given out (the handle is ``base + 4n``)."""
    global _next_number
    with _lock:
        number = _next_number
        _next_number = number + 1
    return number


def issued() -> int:
    """How many token numbers this process's fakes have given out."""
    return _next_number - 1


def _slot(value: int, base: int) -> int | None:
    number, rest = divmod(value - base, 4)
    return number % SLOTS if not rest and number > 0 else None


def opened(value: int, base: int) -> None:
    """Record that this process opened the token ``value`` (numbered from ``base``)."""
    slot = _slot(value, base)
    if slot is None:
        return
    with _lock:
        board = _mine()
        if board is not None and board[slot] < 255:
            board[slot] += 1


def closed(value: int, base: int) -> None:
    """Record that this process closed the token ``value``."""
    slot = _slot(value, base)
    if slot is None:
        return
    with _lock:
        board = _mine()
        if board is not None and board[slot] > 0:
            board[slot] -= 1


def is_open(pid: int, value: int, base: int) -> bool:
    """Whether process ``pid`` has the token ``value`` open (``True`` when not known)."""
    slot = _slot(value, base)
    directory = None if _unusable else _directory()
    if slot is None or directory is None:
        return True
    try:
        with open(os.path.join(directory, str(pid)), "rb") as record:
            record.seek(slot)
            count = record.read(1)
    except OSError:
        return True  # no record: that process could not make one
    return count != b"\x00"
