"""kernel32 as the hand-off uses it: process handles and token handles.

``GetCurrentProcess``, ``OpenProcess``, ``DuplicateHandle`` and ``CloseHandle`` return
``BOOL``/``HANDLE`` (0 on failure), not a status, and leave the cause as the thread's
last error, as kernel32 does (on Windows, where ctypes reads it; elsewhere ctypes has no
last error, and the library finds the cause itself). A token duplicated into another
process is recorded in ``sent_tokens``; its value there is accepted as a token when
that process's fake sees it. A token pulled from another process is duplicated only if
that process has it open (``_board``): the exporter may have closed it too early.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from .._raw import constants as C  # noqa: N812 - C names, read like the header
from . import _board
from ._args import POINTER_MASK, kernel_failure
from ._state import FOREIGN_TOKEN_BASE, LOCAL_TOKEN_BASE, PROCESS_HANDLE_BASE, State

__all__ = ["Kernel32"]

PSEUDO_PROCESS = POINTER_MASK  # GetCurrentProcess() is (HANDLE)-1


class Kernel32(State):
    """The kernel32 functions of ``FakeSspi``."""

    # kernel32 -------------------------------------------------------------------

    def _GetCurrentProcess(self) -> int:  # noqa: N802 - C name
        return PSEUDO_PROCESS

    def _OpenProcess(self, access: int, inherit: int, pid: int) -> int:  # noqa: N802
        if not 0 < pid <= 0x7FFF_FFFF:  # a pid_t: os.kill would overflow past it
            return kernel_failure(C.ERROR_INVALID_PARAMETER)  # Windows' answer for no such pid
        if sys.platform != "win32" and pid != os.getpid():  # os.kill on Windows terminates
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return kernel_failure(C.ERROR_INVALID_PARAMETER)
            except PermissionError:  # another user's process: no PROCESS_DUP_HANDLE on it
                return kernel_failure(C.ERROR_ACCESS_DENIED)
        value = PROCESS_HANDLE_BASE + 4 * self._new_id("process")
        self._processes[value] = pid
        return value

    def _process_pid(self, handle: int | None, function: str) -> int:
        value = (handle or 0) & POINTER_MASK
        if value == PSEUDO_PROCESS:
            return os.getpid()
        pid = self._processes.get(value)
        if pid is None:
            raise self._misuse(function, "unknown process handle", value)
        return pid

    def _CloseHandle(self, handle: int | None) -> int:  # noqa: N802 - C name
        value = (handle or 0) & POINTER_MASK
        if value == PSEUDO_PROCESS:
            return 1
        if value in self._processes:
            del self._processes[value]
            return 1
        self._live_token(value, "CloseHandle")
        self._drop_token(value)
        return 1

    def _DuplicateHandle(  # noqa: N802 - C name
        self,
        source_process: int | None,
        source: int | None,
        target_process: int | None,
        p_target: Any,
        access: int,
        inherit: int,
        options: int,
    ) -> int:
        source_pid = self._process_pid(source_process, "DuplicateHandle")
        pid = self._process_pid(target_process, "DuplicateHandle")
        if not p_target:
            return 0
        if source_pid != os.getpid():  # pulled from another process's fake: unseen here
            if pid != os.getpid() or not source:
                return 0
            if not _board.is_open(source_pid, source & POINTER_MASK, LOCAL_TOKEN_BASE):
                return kernel_failure(C.ERROR_INVALID_HANDLE)  # closed there before the pull
            p_target[0] = self._new_token(f"a token duplicated from process {source_pid}")
            return 1
        value = self._live_token((source or 0) & POINTER_MASK, "DuplicateHandle")
        user = self._tokens[value]
        if pid == os.getpid():
            p_target[0] = self._new_token(user)
        else:
            copy = FOREIGN_TOKEN_BASE + 4 * self._new_id("sent")
            self._sent_tokens[copy] = pid
            p_target[0] = copy
        if options & C.DUPLICATE_CLOSE_SOURCE:
            self._drop_token(value)
        return 1
