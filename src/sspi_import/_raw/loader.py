"""Which SSPI library the calls go to: loaded lazily, privately, and replaceable.

Nothing is loaded at import, so ``import sspi_import`` works on every OS. The first
call loads, in order: the library installed with ``use_library``; the path in
``SSPI_IMPORT_LIBRARY``; ``secur32.dll`` on Windows. The DLL is never taken from the
shared ``ctypes.windll``, so other code's prototypes cannot clash with ours.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from typing import Any, Protocol, runtime_checkable

from .functions import PROTOTYPES, Proto

__all__ = ["ENV_VAR", "Api", "SspiLibrary", "SspiUnavailableError", "api", "load", "swap"]

ENV_VAR = "SSPI_IMPORT_LIBRARY"


class SspiUnavailableError(OSError):
    """No SSPI library is loaded, or the loaded one lacks the function called.

    The message says how to provide one: ``secur32.dll`` on Windows, or any
    SSPI-compatible library through ``SSPI_IMPORT_LIBRARY`` or ``use_library``.
    """

    # Declared here, where libraries are loaded, so that the raw layer imports nothing
    # public; sspi_import.errors re-exports it, and that is the name it pickles under.
    __module__ = "sspi_import.errors"


_HOW_TO = (
    "sspi_import needs an SSPI library. On Windows it uses secur32.dll by itself. "
    "Elsewhere, point it at an SSPI-compatible library: set the environment variable "
    f"{ENV_VAR}=/path/to/library, or call sspi_import.use_library(path). On Linux and "
    "macOS, the sspilib wheel bundles one (sspi-rs): pip install sspilib, then use "
    "sspi_import.find_sspi_rs(). For tests without Windows, use the simulated provider "
    "sspi_import.testing.FakeSspi."
)


@runtime_checkable
class SspiLibrary(Protocol):
    """A provider that hands out the address of each SSPI function it implements.

    ``sspi_import.testing.FakeSspi`` is one; any object with this method can be given
    to ``use_library``. Return ``None`` for a function the provider lacks.
    """

    def sspi_function_address(self, name: str) -> int | None:
        """Return the address of a C function with the SSPI prototype of ``name``."""
        ...


class Api:
    """One loaded library; each prototype is bound on first use and then cached.

    Attribute access is the hot path: after the first call, ``api.ImportSecurityContextW``
    is a plain instance attribute holding the ctypes function pointer.
    """

    def __init__(self, source: Any, description: str) -> None:
        self.source = source
        self.description = description
        self._kernel32: Any = None

    def __repr__(self) -> str:
        return f"<sspi_import library {self.description}>"

    def __getattr__(self, name: str) -> Any:
        proto = PROTOTYPES.get(name)
        if proto is None:
            raise AttributeError(name)
        fn = self._bind(proto)
        setattr(self, name, fn)
        return fn

    def has(self, name: str) -> bool:
        """Whether the library (or kernel32 for the kernel32 calls) provides ``name``."""
        try:
            getattr(self, name)
        except SspiUnavailableError:
            return False
        return True

    def _bind(self, proto: Proto) -> Any:
        """``proto`` bound to this library (or to kernel32, for the kernel32 calls)."""
        fn = self._resolve(proto.symbol, proto.functype, self.source)
        if fn is None and proto.kernel32 and sys.platform == "win32":
            if self._kernel32 is None:
                self._kernel32 = _open_dll("kernel32")
            fn = self._resolve(proto.symbol, proto.functype, self._kernel32)
        if fn is None:
            raise SspiUnavailableError(
                f"{self.description} does not export {proto.symbol}; it cannot be used "
                "for this call. Use Windows' secur32.dll or another SSPI library "
                "(sspi_import.use_library)."
            )
        fn.__name__ = proto.symbol
        return fn

    @staticmethod
    def _resolve(name: str, functype: type[Any], source: Any) -> Any:
        if isinstance(source, SspiLibrary):
            address = source.sspi_function_address(name)
            return None if not address else functype(address)
        try:
            return functype((name, source))
        except AttributeError:
            return None


_lock = threading.Lock()
_api: Api | None = None


def _open_dll(name: str) -> Any:
    if sys.platform == "win32":
        return ctypes.WinDLL(name, use_last_error=True)
    else:  # an else, not a fall-through: mypy --platform win32 would call it unreachable
        return ctypes.CDLL(name)


def load(library: object, description: str | None = None) -> Api:
    """Make an ``Api`` over a path, a loaded ctypes library or an ``SspiLibrary``."""
    if isinstance(library, (str, os.PathLike)):
        path = os.fspath(library)
        if not isinstance(path, str) or not path:
            raise TypeError("the library path must be a non-empty str or os.PathLike")
        try:
            source: Any = _open_dll(path)
        except OSError as exc:
            raise SspiUnavailableError(
                f"cannot load the SSPI library {path!r}: {exc}. Check the path; " + _HOW_TO
            ) from None
        description = description or path
    elif isinstance(library, (ctypes.CDLL, SspiLibrary)):
        source = library
        description = description or getattr(library, "_name", None) or repr(library)
    else:
        raise TypeError(
            "use_library() takes a path (str or os.PathLike), a loaded ctypes library "
            "or an object with sspi_function_address(name), "
            f"not {type(library).__name__}"
        )
    result = Api(source, description)
    if not result.has("FreeContextBuffer"):
        raise SspiUnavailableError(
            f"{description} does not look like an SSPI library: it exports no "
            "FreeContextBuffer. " + _HOW_TO
        )
    return result


def _load_default() -> Api:
    global _api
    with _lock:
        if _api is None:
            path = os.environ.get(ENV_VAR)
            if path:
                _api = load(path, f"{path} (from {ENV_VAR})")
            elif sys.platform == "win32":
                _api = load("secur32", "secur32.dll")
            else:
                raise SspiUnavailableError("no SSPI library is loaded. " + _HOW_TO)
        return _api


def api() -> Api:
    """The current library, loaded on first use; raises ``SspiUnavailableError``."""
    current = _api
    return current if current is not None else _load_default()


def swap(new: Api | None) -> Api | None:
    """Install ``new`` (``None``: back to the default search) and return the previous one."""
    global _api
    with _lock:
        previous, _api = _api, new
    return previous
