"""The command line: ``explain``, ``packages``, the JSON contract and ``python -m``.

``selftest`` has its own file (test_cli_selftest.py). Every ``--json`` document is
validated against the schema file the package ships (tests/cli_contract.py).
"""

from __future__ import annotations

import ast
import errno
import io
import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

import sspi_import.cli
from cli_contract import KEYWORDS, keywords_used, run, run_json, schema, validate
from sspi_import import library
from sspi_import._raw import constants as C  # noqa: N812
from sspi_import.cli import _explain, _packages, _selftest
from sspi_import.cli._output import OutputError, SafeText, forgiving_std_streams
from sspi_import.testing import FakeSspi

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
COMMANDS = ("explain", "packages", "selftest")


def fits(text: str, width: int = 80) -> bool:
    return all(len(line) <= width for line in text.splitlines())


# the package and its contract ---------------------------------------------------------


def test_cli_exports_only_main() -> None:
    assert sspi_import.cli.__all__ == ["main"]
    assert sspi_import.cli.main is sspi_import.__main__.main
    for internal in ("Provider", "Step", "build_parser", "PackageInfo"):
        assert not hasattr(sspi_import.cli, internal)


# The major version of each document: a key removed or renamed, or a value whose meaning
# changed, is a new one (docs/cli.md). packages/2: export says "by-name", not "yes", and
# the probe is reported apart (issue 22 §3).
SCHEMA_VERSIONS = {"explain": 1, "packages": 2, "selftest": 1}


@pytest.mark.parametrize("command", COMMANDS)
def test_schema_files_are_draft_2020_12_in_the_checked_subset(command: str) -> None:
    document = schema(command)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    module = {"explain": _explain, "packages": _packages, "selftest": _selftest}[command]
    assert document["properties"]["schema"] == {"const": module.SCHEMA}
    assert f"sspi-import/{command}/{SCHEMA_VERSIONS[command]}" == module.SCHEMA
    assert document["$id"] == f"urn:sspi-import:schema:{command}:{SCHEMA_VERSIONS[command]}"
    # the tiny validator applies every keyword the files use: none is silently ignored
    assert keywords_used(document) <= KEYWORDS, keywords_used(document) - KEYWORDS
    # the same keys on success and failure: every property is required, no others allowed
    assert set(document["required"]) == set(document["properties"])
    assert document["additionalProperties"] is False
    for name, definition in document["$defs"].items():
        if definition.get("type") in ("object", ["object", "null"]):
            assert set(definition["required"]) == set(definition["properties"]), name
            assert definition["additionalProperties"] is False, name
    try:
        import jsonschema  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        return
    jsonschema.Draft202012Validator.check_schema(document)


def test_the_validator_rejects_what_the_contract_forbids() -> None:
    good = {"schema": "sspi-import/explain/1", "ok": True, "codes": []}
    validate(good, "explain")
    for bad in (
        {**good, "schema": "sspi-import/explain/2"},
        {**good, "extra": 1},
        {"schema": "sspi-import/explain/1", "ok": True},
        {**good, "ok": "yes"},
        {**good, "codes": [{"input": "x"}]},
    ):
        with pytest.raises(AssertionError):
            validate(bad, "explain")


def test_schema_files_are_package_data() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")  # no tomllib on 3.10
    section = text[text.index("[tool.setuptools.package-data]") :]
    line = next(line for line in section.splitlines() if line.startswith("sspi_import = "))
    patterns = ast.literal_eval(line.removeprefix("sspi_import = "))
    shipped = {p.name for pattern in patterns for p in (SRC / "sspi_import").glob(pattern)}
    assert {f"{c}.schema.json" for c in COMMANDS} <= shipped
    files = resources.files("sspi_import.cli")
    assert all(files.joinpath(f"{c}.schema.json").is_file() for c in COMMANDS)


# explain ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "form",
    [
        "0x80090306",  # hex, as the headers write it
        "0X80090306",
        "2148074246",  # unsigned decimal
        "-2146893050",  # signed decimal, as OSError.winerror and pywin32 show it
        "SEC_E_NOT_OWNER",
        "sec_e_not_owner",
        " 0x80090306 ",
    ],
)
def test_explain_every_form(capsys: pytest.CaptureFixture[str], form: str) -> None:
    status, out, err = run(capsys, "explain", form)
    assert status == 0, err
    assert out.splitlines()[0] == "SEC_E_NOT_OWNER  0x80090306  -2146893050"
    assert "meaning:" in out
    assert "advice:" in out
    assert "raises:    sspi_import.NotOwnerError" in out
    assert err == ""


