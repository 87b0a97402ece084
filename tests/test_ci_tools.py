"""The CI helpers in ``.ci`` and what the Windows lane relies on.

The JUnit check that keeps the Windows lanes honest, the architecture check, the C stub's
refusal on Windows, and the workflow's newcomer job held to the README.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Sequence
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


def _case(
    name: str, markers: str | None, outcome: str = "", classname: str = "tests.test_x"
) -> str:
    props = (
        f'<properties><property name="markers" value="{markers}"/></properties>'
        if markers is not None
        else ""
    )
    return f'<testcase classname="{classname}" name="{name}" time="0.1">{props}{outcome}</testcase>'


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
# What pytest writes for a module skipped at collection and for one that fails to import
# (the texts are pytest's own: see test_real_collection_outcomes_fail_the_lane).
COLLECTION_SKIPPED = (
    '<skipped message="collection skipped">'
    "('tests/test_win.py', 3, 'Skipped: could not import sspi: No module named sspi')"
    "</skipped>"
)
COLLECTION_ERROR = (
    '<error message="collection failure">'
    "ImportError while importing test module tests/test_win.py\nE ModuleNotFoundError"
    "</error>"
)


def test_the_default_marker_is_the_plugins_windows_sspi() -> None:
    assert check_junit.DEFAULT_MARKER == "windows_sspi"
    plugin = (ROOT / "src" / "_sspi_import_pytest.py").read_text("utf-8")  # the entry point
    assert '_MARKER = "windows_sspi"' in plugin


def test_all_windows_tests_passed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = _report(
        tmp_path,
        _case("test_a", "windows_sspi"),
        _case("test_b", "parametrize windows_sspi"),
        _case("test_c", ""),  # a test without the marker, passed: allowed, not counted
    )
    assert check_junit.main([str(report)]) == 0
    out = capsys.readouterr().out
    assert "2 'windows_sspi' tests, 2 passed; in the whole report 0 skipped, 0 failed" in out


def test_a_skipped_windows_test_fails_the_lane(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _report(
        tmp_path, _case("test_a", "windows_sspi"), _case("test_b", "windows_sspi", SKIPPED)
    )
    assert check_junit.main([str(report), "--marker", "windows_sspi"]) == 1
    captured = capsys.readouterr()
    assert "2 'windows_sspi' tests, 1 passed; in the whole report 1 skipped" in captured.out
    assert "skipped: tests.test_x::test_b: needs Windows" in captured.out
    assert "nothing may be skipped here" in captured.err


def test_a_module_skipped_at_collection_fails_the_lane(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """importorskip / skip(allow_module_level=True): a testcase with no markers, still a skip."""
    report = _report(
        tmp_path,
        _case("test_a", "windows_sspi"),
        _case("test_win", None, COLLECTION_SKIPPED, classname="tests"),
    )
    assert check_junit.main([str(report)]) == 1
    captured = capsys.readouterr()
    assert "1 passed; in the whole report 1 skipped" in captured.out
    assert "skipped: tests::test_win (no markers: at collection" in captured.out
    assert "could not import sspi" in captured.out
    assert "nothing may be skipped here" in captured.err


def test_a_collection_error_fails_the_lane(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pytest stops after a collection error: the report holds that error and no test."""
    report = _report(tmp_path, _case("test_win", None, COLLECTION_ERROR, classname="tests"))
    assert check_junit.main([str(report)]) == 1
    captured = capsys.readouterr()
    assert "0 'windows_sspi' tests, 0 passed; in the whole report 0 skipped, 1 failed" in (
        captured.out
    )
    assert "failed:  tests::test_win (no markers" in captured.out
    assert "collection failure: ImportError while importing" in captured.out
    assert "no 'windows_sspi' test passed" in captured.err
    assert "every test of this lane must pass" in captured.err


def test_a_skip_without_the_marker_fails_the_lane_too(tmp_path: Path) -> None:
    report = _report(tmp_path, _case("test_a", "windows_sspi"), _case("test_b", "", SKIPPED))
    assert check_junit.main([str(report)]) == 1


