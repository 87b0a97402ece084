"""The ``"sspi_import"`` logger: one DEBUG record per SSPI or kernel32 call, never a secret.

A record names the function, the kind of handle it works on (declared per prototype in
``_raw.functions``) and its status; never an argument, buffer, result or handle value.
``errors.check`` and ``errors.check_win32`` write them, after the owner's lock is
released (``_handle``), so a handler that uses the context cannot deadlock it.

Start-up and per-call cost, the two reasons this module exists:

- The library never imports ``logging`` (a large share of start-up). Until some other
  code has, no handler can exist, so nothing is looked up. Then the logger is fetched
  once and given a ``NullHandler``, as libraries do.
- The level test runs on every call. ``Logger.isEnabledFor`` is Python code; this reads
  the dict it keeps its answers in (``Logger._cache``: filled by ``isEnabledFor``,
  emptied by every ``setLevel``, ``logging.disable`` and configuration) as ``levels``,
  with one C call and no Python frame: ``levels.get(DEBUG, True)`` true means "ask
  ``record``", which asks ``isEnabledFor`` (refilling the dict) before writing
  anything; false means no DEBUG record can be written. So the answer is exactly
  ``isEnabledFor``'s. Until ``attach`` found the logger (and with a ``logging`` without
  ``_cache``, the probe in ``attach``) ``levels`` is a dict nobody fills: always "ask".
  ``errors.check`` and the call helpers that skip it for ``SEC_E_OK`` (``_handle``,
  ``library.call``) test exactly this; ``tests/test_logging.py`` holds the trick against
  ``isEnabledFor`` and its fallback.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from ._raw.functions import PROTOTYPES

if TYPE_CHECKING:
    import logging

__all__ = ["DEBUG", "LOGGER_NAME", "attach", "levels", "record", "record_win32"]

LOGGER_NAME = "sspi_import"
DEBUG = 10  # logging.DEBUG, without importing logging

levels: dict[int, bool] = {}
"""The logger's level cache once attached; until then a dict nobody fills (the docstring)."""

_logger: logging.Logger | None = None


def attach(*, import_logging: bool = False) -> dict[int, bool] | None:
    """Fetch the logger once ``logging`` is imported; return the level cache to test.

    ``import_logging``: import it if no one has (``library.load``: the first call pays
    for it once, never ``import sspi_import``).
    """
    global _logger, levels
    if _logger is not None:
        return levels
    logging_module: Any = sys.modules.get("logging")
    if logging_module is None:
        if not import_logging:
            return None
        import logging as logging_module
    logger: logging.Logger = logging_module.getLogger(LOGGER_NAME)
    if not any(type(h) is logging_module.NullHandler for h in logger.handlers):
        logger.addHandler(logging_module.NullHandler())
    found = getattr(logger, "_cache", None)
    levels = found if type(found) is dict else {}  # {}: never filled, so always ask
    _logger = logger
    return levels


def _kind(function: str) -> str:
    proto = PROTOTYPES.get(function)
    return proto.handle if proto is not None else "other"


def record(status: int, symbol: str | None, function: str) -> None:
    """Log one SSPI call's (unsigned) status and its symbol, if the logger records DEBUG."""
    logger = _logger
    if logger is None or not logger.isEnabledFor(DEBUG):
        return
    kind = _kind(function)
    logger.debug(
        "%s (%s): %s (0x%08X)",
        function,
        kind,
        symbol or "unknown status",
        status,
        extra={
            "sspi_function": function,
            "sspi_handle_kind": kind,
            "sspi_status": status,
            "sspi_symbol": symbol,
        },
    )


def record_win32(function: str, succeeded: bool, code: int) -> None:
    """Log one kernel32 call's outcome, if the logger records DEBUG."""
    logger = _logger
    if logger is None or not logger.isEnabledFor(DEBUG):
        return
    kind = _kind(function)
    outcome = "succeeded" if succeeded else f"failed (Windows error {code})"
    logger.debug(
        "%s (%s): %s",
        function,
        kind,
        outcome,
        extra={
            "sspi_function": function,
            "sspi_handle_kind": kind,
            "sspi_status": None,
            "sspi_symbol": None,
            "sspi_winerror": None if succeeded else code,
        },
    )