def test_explain_alias_success_code_and_class_free_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = run(capsys, "explain", "SEC_E_NOT_SUPPORTED", "0x00090312", "0x80090307")
    assert status == 0
    assert "SEC_E_UNSUPPORTED_FUNCTION  0x80090302  -2146893054" in out
    assert "also:      SEC_E_NOT_SUPPORTED" in out
    assert "SEC_I_CONTINUE_NEEDED  0x00090312  590610" in out
    install = out[out.index("SEC_E_CANNOT_INSTALL") :]
    assert "raises:" not in install  # no class of its own: plain SspiError


def test_explain_text_fits_80_columns(capsys: pytest.CaptureFixture[str]) -> None:
    codes = ["SEC_E_UNSUPPORTED_FUNCTION", "SEC_E_NOT_OWNER", "0x12345678", "80090306"]
    _, out, err = run(capsys, "explain", *codes, "junk")
    assert fits(out), out
    assert fits(err), err
    long_advice = next(line for line in out.splitlines() if line.startswith("  advice:"))
    assert len(long_advice) > 60  # wrapped, not cut: the next line carries on indented
    assert out.splitlines()[out.splitlines().index(long_advice) + 1].startswith(" " * 13)


def test_explain_unknown_code_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "explain", "0x80090306", "0x12345678")
    assert status == 1
    assert "0x12345678  305419896  unknown" in out
    assert "SEC_E_NOT_OWNER" in out


@pytest.mark.parametrize("garbage", ["garbage", "SEC_E_NO_SUCH_THING", "0x1FFFFFFFF", "0x"])
def test_explain_garbage_exits_2(capsys: pytest.CaptureFixture[str], garbage: str) -> None:
    status, out, err = run(capsys, "explain", garbage, "0x12345678")
    assert status == 2
    assert "sspi-import explain: " in err
    assert "unknown" in out  # the other codes are still explained
    assert "sspi-import" not in out  # diagnostics on stderr only


def test_explain_decimal_that_reads_as_hex_is_accepted_and_suggested(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # 80090306 is decimal 0x04C614C2, unknown; its hex reading 0x80090306 is SEC_E_NOT_OWNER
    status, out, err = run(capsys, "explain", "80090306")
    assert status == 1
    assert out.startswith("0x04C614C2  80090306  unknown\n")
    assert "did you mean 0x80090306 (SEC_E_NOT_OWNER)?" in " ".join(err.split())
    status, doc = run_json(capsys, "explain", "80090306")
    assert status == 1
    (entry,) = doc["codes"]
    assert entry["status"] == 80090306
    assert entry["suggestion"] == {
        "input": "0x80090306",
        "status": 0x80090306,
        "symbol": "SEC_E_NOT_OWNER",
    }


def test_explain_no_suggestion_when_the_decimal_is_known_or_hex_unknown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, doc = run_json(capsys, "explain", "2148074246", "12345678", "0x80090306")
    assert [entry["suggestion"] for entry in doc["codes"]] == [None, None, None]
    assert capsys.readouterr().err == ""


def test_explain_json(capsys: pytest.CaptureFixture[str]) -> None:
    # New contract (issue 15.6): one object with a schema id, entries with the same keys.
    status, doc = run_json(capsys, "explain", "-2146893050", "0x12345678", "junk")
    assert status == 2
    assert doc["schema"] == "sspi-import/explain/1"
    assert doc["ok"] is False
    known, unknown, junk = doc["codes"]
    assert known == {
        "input": "-2146893050",
        "valid": True,
        "known": True,
        "symbol": "SEC_E_NOT_OWNER",
        "status": 0x80090306,
        "hex": "0x80090306",
        "signed": -2146893050,
        "meaning": known["meaning"],
        "advice": known["advice"],
        "aliases": [],
        "exception": "sspi_import.NotOwnerError",
        "suggestion": None,
        "error": None,
    }
    assert known["meaning"]
    assert unknown["known"] is False
    assert unknown["valid"] is True
    assert unknown["symbol"] is None
    assert junk["valid"] is False
    assert junk["status"] is None
    assert "is not a status code" in junk["error"]
    assert set(known) == set(unknown) == set(junk)
    status, doc = run_json(capsys, "explain", "SEC_E_OK")
    assert (status, doc["ok"]) == (0, True)


def test_explain_needs_a_code(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "explain")
    assert status == 2
    assert "CODE" in err
    assert out == ""


def test_help_has_examples(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    status, out, _ = run(capsys, "--help")
    assert fits(out), out
    assert status == 0
    assert "examples:" in out
    assert "sspi-import selftest --sspi-rs" in out
    for command in COMMANDS:
        status, out, _ = run(capsys, command, "--help")
        assert status == 0
        assert "examples:" in out
        assert "exit status:" in out
        assert fits(out), out


def _run_module(*argv: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        **env,
    }
    environment.pop("PYTHONUTF8", None)
    return subprocess.run(
        [sys.executable, "-m", "sspi_import", *argv],
        capture_output=True,
        env=environment,
        check=False,
        timeout=120,
    )


def test_python_dash_m() -> None:
    result = _run_module("explain", "0x80090306")
    assert result.returncode == 0, result.stderr
    # sys.stdout is in text mode: "\r\n" on Windows, "\n" elsewhere.
    newline = os.linesep.encode()
    assert result.stdout.startswith(b"SEC_E_NOT_OWNER  0x80090306  -2146893050" + newline)


def test_main_makes_a_strict_stdout_forgiving_and_restores_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # argparse and getpass write to sys.stdout themselves; Python's stderr already escapes.
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="cp1252", errors="strict")  # text mode, as stdout
    monkeypatch.setattr(sys, "stdout", stream)
    with forgiving_std_streams():
        print("\u043f\u0430\u0440\u043e\u043b\u044c \u20ac")
    assert stream.errors == "strict"
    stream.flush()
    expected = b"\\u043f\\u0430\\u0440\\u043e\\u043b\\u044c \x80" + os.linesep.encode()
    assert raw.getvalue() == expected


def test_safe_text_escapes_what_the_stream_cannot_encode() -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="cp1252", errors="strict")
    SafeText(stream).write("\u0414\u041e\u041c \u00e9")
    stream.flush()
    assert raw.getvalue() == b"\\u0414\\u041e\\u041c \xe9"


