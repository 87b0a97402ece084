"""Hold the ctypes declarations in ``sspi_import._raw`` against the Windows headers.

``tools/abi_table.json`` is produced by ``tools/gen_abi.py`` from the mingw-w64 SDK
headers for x86_64 and i686. These tests need no compiler: the native width is checked
through ctypes itself, and both widths through a small C layout calculator applied to the
declared ``_fields_``, so an x86-only layout error shows up on a 64-bit host too.
"""

from __future__ import annotations

import _ctypes
import ctypes
import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# Imported by name so mypy needs no src/ on its path; PYTHONPATH=src serves pytest.
structs = importlib.import_module("sspi_import._raw.structs")
constants = importlib.import_module("sspi_import._raw.constants")

ROOT = Path(__file__).resolve().parent.parent
TABLE_PATH = ROOT / "tools" / "abi_table.json"
GEN_ABI = ROOT / "tools" / "gen_abi.py"
TABLE: dict[str, Any] = json.loads(TABLE_PATH.read_text(encoding="utf-8"))
TARGETS: dict[str, dict[str, Any]] = TABLE["targets"]

POINTER_SIZE = {"x86_64": 8, "i686": 4}
# arm64 Windows shares the x86_64 (LLP64) layouts; 32-bit hosts use the i686 table.
NATIVE = "x86_64" if ctypes.sizeof(ctypes.c_void_p) == 8 else "i686"
COMPILERS = ("x86_64-w64-mingw32-gcc", "i686-w64-mingw32-gcc")

# Fixed widths on every Windows target. c_int64 is 8-aligned on i686 as well (MS ABI),
# unlike the 4-byte alignment the SysV i386 ABI gives long long inside a struct.
_FIXED: dict[Any, tuple[int, int]] = {
    ctypes.c_int8: (1, 1),
    ctypes.c_uint8: (1, 1),
    ctypes.c_char: (1, 1),
    ctypes.c_bool: (1, 1),
    ctypes.c_int16: (2, 2),
    ctypes.c_uint16: (2, 2),
    ctypes.c_wchar: (2, 2),  # WCHAR is UTF-16 on Windows, whatever the host says
    ctypes.c_int32: (4, 4),
    ctypes.c_uint32: (4, 4),
    ctypes.c_int64: (8, 8),
    ctypes.c_uint64: (8, 8),
    ctypes.c_longlong: (8, 8),
    ctypes.c_ulonglong: (8, 8),
}
_POINTERS = (ctypes.c_void_p, ctypes.c_char_p, ctypes.c_wchar_p)


def declared_structs() -> dict[str, type[ctypes.Structure]]:
    """Structures defined in ``structs`` under their own name (aliases skipped)."""
    return {
        name: obj
        for name, obj in vars(structs).items()
        if isinstance(obj, type)
        and issubclass(obj, ctypes.Structure)
        and obj.__module__ == structs.__name__
        and obj.__name__ == name
    }


def declared_constants() -> dict[str, int]:
    """The UPPER_CASE integer names of ``constants``."""
    return {
        n: v
        for n, v in vars(constants).items()
        if n.isupper() and not n.startswith("_") and type(v) is int
    }


def c_type_layout(ctype: Any, ptr: int) -> tuple[int, int]:
    """(size, alignment) of a ctypes field type on a Windows target with ``ptr``-byte pointers."""
    # ULONG_PTR is c_uint64 or c_uint32 picked from the host, so only identity marks it.
    # This must come first: on a 64-bit host it is the same object as c_uint64.
    if ctype is structs.ULONG_PTR:
        return ptr, ptr
    if ctype in _POINTERS or issubclass(ctype, (ctypes._Pointer, _ctypes.CFuncPtr)):
        return ptr, ptr
    if issubclass(ctype, ctypes.Structure):
        layout = c_struct_layout(ctype, ptr)
        return layout["size"], layout["align"]
    if issubclass(ctype, ctypes.Array):
        size, align = c_type_layout(ctype._type_, ptr)
        return size * ctype._length_, align
    if ctype in _FIXED:
        return _FIXED[ctype]
    raise TypeError(f"layout calculator does not model {ctype!r}; add it to _FIXED")


