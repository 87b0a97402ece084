"""MkDocs hook: build the error table of ``errors.md`` from the code table at build time.

Every status code of ``sspi_import._raw.status_codes`` gets a section: symbol, hex, signed
value, meaning, advice, the advice for the calls where it differs
(``sspi_import.errors._CALL_ADVICE``), other names, and the exception class
``sspi_import`` raises for it (from ``sspi_import.errors._CLASSES``). The page keeps a
``<!-- error-table -->`` marker where the table goes, so the text around it stays
hand-written.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

MARKER = "<!-- error-table -->"
PAGE = "errors.md"

_SRC = Path(__file__).resolve().parent.parent / "src"


def error_table() -> str:
    """The Markdown for every status code: an overview table, then one section per code."""
    if str(_SRC) not in sys.path:  # not at import: MkDocs restores sys.path after loading
        sys.path.append(str(_SRC))
    from sspi_import._raw.status_codes import ALIASES, STATUS_CODES
    from sspi_import.errors import _CALL_ADVICE, _CLASSES, status_info

    rows = [
        "| Code | Hex | Signed | Exception |",
        "| --- | --- | --- | --- |",
    ]
    sections: list[str] = []
    for symbol, _value, _meaning, _advice in STATUS_CODES:
        if symbol in ALIASES:
            continue
        info = status_info(symbol)
        assert info is not None
        # Codes shared by two primary names (rare) get the class of the value.
        cls = _CLASSES.get(info.status)
        exception = f"`sspi_import.{cls.__name__}`" if cls is not None else "`SspiError`"
        anchor = symbol.lower()
        rows.append(
            f"| [`{symbol}`](#{anchor}) | `0x{info.status:08X}` | `{info.winerror}` | {exception} |"
        )
        lines = [
            f"### {symbol} {{#{anchor}}}",
            "",
            f"`0x{info.status:08X}` &middot; signed `{info.winerror}` &middot; raises {exception}",
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