# output that goes away: a reader that left, a full disk -------------------------------

# Every OS has a pipe whose reader left; /dev/full only some (Linux, not Windows).
OUTPUT_TARGETS = ["closed-pipe", *(["dev-full"] if os.path.exists("/dev/full") else [])]


@pytest.mark.parametrize("target", OUTPUT_TARGETS)
@pytest.mark.parametrize(
    "argv",
    [("explain", "0x80090306"), ("explain", "--json", "0x80090306"), ("--help",), ("--version",)],
    ids=["explain", "explain-json", "help", "version"],
)
def test_output_that_cannot_be_written_ends_in_one_line_and_status_1(
    target: str, argv: tuple[str, ...]
) -> None:
    # `sspi-import explain ... | head -1`: on Windows the write fails with EINVAL, not
    # BrokenPipeError; `> /dev/full` with ENOSPC. Neither may end in a traceback.
    if target == "closed-pipe":
        reader, stdout = os.pipe()
        os.close(reader)  # the reader left before the first write
    else:
        stdout = os.open("/dev/full", os.O_WRONLY)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "sspi_import", *argv],
            stdout=stdout,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), *sys.path])},
            check=False,
            timeout=120,
        )
    finally:
        os.close(stdout)
    errors = result.stderr.decode("utf-8", "replace").splitlines()
    assert result.returncode == 1, errors
    assert len(errors) == 1, errors  # one line, no traceback
    assert errors[0].startswith("sspi-import: cannot write to stdout: "), errors
    if target == "closed-pipe":
        assert errors[0].endswith("the program reading it has exited (the pipe is closed)")
    else:
        assert errors[0].endswith("No space left on device")


class _Failing(io.TextIOWrapper):
    """A text stream whose every write fails with ``error``."""

    def __init__(self, error: OSError) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8")
        self.error = error

    @property
    def name(self) -> str:
        return "<stdout>"

    def write(self, text: str) -> int:
        raise self.error


@pytest.mark.parametrize(
    ("error", "reader_left"),
    [
        (BrokenPipeError(errno.EPIPE, "Broken pipe"), True),
        # What Windows' C runtime reports for a pipe whose reader left (and only there).
        (OSError(errno.EINVAL, "Invalid argument"), sys.platform == "win32"),
        (OSError(errno.ENOSPC, "No space left on device"), False),
    ],
    ids=["EPIPE", "EINVAL", "ENOSPC"],
)
def test_a_failing_stdout_is_reported_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: OSError,
    reader_left: bool,
) -> None:
    monkeypatch.setattr(sys, "stdout", _Failing(error))
    assert sspi_import.cli.main(["explain", "0x80090306"]) == 1
    assert OutputError("<stdout>", error).reader_left is reader_left
    (line,) = capsys.readouterr().err.splitlines()
    why = "the program reading it has exited" if reader_left else error.strerror
    assert line.startswith(f"sspi-import: cannot write to stdout: {why}")