def test_no_windows_test_fails_the_lane(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = _report(tmp_path, _case("test_a", "sspi_rs"))
    assert check_junit.main([str(report)]) == 1
    captured = capsys.readouterr()
    assert "0 'windows_sspi' tests" in captured.out
    assert "no 'windows_sspi' test passed; this lane must run them" in captured.err


def test_the_old_marker_is_not_counted(tmp_path: Path) -> None:
    """Tests still marked ``windows`` are not real-SSPI tests to this check any more."""
    report = _report(tmp_path, _case("test_a", "windows"))
    assert check_junit.main([str(report)]) == 1
    assert check_junit.main([str(report), "--marker", "windows"]) == 0


def test_an_empty_report_fails_the_lane(tmp_path: Path) -> None:
    assert check_junit.main([str(_report(tmp_path))]) == 1


def test_a_failed_windows_test_fails_the_lane(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _report(tmp_path, _case("test_a", "windows_sspi", FAILED))
    assert check_junit.main([str(report)]) == 1
    assert "failed:  tests.test_x::test_a: boom" in capsys.readouterr().out


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


def _run_pytest(directory: Path, *args: str) -> Path:
    (directory / "pytest.ini").write_text(
        "[pytest]\nmarkers =\n    windows_sspi: real SSPI\n", encoding="utf-8"
    )
    report = directory / "junit.xml"
    env = {**os.environ, "PYTHONPATH": str(CI)}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:sspi_import",  # its windows_sspi skip off Windows is not what is tested here
            "-p",
            "junit_markers",
            f"--junitxml={report}",
            *args,
        ],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert report.is_file()
    return report


def test_the_plugin_writes_markers_pytest_reads_back(tmp_path: Path) -> None:
    """End to end: a real pytest run with the plugin gives a report the check accepts."""
    (tmp_path / "test_sample.py").write_text(
        textwrap.dedent(
            """\
            import pytest

            @pytest.mark.windows_sspi
            def test_real():
                pass

            @pytest.mark.windows_sspi
            def test_skipped():
                pytest.skip("no secur32 here")

            def test_plain():
                pass
            """
        ),
        encoding="utf-8",
    )
    report = _run_pytest(tmp_path)
    result = check_junit.tally(report, "windows_sspi")
    assert result.marked == 2
    assert result.passed == ["test_sample::test_real"]
    assert result.skipped == ["test_sample::test_skipped"]
    assert result.reasons["test_sample::test_skipped"] == "no secur32 here"
    assert check_junit.main([str(report)]) == 1
    (tmp_path / "test_sample.py").write_text(
        "import pytest\n\n@pytest.mark.windows_sspi\ndef test_real():\n    pass\n",
        encoding="utf-8",
    )
    assert check_junit.main([str(_run_pytest(tmp_path))]) == 0


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ('pytest.skip("no pywin32", allow_module_level=True)', "skipped"),
        ('sspi = pytest.importorskip("no_such_module_for_this_test")', "skipped"),
        ("import no_such_module_for_this_test", "failed"),
    ],
    ids=["skip-allow-module-level", "importorskip", "collection-error"],
)
def test_real_collection_outcomes_fail_the_lane(tmp_path: Path, module: str, expected: str) -> None:
    """What pytest itself writes when a module never yields its tests, run as the lane does."""
    (tmp_path / "test_ok.py").write_text(
        "import pytest\n\n@pytest.mark.windows_sspi\ndef test_real():\n    pass\n",
        encoding="utf-8",
    )
    (tmp_path / "test_win.py").write_text(
        f"import pytest\n\n{module}\n\n@pytest.mark.windows_sspi\ndef test_never():\n    pass\n",
        encoding="utf-8",
    )
    report = _run_pytest(tmp_path, "-m", "windows_sspi")
    result = check_junit.tally(report, "windows_sspi")
    outcomes = {"skipped": result.skipped, "failed": result.failed}
    assert [name.split(" ")[0] for name in outcomes[expected]] == ["test_win"]
    assert check_junit.main([str(report)]) == 1


# The whole-suite mode (.ci/run on Linux, the Wine lane, the Windows portable step) -------


def test_a_whole_suite_passes_with_only_the_allowed_skips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _report(
        tmp_path,
        _case("test_plain", "parametrize"),
        _case("test_real", "windows_sspi", SKIPPED),
        _case("test_other_real", "windows_sspi", SKIPPED),
    )
    assert check_junit.main([str(report), "--whole-suite", "--allow-skip", "windows_sspi"]) == 0
    out = capsys.readouterr().out
    assert "1 passed, 2 skipped as expected (windows_sspi), 0 skipped unexpectedly" in out
    assert "expected skip x2: needs Windows" in out  # one line per reason, with its count


