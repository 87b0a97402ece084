"""The pytest plugin, run the way a downstream project runs it: pytest in a subprocess."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from importlib import metadata

import pytest

PLUGIN = "sspi_import.testing.pytest_plugin"
PYPROJECT = pathlib.Path(__file__).resolve().parent.parent / "pyproject.toml"

DOWNSTREAM = """
import pytest
import sspi_import


def test_handoff(sspi_fake):
    client, server = sspi_import.loopback("NTLM")
    with client, server, server.export(sspi_import.ExportFlags.DELETE_OLD) as exported:
        with sspi_import.ImportedContext.from_exported(exported) as imported:
            client.verify(b"hi", imported.sign(b"hi"))
    assert sspi_fake.calls("ImportSecurityContextW") == 1


def test_injected_failure(sspi_fake):
    sspi_fake.fail("ImportSecurityContextW", "SEC_E_NOT_OWNER")
    with pytest.raises(sspi_import.NotOwnerError):
        sspi_import.ImportedContext("NTLM", b"blob")


@pytest.mark.windows_sspi
def test_real_sspi():
    assert sspi_import.library_description()
"""

LEAKY = """
import ctypes
import sspi_import
from sspi_import._raw import loader


def test_leaks(sspi_fake):
    credentials = sspi_import.Credentials.acquire("NTLM", "outbound")
    credentials.detach()  # nobody frees it


def test_failed_test_is_not_also_reported_for_leaks(sspi_fake):
    sspi_import.Credentials.acquire("NTLM", "outbound").detach()
    assert False, "the test's own failure"


def test_double_free(sspi_fake):
    info = ctypes.POINTER(sspi_import._raw.structs.SecPkgInfoW)()
    api = loader.api()
    api.EnumerateSecurityPackagesW(ctypes.byref(ctypes.c_uint32()), ctypes.byref(info))
    address = ctypes.cast(info, ctypes.c_void_p).value
    api.FreeContextBuffer(address)
    api.FreeContextBuffer(address)  # its failure status ignored: the fixture still reports it
"""


def _run(
    tmp_path: pathlib.Path, source: str, *, autoload: bool = False
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_downstream.py").write_text(source)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env.pop("PYTEST_ADDOPTS", None)
    args = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-rfEs",
        "--strict-markers",
        "-p",
        "no:cacheprovider",
    ]
    if not autoload:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        args += ["-p", PLUGIN]
    args += ["-W", "error", str(tmp_path)]
    return subprocess.run(
        args, cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env, check=False
    )


def test_downstream_suite_uses_the_fixture_and_marker(tmp_path: pathlib.Path) -> None:
    result = _run(tmp_path, DOWNSTREAM)
    output = result.stdout + result.stderr
    if sys.platform == "win32":
        assert "3 passed" in output, output
    else:
        assert result.returncode == 0, output
        assert "2 passed, 1 skipped" in output, output
        assert "needs the real Windows SSPI" in output, output


def test_fixture_reports_leaks_at_teardown(tmp_path: pathlib.Path) -> None:
    result = _run(tmp_path, LEAKY)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "1 failed, 2 passed, 2 errors" in output, output
    assert "ERROR test_downstream.py::test_leaks" in output, output
    assert "ERROR test_downstream.py::test_double_free" in output, output
    assert "FAILED test_downstream.py::test_failed_test_is_not_also" in output, output
    assert "AssertionError: FakeSspi: credentials 0x" in output, output
    assert "FakeSspi: handles misused: [Misuse(function='FreeContextBuffer'" in output, output


def test_entry_point_is_declared() -> None:
    text = PYPROJECT.read_text(encoding="utf-8")
    assert f'[project.entry-points.pytest11]\nsspi_import = "{PLUGIN}"' in text


def _installed_entry_point() -> bool:
    return any(
        ep.name == "sspi_import" and ep.value == PLUGIN
        for ep in metadata.entry_points(group="pytest11")
    )


@pytest.mark.skipif(
    not _installed_entry_point(), reason="sspi-import is not installed (pip install -e .)"
)
def test_installed_entry_point_loads_the_plugin(tmp_path: pathlib.Path) -> None:
    result = _run(tmp_path, DOWNSTREAM, autoload=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
