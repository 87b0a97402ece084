"""Deterministic interrupts: a ``KeyboardInterrupt`` at every point CPython can deliver one.

A signal handler (Ctrl-C) or an asynchronous exception does not run between any two
bytecodes: CPython handles it at an *eval breaker* check, which happens when a function
starts, right after a call returns (C functions included: a ctypes call into the DLL
is where a Ctrl-C most often lands), and at a loop's backward jump. ``Interrupter``
raises ``KeyboardInterrupt`` at the N-th such point inside the library's own code (a
``sys.settrace`` opcode tracer), so a test can interrupt an operation at each point in
turn and check what it promises afterwards (no lock held, no pin stuck, nothing freed
twice, nothing leaked once the garbage is collected).

``LineInterrupter`` raises at the N-th *line* instead, a coarser model that also hits
places no signal can reach (between two statements with no call between them). It
skips the one place where tracing itself breaks Python: a trace function that raises at
the line event of a ``with`` block's exit skips ``__exit__``. No signal lands there: since
3.10 (bpo-29988) the eval breaker is checked only after calls and on backward jumps, and
the instructions before the ``__exit__`` call are neither.
"""

from __future__ import annotations

import dis
import os
import pathlib
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import sspi_import

PACKAGE = str(pathlib.Path(sspi_import.__file__).parent)
_CALLS = {
    "CALL",
    "CALL_FUNCTION",
    "CALL_FUNCTION_KW",
    "CALL_FUNCTION_EX",
    "CALL_METHOD",
    "CALL_KW",
}
_BACKWARD = {"JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT", "JUMP_ABSOLUTE"}


def _ours(frame: types.FrameType) -> bool:
    """Library code the operation runs: not the simulated provider (a DLL has no Python
    frames a signal could land in), nor a finalizer the garbage collector runs."""
    code = frame.f_code
    if not code.co_filename.startswith(PACKAGE) or _provider(code):
        return False
    caller = frame.f_back
    while caller is not None:
        if _provider(caller.f_code) or caller.f_code.co_name == "__del__":
            return False
        caller = caller.f_back
    return code.co_name != "__del__"


def _provider(code: types.CodeType) -> bool:
    return os.path.join(PACKAGE, "testing", "") in code.co_filename  # "\\" on Windows


class Interrupter:
    """Raise ``KeyboardInterrupt`` at the ``at``-th eval-breaker point of library code."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.seen = 0
        self.fired = False
        self.where = ""
        self._opnames: dict[types.CodeType, dict[int, str]] = {}
        self._last: dict[int, str] = {}  # frame id -> the opcode executed last

    def _opname(self, code: types.CodeType, offset: int) -> str:
        table = self._opnames.get(code)
        if table is None:
            table = {i.offset: i.opname for i in dis.get_instructions(code)}
            self._opnames[code] = table
        return table.get(offset, "")

    def _point(self, frame: types.FrameType, what: str) -> None:
        if self.fired:
            return
        self.seen += 1
        if self.seen == self.at:
            self.fired = True
            self.where = f"{frame.f_code.co_name}:{frame.f_lineno} ({what})"
            raise KeyboardInterrupt(f"injected at {self.where}")

    def _trace(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        if event == "call" and not _ours(frame):
            return None
        if event == "call":
            frame.f_trace_opcodes = True
            frame.f_trace_lines = False
            self._last[id(frame)] = ""
            self._point(frame, "function entry")
            return self._trace
        if event == "opcode":
            previous = self._last.get(id(frame), "")
            self._last[id(frame)] = self._opname(frame.f_code, frame.f_lasti)
            if previous in _CALLS or previous in _BACKWARD:
                self._point(frame, f"after {previous}")
        elif event == "return":
            self._last.pop(id(frame), None)
        return self._trace

    def __enter__(self) -> Interrupter:
        sys.settrace(self._trace)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.settrace(None)


class LineInterrupter(Interrupter):
    """Raise at the ``at``-th line event of library code (except a ``with`` exit line).

    Also skipped: a line event at a ``NOP`` (a ``try:`` line, since 3.11). It cannot raise,
    so the compiler leaves it out of the exception table: an exception a tracer raises
    there skips the handlers around it (a ``with``'s ``__exit__`` included). No signal
    lands on it: a ``NOP`` is not an eval-breaker point.
    """

    def _trace(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        if event == "call" and not _ours(frame):
            return None
        if event == "call":
            frame.f_trace_lines = True
            return self._trace
        if event == "line" and not self._with_exit(frame) and not self._nop(frame):
            self._point(frame, "line")
        return self._trace

    def _nop(self, frame: types.FrameType) -> bool:
        return self._opname(frame.f_code, frame.f_lasti) == "NOP"

    def _with_exit(self, frame: types.FrameType) -> bool:
        # A line event at the first of the instructions that call a with-statement's __exit__.
        names = [self._opname(frame.f_code, frame.f_lasti + 2 * i) for i in range(4)]
        return names[:1] == ["LOAD_CONST"] and _exits(names)


def _exits(names: list[str]) -> bool:
    """Whether these opcodes start a with-statement's exit: ``__exit__(None, None, None)``."""
    if sys.version_info < (3, 11):
        return names == ["LOAD_CONST", "DUP_TOP", "DUP_TOP", "CALL_FUNCTION"]
    return names[:3] == ["LOAD_CONST", "LOAD_CONST", "LOAD_CONST"]


def every_point(
    operation: Callable[[], object],
    check: Callable[[Interrupter], None],
    *,
    kind: type[Interrupter] = Interrupter,
    setup: Callable[[], Callable[[], object]] | None = None,
    limit: int = 10_000,
) -> Iterator[Interrupter]:
    """Run ``operation`` interrupted at point 1, 2, ... until it runs to its end.

    After each run, ``check(interrupter)`` verifies the promises. Yields every
    interrupter (the last one did not fire: the operation completed). With ``setup``,
    each run calls it first, untraced, and interrupts the callable it returns instead
    (one handshake step, its earlier steps made anew for every run). The operation runs
    once untraced first, so that what happens only once (binding a function on first
    use) does not shift the points from one run to the next.
    """

    def target() -> Callable[[], object]:
        return operation if setup is None else setup()

    target()()
    for at in range(1, limit):
        interrupter = kind(at)
        run = target()
        try:
            with interrupter:
                run()
        except KeyboardInterrupt:
            if not interrupter.fired:
                raise
        check(interrupter)
        yield interrupter
        if not interrupter.fired:
            return
    raise AssertionError(f"the operation was interrupted {limit} times and never completed")