@pytest.mark.parametrize(
    "case",
    [
        _case("test_stub", "stub", SKIPPED),  # no gcc: a marker that is not allowed
        _case("test_unmarked", "", SKIPPED),
        _case("tests/test_win.py", None, COLLECTION_SKIPPED),  # a module: never expected
        _case("test_real", "windows_sspi", FAILED),  # allowed to skip, not to fail
    ],
    ids=["other-marker", "no-marker", "module", "failure"],
)
def test_a_whole_suite_fails_on_anything_else(tmp_path: Path, case: str) -> None:
    report = _report(tmp_path, _case("test_plain", ""), case)
    assert check_junit.main([str(report), "--whole-suite", "--allow-skip", "windows_sspi"]) == 1


def test_a_whole_suite_needs_a_passed_test_but_no_marker(tmp_path: Path) -> None:
    assert check_junit.main([str(_report(tmp_path, _case("t", "")))]) == 1  # marker mode
    assert check_junit.main([str(_report(tmp_path, _case("t", ""))), "--whole-suite"]) == 0
    skipped = _report(tmp_path, _case("t", "windows_sspi", SKIPPED))
    assert check_junit.main([str(skipped), "--whole-suite", "--allow-skip", "windows_sspi"]) == 1


# The deselect lists (.ci/deselect_list.py) ----------------------------------------------

deselect_list = _load("deselect_list")

SUITE = """\
import pytest

def test_one():
    pass

@pytest.mark.parametrize("n", [1, 2])
def test_two(n):
    pass

@pytest.mark.slowish
def test_marked():
    pass

class TestGroup:
    def test_a(self):
        pass
"""


def _deselect_run(tmp_path: Path, *lists: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nmarkers =\n    slowish: a marker\n", encoding="utf-8"
    )
    (tmp_path / "test_sample.py").write_text(SUITE, encoding="utf-8")
    args: list[str] = []
    for number, text in enumerate(lists):
        path = tmp_path / f"list{number}.txt"
        path.write_text(text, encoding="utf-8")
        args.append(f"--deselect-list={path}")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:sspi_import",
         "-p", "deselect_list", *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(CI)},
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip


def test_the_lists_deselect_by_id_prefix_and_marker_and_say_why(tmp_path: Path) -> None:
    run = _deselect_run(
        tmp_path,
        "# comment\n[no reason to run twice]\ntest_sample.py::test_two\n",
        "[a class]\ntest_sample.py::TestGroup\n[marked]\nmarker:slowish\n",
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed, 4 deselected" in run.stdout
    assert "   2  no reason to run twice" in run.stdout
    assert "   1  a class" in run.stdout
    assert "   1  marked" in run.stdout


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("test_sample.py::test_one\n", "before any [reason]"),
        ("[why]\n[why not]\ntest_sample.py::test_one\n", "reason without a selector"),
        ("[why]\n", "reason without a selector"),
        ("[]\ntest_sample.py::test_one\n", "a reason is '[text]'"),
        ("[why]\ntest one\n", "not a test id or marker"),
    ],
)
def test_a_malformed_list_is_a_usage_error(text: str, complaint: str) -> None:
    with pytest.raises(pytest.UsageError, match=re.escape(complaint)):
        deselect_list.parse(text, "list.txt")


def test_a_stale_entry_fails_the_run_before_any_test(tmp_path: Path) -> None:
    stale = ["test_sample.py::test_gone", "test_sample.py::test_on", "marker:nothing_has_it"]
    run = _deselect_run(tmp_path, "[why]\ntest_sample.py::test_one\n" + "\n".join(stale))
    assert run.returncode == 4, run.stdout + run.stderr  # pytest's usage error
    output = run.stdout + run.stderr
    assert "match no collected test" in output
    for selector in stale:  # a partial name (test_on) matches nothing either
        assert selector in output
    assert "passed" not in output


def test_the_repository_lists_parse_and_give_every_entry_a_reason() -> None:
    for name in ("windows_deselect.txt", "wine_deselect.txt"):
        entries = deselect_list.parse((CI / name).read_text(encoding="utf-8"), name)
        assert entries
        for entry in entries:
            assert len(entry.reason) > 30, entry  # a reason, not a label


# The C stub on Windows: built for the interpreter's architecture, or named, or a skip ----


