"""The command line: ``explain``, ``packages`` and ``selftest``, in-process and as ``-m``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sspi_import import cli
from sspi_import.__main__ import main
from sspi_import._raw import constants as C  # noqa: N812
from sspi_import._raw import loader

SRC = Path(__file__).resolve().parent.parent / "src"
FAKE = cli._fake_class()
needs_fake = pytest.mark.skipif(
    FAKE is None, reason="sspi_import.testing.FakeSspi (issue 5) is not in this build yet"
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    status, out, _ = run(capsys, *argv, "--json")
    return status, json.loads(out)


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


def test_explain_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, doc = run_json(capsys, "explain", "-2146893050", "0x12345678", "junk")
    assert status == 2
    known, unknown, junk = doc
    assert known == {
        "input": "-2146893050",
        "known": True,
        "symbol": "SEC_E_NOT_OWNER",
        "status": 0x80090306,
        "hex": "0x80090306",
        "signed": -2146893050,
        "meaning": known["meaning"],
        "advice": known["advice"],
        "aliases": [],
        "exception": "sspi_import.NotOwnerError",
    }
    assert known["meaning"]
    assert unknown["known"] is False
    assert unknown["symbol"] is None
    assert "error" in junk


def test_explain_needs_a_code(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "explain")
    assert status == 2
    assert "CODE" in err


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--help")
    assert status == 0
    assert "examples:" in out
    assert "sspi-import selftest --sspi-rs" in out
    for command in ("explain", "packages", "selftest"):
        status, out, _ = run(capsys, command, "--help")
        assert status == 0
        assert "examples:" in out


def test_python_dash_m(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-m", "sspi_import", "explain", "0x80090306"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("SEC_E_NOT_OWNER  0x80090306  -2146893050\n")


# packages -----------------------------------------------------------------------------


def test_capability_names() -> None:
    assert cli.capability_names(0) == []
    flags = C.SECPKG_FLAG_INTEGRITY | C.SECPKG_FLAG_PRIVACY | C.SECPKG_FLAG_MUTUAL_AUTH
    assert cli.capability_names(flags) == ["INTEGRITY", "PRIVACY", "MUTUAL_AUTH"]
    assert cli.capability_names(0x8000_0000 | 1) == ["INTEGRITY", "0x80000000"]


def test_exporting_packages_are_the_documented_ones() -> None:
    for name in ("NTLM", "kerberos", "Negotiate", "Schannel"):
        assert name.casefold() in cli.EXPORTING_PACKAGES
    assert "pku2u" not in cli.EXPORTING_PACKAGES


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
    rows = {line.split()[0]: line.split() for line in lines[2:-1]}
    assert {"NTLM", "Negotiate", "Kerberos"} <= set(rows)
    # sspi-rs does not implement ExportSecurityContext: no package of it can export.
    assert all(row[2] == "no" for row in rows.values())
    assert loader._api is None, "the command must put the previous library back"


@pytest.mark.sspi_rs
def test_packages_json_on_sspi_rs(capsys: pytest.CaptureFixture[str], sspi_rs_path: Path) -> None:
    status, doc = run_json(capsys, "packages", "--sspi-rs")
    assert status == 0
    assert doc["provider"]["kind"] == "sspi-rs"
    assert doc["provider"]["simulated"] is False
    ntlm = next(p for p in doc["packages"] if p["name"] == "NTLM")
    assert ntlm["export"] == "no"
    assert ntlm["max_token"] > 0
    assert isinstance(ntlm["capability_names"], list)


def test_packages_with_a_bad_library(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run(capsys, "packages", "--library", str(tmp_path / "nope.so"))
    assert status == 1
    assert "cannot load the SSPI library" in err
    status, doc = run_json(capsys, "packages", "--library", str(tmp_path / "nope.so"))
    assert status == 1
    assert doc["ok"] is False


def test_packages_provider_options_exclude_each_other(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, _, err = run(capsys, "packages", "--fake", "--sspi-rs")
    assert status == 2
    assert "not allowed with" in err


# selftest -----------------------------------------------------------------------------


@pytest.mark.sspi_rs
def test_selftest_on_sspi_rs(capsys: pytest.CaptureFixture[str], sspi_rs_path: Path) -> None:
    status, out, _ = run(capsys, "selftest", "--sspi-rs")
    assert status == 1
    lines = out.splitlines()
    assert lines[0] == f"provider: sspi-rs ({sspi_rs_path})"
    assert lines[1].startswith("PASS  handshake (NTLM)  SEC_E_OK  server sees SSPI-IMPORT\\demo")
    export = next(line for line in lines if " export " in line)
    assert export.startswith("FAIL  export  SEC_E_UNSUPPORTED_FUNCTION: ")
    assert "SKIP  import (this process)  needs export, which failed" in lines
    assert lines[-1].startswith("FAIL: ")
    assert loader._api is None


@pytest.mark.sspi_rs
def test_selftest_on_sspi_rs_json_with_identity(
    capsys: pytest.CaptureFixture[str], sspi_rs_path: Path
) -> None:
    status, doc = run_json(
        capsys,
        "selftest",
        "--library",
        str(sspi_rs_path),
        "--user",
        "alice",
        "--domain",
        "EXAMPLE",
        "--password",
        "s3cret",
    )
    assert status == 1
    assert doc["ok"] is False
    assert doc["simulated"] is False
    steps = {step["name"]: step for step in doc["steps"]}
    assert steps["handshake (NTLM)"]["result"] == "PASS"
    assert steps["handshake (NTLM)"]["status"] == "SEC_E_OK"
    assert "EXAMPLE\\alice" in steps["handshake (NTLM)"]["detail"]
    assert steps["export"] == {
        "name": "export",
        "result": "FAIL",
        "status": "SEC_E_UNSUPPORTED_FUNCTION",
        "detail": steps["export"]["detail"],
    }
    assert steps["import (child process)"]["result"] == "SKIP"


@pytest.mark.sspi_rs
def test_selftest_half_an_identity_fails_the_handshake(
    capsys: pytest.CaptureFixture[str], sspi_rs_path: Path
) -> None:
    status, out, _ = run(capsys, "selftest", "--sspi-rs", "--user", "alice")
    assert status == 1
    assert "FAIL  handshake (NTLM)  error: ValueError: --user and --password go together" in out
    assert "SKIP  export  needs handshake, which failed" in out


def test_selftest_bad_library(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, _ = run(capsys, "selftest", "--library", str(tmp_path / "nope.so"))
    assert status == 1
    assert out.startswith("FAIL  provider  error: cannot load the SSPI library")


@pytest.mark.skipif(sys.platform == "win32", reason="Windows has a real provider: secur32")
def test_selftest_without_any_provider(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "_fake_class", lambda: None)
    status, out, _ = run(capsys, "selftest")
    assert status == 1
    assert "no SSPI library on this system" in out


@needs_fake
def test_selftest_fake(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "selftest", "--fake")
    assert status == 0, out
    lines = out.splitlines()
    assert "simulated" in lines[0]
    assert all(line.startswith("PASS  ") for line in lines[1:-1]), out
    assert any(line.startswith("PASS  import (child process)") for line in lines)
    assert lines[-1] == (
        "PASS: all steps passed on the SIMULATED provider (this says nothing about Windows)"
    )
    assert loader._api is None


@needs_fake
def test_selftest_fake_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, doc = run_json(capsys, "selftest", "--fake")
    assert status == 0
    assert doc["ok"] is True
    assert doc["simulated"] is True
    assert [step["result"] for step in doc["steps"]] == ["PASS"] * len(doc["steps"])
    assert {step["status"] for step in doc["steps"]} == {"SEC_E_OK"}


@needs_fake
@pytest.mark.skipif(sys.platform == "win32", reason="Windows has a real provider: secur32")
def test_selftest_defaults_to_the_fake_off_windows(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "selftest")
    assert status == 0, out
    assert "note: no real SSPI provider on this system" in out


@needs_fake
def test_packages_fake(capsys: pytest.CaptureFixture[str]) -> None:
    status, doc = run_json(capsys, "packages", "--fake")
    assert status == 0
    assert doc["provider"]["simulated"] is True
    assert doc["packages"]


@pytest.mark.windows_sspi
def test_selftest_on_windows(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "selftest")
    assert status == 0, out
    assert out.startswith("provider: secur32.dll")
    assert "PASS  import (child process)" in out


@pytest.mark.windows_sspi
def test_packages_on_windows(capsys: pytest.CaptureFixture[str]) -> None:
    status, doc = run_json(capsys, "packages")
    assert status == 0
    by_name = {p["name"]: p for p in doc["packages"]}
    assert by_name["NTLM"]["export"] == "yes"
    assert by_name["Negotiate"]["export"] == "yes"
    assert "INTEGRITY" in by_name["NTLM"]["capability_names"]


def test_selftest_child_reports_bad_input_as_json(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO('{"exported": "bm90IGEgY29udGV4dA=="}'))
    status = cli._child(["--library", "/nonexistent/libsspi.so"])
    answer = json.loads(capsys.readouterr().out)
    assert status == 1
    assert answer["ok"] is False
    assert "cannot load the SSPI library" in answer["error"]
