#!/usr/bin/env python3
"""Generate ``src/sspi_import/_raw/status_codes.py`` from winerror.h and the meanings file.

Every ``SEC_E_*`` / ``SEC_I_*`` define of winerror.h becomes one row of ``STATUS_CODES``; the
meaning and advice of each row come from the hand-maintained ``tools/status_meanings.txt``
(``SYMBOL<TAB>meaning<TAB>advice``). The run fails (exit status 1, naming the symbols) when the
header and the meanings file disagree about which symbols exist.

Usage::

    python tools/gen_status_codes.py [HEADER] [--meanings FILE] [--output FILE] [--check]

``--check`` writes nothing and exits 1 when the existing output differs from what would be
generated.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HEADER = Path("/usr/share/mingw-w64/include/winerror.h")
DEFAULT_MEANINGS = REPO_ROOT / "tools" / "status_meanings.txt"
DEFAULT_OUTPUT = REPO_ROOT / "src" / "sspi_import" / "_raw" / "status_codes.py"

LINE_LENGTH = 100  # the project's ruff line length; rows longer than this are exploded

_SYMBOL = r"SEC_[EI]_[A-Za-z0-9_]+"
_HEX = r"0[xX][0-9A-Fa-f]+[uUlL]*"
_SYMBOL_RE = re.compile(rf"^{_SYMBOL}$")
# One #define of a SEC_E_* / SEC_I_* name; the body is classified below.
_DEFINE_RE = re.compile(rf"^\s*#\s*define\s+({_SYMBOL})\b(.*)$")
_VALUE_FORMS = (
    re.compile(rf"^_HRESULT_TYPEDEF_\(\s*({_HEX})\s*\)$"),  # _HRESULT_TYPEDEF_(0x80090300L)
    re.compile(rf"^\(\s*\(\s*HRESULT\s*\)\s*({_HEX})\s*\)$"),  # ((HRESULT)0x00000000)
)
_ALIAS_FORM = re.compile(rf"^({_SYMBOL})$")  # #define SEC_E_NO_SPM SEC_E_INTERNAL_ERROR


class GenerationError(Exception):
    """The inputs are inconsistent; the message says what to fix."""


class HeaderEntry(NamedTuple):
    """One SEC_E_* / SEC_I_* define of winerror.h, in header order."""

    symbol: str
    value: int  # unsigned 32-bit; for an alias, the value of the symbol it resolves to
    alias_of: str | None  # the symbol named in the define, or None for a literal value


class Meaning(NamedTuple):
    """One line of the meanings file."""

    meaning: str
    advice: str


def _strip_comments(text: str) -> str:
    """Remove ``//`` comments and a trailing ``/* ... */`` from a define body."""
    text = re.sub(r"/\*.*?\*/", " ", text)
    text = re.sub(r"/\*.*$", " ", text)
    return re.sub(r"//.*$", "", text).strip()


def _parse_hex(literal: str) -> int:
    value = int(literal.rstrip("uUlL"), 16)
    if not 0 <= value <= 0xFFFFFFFF:
        raise GenerationError(f"value {literal} does not fit in 32 bits")
    return value


