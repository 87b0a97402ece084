"""The CI helpers in ``.ci`` and what the Windows lane relies on.

The JUnit check that keeps the Windows lanes honest, the architecture check, the C stub's
refusal on Windows, and the workflow's newcomer job held to the README.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

import stubs

ROOT = Path(__file__).resolve().parent.parent
CI = ROOT / ".ci"
TESTS = ROOT / "tests"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_ci_{name}", CI / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


check_junit = _load("check_junit")


def _case(name: str, markers: str | None, outcome: str = "") -> str:
    props = (
        f'<properties><property name="markers" value="{markers}"/></properties>'
        if markers is not None
        else ""
    )
    return (
        f'<testcase classname="tests.test_x" name="{name}" time="0.1">{props}{outcome}</testcase>'
    )


def _report(tmp_path: Path, *cases: str) -> Path:
    path = tmp_path / "junit.xml"
    suite = f'<testsuite name="pytest" tests="{len(cases)}">{"".join(cases)}</testsuite>'
    path.write_text(
        f'<?xml version="1.0" encoding="utf-8"?>\n<testsuites>{suite}</testsuites>\n',
        encoding="utf-8",
    )
    return path


SKIPPED = '<skipped type="pytest.skip" message="needs Windows">skip</skipped>'
FAILED = '<failure message="boom">trace</failure>'


def test_all_windows_tests_passed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = _report(
        tmp_path,
        _case("test_a", "windows"),
        _case("test_b", "parametrize windows"),
        _case("test_c", ""),  # deselected-by-marker tests may be present; not counted
    )
    assert check_junit.main([str(report)]) == 0
    assert "2 'windows' tests: 2 passed, 0 skipped" in capsys.readouterr().out


def test_a_skipped_windows_test_fails_the_lane(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _report(tmp_path, _case("test_a", "windows"), _case("test_b", "windows", SKIPPED))
    assert check_junit.main([str(report), "--marker", "windows"]) == 1
    out = capsys.readouterr().out
    assert "1 skipped" in out
    assert "skipped: tests.test_x::test_b" in out


def test_no_windows_test_fails_the_lane(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = _report(tmp_path, _case("test_a", "sspi_rs"))
    assert check_junit.main([str(report)]) == 1
    assert "no 'windows' test ran" in capsys.readouterr().err


def test_an_empty_report_fails_the_lane(tmp_path: Path) -> None:
    assert check_junit.main([str(_report(tmp_path))]) == 1


def test_a_failed_windows_test_fails_the_lane(tmp_path: Path) -> None:
    report = _report(tmp_path, _case("test_a", "windows", FAILED))
    assert check_junit.main([str(report)]) == 1


def test_a_report_without_markers_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _report(tmp_path, _case("test_a", None))
    assert check_junit.main([str(report)]) == 2
    assert "-p junit_markers" in capsys.readouterr().err


def test_a_missing_or_broken_report_is_refused(tmp_path: Path) -> None:
    assert check_junit.main([str(tmp_path / "absent.xml")]) == 2
    broken = tmp_path / "broken.xml"
    broken.write_text("<testsuites><testcase", encoding="utf-8")
    assert check_junit.main([str(broken)]) == 2


def test_the_plugin_writes_markers_pytest_reads_back(tmp_path: Path) -> None:
    """End to end: a real pytest run with the plugin gives a report the check accepts."""
    (tmp_path / "test_sample.py").write_text(
        textwrap.dedent(
            """\
            import pytest

            @pytest.mark.windows
            def test_real():
                pass

            @pytest.mark.windows
            def test_skipped():
                pytest.skip("no secur32 here")

            def test_plain():
                pass
            """
        ),
        encoding="utf-8",
    )
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nmarkers =\n    windows: real SSPI\n", encoding="utf-8"
    )
    report = tmp_path / "junit.xml"
    env = {**os.environ, "PYTHONPATH": str(CI)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "junit_markers", f"--junitxml={report}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    result = check_junit.tally(report, "windows")
    assert result.passed == ["test_sample::test_real"]
    assert result.skipped == ["test_sample::test_skipped"]
    assert check_junit.main([str(report)]) == 1


# The C stub on the Windows lane: never an error, a skip with the reason -----------------


def test_the_stub_is_not_built_on_windows(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """On Windows the stub refuses before looking for gcc, with the reason as the message."""

    def no_gcc(*args: object, **kwargs: object) -> None:
        raise AssertionError("gcc must not be looked for or run on Windows")

    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr("shutil.which", no_gcc)
    monkeypatch.setattr("subprocess.run", no_gcc)
    with pytest.raises(stubs.StubUnavailable) as caught:
        stubs.Stub.build(tmp_path / "stub")
    assert str(caught.value) == stubs.WINDOWS_REASON
    for cause in ("WinError 193", "libwinpthread-1.dll", "stdcall", "secur32"):
        assert cause in stubs.WINDOWS_REASON
    assert not (tmp_path / "stub").exists()


def test_a_library_that_does_not_load_is_unavailable_not_an_error(tmp_path: Path) -> None:
    """Whatever OSError the loader raises (WinError 193 on Windows) becomes a skip reason."""
    broken = tmp_path / stubs.library_name()
    broken.write_bytes(b"MZ\x90\x00 not a library for this interpreter")
    with pytest.raises(stubs.StubUnavailable, match="cannot load the SSPI stub") as caught:
        stubs.Stub(broken)
    assert str(broken) in str(caught.value)
    assert isinstance(caught.value.__cause__, OSError)


def test_stub_build_turns_a_load_failure_into_stub_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The path the ``stub_build`` fixture takes: build succeeds, load fails, skip follows."""
    broken = tmp_path / stubs.library_name()
    broken.write_bytes(b"\x7fELF but truncated")
    monkeypatch.setattr(stubs, "build_stub", lambda directory: broken)
    with pytest.raises(stubs.StubUnavailable, match="cannot load the SSPI stub"):
        stubs.Stub.build(tmp_path)


def test_the_stub_fixture_skips_with_the_reason(tmp_path: Path) -> None:
    """End to end through this suite's conftest: on "Windows" a stub test skips, not errors."""
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            f"""\
            import importlib.util
            import sys

            import pytest

            sys.path.insert(0, {str(TESTS)!r})
            path = {str(TESTS / "conftest.py")!r}
            spec = importlib.util.spec_from_file_location("suite_conftest", path)
            suite = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(suite)
            stub_build = suite.stub_build  # the fixture under test, as the suite defines it


            @pytest.fixture(scope="session", autouse=True)
            def _windows():
                real, sys.platform = sys.platform, "win32"  # what the Windows lane sees
                yield
                sys.platform = real
            """
        ),
        encoding="utf-8",
    )
    (tmp_path / "test_uses_stub.py").write_text(
        "def test_needs_stub(stub_build):\n    raise AssertionError('must not run')\n",
        encoding="utf-8",
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 skipped" in run.stdout
    assert "cannot build the SSPI stub on Windows" in run.stdout