def _fake_gcc(monkeypatch: pytest.MonkeyPatch, platform: str, machine: str) -> list[list[str]]:
    """Pretend to be a Windows interpreter of ``platform`` with a gcc building for ``machine``."""
    commands: list[list[str]] = []

    def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        commands.append(command)
        if command[1:] == ["-dumpmachine"]:
            return subprocess.CompletedProcess(command, 0, f"{machine}\n", "")
        Path(command[command.index("-o") + 1]).write_bytes(b"MZ")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr("sysconfig.get_platform", lambda: platform)
    monkeypatch.setattr("shutil.which", lambda name: "C:\\mingw64\\bin\\gcc.exe")
    monkeypatch.setattr("subprocess.run", run)
    return commands


@pytest.mark.parametrize(
    ("platform", "machine", "extra"),
    [("win-amd64", "x86_64-w64-mingw32", []), ("win32", "i686-w64-mingw32", ["-Wl,--kill-at"])],
)
def test_on_windows_the_stub_is_built_for_the_interpreter(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, platform: str, machine: str, extra: list[str]
) -> None:
    """No -pthread (SRWLOCK, no libwinpthread-1.dll); x86 exports stdcall undecorated."""
    commands = _fake_gcc(monkeypatch, platform, machine)
    path = stubs.build_stub(tmp_path)
    assert path == tmp_path / "sspistub.dll"
    compile_command = commands[-1]
    assert "-pthread" not in compile_command
    assert "-static-libgcc" in compile_command
    assert [flag for flag in compile_command if flag.startswith("-Wl,")] == extra


@pytest.mark.parametrize(
    ("platform", "machine"),
    [("win32", "x86_64-w64-mingw32"), ("win-arm64", "x86_64-w64-mingw32"), ("win-amd64", "")],
)
def test_on_windows_a_gcc_for_another_architecture_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, platform: str, machine: str
) -> None:
    """The runners' MinGW gcc builds x86-64 only: x86 and arm64 skip, saying what to do."""
    commands = _fake_gcc(monkeypatch, platform, machine)
    with pytest.raises(stubs.StubUnavailable) as caught:
        stubs.build_stub(tmp_path / "stub")
    message = str(caught.value)
    for cause in ("WinError 193", stubs.ENV_VAR, platform):
        assert cause in message
    assert len(commands) == 1  # only asked what it builds for
    assert not (tmp_path / "stub").exists()


def test_an_architecture_without_a_recipe_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sysconfig.get_platform", lambda: "win-ia64")
    with pytest.raises(stubs.StubUnavailable, match=stubs.ENV_VAR):
        stubs.windows_target()


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