# packages -----------------------------------------------------------------------------


def test_capability_names() -> None:
    assert _packages.capability_names(0) == []
    flags = C.SECPKG_FLAG_INTEGRITY | C.SECPKG_FLAG_PRIVACY | C.SECPKG_FLAG_MUTUAL_AUTH
    assert _packages.capability_names(flags) == ["INTEGRITY", "PRIVACY", "MUTUAL_AUTH"]
    assert _packages.capability_names(0x8000_0000 | 1) == ["INTEGRITY", "0x80000000"]


def test_exporting_packages_are_the_documented_ones() -> None:
    for name in ("NTLM", "kerberos", "Negotiate", "Schannel"):
        assert name.casefold() in _packages.EXPORTING_PACKAGES
    assert "pku2u" not in _packages.EXPORTING_PACKAGES


@pytest.mark.sspi_rs
@pytest.mark.parametrize("how", ["--sspi-rs", "--library"])
def test_packages_on_sspi_rs(
    capsys: pytest.CaptureFixture[str], sspi_rs_path: Path, how: str
) -> None:
    argv = ["packages", how] if how == "--sspi-rs" else ["packages", how, str(sspi_rs_path)]
    status, out, err = run(capsys, *argv)
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == f"provider: sspi-rs ({sspi_rs_path})"
    assert fits("\n".join(lines[1:])), out
    rows = {line.split()[0]: line.split() for line in lines[2:] if not line.startswith(" ")}
    assert {"NTLM", "Negotiate", "Kerberos"} <= set(rows)
    # sspi-rs does not implement ExportSecurityContext: no package of it can export.
    assert all(row[2] == "no" for row in rows.values())
    assert library._api is None, "the command must put the previous library back"


@pytest.mark.sspi_rs
def test_packages_json_on_sspi_rs(capsys: pytest.CaptureFixture[str], sspi_rs_path: Path) -> None:
    status, doc = run_json(capsys, "packages", "--sspi-rs")
    assert status == 0
    assert doc["ok"] is True
    assert doc["error"] is None
    assert doc["provider"]["kind"] == "sspi-rs"
    assert doc["provider"]["library"] == str(sspi_rs_path)
    assert doc["provider"]["simulated"] is False
    assert doc["export_probe"] == {
        "result": "unsupported",
        "status": 0x80090302,
        "symbol": "SEC_E_UNSUPPORTED_FUNCTION",
    }
    ntlm = next(p for p in doc["packages"] if p["name"] == "NTLM")
    assert ntlm["export"] == "no"  # probed, whatever the name says
    assert ntlm["export_documented"] is True
    assert ntlm["max_token"] > 0
    assert isinstance(ntlm["capability_names"], list)


