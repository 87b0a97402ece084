"""The command line as a whole (``cli/_main.py``, ``cli/_output.py``): the package's
exports, the JSON contract, ``--help``, ``python -m``, output that cannot be written.

Each command has its own file: test_cli_explain.py, test_cli_packages.py,
test_cli_selftest.py. Every ``--json`` document is validated against the schema file the
package ships (tests/cli_contract.py).
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
from cli_contract import KEYWORDS, fits, keywords_used, run, schema, validate
from sspi_import.cli import _explain, _packages, _selftest
from sspi_import.cli._output import OutputError, SafeText, forgiving_std_streams

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
COMMANDS = ("explain", "packages", "selftest")


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


# --help and python -m -------------------------------------------------------------------


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


def test_json_is_one_document(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "explain", "SEC_E_OK", "--json")
    assert json.loads(out)["codes"][0]["symbol"] == "SEC_E_OK"


@pytest.mark.parametrize(
    ("closed", "args", "status"),
    [("stdout", ["explain", "0x80090306"], 0), ("stderr", ["explain", "bogus", "--json"], 2)],
)
def test_a_closed_standard_stream_is_written_to_nowhere(
    monkeypatch: pytest.MonkeyPatch, closed: str, args: list[str], status: int
) -> None:
    """A shell's '>&-' leaves sys.stdout (or stderr) None: that crashed with a traceback."""
    from sspi_import.cli import _main

    monkeypatch.setattr(sys, closed, None)
    assert _main.main(args) == status
