"""MkDocs hook: build the error table of ``errors.md`` from the code table at build time.

Every status code of ``sspi_import._raw.status_codes`` gets a section: symbol, hex, signed
    from sspi_import.errors import _CALL_ADVICE, status_info
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

MARKER = "<!-- error-table -->"
PAGE = "errors.md"

_SRC = Path(__file__).resolve().parent.parent / "src"


SUCCESS_SHORT = "none: returned"


def outcome(symbol: str, status: int) -> tuple[str, str]:
    """What ``sspi_import`` does with ``status``: for the table, and for the code's section."""
    from sspi_import.errors import _CLASSES
    from sspi_import.handshake import _CONTINUE, _DONE

    if status < 0x8000_0000:  # severity bit clear: a success code, never raised by check()
        if status in _DONE | _CONTINUE:
            return SUCCESS_SHORT, "a success code: returned, never raised (`step()` acts on it)"
        return SUCCESS_SHORT, (
            "a success code: returned, never raised; a handshake `step()` that gets it "
            'raises `SspiError` ("unexpected status during the handshake")'
        )
    # Codes shared by two primary names (rare) get the class of the value.
    cls = _CLASSES.get(status)
    name = cls.__name__ if cls is not None else "SspiError"
    return f"`{name}`", f"raises `sspi_import.{name}`"


def error_table() -> str:
    """The Markdown for every status code: an overview table, then one section per code."""
    if str(_SRC) not in sys.path:  # not at import: MkDocs restores sys.path after loading
        sys.path.append(str(_SRC))
    from sspi_import._raw.status_codes import ALIASES, STATUS_CODES
    from sspi_import.errors import _CALL_ADVICE, status_info

    rows = [
        "| Code | Hex, signed | Raised as |",
        "| --- | --- | --- |",
    ]
    sections: list[str] = []
    for symbol, _value, _meaning, _advice in STATUS_CODES:
        if symbol in ALIASES:
            continue
        info = status_info(symbol)
        assert info is not None
        anchor = symbol.lower()
        short, long = outcome(symbol, info.status)
        rows.append(
            f"| [`{symbol}`](#{anchor}) | `0x{info.status:08X}`<br>`{info.winerror}` | {short} |"
        )
        lines = [
            f"### {symbol} {{#{anchor}}}",
            "",
            f"`0x{info.status:08X}` &middot; signed `{info.winerror}` &middot; {long}",
            "",
            f"**Meaning.** {info.meaning}",
            "",
        ]
        if info.advice:
            lines += [f"**What to do.** {info.advice}", ""]
        for (advised, function), advice in _CALL_ADVICE.items():
            if advised == symbol:
                lines += [f"**When `{function}` fails with it.** {advice}", ""]
        if info.aliases:
            names = ", ".join(f"`{a}`" for a in info.aliases)
            lines += [f"Also defined as {names}.", ""]
        sections.append("\n".join(lines))
    return "\n".join(rows) + "\n\n## Every code\n\n" + "\n".join(sections)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """Replace the marker on the error page with the generated table."""
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"{PAGE} lost its {MARKER} marker: the error table has nowhere to go")
    return markdown.replace(MARKER, error_table())