def parse_header(text: str) -> list[HeaderEntry]:
    """Return every SEC_E_* / SEC_I_* define of a winerror.h text, in header order.

    Understands ``_HRESULT_TYPEDEF_(0x...)``, ``((HRESULT)0x...)`` and alias defines naming
    another SEC_E_* / SEC_I_* symbol; aliases are resolved to the value of their target. A
    define of such a symbol in any other form, a symbol defined twice with different bodies,
    or an alias whose target is missing raises GenerationError.
    """
    order: list[str] = []
    literal: dict[str, int] = {}
    aliases: dict[str, str] = {}
    problems: list[str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        match = _DEFINE_RE.match(line)
        if match is None:
            continue
        symbol, body = match.group(1), _strip_comments(match.group(2))
        value: int | None = None
        target: str | None = None
        for form in _VALUE_FORMS:
            value_match = form.match(body)
            if value_match is not None:
                value = _parse_hex(value_match.group(1))
                break
        else:
            alias_match = _ALIAS_FORM.match(body)
            if alias_match is None:
                problems.append(f"line {lineno}: unrecognised definition of {symbol}: {body!r}")
                continue
            target = alias_match.group(1)
        if symbol in literal or symbol in aliases:
            previous = literal.get(symbol, aliases.get(symbol))
            if previous != (value if target is None else target):
                problems.append(f"line {lineno}: {symbol} is defined twice, differently")
            continue
        order.append(symbol)
        if target is None:
            assert value is not None
            literal[symbol] = value
        else:
            aliases[symbol] = target

    def resolve(symbol: str) -> int:
        seen = [symbol]
        while symbol in aliases:
            symbol = aliases[symbol]
            if symbol in seen:
                raise GenerationError(f"alias cycle: {' -> '.join([*seen, symbol])}")
            seen.append(symbol)
        if symbol not in literal:
            raise GenerationError(f"alias {seen[0]} names {symbol}, which the header lacks")
        return literal[symbol]

    if problems:
        raise GenerationError("cannot parse the header:\n  " + "\n  ".join(problems))
    return [
        HeaderEntry(symbol, resolve(symbol), aliases.get(symbol))
        if symbol in aliases
        else HeaderEntry(symbol, literal[symbol], None)
        for symbol in order
    ]


def parse_meanings(text: str) -> dict[str, Meaning]:
    """Parse the meanings file: ``SYMBOL<TAB>meaning<TAB>advice`` lines.

    Blank lines and lines starting with ``#`` are ignored; the advice field (and its tab) may
    be omitted. Each meaning must be non-empty and end with a period. Problems raise
    GenerationError listing every bad line.
    """
    meanings: dict[str, Meaning] = {}
    problems: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) not in (2, 3):
            problems.append(
                f"line {lineno}: expected 2 or 3 tab-separated fields, not {len(fields)}"
            )
            continue
        symbol, meaning = fields[0].strip(), fields[1].strip()
        advice = fields[2].strip() if len(fields) == 3 else ""
        if not _SYMBOL_RE.match(symbol):
            problems.append(f"line {lineno}: {symbol!r} is not a SEC_E_*/SEC_I_* symbol")
            continue
        if symbol in meanings:
            problems.append(f"line {lineno}: {symbol} is listed twice")
            continue
        if not meaning.endswith("."):
            problems.append(f"line {lineno}: the meaning of {symbol} must end with a period")
        for name, field in (("meaning", meaning), ("advice", advice)):
            if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in field):
                problems.append(f"line {lineno}: the {name} of {symbol} has a control character")
        meanings[symbol] = Meaning(meaning, advice)
    if problems:
        raise GenerationError("bad meanings file:\n  " + "\n  ".join(problems))
    return meanings


def check_coverage(entries: Sequence[HeaderEntry], meanings: dict[str, Meaning]) -> None:
    """Raise GenerationError naming every symbol present on only one side."""
    header_symbols = {entry.symbol for entry in entries}
    lacking = [entry.symbol for entry in entries if entry.symbol not in meanings]
    extra = [symbol for symbol in meanings if symbol not in header_symbols]
    problems = []
    if lacking:
        problems.append("header symbols without a meaning: " + ", ".join(lacking))
    if extra:
        problems.append("meanings for symbols the header lacks: " + ", ".join(extra))
    if problems:
        raise GenerationError("\n".join(problems))


def _py_string(text: str) -> str:
    """A string literal the way ruff format writes it (double quotes unless that escapes more)."""
    quote = "'" if text.count('"') > text.count("'") else '"'
    body = text.replace("\\", "\\\\").replace(quote, "\\" + quote)
    return quote + body + quote


