"""``sspi-import packages`` (``cli/_packages.py``): the package list and the export probe on
sspi-rs, FakeSspi and Windows; capability names; a bad, failing or export-less provider.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import sspi_import.cli
from cli_contract import fits, run, run_json
from sspi_import import library
from sspi_import._raw import constants as C  # noqa: N812
from sspi_import.cli import _packages
from sspi_import.testing import FakeSspi


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
