"""Generate ``tools/abi_table.json``: the Windows layout of every ctypes declaration.

The structures in ``sspi_import._raw.structs`` and the constants in
``sspi_import._raw.constants`` are turned into ``tools/abi_probe.c``, a file of global
constants such as ``abi_struct__SecBuffer__size = sizeof(SecBuffer)``. It is compiled
with ``-S`` by the mingw-w64 cross compilers for x86_64 and i686, and the values are read
back from the assembly, so nothing has to run on Windows. ``tests/test_abi.py`` then
holds the ctypes declarations against the table without needing a compiler.

Usage::

    python tools/gen_abi.py          # rewrite tools/abi_probe.c and tools/abi_table.json
    python tools/gen_abi.py --check  # exit 1 if either committed file is out of date
"""

from __future__ import annotations

import argparse
import ctypes
import difflib
import importlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROBE_C = ROOT / "tools" / "abi_probe.c"
TABLE_JSON = ROOT / "tools" / "abi_table.json"
GENERATED_BY = "tools/gen_abi.py (mingw-w64 headers); do not edit by hand"

# target -> (compiler, prefix the target's C ABI puts on global symbols)
TARGETS: dict[str, tuple[str, str]] = {
    "x86_64": ("x86_64-w64-mingw32-gcc", ""),
    "i686": ("i686-w64-mingw32-gcc", "_"),
}
# -O0 keeps every global as a plain data directive; gnu11 gives _Alignof and lets the
# mingw headers use their GNU extensions.
CFLAGS = ["-std=gnu11", "-O0", "-S"]

# Bytes contributed by each data directive GCC may use for an 8-byte initialiser.
_DIRECTIVE_SIZES = {
    ".byte": 1,
    ".short": 2,
    ".value": 2,
    ".word": 2,
    ".long": 4,
    ".int": 4,
    ".quad": 8,
}


class GenError(Exception):
    """A failure the user has to fix (missing compiler, header rejects a name, ...)."""


@dataclass(frozen=True)
class Probe:
    """One emitted global: its C symbol, C expression and place in the table."""

    symbol: str
    expr: str
    path: tuple[str, ...]
    signed: bool


def load_modules() -> tuple[ModuleType, ModuleType]:
    """Import the declaration modules from ``src/`` without requiring an install."""
    src = str(ROOT / "src")
    if src not in sys.path:
        sys.path.insert(0, src)
    structs = importlib.import_module("sspi_import._raw.structs")
    constants = importlib.import_module("sspi_import._raw.constants")
    return structs, constants


def declared_structs(structs: ModuleType) -> dict[str, type[ctypes.Structure]]:
    """Structures defined in ``structs`` under their own name, in declaration order.

    Aliases such as ``CtxtHandle = SecHandle`` are skipped: the C type is ``SecHandle``.
    """
    found: dict[str, type[ctypes.Structure]] = {}
    for name, obj in vars(structs).items():
        if (
            isinstance(obj, type)
            and issubclass(obj, ctypes.Structure)
            and obj.__module__ == structs.__name__
            and obj.__name__ == name
        ):
            found[name] = obj
    return found


def declared_scalars(structs: ModuleType) -> list[str]:
    """Public scalar typedefs: names in ``__all__`` bound to a simple ctypes type."""
    names: list[str] = list(getattr(structs, "__all__", []))
    return [
        n
        for n in names
        if isinstance(getattr(structs, n, None), type)
        and issubclass(getattr(structs, n), ctypes._SimpleCData)
    ]


def declared_constants(constants: ModuleType) -> list[str]:
    """The UPPER_CASE integer names of ``constants``, in declaration order."""
    return [
        n
        for n, v in vars(constants).items()
        if n.isupper() and not n.startswith("_") and type(v) is int
    ]


def field_names(cls: type[ctypes.Structure]) -> list[str]:
    """The C field names of a structure, in order."""
    return [entry[0] for entry in cls._fields_]


def build_probes(structs: ModuleType, constants: ModuleType) -> list[Probe]:
    """Every value the table needs, as C expressions over the SDK names."""
    probes: list[Probe] = []
    for name in declared_scalars(structs):
        for key, expr in (("size", f"sizeof({name})"), ("align", f"_Alignof({name})")):
            probes.append(Probe(f"abi_type__{name}__{key}", expr, ("types", name, key), False))
    for sname, cls in declared_structs(structs).items():
        base = ("structs", sname)
        probes.append(
            Probe(f"abi_struct__{sname}__size", f"sizeof({sname})", (*base, "size"), False)
        )
        probes.append(
            Probe(f"abi_struct__{sname}__align", f"_Alignof({sname})", (*base, "align"), False)
        )
        for fname in field_names(cls):
            fpath = (*base, "fields", fname)
            sym = f"abi_field__{sname}__{fname}"
            probes.append(
                Probe(f"{sym}__offset", f"offsetof({sname}, {fname})", (*fpath, "offset"), False)
            )
            probes.append(
                Probe(f"{sym}__size", f"sizeof((({sname} *)0)->{fname})", (*fpath, "size"), False)
            )
    for cname in declared_constants(constants):
        probes.append(
            Probe(f"abi_const__{cname}", f"(long long)({cname})", ("constants", cname), True)
        )
    symbols = [p.symbol for p in probes]
    if len(set(symbols)) != len(symbols):
        raise GenError("two probes map to the same C symbol; rename a declaration")
    return probes