def _suite_conftest(tmp_path: Path, platform: str | None) -> None:
    """A conftest that uses this suite's ``stub_build``, as if on ``platform``."""
    pretend = (
        f"real, sys.platform = sys.platform, {platform!r}\n    yield\n    sys.platform = real"
        if platform
        else "yield"
    )
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
            def _pretend():
            """
        )
        + f"    {pretend}\n",
        encoding="utf-8",
    )
    (tmp_path / "test_uses_stub.py").write_text(
        "def test_needs_stub(stub_build):\n    raise AssertionError('must not run')\n",
        encoding="utf-8",
    )


def _pytest_in(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != stubs.ENV_VAR}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={**environment, **env},
    )


def test_the_stub_fixture_skips_with_the_reason(tmp_path: Path) -> None:
    """End to end through this suite's conftest: a stub that cannot be built is a skip."""
    # This interpreter pretending to be a Windows one has no recipe (Linux) or no gcc
    # (Windows under Wine): either way a skip that names the way out.
    _suite_conftest(tmp_path, "win32")
    run = _pytest_in(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 skipped" in run.stdout
    assert "cannot build the SSPI stub" in run.stdout
    assert stubs.ENV_VAR in run.stdout


def test_a_named_stub_that_does_not_load_is_an_error_not_a_skip(tmp_path: Path) -> None:
    """SSPI_IMPORT_STUB_LIBRARY asked for a stub: one that does not load fails the tests."""
    broken = tmp_path / "elsewhere" / stubs.library_name()
    broken.parent.mkdir()
    broken.write_bytes(b"MZ\x90\x00 not a library for this interpreter")
    _suite_conftest(tmp_path, None)
    run = _pytest_in(tmp_path, **{stubs.ENV_VAR: str(broken)})
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 error" in run.stdout
    assert "skipped" not in run.stdout
    assert f"{stubs.ENV_VAR} names a stub that does not load" in run.stdout


# The architecture check: the interpreter is the one the matrix names --------------------

check_arch = _load("check_arch")

RIGHT = {
    "x64": check_arch.Seen(64, "win-amd64", "AMD64"),
    "x86": check_arch.Seen(32, "win32", "AMD64"),  # WOW64 on the x64 runner
    "arm64": check_arch.Seen(64, "win-arm64", "ARM64"),
}


@pytest.mark.parametrize("arch", sorted(RIGHT))
def test_the_matrix_architecture_passes(arch: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_arch.problems(arch, RIGHT[arch]) == []
    assert check_arch.main([arch], seen=RIGHT[arch]) == 0
    assert f"this interpreter is {arch}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("arch", "seen", "complaint"),
    [
        ("x86", check_arch.Seen(64, "win-amd64", "AMD64"), "pointers are 64-bit, x86 needs 32"),
        ("x64", check_arch.Seen(32, "win32", "AMD64"), "pointers are 32-bit, x64 needs 64"),
        # x64 Python emulated on the arm64 runner: 64-bit, and Windows may say ARM64.
        ("arm64", check_arch.Seen(64, "win-amd64", "ARM64"), "built for 'win-amd64'"),
        ("arm64", check_arch.Seen(64, "win-arm64", "AMD64"), "platform.machine() is 'AMD64'"),
        ("x64", check_arch.Seen(64, "win-amd64", "ARM64"), "x64 needs AMD64"),
    ],
)
def test_a_different_architecture_fails_the_step(
    arch: str, seen: object, complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check_arch.main([arch], seen=seen) == 1
    assert complaint in capsys.readouterr().err


def test_an_unknown_architecture_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_arch.main(["amd64"]) == 2
    assert check_arch.main([]) == 2
    assert "x64, x86, arm64" in capsys.readouterr().err


def test_this_interpreter_is_one_windows_architecture_on_windows_and_none_elsewhere() -> None:
    """Run for real: a Windows interpreter matches exactly one (x64 on the Wine lane)."""
    matches = [arch for arch in check_arch.EXPECTED if check_arch.main([arch]) == 0]
    if sys.platform == "win32":
        assert len(matches) == 1, matches
    else:
        assert matches == []


# The workflow: read as text (no YAML parser among the test dependencies) ----------------

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


def _job(name: str) -> list[str]:
    """The lines of one job of ci.yml, from its key to the next job's."""
    lines = WORKFLOW.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"  {name}:")
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"  \S", lines[i])), len(lines))
    return lines[start:end]


def _steps(name: str) -> list[dict[str, str]]:
    """The steps of one job as ``{key: value}``; a block value (``run: |``) reads as ``|``."""
    steps: list[dict[str, str]] = []
    for line in _job(name):
        item = re.match(r"      - (\w[\w-]*): ?(.*)$", line)
        key = item or re.match(r"        (\w[\w-]*): ?(.*)$", line)
        if item:
            steps.append({})
        if key and steps:
            steps[-1][key[1]] = key[2]
    return steps


def _step(name: str, title: str) -> dict[str, str]:
    found = [step for step in _steps(name) if step.get("name", "").startswith(title)]
    assert len(found) == 1, f"job {name} has {len(found)} steps named {title!r}"
    return found[0]


def test_no_job_runs_with_pythonutf8() -> None:
    """Users do not set it; on Windows it hides how the CLI writes in the ANSI code page."""
    text = WORKFLOW.read_text(encoding="utf-8")
    code = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in code if "PYTHONUTF8" in line]
    assert "PYTHONIOENCODING" not in text


def test_the_windows_matrix_is_what_check_arch_knows() -> None:
    job = "\n".join(_job("windows"))
    arches = re.search(r"^        arch: \[(.*)\]$", job, re.MULTILINE)
    assert arches is not None
    assert sorted(a.strip() for a in arches[1].split(",")) == sorted(check_arch.EXPECTED)
    step = _step("windows", "Fail unless the venv's interpreter is")
    assert step["run"] == r".venv\Scripts\python .ci/check_arch.py $env:MATRIX_ARCH"
    assert "MATRIX_ARCH: ${{ matrix.arch }}" in job


