"""``sspi-import explain CODE...``: what status codes mean and what to do.

Document: ``explain.schema.json`` (``"schema": "sspi-import/explain/1"``). Exit status:
0 every code is known; 1 a well-formed code is not in winerror.h; 2 an argument is no
status code at all (the document is still printed, with that entry's ``error``).
"""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import _CLASSES, _hex_reading, _lookup, _signed
from ._output import SafeText, diagnose, dump_json, say

SCHEMA = "sspi-import/explain/1"


def _suggestion(text: str) -> dict[str, Any] | None:
    """For digits that read as an unknown decimal code but a known hex one: that code."""
    info = _hex_reading(text)
    if info is None:
        return None
    return {"input": f"0x{info.status:08X}", "status": info.status, "symbol": info.symbol}


def explain_one(text: str) -> dict[str, Any]:
    """One entry of the document's ``codes``: every key present, ``None`` where unknown."""
    entry: dict[str, Any] = {
        "input": text,
        "valid": False,
        "known": False,
        "status": None,
        "symbol": None,
        "hex": None,
        "signed": None,
        "meaning": None,
        "advice": None,
        "aliases": [],
        "exception": None,
        "suggestion": None,
        "error": None,
    }
    try:
        value, info = _lookup(text)
    except ValueError as exc:
        entry["error"] = str(exc)
        return entry
    entry.update(valid=True, status=value, hex=f"0x{value:08X}", signed=_signed(value))
    if info is None:
        entry["suggestion"] = _suggestion(text)
        return entry
    cls = _CLASSES.get(value)
    entry.update(
        known=True,
        symbol=info.symbol,
        meaning=info.meaning,
        advice=info.advice or None,
        aliases=list(info.aliases),
        exception=f"sspi_import.{cls.__name__}" if cls is not None else None,
    )
    return entry


def exit_status(entries: list[dict[str, Any]]) -> int:
    """2 if any argument is no code, else 1 if any code is unknown, else 0."""
    if any(not e["valid"] for e in entries):
        return 2
    return 1 if any(not e["known"] for e in entries) else 0


def run(args: argparse.Namespace, out: SafeText, err: SafeText) -> int:
    """The ``explain`` command."""
    entries = [explain_one(text) for text in args.codes]
    status = exit_status(entries)
    for entry in entries:  # diagnostics, on stderr, in text and JSON mode alike
        if entry["error"] is not None:
            diagnose(err, "explain", entry["error"])
        elif entry["suggestion"] is not None:
            hint = entry["suggestion"]
            diagnose(
                err,
                "explain",
                f"{entry['input'].strip()} is read as decimal ({entry['hex']}), which is "
                f"unknown; did you mean {hint['input']} ({hint['symbol']})?",
            )
    if args.json:
        dump_json(out, {"schema": SCHEMA, "ok": status == 0, "codes": entries})
        return status
    for entry in entries:
        if not entry["valid"]:
            continue
        if not entry["known"]:
            say(out, f"{entry['hex']}  {entry['signed']}  unknown")
            say(
                out,
                "not an SSPI status code in winerror.h (it may be a Win32 error or an "
                "NTSTATUS from the provider)",
                "  ",
            )
            continue
        say(out, f"{entry['symbol']}  {entry['hex']}  {entry['signed']}")
        say(out, entry["meaning"], " " * 13, "  meaning:   ")
        if entry["advice"]:
            say(out, entry["advice"], " " * 13, "  advice:    ")
        if entry["exception"]:
            say(out, entry["exception"], " " * 13, "  raises:    ")
        if entry["aliases"]:
            say(out, ", ".join(entry["aliases"]), " " * 13, "  also:      ")
    return status
