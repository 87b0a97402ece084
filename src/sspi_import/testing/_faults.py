"""``FaultInjector``: make chosen calls of a real SSPI provider fail, and count calls.

It wraps any provider ``use_library`` takes (secur32 by default on Windows, a path, a
loaded ``ctypes`` library, sspi-rs through ``find_sspi_rs()``, a ``FakeSspi``) and is
itself an ``SspiLibrary``: for each function it hands out a ctypes callback of the
very prototype the library declares (``PROTOTYPES[name].functype``). A call with a
failure pending returns that status without reaching the provider; every other call
is forwarded to the provider's own function pointer with the arguments exactly as
they came. Bare bindings (``EncryptMessage_bare``) resolve to the same symbol, so the
hot paths are covered too.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
from collections.abc import Callable
from ctypes import c_void_p
from typing import Any, TypeAlias

from .. import library as _library
from .._raw.functions import PROTOTYPES
from .._raw.status_codes import SEC_E_INTERNAL_ERROR
from ..errors import SspiUnavailableError
from ._names import KERNEL32, SIMULATED, SspiFunction, check_function, queue_failure, signed

__all__ = ["FaultInjector", "FaultInjectorFactory", "Library", "default_library"]

Library: TypeAlias = str | os.PathLike[str] | ctypes.CDLL | _library.SspiLibrary
"""What ``FaultInjector`` (and ``use_library``) takes: a path, a loaded ``ctypes``
library, or an ``SspiLibrary`` such as ``FakeSspi``."""


def default_library() -> str:
    """The path or name of the provider the library would load by default.

    ``SSPI_IMPORT_LIBRARY`` when set, else ``secur32`` on Windows; raises
    ``SspiUnavailableError`` (saying what to do) where there is none.
    """
    path = os.environ.get(_library.ENV_VAR)
    if path:
        return path
    if sys.platform == "win32":
        return "secur32"
    raise SspiUnavailableError(
        "no real SSPI provider here: this is not Windows and "
        f"{_library.ENV_VAR} is not set. Give FaultInjector a library, e.g. "
        "FaultInjector(sspi_import.find_sspi_rs()) with the sspilib wheel installed"
    )


class FaultInjector:
    """A real SSPI provider with failures on demand: ``fail(name, status, times)``.

    ::

        with FaultInjector() as faults:          # secur32 on Windows, installed
            faults.fail("AcceptSecurityContext", "SEC_E_INSUFFICIENT_MEMORY")
            with pytest.raises(sspi_import.InsufficientMemoryError):
                sspi_import.loopback("NTLM")
            assert faults.calls("AcceptSecurityContext") == 1

    ``library`` is what ``use_library`` takes; ``None`` is the default provider
    (``default_library()``). As a context manager it installs itself as the library
    and puts the previous one back on exit; or pass it to ``use_library``.

    An injected failure of a kernel32 function (``CloseHandle``, ``DuplicateHandle``,
    ``OpenProcess``) returns ``FALSE``/``NULL`` as kernel32 does; on Windows the thread's
    last error is then ``ERROR_GEN_FAILURE`` (31). Calls are counted whether they fail
    or are forwarded; a function the provider lacks is not offered (``None``), exactly
    as the provider itself would answer. Should a forwarded call raise in Python (ctypes
    reports an access violation in the provider as ``OSError``), the library gets
    ``SEC_E_INTERNAL_ERROR`` and the exception itself is kept in ``errors`` and raised
    by ``check()`` and on leaving the ``with`` block.
    """

    def __init__(self, library: Library | None = None) -> None:
        target = default_library() if library is None else library
        self._api = _library.load(target)
        self.description: str = f"FaultInjector({self._api.description})"
        """What is wrapped, for messages."""
        self._lock = threading.Lock()
        self._calls: dict[str, int] = dict.fromkeys(SIMULATED, 0)
        self._failures: dict[str, list[int]] = {}
        self._callbacks: dict[str, Any] = {}
        self._addresses: dict[str, int | None] = {}
        self._previous: list[_library.Api | None] = []
        self.errors: list[BaseException] = []
        """What the provider's own functions raised while a call was forwarded (an
        access violation ctypes reports as ``OSError``, an interrupt). Such a call
        returned ``SEC_E_INTERNAL_ERROR`` (``FALSE`` for kernel32 functions) to the
        library, never a garbage status; ``check()`` and leaving the ``with`` block
        raise the first of them as itself."""

    def __repr__(self) -> str:
        """What is wrapped, never a secret."""
        return f"<{self.description}>"

    # The SspiLibrary protocol ----------------------------------------------------

    def sspi_function_address(self, name: str) -> int | None:
        """The address of the forwarding callback for ``name`` (``None`` if absent)."""
        with self._lock:
            if name in self._addresses:
                return self._addresses[name]
            address = self._make(name)
            self._addresses[name] = address
            return address

    def _make(self, name: str) -> int | None:
        proto = PROTOTYPES.get(name)
        if proto is None or name not in SIMULATED:
            return None
        try:
            real = getattr(self._api, name)
        except SspiUnavailableError:
            return None
        callback = proto.functype(self._forwarder(name, real))
        self._callbacks[name] = callback  # kept alive as long as the injector
        return ctypes.cast(callback, c_void_p).value

    def _forwarder(self, name: str, real: Callable[..., Any]) -> Callable[..., int]:
        kernel = name in KERNEL32
        set_error = _set_last_error if kernel else None

        def forward(*args: Any) -> int:
            with self._lock:
                self._calls[name] += 1
                pending = self._failures.get(name)
                status = pending.pop(0) if pending else None
            if status is not None:
                if set_error is not None:
                    set_error(_ERROR_GEN_FAILURE)
                return 0 if kernel else status
            try:
                result = real(*args)
                if set_error is not None:  # what the real call left, past our Python code
                    set_error(_last_error())
                return 0 if result is None else int(result)
            except BaseException as exc:  # nothing may escape into ctypes (garbage status)
                with contextlib.suppress(BaseException):  # out of memory: nothing to do
                    with self._lock:
                        self.errors.append(exc)
                    if set_error is not None:
                        set_error(_ERROR_GEN_FAILURE)
                return 0 if kernel else signed(SEC_E_INTERNAL_ERROR)

        forward.__name__ = f"faults_{name}"
        return forward

    # Control ---------------------------------------------------------------------

    def fail(self, function: SspiFunction, status: int | str, times: int = 1) -> None:
        """Make the next ``times`` calls of ``function`` return ``status``, unforwarded.

        ``status`` is a failure code (signed or unsigned 32-bit, severity bit set) or a
        ``SEC_E_*`` name; anything else, or a function the library never calls, is
        refused with ``ValueError`` (``TypeError`` for the wrong type).
        """
        queue_failure(self._failures, self._lock, function, status, times, "FaultInjector")

    def calls(self, function: SspiFunction) -> int:
        """How many times ``function`` was called through the injector."""
        check_function(function, "FaultInjector")
        with self._lock:
            return self._calls[function]

    def pending(self, function: SspiFunction) -> int:
        """How many injected failures of ``function`` have not happened yet."""
        check_function(function, "FaultInjector")
        with self._lock:
            return len(self._failures.get(function, ()))

    def __enter__(self) -> FaultInjector:
        """Install the injector as the library; the previous one comes back on exit."""
        self._previous.append(_library.swap(_library.load(self, self.description)))
        return self

    def check(self) -> None:
        """Raise the first exception a forwarded call raised (see ``errors``), as itself.

        The call itself returned ``SEC_E_INTERNAL_ERROR`` to the library, whose
        ``SspiError`` said nothing of the cause; this is the cause. The list is emptied.
        """
        with self._lock:
            errors, self.errors = self.errors, []
        if errors:
            raise errors[0]

    def __exit__(self, *exc_info: object) -> None:
        """Put the previous library back; then ``check()`` (a forwarded call that raised)."""
        _library.swap(self._previous.pop())
        self.check()


FaultInjectorFactory: TypeAlias = Callable[[Library], FaultInjector]
"""The ``sspi_faults_factory`` fixture: installs a ``FaultInjector`` over the library
given, for the test, and returns it. Annotate the fixture with it::

    def test_x(sspi_faults_factory: FaultInjectorFactory) -> None: ...
"""

_ERROR_GEN_FAILURE = 31


def _set_last_error(code: int) -> None:
    """Set the thread's Win32 last error (Windows only; a no-op elsewhere)."""
    if _SET_LAST_ERROR is not None:
        _SET_LAST_ERROR(code)


def _load_set_last_error() -> Callable[[int], None] | None:
    if sys.platform != "win32":
        return None
    else:  # not a fall-through: mypy --platform win32 would call it unreachable
        # Not use_last_error: this must set the real thread value that the caller's
        # ctypes reads right after the callback returns.
        function: Callable[[int], None] = ctypes.WinDLL("kernel32").SetLastError
        function.argtypes = (ctypes.c_uint32,)  # type: ignore[attr-defined]
        function.restype = None  # type: ignore[attr-defined]
        return function


_SET_LAST_ERROR = _load_set_last_error()


def _last_error() -> int:
    """The last error ctypes saved after a ``use_last_error`` call (0 off Windows)."""
    getter: Callable[[], int] | None = getattr(ctypes, "get_last_error", None)
    return getter() if getter is not None else 0
