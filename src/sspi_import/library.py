"""Which SSPI library the calls go to: ``use_library``, ``find_sspi_rs``, ``SspiLibrary``.

Nothing is loaded at import, so ``import sspi_import`` works on every OS. The first call
loads, in order: the library installed with ``use_library``; the path in the
``SSPI_IMPORT_LIBRARY`` environment variable; ``secur32.dll`` on Windows. Without any,
the call raises ``SspiUnavailableError`` saying what to do.

Every call goes through the ``Api`` of the library it was made with, and every result
is checked as the prototype table declares it (``call``, and the owners' own call
helpers in ``_handle``): there is no unchecked way to call.

A library that has its own logger honours it at load: sspi-rs writes why a call failed
to the file ``SSPI_LOG_PATH`` names only once ``RustSspiSetupLogger`` has run, so when
that variable is set, loading sspi-rs runs it (once per process and library;
docs/debugging.md).
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from . import _log
from ._raw.functions import PROTOTYPES, Proto
from ._raw.loader import ENV_VAR as ENV_VAR  # re-exported: tests and the CLI name it
from ._raw.loader import bind, open_dll, provides_addresses
from .errors import CHECKS, STATUS_FUNCTIONS, SspiUnavailableError, watch_logging

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["SspiLibrary", "find_sspi_rs", "library_description", "use_library"]

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
        fn = bind(proto, self.source)
        if fn is None and proto.kernel32 and sys.platform == "win32":
            if self._kernel32 is None:
                self._kernel32 = open_dll("kernel32")
            fn = bind(proto, self._kernel32)
        if fn is None:
            raise SspiUnavailableError(
                f"{self.description} does not export {proto.symbol}; it cannot be used "
                "for this call. Use Windows' secur32.dll or another SSPI library "
                "(sspi_import.use_library)."
            )
        return fn


def call(lib: Any, function: str, *args: Any) -> int:
    """``lib.<function>(*args)``, its result checked as declared (``errors.CHECKS``).

    For calls that involve no owned handle (freeing a buffer SSPI handed out, listing
    packages, kernel32's process calls); calls on an owner's handle go through the
    owner (``_handle.OwnedHandle``), which holds its lock for them.
    """
    result = getattr(lib, function)(*args)
    if result or function not in STATUS_FUNCTIONS or _log.levels.get(_log.DEBUG, True):
        checked: int = CHECKS[function](result, function)
        return checked
    return 0


_lock = threading.Lock()
_api: Api | None = None


def load(library: object, description: str | None = None) -> Api:
    """Make an ``Api`` over a path, a loaded ctypes library or an ``SspiLibrary``."""
    if isinstance(library, (str, os.PathLike)):
        path = os.fspath(library)
        if not isinstance(path, str) or not path:
            raise TypeError("the library path must be a non-empty str or os.PathLike")
        try:
            source: Any = open_dll(path)
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
            if description is not None and ENV_VAR in description:
                raise SspiUnavailableError(
                    f"cannot load the SSPI library {path!r}, which the environment variable "
                    f"{ENV_VAR} names: {exc}. Correct {ENV_VAR} (an SSPI-compatible "
                    "library's path), or unset it to use the default"
                ) from None
            raise SspiUnavailableError(
                f"cannot load the SSPI library {path!r}: {exc}. Check the path; " + _HOW_TO
            ) from None
        description = description or path
    elif isinstance(library, ctypes.CDLL) or provides_addresses(library):
        source = library
        description = description or getattr(library, "_name", None) or repr(library)
    else:
        raise TypeError(
            "use_library() takes a path (str or os.PathLike), a loaded ctypes library "
            "or an object with sspi_function_address(name), "
            f"not {type(library).__name__}"
        )
    result = Api(source, description)
    watch_logging()  # here, not at import: the first call pays for logging, once
    if not result.has("FreeContextBuffer"):
        raise SspiUnavailableError(
            f"{description} does not look like an SSPI library: it exports no "
            "FreeContextBuffer. " + _HOW_TO
        )
    _start_provider_logger(result)
    return result


LOG_PATH_VAR = "SSPI_LOG_PATH"
"""sspi-rs's variable: the file its logger appends to (``SSPI_LOG_LEVEL``: how much)."""

_loggers_started: set[int] = set()  # the address of each RustSspiSetupLogger called
_loggers_lock = threading.Lock()  # not _lock: _load_default holds that one around load()


def _start_provider_logger(lib: Api) -> None:
    """Run sspi-rs's ``RustSspiSetupLogger`` once per process, when ``SSPI_LOG_PATH`` is set.

    sspi-rs reads ``SSPI_LOG_PATH`` and ``SSPI_LOG_LEVEL`` in that call, once for the
    life of the process: called without them, its logger could never be started later.
    So it is called only when the variable is set, and once per library (its address:
    two loads of one file are one library). A library without the function (secur32, the
    simulated provider) is left alone.
    """
    if not os.environ.get(LOG_PATH_VAR) or not lib.has("RustSspiSetupLogger"):
        return
    address = ctypes.cast(lib.RustSspiSetupLogger, ctypes.c_void_p).value or 0
    with _loggers_lock:
        if address in _loggers_started:
            return
        _loggers_started.add(address)
    call(lib, "RustSspiSetupLogger")  # outside the lock: it writes to the C stdout


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


def use_library(library: str | os.PathLike[str] | ctypes.CDLL | SspiLibrary | None) -> None:
    """Send every following SSPI call to ``library``; ``None`` goes back to the default.

    ``library`` is a path to an SSPI-compatible shared library (loaded at once, so a bad
    path fails here, with ``SspiUnavailableError``), a ``ctypes.CDLL``/``WinDLL`` already
    loaded, or an object with ``sspi_function_address(name)``. Handles opened before
    the switch keep using the library that made them, until they are closed.
    """
    swap(None if library is None else load(library))


def library_description() -> str:
    """Describe the library calls go to, loading the default one if needed."""
    return api().description


def find_sspi_rs() -> Path:
    """Locate sspi-rs, the SSPI library the ``sspilib`` wheel bundles (Linux and macOS).

    Raises ``SspiUnavailableError`` saying what to install when it is not there. On
    Windows, sspilib uses secur32 and bundles nothing: use the default library there.
    """
    # Imported here, not at the top: importlib.metadata and pathlib are a large share of
    # the cost of `import sspi_import`, and only this function needs them.
    from importlib import metadata
    from pathlib import Path

    try:
        files = metadata.files("sspilib") or []
    except metadata.PackageNotFoundError:
        raise SspiUnavailableError(
            "sspi-rs is not installed: pip install sspilib (its wheel bundles sspi-rs)"
        ) from None
    suffix = ".dylib" if sys.platform == "darwin" else ".so"
    for file in files:
        name = file.name
        if name.startswith("libsspi") and name.endswith(suffix):
            return Path(str(file.locate())).resolve()
    raise SspiUnavailableError(
        "the installed sspilib wheel bundles no sspi-rs library "
        f"(libsspi*{suffix}); on Windows use secur32, elsewhere a manylinux/macOS wheel"
    )
