"""``sspi-import selftest``: steps, the JSON contract, the password rule, consoles and pipes."""

from __future__ import annotations

import getpass
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cli_contract import fits, run, run_json, validate
from sspi_import import SspiUnavailableError, library
from sspi_import.cli import _provider, _selftest
from sspi_import.cli._output import SafeText

SRC = Path(__file__).resolve().parent.parent / "src"
USER, DOMAIN = (
    "\u043f\u043e\u043b\u044c\u0437\u043e\u0432\u0430\u0442\u0435\u043b\u044c",
    ("\u0414\u041e\u041c\u0415\u041d"),
)
"""A non-Latin identity: 'ДОМЕН\\пользователь', outside cp1252."""
UNSUPPORTED = 0x80090302


def steps_by_id(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    assert [step["id"] for step in doc["steps"]] == list(_selftest.STEP_IDS)
    return {step["id"]: step for step in doc["steps"]}


@pytest.fixture(autouse=True)
def _no_password_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_selftest.PASSWORD_ENV, raising=False)


# sspi-rs: a real handshake, and real failures ------------------------------------------


@pytest.mark.sspi_rs
def test_selftest_on_sspi_rs(capsys: pytest.CaptureFixture[str], sspi_rs_path: Path) -> None:
    status, out, err = run(capsys, "selftest", "--sspi-rs")
    assert status == 1
    lines = out.splitlines()
    assert lines[0] == f"provider: sspi-rs ({sspi_rs_path})"
    assert lines[1].startswith("PASS  handshake (NTLM)  SEC_E_OK  server sees SSPI-IMPORT\\demo")
    export = next(line for line in lines if line.startswith("FAIL  export"))
    # Updated (issue 15.6): the step names its call; the meaning is said once, on stderr.
    assert export == "FAIL  export  SEC_E_UNSUPPORTED_FUNCTION: ExportSecurityContext failed"
    assert "SKIP  import (this process)  needs export, which failed" in lines
    assert lines[-1].startswith("FAIL: ")
    assert fits("\n".join(lines[1:])), out
    # sign and export both fail with it; on stderr, once per call: sign's own advice (sspi-rs
    # has no MakeSignature), and for export the status's general one, by its pointer
    assert out.count("SEC_E_UNSUPPORTED_FUNCTION") == 2
    assert err.count("does not support the requested function") == 2
    assert "sspi-rs implements neither MakeSignature nor VerifySignature" in " ".join(err.split())
    assert "sspi-import explain SEC_E_UNSUPPORTED_FUNCTION" in " ".join(err.split())
    assert "does not support" not in out
    assert fits(err), err
    assert library._api is None


@pytest.mark.sspi_rs
def test_selftest_on_sspi_rs_json_with_identity(
    capsys: pytest.CaptureFixture[str], sspi_rs_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(_selftest.PASSWORD_ENV, "s3cret")
    status, doc = run_json(
        capsys, "selftest", "--library", str(sspi_rs_path), "--user", "alice", "--domain", "EXAMPLE"
    )
    assert status == 1
    assert doc["schema"] == "sspi-import/selftest/1"
    assert doc["ok"] is False
    assert doc["error"] is None  # the provider worked; a step failed
    assert doc["provider"]["simulated"] is False
    steps = steps_by_id(doc)
    assert steps["handshake"]["name"] == "handshake (NTLM)"
    assert steps["handshake"]["result"] == "PASS"
    assert (steps["handshake"]["status"], steps["handshake"]["symbol"]) == (0, "SEC_E_OK")
    assert "EXAMPLE\\alice" in steps["handshake"]["detail"]
    assert steps["export"] == {
        "id": "export",
        "name": "export",
        "result": "FAIL",
        "status": UNSUPPORTED,
        "symbol": "SEC_E_UNSUPPORTED_FUNCTION",
        "detail": "ExportSecurityContext failed",
    }
    assert steps["import_child"]["result"] == "SKIP"
    assert (steps["import_child"]["status"], steps["import_child"]["symbol"]) == (None, None)
    assert "s3cret" not in json.dumps(doc)


# the password rule: environment or prompt, never argv (usage errors: exit 2) ----------


def test_password_on_the_command_line_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv in (["--password", "secret"], ["--password"]):
        status, out, err = run(capsys, "selftest", "--fake", "--user", "alice", *argv)
        assert status == 2
        assert out == ""  # no document: the command did not run
        assert "--password is not accepted" in err
        assert _selftest.PASSWORD_ENV in err
        assert "secret" not in err
        assert fits(err), err


def test_user_without_a_password_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Updated (issue 15.6): this was a FAILed handshake step with exit 1.
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal: no prompt
    status, out, err = run(capsys, "selftest", "--fake", "--user", "alice", "--json")
    assert status == 2
    assert out == ""
    assert err.startswith("sspi-import selftest: error: --user needs a password")
    assert _selftest.PASSWORD_ENV in err


def test_domain_without_user_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "selftest", "--fake", "--domain", "EXAMPLE")
    assert status == 2
    assert "--domain needs --user" in err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_password_is_prompted_for_on_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return "from-the-prompt"

    monkeypatch.setattr(sys, "stdin", _Terminal())
    monkeypatch.setattr(getpass, "getpass", ask)
    args = _selftest_args("--fake", "--user", "alice", "--domain", "EXAMPLE")
    identity = _selftest.resolve_identity(args, _provider.Provider("simulated", "fake"))
    assert prompts == ["password for EXAMPLE\\alice: "]
    assert identity is not None
    assert (identity.user, identity.domain) == ("alice", "EXAMPLE")
    assert "from-the-prompt" not in repr(identity)