def _row_lines(entry: HeaderEntry, meaning: Meaning) -> list[str]:
    items = [
        _py_string(entry.symbol),
        f"0x{entry.value:08X}",
        _py_string(meaning.meaning),
        _py_string(meaning.advice),
    ]
    one_line = f"    ({', '.join(items)}),"
    if len(one_line) <= LINE_LENGTH:
        return [one_line]
    # Too long for one line: one element per line with a trailing comma, as ruff format does.
    return ["    (", *(f"        {item}," for item in items), "    ),"]


def render(entries: Sequence[HeaderEntry], meanings: dict[str, Meaning]) -> str:
    """The text of the generated module (already in ruff format style)."""
    check_coverage(entries, meanings)
    lines = [
        '"""Every SSPI status code of winerror.h, with its meaning and advice.',
        "",
        "Generated by tools/gen_status_codes.py from the mingw-w64 winerror.h and",
        "tools/status_meanings.txt; do not edit.",
        '"""',
        "",
        "# Generated data: meanings and advice are kept as single-line strings.",
        "# ruff: noqa: E501",
        "",
        "from __future__ import annotations",
        "",
        "from typing import Final",
        "",
        "# (symbol, unsigned 32-bit value, meaning, advice) in header order; aliases included.",
        "STATUS_CODES: tuple[tuple[str, int, str, str], ...] = (",
    ]
    for entry in entries:
        lines.extend(_row_lines(entry, meanings[entry.symbol]))
    lines.append(")")
    lines.append("")
    lines.append("# alias symbol -> the symbol it is defined as")
    alias_items = [
        f"    {_py_string(entry.symbol)}: {_py_string(entry.alias_of)},"
        for entry in entries
        if entry.alias_of is not None
    ]
    if alias_items:
        lines.extend(["ALIASES: dict[str, str] = {", *alias_items, "}"])
    else:
        lines.append("ALIASES: dict[str, str] = {}")
    lines.append("")
    lines.append(
        "# Each symbol as a constant (unsigned 32-bit), aliases included: the names to use."
    )
    lines.extend(f"{entry.symbol}: Final = 0x{entry.value:08X}" for entry in entries)
    return "\n".join(lines) + "\n"


def generate(header: Path, meanings_path: Path) -> str:
    """Read both inputs and return the module text; raises GenerationError or OSError."""
    entries = parse_header(header.read_text(encoding="utf-8", errors="replace"))
    if not entries:
        raise GenerationError(f"{header} defines no SEC_E_*/SEC_I_* symbols")
    meanings = parse_meanings(meanings_path.read_text(encoding="utf-8"))
    return render(entries, meanings)


def _diff(old: str, new: str, path: Path) -> Iterable[str]:
    return difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"{path} (committed)",
        tofile=f"{path} (generated)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "header",
        nargs="?",
        type=Path,
        default=DEFAULT_HEADER,
        help=f"winerror.h to read (default: {DEFAULT_HEADER})",
    )
    parser.add_argument("--meanings", type=Path, default=DEFAULT_MEANINGS, help="meanings file")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="module to write")
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the output file differs from what would be generated",
    )
    args = parser.parse_args(argv)

    try:
        text = generate(args.header, args.meanings)
    except (GenerationError, OSError) as exc:
        print(f"gen_status_codes: error: {exc}", file=sys.stderr)
        return 1

    output: Path = args.output
    if args.check:
        try:
            current = output.read_text(encoding="utf-8")
        except OSError as exc:
            print(f"gen_status_codes: {output} cannot be read: {exc}", file=sys.stderr)
            return 1
        if current != text:
            sys.stderr.writelines(_diff(current, text, output))
            print(
                f"gen_status_codes: {output} is out of date; run tools/gen_status_codes.py",
                file=sys.stderr,
            )
            return 1
        print(f"gen_status_codes: {output} is up to date")
        return 0

    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
    print(f"gen_status_codes: wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