def render_c(probes: list[Probe]) -> str:
    """The probe translation unit: one 8-byte global per table value."""
    lines = [
        "/* Generated by tools/gen_abi.py from sspi_import._raw.structs/constants;",
        " * do not edit. Compile with -S: each global's initialiser is a layout fact",
        " * or constant value read back from the assembly into tools/abi_table.json. */",
        "#define SECURITY_WIN32",
        "#include <windows.h>",
        "#include <sspi.h>",
        "#include <stddef.h>",
        "",
    ]
    for p in probes:
        ctype = "long long" if p.signed else "unsigned long long"
        lines.append(f"const {ctype} {p.symbol} = {p.expr};")
    return "\n".join(lines) + "\n"


def read_globals(asm: str, prefix: str, symbols: set[str]) -> dict[str, bytes]:
    """The 8 initialiser bytes of every wanted global in GCC assembly output.

    i686 emits a 64-bit value as two ``.long`` words, x86_64 as one ``.quad``, zero as
    ``.space 8``; summing directive widths handles all of them.
    """
    label = re.compile(rf"^{re.escape(prefix)}(\w+):$")
    found: dict[str, bytes] = {}
    current: str | None = None
    data = bytearray()
    for raw in asm.splitlines():
        line = raw.strip()
        m = label.match(line)
        if m and m.group(1) in symbols:
            current, data = m.group(1), bytearray()
            continue
        if current is None:
            continue
        parts = line.split(None, 1)
        op = parts[0] if parts else ""
        arg = parts[1] if len(parts) > 1 else ""
        if op in _DIRECTIVE_SIZES:
            width = _DIRECTIVE_SIZES[op]
            for tok in arg.split(","):
                value = int(tok.strip(), 0) & ((1 << (8 * width)) - 1)
                data += value.to_bytes(width, "little")
        elif op in (".space", ".zero", ".skip"):
            data += bytes(int(arg.split(",")[0].strip(), 0))
        else:
            raise GenError(f"unexpected {line!r} inside the initialiser of {current}")
        if len(data) >= 8:
            found[current] = bytes(data[:8])
            current = None
    missing = sorted(symbols - found.keys())
    if missing:
        raise GenError(f"no initialiser found in the assembly for: {', '.join(missing)}")
    return found


def compile_target(target: str, c_source: str, probes: list[Probe]) -> dict[str, Any]:
    """Compile the probe for one target and return that target's table."""
    cc, prefix = TARGETS[target]
    with tempfile.TemporaryDirectory(prefix="gen_abi_") as tmp:
        src = Path(tmp) / "abi_probe.c"
        out = Path(tmp) / "abi_probe.s"
        src.write_text(c_source, encoding="utf-8")
        proc = subprocess.run(
            [cc, *CFLAGS, "-o", str(out), str(src)], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise GenError(
                f"{cc} rejected the probe (a name in structs.py/constants.py is probably "
                f"not declared by the headers):\n{proc.stderr.strip()}"
            )
        asm = out.read_text(encoding="utf-8")
    values = read_globals(asm, prefix, {p.symbol for p in probes})
    table: dict[str, Any] = {"constants": {}, "structs": {}, "types": {}}
    for p in probes:
        node = table
        for key in p.path[:-1]:
            node = node.setdefault(key, {})
        node[p.path[-1]] = int.from_bytes(values[p.symbol], "little", signed=p.signed)
    return table


def check_compilers() -> None:
    """Fail with a clear message if a cross compiler is not on PATH."""
    missing = [cc for cc, _ in TARGETS.values() if shutil.which(cc) is None]
    if missing:
        raise GenError(
            f"compiler(s) not found on PATH: {', '.join(missing)}; install mingw-w64 "
            "(Debian/Ubuntu: apt-get install gcc-mingw-w64-x86-64 gcc-mingw-w64-i686)"
        )


def generate() -> tuple[str, str]:
    """Return the probe C source and the JSON table text, both freshly generated."""
    check_compilers()
    structs, constants = load_modules()
    probes = build_probes(structs, constants)
    c_source = render_c(probes)
    targets = {t: compile_target(t, c_source, probes) for t in TARGETS}
    table = {"generated_by": GENERATED_BY, "targets": targets}
    return c_source, json.dumps(table, indent=2, sort_keys=True) + "\n"


def _diff(path: Path, fresh: str) -> list[str]:
    """Unified diff from the committed file to the fresh text (empty if equal)."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    rel = path.relative_to(ROOT).as_posix()
    return list(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            fresh.splitlines(keepends=True),
            f"{rel} (committed)",
            f"{rel} (regenerated)",
        )
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check",
        action="store_true",
        help="regenerate in memory and exit 1 if the committed files differ",
    )
    args = parser.parse_args(argv)
    try:
        c_source, table_text = generate()
    except GenError as exc:
        print(f"gen_abi: error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        diff = _diff(PROBE_C, c_source) + _diff(TABLE_JSON, table_text)
        if diff:
            sys.stderr.writelines(diff)
            print("gen_abi: committed ABI files are stale; run tools/gen_abi.py", file=sys.stderr)
            return 1
        print("gen_abi: tools/abi_probe.c and tools/abi_table.json are up to date")
        return 0
    PROBE_C.write_text(c_source, encoding="utf-8")
    TABLE_JSON.write_text(table_text, encoding="utf-8")
    print(f"gen_abi: wrote {PROBE_C.relative_to(ROOT)} and {TABLE_JSON.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