def test_the_arm64_runner_says_it_is_free_for_public_repositories_only() -> None:
    job = _job("windows")
    at = job.index("            os: windows-11-arm")
    comment = " ".join(line.strip(" #") for line in job[at - 4 : at] if "#" in line)
    assert "free for public repositories only" in comment


def test_the_windows_lane_runs_and_reports_its_real_sspi_tests_whatever_failed_before() -> None:
    steps = _steps("windows")
    real = _step("windows", "Real-SSPI tests")
    after = steps[steps.index(real) :]
    # the tests, the check, the upload, the self-test, the portable tests and their check
    assert len(after) == 6
    for step in after:
        assert step.get("if") == "${{ !cancelled() }}", step
    assert real["run"].startswith(r".venv\Scripts\python -m pytest -m windows_sspi ")
    assert "-p junit_markers --junitxml=junit-windows.xml" in real["run"]
    check = _step("windows", "Fail if anything in the real-SSPI report")
    assert check["run"] == (
        r".venv\Scripts\python .ci/check_junit.py junit-windows.xml --marker windows_sspi"
    )


def test_the_windows_lane_installs_and_tests_in_a_venv_as_the_readme_says() -> None:
    runs = [step["run"] for step in _steps("windows") if "run" in step]
    assert runs[0] == "python -m venv .venv"
    for run in runs[1:]:
        assert run.startswith(".venv\\Scripts\\python "), run
    assert r'.venv\Scripts\python -m pip install -e ".[dev]" pywin32' in runs
    for step in _steps("windows"):
        if "run" in step:
            assert "timeout-minutes" in step, step


def test_the_portable_tests_leave_out_the_plugins_marker() -> None:
    assert "not windows_sspi" in _step("macos", "Test")["run"]
    assert "not windows_sspi" in _step("windows", "Portable tests")["run"]


def test_the_windows_portable_tests_deselect_by_name_and_fail_on_other_skips() -> None:
    portable = _step("windows", "Portable tests")["run"]
    assert "-p deselect_list --deselect-list=.ci/windows_deselect.txt" in portable
    assert "-p junit_markers" in portable
    assert portable.endswith("--junitxml=junit-portable.xml")
    check = _step("windows", "Fail if a portable test")
    assert check["run"] == (
        r".venv\Scripts\python .ci/check_junit.py junit-portable.xml --whole-suite "
        "--allow-skip $env:ALLOW_SKIP"
    )
    job = "\n".join(_job("windows"))
    # only the jobs whose gcc cannot build for them may skip the stub tests
    assert "ALLOW_SKIP: ${{ matrix.arch == 'x64' && 'none' || 'stub' }}" in job
    text = WORKFLOW.read_text(encoding="utf-8")
    assert not re.search(r"-m \"?(not )?windows\b(?!_)", text)


# The newcomer job: the README's commands, verbatim, on windows-latest --------------------

README = ROOT / "README.md"
WINDOWS_SUBSTITUTIONS = (("python3 -m venv", "python -m venv"), (".venv/bin/", ".venv/Scripts/"))
"""The changes the README says to make on Windows (``python``, ``.venv\\Scripts\\``)."""


def _readme_commands() -> list[str]:
    """The commands of README.md's "Try it on a fresh machine" section, in order."""
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^## Try it on a fresh machine\n(.*?)(?=^## )", text, re.M | re.S)
    assert section is not None, "README.md has no 'Try it on a fresh machine' section"
    blocks = re.findall(r"^```(?:bash|sh|console)?\n(.*?)^```", section[1], re.M | re.S)
    commands = [line for block in blocks for line in block.splitlines() if line.strip()]
    windows = "On Windows, use `python` for `python3` and `.venv\\Scripts\\` for `.venv/bin/`"
    assert windows in section[1]
    return commands


def test_the_newcomer_job_runs_the_readme_commands_verbatim() -> None:
    expected = _readme_commands()
    for old, new in WINDOWS_SUBSTITUTIONS:
        expected = [command.replace(old, new) for command in expected]
    assert len(expected) == 2
    runs = [step["run"] for step in _steps("newcomer") if "run" in step]
    assert runs == expected


