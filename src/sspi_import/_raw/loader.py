"""Opening a DLL and binding a declared prototype to it: the mechanics, nothing public.

``sspi_import.library`` decides *which* library calls go to (lazily, replaceably) and
says what to do when there is none; here is only how: the DLL is opened privately
(never the shared ``ctypes.windll``, so other code's prototypes cannot clash with
ours), and a prototype is bound to a loaded library or to a provider object that hands
out function addresses (``sspi_function_address``, as ``FakeSspi`` does).
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

from .functions import Proto

__all__ = ["ENV_VAR", "bind", "open_dll", "provides_addresses"]

ENV_VAR = "SSPI_IMPORT_LIBRARY"
"""The environment variable naming the SSPI library to load when none was installed."""


def open_dll(name: str) -> Any:
    """Load ``name`` privately (``WinDLL`` with ``use_last_error`` on Windows); ``OSError``."""
    if sys.platform == "win32":
        return ctypes.WinDLL(name, use_last_error=True)
    else:  # an else, not a fall-through: mypy --platform win32 would call it unreachable
        return ctypes.CDLL(name)


def provides_addresses(source: object) -> bool:
    """Whether ``source`` is a provider object (``sspi_function_address(name)``).

    A loaded library is not asked: ``getattr`` on it looks the name up as a symbol.
    """
    if isinstance(source, ctypes.CDLL):
        return False
    return callable(getattr(source, "sspi_function_address", None))


def bind(proto: Proto, source: Any) -> Any:
    """``proto``'s function in ``source`` (a loaded library or a provider), or ``None``."""
    if provides_addresses(source):
        address = source.sspi_function_address(proto.symbol)
        fn = None if not address else proto.functype(address)
    else:
        try:
            fn = proto.functype((proto.symbol, source))
        except (AttributeError, UnicodeDecodeError):  # missing (the error names the path,
            return None  # which need not decode)
    if fn is not None:
        fn.__name__ = proto.symbol
    return fn