def test_password_from_the_environment_wins_over_the_prompt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def ask(prompt: str) -> str:
        raise AssertionError("no prompt when the environment has the password")

    monkeypatch.setattr(sys, "stdin", _Terminal())
    args = _selftest_args("--fake", "--user", "alice")
    identity = _selftest.resolve_identity(
        args,
        _provider.Provider("simulated", "fake"),
        environ={_selftest.PASSWORD_ENV: "env"},
        ask=ask,
    )
    assert identity is not None
    assert identity.user == "alice"


def _selftest_args(*argv: str) -> Any:
    from sspi_import.cli._main import build_parser

    return build_parser().parse_args(["selftest", *argv])


def test_selftest_with_an_explicit_identity_on_the_fake(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(_selftest.PASSWORD_ENV, "pw")
    status, doc = run_json(capsys, "selftest", "--fake", "--user", USER, "--domain", DOMAIN)
    assert status == 0, doc
    assert f"{DOMAIN}\\{USER}" in steps_by_id(doc)["import_child"]["detail"]


# providers that cannot be used ---------------------------------------------------------


def test_selftest_bad_library(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.so")
    status, out, err = run(capsys, "selftest", "--library", missing)
    assert status == 1
    assert "cannot load the SSPI library" in err
    assert out.startswith(f"provider: library ({missing})\n")
    assert "SKIP  handshake (NTLM)  the provider could not be used" in out
    # New contract: no fake "provider" step and no "provider": null; the same keys.
    status, doc = run_json(capsys, "selftest", "--library", missing)
    assert status == 1
    assert doc["ok"] is False
    assert doc["provider"]["library"] == missing
    assert {step["result"] for step in steps_by_id(doc).values()} == {"SKIP"}
    assert "cannot load the SSPI library" in doc["error"]["message"]


@pytest.mark.skipif(sys.platform == "win32", reason="Windows has a real provider: secur32")
def test_selftest_without_any_provider(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_provider, "fake_class", lambda: None)
    status, _, err = run(capsys, "selftest")
    assert status == 1
    assert "no SSPI library on this system" in err
    status, doc = run_json(capsys, "selftest")
    assert status == 1
    assert doc["provider"]["kind"] == "none"
    assert "no SSPI library" in doc["error"]["message"]


@pytest.mark.sspi_rs
def test_sspi_rs_missing_is_reported_with_the_provider_asked_for(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, sspi_rs_path: Path
) -> None:
    def missing() -> Path:
        raise SspiUnavailableError("sspilib is not installed")

    monkeypatch.setattr(_provider, "find_sspi_rs", missing)
    status, doc = run_json(capsys, "selftest", "--sspi-rs")
    assert status == 1
    assert doc["provider"]["kind"] == "sspi-rs"
    assert doc["error"]["message"] == "sspilib is not installed"


# the simulated provider ----------------------------------------------------------------


def test_selftest_fake(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "selftest", "--fake")
    assert status == 0, out
    assert err == ""
    lines = out.splitlines()
    assert "simulated" in lines[0]
    heads = [line for line in lines[1:-2] if not line.startswith(" ")]
    assert len(heads) == len(_selftest.STEP_IDS)
    assert all(line.startswith("PASS  ") for line in heads), out
    assert any(line.startswith("PASS  import (child process)") for line in lines)
    # Updated: the verdict is wrapped to 80 columns.
    assert " ".join(" ".join(lines[-2:]).split()) == (
        "PASS: all steps passed on the SIMULATED provider (this says nothing about Windows)"
    )
    assert fits(out), out
    assert library._api is None


def test_selftest_fake_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, doc = run_json(capsys, "selftest", "--fake")
    assert status == 0
    assert doc["ok"] is True
    assert doc["provider"]["simulated"] is True
    steps = steps_by_id(doc)
    assert {step["result"] for step in steps.values()} == {"PASS"}
    assert {(step["status"], step["symbol"]) for step in steps.values()} == {(0, "SEC_E_OK")}


@pytest.mark.skipif(sys.platform == "win32", reason="Windows has a real provider: secur32")
def test_selftest_defaults_to_the_fake_off_windows(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "selftest")
    assert status == 0, out
    # Updated: the note is a diagnostic, on stderr.
    assert "sspi-import selftest: no real SSPI provider on this system" in err
    assert "note" not in out


def test_selftest_child_failure_carries_its_status(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A child that cannot load its provider: the parent's step says what the child said.
    monkeypatch.setattr(
        _provider.Provider,
        "child_args",
        lambda self: ["--library", "/nonexistent/libsspi.so"] if self.simulated else [],
    )
    status, doc = run_json(capsys, "selftest", "--fake")
    assert status == 1
    child = steps_by_id(doc)["import_child"]
    assert child["result"] == "FAIL"
    assert "in the child process" in child["detail"]
    assert "cannot load the SSPI library" in child["detail"]


def test_selftest_child_reports_bad_input_as_json(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"exported": "bm90IGEgY29udGV4dA=="}'))
    status = _selftest.child_main(["--library", "/nonexistent/libsspi.so"])
    out = capsys.readouterr().out
    answer = json.loads(out)
    assert out.isascii()
    assert status == 1
    assert answer["ok"] is False
    assert answer["status"] is None
    assert "cannot load the SSPI library" in answer["error"]


def test_step_lines_fit_80_columns_and_never_break_a_path() -> None:
    path = "/a/very/long/path/" + "x" * 90
    step = _selftest.Step("import_child", "import (child process)", "FAIL", None, path)
    lines = step.lines()
    assert lines[0] == "FAIL  import (child process)  error:"
    assert lines[1] == f"      {path}"
    short = _selftest.Step("query", "query", "PASS", 0, "a " * 60)
    assert fits("\n".join(short.lines()))
    unknown = _selftest.Step("export", "export", "FAIL", 0x80091234, "X failed")
    assert unknown.lines() == ["FAIL  export  0x80091234: X failed"]
    assert unknown.as_json()["symbol"] is None


# consoles and pipes (issue 13.3) -------------------------------------------------------


def _selftest_cp1252(*argv: str) -> subprocess.CompletedProcess[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        "PYTHONIOENCODING": "cp1252",  # what a redirected stdout is on most Windows runners
        _selftest.PASSWORD_ENV: "pw",
    }
    env.pop("PYTHONUTF8", None)
    env.pop(library.ENV_VAR, None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sspi_import",
            "selftest",
            "--user",
            USER,
            "--domain",
            DOMAIN,
            *argv,
        ],
        capture_output=True,
        env=env,
        check=False,
        timeout=180,
    )


def test_cp1252_text_output_does_not_crash_on_a_non_latin_user() -> None:
    result = _selftest_cp1252("--fake")
    assert b"Traceback" not in result.stderr, result.stderr.decode("cp1252", "replace")
    assert result.returncode == 0, result.stdout.decode("cp1252", "replace")
    text = result.stdout.decode("cp1252")
    escaped = f"{DOMAIN}\\{USER}".encode("ascii", "backslashreplace").decode("ascii")
    assert f"server sees {escaped}" in text
    assert " ".join(text.split()).endswith("(this says nothing about Windows)")


def test_cp1252_json_output_is_ascii_and_keeps_the_name() -> None:
    result = _selftest_cp1252("--fake", "--json")
    assert result.returncode == 0, result.stderr.decode("cp1252", "replace")
    assert result.stdout.isascii()
    doc = json.loads(result.stdout)
    validate(doc, "selftest")
    assert f"{DOMAIN}\\{USER}" in steps_by_id(doc)["handshake"]["detail"]


@pytest.mark.sspi_rs
def test_cp1252_on_sspi_rs_with_a_non_latin_identity(sspi_rs_path: Path) -> None:
    result = _selftest_cp1252("--library", str(sspi_rs_path))
    assert b"Traceback" not in result.stderr, result.stderr.decode("cp1252", "replace")
    assert result.returncode == 1  # export is not implemented by sspi-rs
    assert b"PASS  handshake (NTLM)  SEC_E_OK  server sees \\u0414" in result.stdout
    result = _selftest_cp1252("--library", str(sspi_rs_path), "--json")
    doc = json.loads(result.stdout)
    validate(doc, "selftest")
    assert f"{DOMAIN}\\{USER}" in steps_by_id(doc)["handshake"]["detail"]


# Windows -------------------------------------------------------------------------------


@pytest.mark.windows_sspi
def test_selftest_on_windows(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "selftest")
    assert status == 0, out
    assert out.startswith("provider: secur32.dll")
    assert "PASS  import (child process)" in out


@pytest.mark.windows_sspi
def test_selftest_on_windows_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, doc = run_json(capsys, "selftest")
    assert status == 0, doc
    assert doc["provider"]["kind"] == "secur32"
    assert {step["result"] for step in steps_by_id(doc).values()} == {"PASS"}


@pytest.mark.windows_sspi
def test_selftest_redirected_on_windows_without_utf8_mode(tmp_path: Path) -> None:
    # The real console case: stdout to a file in the ANSI code page, no PYTHONUTF8.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONUTF8", "PYTHONIOENCODING")}
    target = tmp_path / "out.txt"
    with target.open("wb") as sink:
        result = subprocess.run(
            [sys.executable, "-m", "sspi_import", "selftest"],
            stdout=sink,
            stderr=subprocess.PIPE,
            env=env,
            check=False,
            timeout=300,
        )
    assert b"UnicodeEncodeError" not in result.stderr
    assert result.returncode == 0, target.read_bytes()


def test_a_failure_with_advice_of_its_own_call_gets_that_advice() -> None:
    """Said on stderr once per status and call: the call's own advice where there is one
    (``explain SYMBOL`` alone would give the general one), else where to look."""
    internal, denied = 0x80090304, 0x8009030C  # SEC_E_INTERNAL_ERROR, SEC_E_LOGON_DENIED
    accept = "AcceptSecurityContext"
    steps = [
        _selftest.Step("handshake", "handshake (Negotiate)", "FAIL", internal, "x", accept),
        _selftest.Step("query", "query", "FAIL", internal, "x", accept),
        _selftest.Step("export", "export", "FAIL", denied, "x", accept),
    ]
    err = io.StringIO()
    _selftest._explain_failures(steps, SafeText(err))
    text = " ".join(err.getvalue().split())
    assert text.count("SEC_E_INTERNAL_ERROR from AcceptSecurityContext:") == 1
    assert "sspi-rs's Negotiate acceptor fails this way" in text
    assert "For what to do: sspi-import explain SEC_E_LOGON_DENIED" in text


@pytest.mark.parametrize(
    "argv",
    [
        ("selftest", "--fake", "--package", ""),
        ("selftest", "--fake", "--target", " "),
        ("packages", "--library", ""),
    ],
)
def test_an_empty_argument_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    """Exit status 2, as cli.md says for a bad argument: not a failed step (1)."""
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert "must not be empty" in err
    assert not out