def c_struct_layout(cls: type[ctypes.Structure], ptr: int) -> dict[str, Any]:
    """Natural C layout of ``cls._fields_``, in the same shape as a table entry."""
    pack: int = getattr(cls, "_pack_", 0)
    offset, struct_align = 0, 1
    fields: dict[str, dict[str, int]] = {}
    for entry in cls._fields_:
        if len(entry) != 2:
            raise TypeError(f"{cls.__name__}: bit fields are not modelled")
        name, ctype = entry[0], entry[1]
        size, align = c_type_layout(ctype, ptr)
        if pack:
            align = min(align, pack)
        offset = -(-offset // align) * align  # round up to the field's alignment
        fields[name] = {"offset": offset, "size": size}
        offset += size
        struct_align = max(struct_align, align)
    size = -(-offset // struct_align) * struct_align  # tail padding for arrays of it
    return {"size": size, "align": struct_align, "fields": fields}


def _struct_params(targets: tuple[str, ...]) -> list[Any]:
    """(target, struct) pairs from the table, with readable ids."""
    return [
        pytest.param(t, s, id=f"{t}-{s}") for t in targets for s in sorted(TARGETS[t]["structs"])
    ]


def _field_params(targets: tuple[str, ...]) -> list[Any]:
    """(target, struct, field) triples from the table, with ``Struct.field`` ids."""
    return [
        pytest.param(t, s, f, id=f"{t}-{s}.{f}")
        for t in targets
        for s in sorted(TARGETS[t]["structs"])
        for f in sorted(TARGETS[t]["structs"][s]["fields"])
    ]


BOTH = tuple(sorted(POINTER_SIZE))
# Sizes the declarations assume; None means "the target's pointer size".
EXPECTED_SCALARS: dict[str, int | None] = {
    "ULONG": 4,
    "LONG": 4,
    "SECURITY_STATUS": 4,
    "USHORT": 2,
    "TimeStamp": 8,
    "ULONG_PTR": None,
    "PVOID": None,
}


def test_table_has_both_targets() -> None:
    """The table was generated for exactly the two Windows x86 widths."""
    assert set(TARGETS) == set(POINTER_SIZE)


@pytest.mark.parametrize("target", BOTH)
def test_struct_sets_match(target: str) -> None:
    """Every table structure is declared and every declared structure is in the table."""
    assert sorted(TARGETS[target]["structs"]) == sorted(declared_structs())


# --- native width: ctypes' own layout against the headers ----------------------------


@pytest.mark.parametrize(("target", "name"), _struct_params((NATIVE,)))
def test_native_struct_size_and_alignment(target: str, name: str) -> None:
    """ctypes.sizeof / ctypes.alignment equal the C sizeof / _Alignof."""
    cls = getattr(structs, name)
    entry = TARGETS[target]["structs"][name]
    assert (ctypes.sizeof(cls), ctypes.alignment(cls)) == (entry["size"], entry["align"])


@pytest.mark.parametrize(("target", "name", "field"), _field_params((NATIVE,)))
def test_native_field_offset_and_size(target: str, name: str, field: str) -> None:
    """Each ctypes field descriptor sits at the C offsetof with the C sizeof."""
    descriptor = getattr(getattr(structs, name), field)
    expected = TARGETS[target]["structs"][name]["fields"][field]
    assert {"offset": descriptor.offset, "size": descriptor.size} == expected


@pytest.mark.parametrize("name", sorted(TARGETS[NATIVE]["types"]))
def test_native_scalar_typedefs(name: str) -> None:
    """The ctypes scalar aliases have the C size and alignment at the native width."""
    ctype = getattr(structs, name)
    entry = TARGETS[NATIVE]["types"][name]
    assert (ctypes.sizeof(ctype), ctypes.alignment(ctype)) == (entry["size"], entry["align"])


# --- both widths: declared fields through the layout calculator ----------------------


@pytest.mark.parametrize(("target", "name"), _struct_params(BOTH))
def test_field_names_and_order(target: str, name: str) -> None:
    """Declared field names, in order, equal the C fields sorted by offset."""
    fields = TARGETS[target]["structs"][name]["fields"]
    c_order = sorted(fields, key=lambda f: fields[f]["offset"])
    assert [e[0] for e in getattr(structs, name)._fields_] == c_order


def _skip_if_ulong_ptr_ambiguous(target: str) -> None:
    """Skip a cross-width check the calculator cannot do on this host.

    On a 32-bit host ULONG_PTR and ULONG are the same ctypes type (c_uint32), so identity
    cannot tell which fields widen to 8 bytes on x86_64.
    """
    if POINTER_SIZE[target] != 4 and structs.ULONG_PTR is structs.ULONG:
        pytest.skip("ULONG_PTR is ULONG on a 32-bit host; x86_64 layout is not computable")


@pytest.mark.parametrize(("target", "name"), _struct_params(BOTH))
def test_computed_struct_size_and_alignment(target: str, name: str) -> None:
    """The declared fields laid out under the target ABI give the C size and alignment."""
    _skip_if_ulong_ptr_ambiguous(target)
    layout = c_struct_layout(getattr(structs, name), POINTER_SIZE[target])
    entry = TARGETS[target]["structs"][name]
    assert (layout["size"], layout["align"]) == (entry["size"], entry["align"])


@pytest.mark.parametrize(("target", "name", "field"), _field_params(BOTH))
def test_computed_field_offset_and_size(target: str, name: str, field: str) -> None:
    """The declared field lands at the C offsetof with the C sizeof under the target ABI."""
    _skip_if_ulong_ptr_ambiguous(target)
    layout = c_struct_layout(getattr(structs, name), POINTER_SIZE[target])
    assert layout["fields"].get(field) == TARGETS[target]["structs"][name]["fields"][field]


@pytest.mark.parametrize("target", BOTH)
def test_layout_calculator_detects_target_width(target: str) -> None:
    """Guard against a calculator that ignores the target: SecHandle differs per width."""
    _skip_if_ulong_ptr_ambiguous(target)
    expected = 2 * POINTER_SIZE[target]
    assert c_struct_layout(structs.SecHandle, POINTER_SIZE[target])["size"] == expected


# --- scalar typedefs -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "name"), [pytest.param(t, n, id=f"{t}-{n}") for t in BOTH for n in EXPECTED_SCALARS]
)
def test_scalar_typedef_sizes(target: str, name: str) -> None:
    """LLP64/ILP32 facts the declarations rely on, as seen by the headers."""
    expected = EXPECTED_SCALARS[name] or POINTER_SIZE[target]
    assert TARGETS[target]["types"][name]["size"] == expected


# --- constants -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "name"),
    [pytest.param(t, n, id=f"{t}-{n}") for t in BOTH for n in sorted(declared_constants())],
)
def test_constant_matches_header(target: str, name: str) -> None:
    """Each constants.py value equals the C value of the macro."""
    table = TARGETS[target]["constants"]
    assert name in table, f"{name} missing from the table; rerun tools/gen_abi.py"
    assert declared_constants()[name] == table[name]


@pytest.mark.parametrize("target", BOTH)
def test_table_constants_are_declared(target: str) -> None:
    """No constant in the table has been dropped from constants.py."""
    assert sorted(set(TARGETS[target]["constants"]) - set(declared_constants())) == []


# --- the table is current ----------------------------------------------------------------


@pytest.mark.skipif(
    any(shutil.which(cc) is None for cc in COMPILERS),
    reason=f"needs both mingw-w64 cross compilers on PATH ({', '.join(COMPILERS)})",
)
def test_committed_table_is_current() -> None:
    """Regenerating from the current declarations and headers reproduces the committed files."""
    proc = subprocess.run(
        [sys.executable, str(GEN_ABI), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
