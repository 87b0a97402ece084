"""The guard around every simulated function: counting, injected failures, no escapes.

Each callback takes the fake's lock, counts the call, returns an injected failure if
one is pending (without running the implementation), and otherwise runs it. Nothing
raised inside may escape into ctypes: a ``FaultError`` becomes its status, anything
else ``SEC_E_INTERNAL_ERROR`` (``FALSE``/``NULL`` for kernel32) plus a line in
``internal_errors``.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable
from typing import Any

from .._raw import constants as C  # noqa: N812 - C names, read like the header
from .._raw.status_codes import SEC_E_INTERNAL_ERROR
from ._args import FaultError, kernel_failure
from ._names import KERNEL32, SIMULATED, SspiFunction, check_function, queue_failure, signed
from ._state import State

__all__ = ["Guard"]


class Guard(State):
    """Counting and fault injection for ``FakeSspi``."""

    def _init_guard(self) -> None:
        self._calls: dict[str, int] = dict.fromkeys(SIMULATED, 0)
        self._failures: dict[str, list[int]] = {}

    def calls(self, function: SspiFunction) -> int:
        """How many times ``function`` was called (injected failures included)."""
        check_function(function, "FakeSspi")
        return self._calls[function]

    def fail(self, function: SspiFunction, status: int | str, times: int = 1) -> None:
        """Make the next ``times`` calls of ``function`` return ``status`` and do nothing.

        ``status`` is a failure code (signed or unsigned 32-bit, severity bit set) or a
        ``SEC_E_*`` name; success and informational codes (``0``, ``5``,
        ``SEC_I_CONTINUE_NEEDED``) are refused with ``ValueError``, as are names the
        library never calls. Kernel32 functions (``CloseHandle``, ``DuplicateHandle``,
        ``OpenProcess``) return ``FALSE``/``NULL`` instead, whatever the status.
        """
        queue_failure(self._failures, self._lock, function, status, times, "FakeSspi")

    def _guard(self, name: str, impl: Callable[..., int]) -> Callable[..., int]:
        kernel = name in KERNEL32

        def callback(*args: Any) -> int:
            try:
                with self._lock:
                    self._calls[name] += 1
                    pending = self._failures.get(name)
                    if pending:
                        status = pending.pop(0)
                        return 0 if kernel else status
                    try:
                        result = int(impl(*args))
                    except FaultError as fault:  # a misuse: a handle that is not open
                        if kernel:
                            return kernel_failure(C.ERROR_INVALID_HANDLE)  # as Windows says
                        return signed(fault.status)
                    # kernel32 returns handles as they are; SSPI its status, signed as in C
                    return result if kernel else signed(result)
            except BaseException:  # nothing may escape into ctypes
                with contextlib.suppress(BaseException):  # out of memory: nothing to do
                    self.internal_errors.append(f"{name}: {traceback.format_exc()}")
                return 0 if kernel else signed(SEC_E_INTERNAL_ERROR)

        callback.__name__ = f"fake_{name}"
        return callback
