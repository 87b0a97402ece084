"""A provider wrapped function by function: every call counted, chosen calls held.

``Wrapped(library)`` is an ``SspiLibrary`` over any provider ``use_library`` takes (a
``FakeSspi``, sspi-rs's path): for each function it hands out a ctypes callback of the
declared prototype that counts the call and forwards it, arguments as they came, to
the provider's own function. Bare bindings (``EncryptMessage_bare``) share their
symbol, so the message hot path goes through it too.

``hold(name)`` makes the next call of ``name`` wait inside the wrapper, *before* it
reaches the provider, until the test releases it: the test then knows a thread is in
the middle of that call (holding the owner's lock, or a pin) and can order what it
does next against it with events, not sleeps. The hold waits at most ``TIMEOUT``
seconds, so a test that forgets to release it fails instead of hanging.

The wait is outside the provider: a ``FakeSspi`` (whose own lock serializes its
functions) and sspi-rs stay free for the other threads meanwhile.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from collections import Counter
from collections.abc import Callable
from ctypes import c_void_p
from typing import Any

from sspi_import import library
from sspi_import._raw.functions import PROTOTYPES
from sspi_import._raw.status_codes import SEC_E_INTERNAL_ERROR

TIMEOUT = 10.0  # seconds: a held call (or a wait for one) never lasts longer


class Hold:
    """One held call: ``entered`` is set when it arrives, ``release()`` lets it go on."""

    def __init__(self, function: str) -> None:
        self.function = function
        self.entered = threading.Event()
        self._proceed = threading.Event()
        self.timed_out = False
        self.thread: int | None = None  # the thread whose call is held

    def wait_entered(self) -> None:
        """Wait until the held call has arrived (``AssertionError`` after ``TIMEOUT``)."""
        if not self.entered.wait(TIMEOUT):
            raise AssertionError(f"no call of {self.function} arrived in {TIMEOUT} s")

    def release(self) -> None:
        """Let the held call (and any later one) go on to the provider."""
        self._proceed.set()

    def _wait(self) -> None:
        self.thread = threading.get_ident()
        self.entered.set()
        if not self._proceed.wait(TIMEOUT):
            self.timed_out = True


class Wrapped:
    """``library`` with every call counted and chosen calls held (see the module)."""

    def __init__(self, source: object) -> None:
        self._api = library.load(source)
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.threads: dict[str, list[int]] = {}
        self._holds: dict[str, list[Hold]] = {}
        self._before: dict[str, Callable[..., None]] = {}
        self._callbacks: list[Any] = []
        self._addresses: dict[str, int | None] = {}
        self.errors: list[BaseException] = []

    def sspi_function_address(self, name: str) -> int | None:
        with self._lock:
            if name not in self._addresses:
                self._addresses[name] = self._make(name)
            return self._addresses[name]

    def _make(self, name: str) -> int | None:
        proto = PROTOTYPES.get(name)
        if proto is None or proto.symbol != name or not self._api.has(name):
            return None
        real = getattr(self._api, name)
        failed = 0 if proto.kernel32 else SEC_E_INTERNAL_ERROR - (1 << 32)  # signed, as in C

        def forward(*args: Any) -> int:
            try:
                with self._lock:
                    self.counts[name] += 1
                    self.threads.setdefault(name, []).append(threading.get_ident())
                    holds = self._holds.get(name)
                    hold = holds.pop(0) if holds else None
                    before = self._before.get(name)
                if before is not None:
                    before(*args)
                if hold is not None:
                    hold._wait()
                result = real(*args)
                return 0 if result is None else int(result)
            except BaseException as exc:  # nothing may escape into ctypes
                with contextlib.suppress(BaseException):
                    self.errors.append(exc)
                return failed

        callback = proto.functype(forward)
        self._callbacks.append(callback)  # alive as long as the wrapper
        return ctypes.cast(callback, c_void_p).value

    def install(self) -> Wrapped:
        """Make this the library every following call goes to."""
        library.swap(library.load(self, f"Wrapped({self._api.description})"))
        return self

    def hold(self, function: str) -> Hold:
        """Hold the next call of ``function`` before it reaches the provider."""
        hold = Hold(function)
        with self._lock:
            self._holds.setdefault(function, []).append(hold)
        return hold

    def before(self, function: str, hook: Callable[..., None] | None) -> None:
        """Run ``hook(*args)`` in every call of ``function``, before it is forwarded."""
        with self._lock:
            if hook is None:
                self._before.pop(function, None)
            else:
                self._before[function] = hook

    def count(self, *functions: str) -> int:
        """How many calls of these functions have been made so far."""
        with self._lock:
            return sum(self.counts[name] for name in functions)


def at_once(action: Callable[[], object], threads: int = 8) -> None:
    """Run ``action`` in ``threads`` threads released together by a barrier; join them."""
    barrier = threading.Barrier(threads)

    def run() -> None:
        barrier.wait()
        action()

    started = [threading.Thread(target=run) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join()