def test_the_newcomer_job_is_a_fresh_windows_machine_in_git_bash() -> None:
    job = _job("newcomer")
    assert "    runs-on: windows-latest" in job
    assert job[job.index("    defaults:") + 1 : job.index("    defaults:") + 3] == [
        "      run:",
        "        shell: bash",
    ]
    assert [line.strip() for line in job if re.match(r"\s+shell:", line)] == ["shell: bash"]
    assert not [line for line in job if re.match(r"\s+(env|working-directory):", line)]
    tests = _step("newcomer", "Tests")
    assert tests.get("if") == "${{ !cancelled() }}"  # a broken demonstration still runs the tests


# Action pins: every one listed in the release checklist, with the command that checks it --

check_action_pins = _load("check_action_pins")
CHECKLIST = ROOT / "docs" / "release-checklist.md"


def test_every_action_is_pinned_to_a_sha_with_its_tag() -> None:
    found = check_action_pins.pins()
    assert {pin.repo for pin in found} >= {"actions/checkout", "pypa/gh-action-pypi-publish"}
    for pin in found:
        assert re.fullmatch(r"[0-9a-f]{40}", pin.sha)
        assert re.fullmatch(r"v\d+(\.\d+)*", pin.tag)
    assert len({pin.repo for pin in found}) == len(found), "one action pinned two ways"


def test_an_unpinned_action_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.yml").write_text(
        "jobs:\n  a:\n    steps:\n      - uses: actions/checkout@v5 # v5\n", encoding="utf-8"
    )
    assert check_action_pins.main(["--workflows", str(tmp_path)], run=_no_network) == 2
    assert "x.yml:4: pin 'actions/checkout@v5'" in capsys.readouterr().err


def _no_network(command: object) -> str:
    raise AssertionError(f"no command may run here: {command}")


def test_the_release_checklist_lists_every_pin_with_its_command() -> None:
    rows = re.findall(
        r"^\| `([^`]+)` \| `([0-9a-f]{40})` \| `([^`]+)` \| `([^`]+)` \|$",
        CHECKLIST.read_text(encoding="utf-8"),
        re.MULTILINE,
    )
    listed = sorted((repo, sha, tag, command) for repo, sha, tag, command in rows)
    pinned = [
        (pin.repo, pin.sha, pin.tag, " ".join(pin.command())) for pin in check_action_pins.pins()
    ]
    assert listed == pinned
    assert "python .ci/check_action_pins.py" in CHECKLIST.read_text(encoding="utf-8")
    mkdocs = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert "release-checklist.md" in mkdocs


def _git_repo(directory: Path) -> tuple[str, str]:
    """A repository with an annotated tag v1.0.0 and a lightweight v2.0.0 on one commit."""
    git = ["git", "-C", str(directory), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    git += ["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"]
    subprocess.run(["git", "init", "-q", str(directory)], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "c"], check=True)
    subprocess.run([*git, "tag", "-a", "v1.0.0", "-m", "annotated"], check=True)
    subprocess.run([*git, "tag", "v2.0.0"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    tag_object = subprocess.run(
        [*git, "rev-parse", "v1.0.0"], check=True, capture_output=True, text=True
    ).stdout.strip()
    return head, tag_object


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_pins_are_checked_against_the_tagged_commit_with_real_git_ls_remote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command the checklist gives, run against a local repository instead of GitHub."""
    repo = tmp_path / "repo"
    head, tag_object = _git_repo(repo)
    workflows = tmp_path / "workflows"
    workflows.mkdir()

    def local(command: Sequence[str]) -> str:
        assert list(command[:3]) == ["git", "ls-remote", "https://github.com/o/a"]
        result = subprocess.run(
            ["git", "ls-remote", str(repo), *command[3:]],
            check=True,
            capture_output=True,
            text=True,
        )
        return result.stdout

    def check(*uses: str) -> int:
        steps = "".join(f"      - uses: {line}\n" for line in uses)
        (workflows / "w.yml").write_text(f"jobs:\n  a:\n    steps:\n{steps}", encoding="utf-8")
        return int(check_action_pins.main(["--workflows", str(workflows)], run=local))

    assert check(f"o/a@{head} # v1.0.0", f"o/a/sub@{head} # v2.0.0") == 0
    assert capsys.readouterr().out.count("ok ") == 2
    # The annotated tag's own object is not the commit: pinning it is a mismatch.
    assert check(f"o/a@{tag_object} # v1.0.0") == 1
    assert f"tag v1.0.0 is {head}" in capsys.readouterr().out
    assert check(f"o/a@{head} # v9.9.9") == 1
    assert "tag v9.9.9 does not exist" in capsys.readouterr().out
