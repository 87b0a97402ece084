"""The generated SSPI status-code table (``_raw/status_codes.py``) and its generator."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from sspi_import._raw import status_codes
from sspi_import._raw.status_codes import ALIASES, STATUS_CODES

REPO = Path(__file__).resolve().parent.parent
GENERATOR = REPO / "tools" / "gen_status_codes.py"
MODULE_PATH = REPO / "src" / "sspi_import" / "_raw" / "status_codes.py"
HEADER = Path("/usr/share/mingw-w64/include/winerror.h")

needs_header = pytest.mark.skipif(
    not HEADER.is_file(),
    reason=f"mingw-w64 winerror.h not found at {HEADER} (install mingw-w64-common)",
)

SYMBOLS = [row[0] for row in STATUS_CODES]
VALUES = {row[0]: row[1] for row in STATUS_CODES}


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_gen_status_codes_under_test", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    return _load_generator()


def _ruff() -> str | None:
    beside_python = Path(sys.executable).with_name("ruff.exe" if os.name == "nt" else "ruff")
    return str(beside_python) if beside_python.is_file() else shutil.which("ruff")


# --- the committed module against the header ---------------------------------------------


@needs_header
def test_module_has_exactly_the_header_symbols(gen: ModuleType) -> None:
    entries = gen.parse_header(HEADER.read_text(encoding="utf-8", errors="replace"))
    assert [e.symbol for e in entries] == SYMBOLS
    assert {e.symbol: e.value for e in entries} == VALUES
    assert {e.symbol: e.alias_of for e in entries if e.alias_of is not None} == ALIASES


@needs_header
def test_check_mode_passes() -> None:
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_module_is_ruff_formatted() -> None:
    ruff = _ruff()
    if ruff is None:
        pytest.skip("ruff is not installed")
    result = subprocess.run(
        [ruff, "format", "--check", "--line-length", "100", str(MODULE_PATH)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_module_says_it_is_generated() -> None:
    assert status_codes.__doc__ is not None
    assert "tools/gen_status_codes.py" in status_codes.__doc__
    assert "do not edit" in status_codes.__doc__


# --- shape of the table ------------------------------------------------------------------


def test_at_least_95_rows() -> None:
    assert len(STATUS_CODES) >= 95


def test_rows_are_well_typed_and_symbols_unique() -> None:
    for row in STATUS_CODES:
        assert len(row) == 4
        symbol, value, meaning, advice = row
        assert isinstance(symbol, str)
        assert isinstance(value, int)
        assert isinstance(meaning, str)
        assert isinstance(advice, str)
        assert symbol.startswith(("SEC_E_", "SEC_I_")), symbol
    assert len(set(SYMBOLS)) == len(SYMBOLS)


def test_values_fit_in_32_bits_unsigned() -> None:
    for symbol, value, _, _ in STATUS_CODES:
        assert 0 <= value <= 0xFFFFFFFF, symbol


def test_severity_bit_matches_prefix() -> None:
    assert VALUES["SEC_E_OK"] == 0
    for symbol, value, _, _ in STATUS_CODES:
        if symbol == "SEC_E_OK":
            continue
        if symbol.startswith("SEC_E_"):
            assert value & 0x80000000, f"{symbol} = 0x{value:08X} lacks the error bit"
        else:
            assert not value & 0x80000000, f"{symbol} = 0x{value:08X} has the error bit"


def test_non_alias_values_unique_within_class() -> None:
    for prefix in ("SEC_E_", "SEC_I_"):
        seen: dict[int, str] = {}
        for symbol, value, _, _ in STATUS_CODES:
            if not symbol.startswith(prefix) or symbol in ALIASES:
                continue
            assert value not in seen, f"{symbol} and {seen[value]} share 0x{value:08X}"
            seen[value] = symbol


def test_aliases_map_to_rows_with_the_same_value() -> None:
    assert ALIASES == {
        "SEC_E_NO_SPM": "SEC_E_INTERNAL_ERROR",
        "SEC_E_NOT_SUPPORTED": "SEC_E_UNSUPPORTED_FUNCTION",
    }
    for alias, target in ALIASES.items():
        assert alias in VALUES
        assert target in VALUES
        assert target not in ALIASES
        assert VALUES[alias] == VALUES[target]


@pytest.mark.parametrize(
    ("symbol", "value"),
    [
        ("SEC_E_OK", 0x00000000),
        ("SEC_E_NOT_OWNER", 0x80090306),
        ("SEC_E_UNSUPPORTED_FUNCTION", 0x80090302),
        ("SEC_I_CONTINUE_NEEDED", 0x00090312),
        ("SEC_E_INVALID_TOKEN", 0x80090308),
        ("SEC_E_INSUFFICIENT_BUFFERS", 0x8009036B),
        ("SEC_E_INVALID_HANDLE", 0x80090301),
        ("SEC_E_NO_SPM", 0x80090304),
        ("SEC_E_NOT_SUPPORTED", 0x80090302),
    ],
)
def test_known_values(symbol: str, value: int) -> None:
    assert VALUES[symbol] == value


def test_meanings_are_single_sentences() -> None:
    for symbol, _, meaning, advice in STATUS_CODES:
        assert meaning.strip(), symbol
        assert meaning.endswith("."), symbol
        assert meaning == meaning.strip(), symbol
        for text in (meaning, advice):
            assert "\t" not in text, symbol
            assert "\n" not in text, symbol
            assert "\r" not in text, symbol


@pytest.mark.parametrize(
    "symbol",
    [
        "SEC_E_UNSUPPORTED_FUNCTION",
        "SEC_E_INVALID_HANDLE",
        "SEC_E_INVALID_TOKEN",
        "SEC_E_SECPKG_NOT_FOUND",
        "SEC_E_NOT_OWNER",
        "SEC_E_UNKNOWN_CREDENTIALS",
        "SEC_E_NO_CREDENTIALS",
        "SEC_E_INSUFFICIENT_MEMORY",
        "SEC_E_INTERNAL_ERROR",
        "SEC_E_CANNOT_PACK",
        "SEC_E_CONTEXT_EXPIRED",
        "SEC_E_LOGON_DENIED",
        "SEC_E_MESSAGE_ALTERED",
        "SEC_E_OUT_OF_SEQUENCE",
        "SEC_E_INCOMPLETE_MESSAGE",
        "SEC_E_DECRYPT_FAILURE",
        "SEC_E_WRONG_PRINCIPAL",
        "SEC_E_NO_AUTHENTICATING_AUTHORITY",
        "SEC_E_TARGET_UNKNOWN",
        "SEC_E_TIME_SKEW",
        "SEC_I_CONTINUE_NEEDED",
        "SEC_I_COMPLETE_NEEDED",
        "SEC_I_COMPLETE_AND_CONTINUE",
    ],
)
def test_commonly_hit_codes_have_advice(symbol: str) -> None:
    advice = {row[0]: row[3] for row in STATUS_CODES}[symbol]
    assert advice.strip(), f"{symbol} should tell the user what to try"


def test_unsupported_function_advice_names_the_alternatives() -> None:
    advice = {row[0]: row[3] for row in STATUS_CODES}["SEC_E_UNSUPPORTED_FUNCTION"]
    assert "sspi-rs" in advice
    assert "Wine" in advice
    assert "sspi_import.testing.FakeSspi" in advice


# --- the generator on synthetic input ------------------------------------------------------

SAMPLE_HEADER = """\
#define ERROR_SUCCESS 0L
#define SEC_E_OK ((HRESULT)0x00000000)
#define SEC_E_INSUFFICIENT_MEMORY _HRESULT_TYPEDEF_(0x80090300L)
#define SEC_E_INTERNAL_ERROR _HRESULT_TYPEDEF_(0x80090304)   // comment
#define SEC_I_CONTINUE_NEEDED _HRESULT_TYPEDEF_(0x00090312)
#define SEC_E_NO_SPM SEC_E_INTERNAL_ERROR
"""

SAMPLE_MEANINGS = """\
# comment line