def test_packages_with_a_bad_library(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.so")
    status, out, err = run(capsys, "packages", "--library", missing)
    assert status == 1
    assert out == ""
    assert "cannot load the SSPI library" in err
    status, doc = run_json(capsys, "packages", "--library", missing)
    assert status == 1
    # New contract: the same keys as on success; the provider asked for, not null.
    assert doc["ok"] is False
    assert doc["provider"]["kind"] == "library"
    assert doc["provider"]["library"] == missing
    assert doc["packages"] == []
    assert "cannot load the SSPI library" in doc["error"]["message"]
    assert doc["error"]["status"] is None


def test_packages_failing_call_reports_its_status(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeSspi() as fake:
        fake.fail("EnumerateSecurityPackagesW", "SEC_E_INSUFFICIENT_MEMORY")
        with pytest.raises(sspi_import.SspiError) as caught:
            _packages.enumerate_packages(library.api())
    assert caught.value.symbol == "SEC_E_INSUFFICIENT_MEMORY"


def test_enumerate_packages_frees_the_array_when_the_probe_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(lib: object) -> object:
        raise RuntimeError("probe_export broke")

    monkeypatch.setattr(_packages, "probe_export", broken)
    with FakeSspi() as fake:
        with pytest.raises(RuntimeError, match="probe_export broke"):
            _packages.enumerate_packages(library.api())
        assert fake.outstanding().buffers == 0, fake.outstanding()
        assert not fake.misuses


def test_packages_provider_options_exclude_each_other(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, _, err = run(capsys, "packages", "--fake", "--sspi-rs")
    assert status == 2
    assert "not allowed with" in err


def test_packages_fake(capsys: pytest.CaptureFixture[str]) -> None:
    status, doc = run_json(capsys, "packages", "--fake")
    assert status == 0
    assert doc["provider"]["simulated"] is True
    assert doc["packages"]
    # NTLM, Kerberos, Negotiate: known from the name; the probe only shows the call is there
    assert {p["export"] for p in doc["packages"]} == {"by-name"}
    assert all(p["export_documented"] for p in doc["packages"])
    assert doc["export_probe"]["result"] == "answers"
    assert doc["export_probe"]["symbol"] == "SEC_E_INVALID_HANDLE"


def test_packages_never_say_yes_from_a_name_alone(capsys: pytest.CaptureFixture[str]) -> None:
    # Issue 22 §3: on Wine, whose secur32 answers SEC_E_INVALID_HANDLE to the probe as
    # Windows' does and exports nothing, every documented name said "export: yes". The
    # default provider here: secur32 on Windows and on Wine, FakeSspi elsewhere.
    status, doc = run_json(capsys, "packages")
    assert status == 0
    for package in doc["packages"]:
        assert package["export"] in ("no", "by-name", "unknown"), package
        if package["export"] == "by-name":
            assert package["export_documented"], package
            assert doc["export_probe"]["result"] == "answers"
    status, out, _ = run(capsys, "packages")
    assert status == 0
    assert " yes " not in out
    legend = " ".join(out[out.index("  export:") :].split())
    assert "known from the name only" in legend
    assert "probed: this provider's ExportSecurityContext answered" in legend


def test_packages_say_no_when_the_probe_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeSspi() as fake:
        fake.fail("ExportSecurityContext", "SEC_E_UNSUPPORTED_FUNCTION")
        packages, probe = _packages.enumerate_packages(library.api())
        fake.assert_no_leaks()
    assert probe == _packages.ExportProbe("unsupported", 0x80090302)
    assert {p.export for p in packages} == {"no"}
    assert all(p.export_documented for p in packages)  # the name said otherwise
    assert "export: no = probed" in _packages.legend(probe)


def test_a_provider_without_the_function_exports_nothing() -> None:
    class NoExport:
        def __init__(self, fake: FakeSspi) -> None:
            self.fake = fake

        def sspi_function_address(self, name: str) -> int | None:
            if name == "ExportSecurityContext":
                return None
            return self.fake.sspi_function_address(name)

    fake = FakeSspi()
    lib = library.load(NoExport(fake), "no export")
    assert _packages.probe_export(lib) == _packages.ExportProbe("absent", None)
    assert _packages.export_of("NTLM", _packages.ExportProbe("absent", None)) == "no"
    assert _packages.export_of("NTLM", _packages.ExportProbe("answers", 0x80090301)) == "by-name"
    assert _packages.export_of("Pku2u", _packages.ExportProbe("answers", 0x80090301)) == "unknown"


def test_packages_text_fits_80_columns(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "packages", "--fake")
    assert status == 0
    assert fits(out), out


@pytest.mark.skipif(sys.platform == "win32", reason="Windows has a real provider: secur32")
def test_packages_default_note_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "packages")
    assert status == 0
    assert "no real SSPI provider on this system" in err
    assert "note" not in out


@pytest.mark.windows_sspi
def test_packages_on_windows(capsys: pytest.CaptureFixture[str]) -> None:
    status, doc = run_json(capsys, "packages")
    assert status == 0
    assert doc["provider"]["kind"] == "secur32"
    by_name = {p["name"]: p for p in doc["packages"]}
    assert doc["export_probe"]["result"] == "answers"  # the call is there
    assert by_name["NTLM"]["export"] == "by-name"  # not proven by the listing
    assert by_name["Negotiate"]["export"] == "by-name"
    assert by_name["NTLM"]["export_documented"] is True
    assert "INTEGRITY" in by_name["NTLM"]["capability_names"]


@pytest.mark.windows_sspi
def test_packages_text_on_windows_fits_80_columns(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "packages")
    assert status == 0
    assert out.startswith("provider: secur32.dll")
    assert fits(out), out


def test_json_is_one_document(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "explain", "SEC_E_OK", "--json")
    assert json.loads(out)["codes"][0]["symbol"] == "SEC_E_OK"