SEC_E_OK\tIt worked.\t
SEC_E_INSUFFICIENT_MEMORY\tOut of memory.\tFree something.
SEC_E_INTERNAL_ERROR\tThe LSA is unreachable.\t
SEC_I_CONTINUE_NEEDED\tCall again.\tSend the token to the peer.
SEC_E_NO_SPM\tAlias of SEC_E_INTERNAL_ERROR.
"""


def _write_inputs(tmp_path: Path, header: str, meanings: str) -> tuple[Path, Path, Path]:
    header_path = tmp_path / "winerror.h"
    meanings_path = tmp_path / "meanings.txt"
    header_path.write_text(header, encoding="utf-8")
    meanings_path.write_text(meanings, encoding="utf-8")
    return header_path, meanings_path, tmp_path / "status_codes.py"


def test_parse_header_forms(gen: ModuleType) -> None:
    entries = gen.parse_header(SAMPLE_HEADER)
    assert [(e.symbol, e.value, e.alias_of) for e in entries] == [
        ("SEC_E_OK", 0, None),
        ("SEC_E_INSUFFICIENT_MEMORY", 0x80090300, None),
        ("SEC_E_INTERNAL_ERROR", 0x80090304, None),
        ("SEC_I_CONTINUE_NEEDED", 0x00090312, None),
        ("SEC_E_NO_SPM", 0x80090304, "SEC_E_INTERNAL_ERROR"),
    ]


def test_parse_header_rejects_unknown_forms(gen: ModuleType) -> None:
    with pytest.raises(gen.GenerationError, match="SEC_E_WEIRD"):
        gen.parse_header("#define SEC_E_WEIRD (0x80090300 + 1)\n")
    with pytest.raises(gen.GenerationError, match="SEC_E_MISSING"):
        gen.parse_header("#define SEC_E_DANGLING SEC_E_MISSING\n")


def test_generate_writes_module_and_check_passes(
    gen: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header, meanings, output = _write_inputs(tmp_path, SAMPLE_HEADER, SAMPLE_MEANINGS)
    args = [str(header), "--meanings", str(meanings), "--output", str(output)]
    assert gen.main(args) == 0
    namespace: dict[str, object] = {}
    exec(compile(output.read_text(encoding="utf-8"), str(output), "exec"), namespace)
    assert namespace["STATUS_CODES"] == (
        ("SEC_E_OK", 0, "It worked.", ""),
        ("SEC_E_INSUFFICIENT_MEMORY", 0x80090300, "Out of memory.", "Free something."),
        ("SEC_E_INTERNAL_ERROR", 0x80090304, "The LSA is unreachable.", ""),
        ("SEC_I_CONTINUE_NEEDED", 0x00090312, "Call again.", "Send the token to the peer."),
        ("SEC_E_NO_SPM", 0x80090304, "Alias of SEC_E_INTERNAL_ERROR.", ""),
    )
    assert namespace["ALIASES"] == {"SEC_E_NO_SPM": "SEC_E_INTERNAL_ERROR"}
    assert gen.main([*args, "--check"]) == 0

    output.write_text(output.read_text(encoding="utf-8") + "# hand edit\n", encoding="utf-8")
    capsys.readouterr()
    assert gen.main([*args, "--check"]) == 1
    assert "out of date" in capsys.readouterr().err


def test_missing_meaning_fails_naming_the_symbol(
    gen: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    meanings = SAMPLE_MEANINGS.replace("SEC_I_CONTINUE_NEEDED\tCall again.", "#")
    header, meanings_path, output = _write_inputs(tmp_path, SAMPLE_HEADER, meanings)
    args = [str(header), "--meanings", str(meanings_path), "--output", str(output)]
    assert gen.main(args) == 1
    err = capsys.readouterr().err
    assert "without a meaning" in err
    assert "SEC_I_CONTINUE_NEEDED" in err
    assert not output.exists()


def test_extra_meaning_fails_naming_the_symbol(
    gen: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    meanings = SAMPLE_MEANINGS + "SEC_E_NOT_IN_HEADER\tNo such code.\t\n"
    header, meanings_path, output = _write_inputs(tmp_path, SAMPLE_HEADER, meanings)
    args = [str(header), "--meanings", str(meanings_path), "--output", str(output)]
    assert gen.main(args) == 1
    err = capsys.readouterr().err
    assert "the header lacks" in err
    assert "SEC_E_NOT_IN_HEADER" in err


def test_meaning_without_period_is_rejected(gen: ModuleType) -> None:
    with pytest.raises(gen.GenerationError, match="SEC_E_OK"):
        gen.parse_meanings("SEC_E_OK\tIt worked\t\n")


def test_generated_sample_is_ruff_formatted(gen: ModuleType) -> None:
    ruff = _ruff()
    if ruff is None:
        pytest.skip("ruff is not installed")
    long_advice = "Try this; " * 20 + 'with "quotes" and a \\ backslash.'
    meanings = gen.parse_meanings(SAMPLE_MEANINGS)
    meanings["SEC_E_OK"] = gen.Meaning("It worked.", long_advice)
    text = gen.render(gen.parse_header(SAMPLE_HEADER), meanings)
    result = subprocess.run(
        [ruff, "format", "--check", "--line-length", "100", "--stdin-filename", "m.py", "-"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    namespace: dict[str, object] = {}
    exec(compile(text, "m.py", "exec"), namespace)
    rows = namespace["STATUS_CODES"]
    assert isinstance(rows, tuple)
    assert rows[0] == ("SEC_E_OK", 0, "It worked.", long_advice)
