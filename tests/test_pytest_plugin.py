"""The pytest plugin, run the way a downstream project runs it: pytest in a subprocess."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from importlib import metadata

import pytest

PLUGIN = "sspi_import.testing.pytest_plugin"  # documented; what -p and pytest_plugins name
ENTRY_POINT = "_sspi_import_pytest"  # what the entry point loads in every session
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
from sspi_import import library


def test_leaks(sspi_fake):
    credentials = sspi_import.Credentials.acquire("NTLM", "outbound")
    credentials.detach()  # nobody frees it


def test_failed_test_is_not_also_reported_for_leaks(sspi_fake):
    sspi_import.Credentials.acquire("NTLM", "outbound").detach()
    assert False, "the test's own failure"


def test_double_free(sspi_fake):
    info = ctypes.POINTER(sspi_import._raw.structs.SecPkgInfoW)()
    api = library.api()
    api.EnumerateSecurityPackagesW(ctypes.byref(ctypes.c_uint32()), ctypes.byref(info))
    address = ctypes.cast(info, ctypes.c_void_p).value
    api.FreeContextBuffer(address)
    api.FreeContextBuffer(address)  # its failure status ignored: the fixture still reports it
"""


FINALIZED = """
import gc
import pytest
import sspi_import
from sspi_import.testing import FakeSspi


def test_pair_never_closed(sspi_fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM")  # dropped: finalizers close them


def test_credentials_left_in_a_cycle(sspi_fake: FakeSspi) -> None:
    holder = [sspi_import.Credentials.acquire("NTLM", "outbound")]
    holder.append(holder)  # only the gc.collect() at teardown frees it


@pytest.mark.xfail(reason="on purpose")
def test_xfailed_is_not_checked(sspi_fake: FakeSspi) -> None:
    sspi_import.loopback("NTLM")
    raise AssertionError("expected")


def test_imperative_xfail_is_not_checked(sspi_fake: FakeSspi) -> None:
    sspi_import.loopback("NTLM")
    pytest.xfail("on purpose")


def test_closed_properly(sspi_fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client, server:
        assert client.decrypt(server.encrypt(b"hi")) == b"hi"


def test_dropped_on_purpose(sspi_fake: FakeSspi) -> None:
    with pytest.warns(ResourceWarning):
        sspi_import.Credentials.acquire("NTLM", "outbound")
        gc.collect()


def test_other_warnings_still_reach_pytest(sspi_fake: FakeSspi) -> None:
    import warnings
    warnings.warn("a user warning", UserWarning)


def test_plain() -> None:
    assert 1
"""


def _run(
    tmp_path: pathlib.Path,
    source: str,
    *,
    autoload: bool = False,
    warning_options: tuple[str, ...] = ("-W", "error"),
    ini: str | None = None,
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_downstream.py").write_text(source)
    if ini is not None:
        (tmp_path / "pytest.ini").write_text(f"[pytest]\n{ini}\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env.pop("PYTEST_ADDOPTS", None)
    for variable in ("CI", "BUILD_NUMBER"):  # pytest then prints summary lines in full
        env.pop(variable, None)
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
    args += [*warning_options, str(tmp_path)]
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


@pytest.mark.parametrize(
    "warning_options",
    [(), ("-W", "error"), ("-W", "ignore::ResourceWarning"), ("-W", "ignore")],
    ids=["default-filters", "W-error", "W-ignore-ResourceWarning", "W-ignore"],
)
def test_a_handle_left_to_a_finalizer_fails_whatever_the_filters(
    tmp_path: pathlib.Path, warning_options: tuple[str, ...]
) -> None:
    result = _run(tmp_path, FINALIZED, warning_options=warning_options)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "2 errors" in output, output  # in teardown: their calls passed
    assert "ERROR test_downstream.py::test_pair_never_closed" in output, output
    assert "ERROR test_downstream.py::test_credentials_left_in_a_cycle" in output, output
    assert "sspi_fake: left to a finalizer: unclosed" in output
    # Issue 22 §3: the advice was said twice ("... (close it or use 'with'): unclosed
    # <...>; close it or use 'with'"), once more per handle. Once per report now.
    reports = [line for line in output.splitlines() if "left to a finalizer: unclosed" in line]
    assert any(line.count("use 'with'") == 1 for line in reports), output
    assert all(line.count("use 'with'") <= 1 for line in reports), output  # summaries cut
    assert "2 xfailed" in output, output
    assert "ERROR test_downstream.py::test_xfailed" not in output, output
    assert "ERROR test_downstream.py::test_imperative" not in output, output
    assert "ERROR test_downstream.py::test_closed_properly" not in output, output
    assert "ERROR test_downstream.py::test_dropped_on_purpose" not in output, output
    assert "ERROR test_downstream.py::test_plain" not in output, output
    if warning_options == ("-W", "error"):  # the user's warning still obeys -W error
        assert "FAILED test_downstream.py::test_other_warnings_still_reach_pytest" in output
        assert "1 failed, 5 passed, 2 xfailed, 2 errors" in output, output
    elif warning_options != ("-W", "ignore"):
        assert "6 passed, 2 xfailed, 1 warning, 2 errors" in output, output
        assert "UserWarning: a user warning" in output, output  # in pytest's summary
    else:
        assert "6 passed, 2 xfailed, 2 errors" in output, output
        assert "a user warning" not in output, output  # the user's -W ignore holds


OTHER_WARNINGS = """
import warnings

import pytest
import sspi_import


class Marker:
    pass


def test_recwarn_first(recwarn, sspi_fake):
    warnings.warn("x")
    assert len(recwarn) == 1


def test_recwarn_second(sspi_fake, recwarn):
    warnings.warn("x")
    assert len(recwarn) == 1


def test_recwarn_keeps_the_source(recwarn, sspi_fake):
    marker = Marker()
    warnings.warn("y", UserWarning, source=marker)
    assert recwarn.pop(UserWarning).source is marker


def test_pytest_warns_inside(sspi_fake):
    with pytest.warns(UserWarning, match="z"):
        warnings.warn("z")


def test_leak_seen_with_recwarn_first(recwarn, sspi_fake):
    sspi_import.loopback("NTLM")  # dropped when the test returns


def test_leak_seen_with_recwarn_second(sspi_fake, recwarn):
    sspi_import.loopback("NTLM")  # dropped when the test returns, recwarn still active


def test_a_user_warning(sspi_fake):
    warnings.warn("a user warning", UserWarning)


def test_another_resource_warning(sspi_fake):
    warnings.warn("not sspi_import's", ResourceWarning)
"""


@pytest.mark.parametrize("ini", [None, "filterwarnings = error"], ids=["default", "ini-error"])
def test_other_warnings_reach_pytest_as_they_happen(
    tmp_path: pathlib.Path, ini: str | None
) -> None:
    """Issue 22 §2.1: the fixture records sspi_import's leaks only, never the test's warnings."""
    result = _run(tmp_path, OTHER_WARNINGS, warning_options=(), ini=ini)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    for name in ("recwarn_first", "recwarn_second", "recwarn_keeps_the_source", "pytest_warns"):
        assert f"test_downstream.py::test_{name}" not in output, output  # passed
    assert "ERROR test_downstream.py::test_leak_seen_with_recwarn_first" in output, output
    assert "ERROR test_downstream.py::test_leak_seen_with_recwarn_second" in output, output
    assert output.count("Failed: sspi_fake: left to a finalizer: unclosed") == 2
    if ini is None:  # the leak tests pass their call and error in teardown
        assert "8 passed, 1 warning, 2 errors" in output, output
        assert "UserWarning: a user warning" in output, output  # pytest's own summary
        assert "not sspi_import's" not in output, output  # Python's default: ignored
    else:  # pytest's filterwarnings = error still raises them, inside the test
        assert "FAILED test_downstream.py::test_a_user_warning - UserWarning" in output, output
        assert "FAILED test_downstream.py::test_another_resource_warning" in output, output
        assert "2 failed, 6 passed, 2 errors" in output, output


FAULTS = """
import pytest
import sspi_import
from sspi_import.testing import FaultInjector


def test_faults_fixture(sspi_faults: FaultInjector) -> None:
    sspi_faults.fail("AcceptSecurityContext", "SEC_E_INSUFFICIENT_MEMORY")
    with pytest.raises(sspi_import.InsufficientMemoryError):
        sspi_import.loopback("NTLM")
    assert sspi_faults.calls("AcceptSecurityContext") == 1


def test_factory_over_a_fake(sspi_faults_factory) -> None:
    from sspi_import.testing import FakeSspi
    fake = FakeSspi()
    faults = sspi_faults_factory(fake)
    faults.fail("ImportSecurityContextW", "SEC_E_NOT_OWNER")
    with pytest.raises(sspi_import.NotOwnerError):
        sspi_import.ImportedContext("NTLM", b"blob")
    assert fake.calls("ImportSecurityContextW") == 0  # the failure never reached it
    assert faults.calls("ImportSecurityContextW") == 1
"""


def test_fault_fixtures(tmp_path: pathlib.Path) -> None:
    result = _run(tmp_path, FAULTS)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    if sys.platform == "win32":
        assert "2 passed" in output, output
    else:
        assert "1 passed, 1 skipped" in output, output
        assert "sspi_faults: no real SSPI provider here: this is not Windows" in output


def test_entry_point_is_declared() -> None:
    text = PYPROJECT.read_text(encoding="utf-8")
    assert f'\nsspi_import = "{ENTRY_POINT}"\n' in text
    assert f'py-modules = ["{ENTRY_POINT}"]' in text  # shipped beside the package


def test_the_documented_module_is_the_plugin() -> None:
    import importlib

    documented = importlib.import_module(PLUGIN)
    loaded = importlib.import_module(ENTRY_POINT)
    assert documented.__all__
    for name in documented.__all__:
        assert getattr(documented, name) is getattr(loaded, name), name
    hooks = {n for n in vars(loaded) if n.startswith("pytest_") or n.startswith("sspi_")}
    assert hooks == set(documented.__all__)


def _installed_entry_point() -> bool:
    return any(
        ep.name == "sspi_import" and ep.value == ENTRY_POINT
        for ep in metadata.entry_points(group="pytest11")
    )


@pytest.mark.skipif(
    not _installed_entry_point(), reason="sspi-import is not installed (pip install -e .)"
)
def test_installed_entry_point_loads_the_plugin(tmp_path: pathlib.Path) -> None:
    result = _run(tmp_path, DOWNSTREAM, autoload=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output


def test_loading_the_plugin_imports_nothing_of_the_library() -> None:
    # Issue 22 §2.2: the entry point's module imported 40 modules, each rewritten by
    # pytest in every session of the environment; now only itself.
    code = (
        "import sys, pytest\n"
        "before = set(sys.modules)\n"
        f"import {ENTRY_POINT}\n"
        "print('\\n'.join(sorted(set(sys.modules) - before)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == [ENTRY_POINT]


RECORD_MODULES = """
import sys


def pytest_sessionstart(session):  # plugins and this conftest loaded, nothing collected
    loaded = sorted(m for m in sys.modules if "sspi_import" in m.split(".")[0])
    with open("modules.txt", "w") as f:
        f.write("\\n".join(loaded))
"""


@pytest.mark.skipif(
    not _installed_entry_point(), reason="sspi-import is not installed (pip install -e .)"
)
def test_a_session_that_uses_no_fixture_imports_nothing_of_the_library(
    tmp_path: pathlib.Path,
) -> None:
    # The real start-up path: the entry point, pytest's marking of the plugin's
    # distribution for assertion rewriting, a conftest.py, collection.
    (tmp_path / "conftest.py").write_text(RECORD_MODULES)
    result = _run(tmp_path, "def test_plain():\n    assert 1\n", autoload=True)
    assert result.returncode == 0, result.stdout + result.stderr
    loaded = (tmp_path / "modules.txt").read_text().split()
    assert loaded == [ENTRY_POINT], loaded  # and the plugin is loaded: its module is there


MARKED = """
import pytest


@pytest.mark.windows_sspi
class TestOnWindows:
    def test_a(self):
        pass

    @pytest.mark.parametrize("x", [1, 2])
    def test_b(self, x):
        pass


@pytest.mark.parametrize("y", [pytest.param(1, marks=pytest.mark.windows_sspi), 2])
def test_param(y):
    pass


def test_plain():
    pass
"""


def test_the_marker_is_found_on_classes_modules_and_params(tmp_path: pathlib.Path) -> None:
    # The skip walks each item's parents once per parent (not per item): the same
    # answer as item.get_closest_marker, wherever the marker sits.
    (tmp_path / "test_module_marked.py").write_text(
        "import pytest\n\npytestmark = pytest.mark.windows_sspi\n\n\n"
        "def test_one():\n    pass\n\n\ndef test_two():\n    pass\n"
    )
    result = _run(tmp_path, MARKED)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    if sys.platform == "win32":
        assert "8 passed" in output, output
    else:
        assert "2 passed, 6 skipped" in output, output


@pytest.mark.skipif(
    not _installed_entry_point(), reason="sspi-import is not installed (pip install -e .)"
)
def test_naming_the_documented_module_beside_the_entry_point_works(
    tmp_path: pathlib.Path,
) -> None:
    # A conftest.py that names the plugin in an environment where it is also installed.
    (tmp_path / "conftest.py").write_text(f"pytest_plugins = [{PLUGIN!r}]\n")
    result = _run(tmp_path, DOWNSTREAM, autoload=True)
    assert result.returncode == 0, result.stdout + result.stderr  # sspi_fake still works
    markers = subprocess.run(
        [sys.executable, "-m", "pytest", "--markers", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"},
    ).stdout
    assert markers.count("@pytest.mark.windows_sspi:") == 1, markers


LEAK_AND_ITS_CREDENTIALS = """
import sspi_import


def test_a_leaks_a_context_and_its_credentials(sspi_fake):
    credentials = sspi_import.Credentials.acquire("NTLM", "outbound")
    context = sspi_import.SecurityContext.initiator(credentials, "host/x")
    context.step(None)


def test_b_does_nothing(sspi_fake):
    pass
"""


def test_a_leak_is_reported_whole_in_its_own_test(tmp_path: pathlib.Path) -> None:
    """The context's warning must not keep the context alive: what it holds (its
    credentials) is then freed, and reported, in the same test, not in the next one."""
    result = _run(tmp_path, LEAK_AND_ITS_CREDENTIALS, warning_options=())
    output = " ".join((result.stdout + result.stderr).split())
    assert "2 passed, 1 error" in output, output  # test_a passed, its teardown did not
    assert "ERROR test_downstream.py::test_a_leaks_a_context_and_its_credentials" in output
    assert "unclosed <Credentials" in output
    assert "ERROR test_downstream.py::test_b_does_nothing" not in output


FAKE_AFTER_FACTORY = """
import sspi_import
from sspi_import import library


def test_1(sspi_faults_factory, sspi_fake):
    sspi_faults_factory(sspi_fake)


def test_2():
    assert library._api is None, library._api
"""


def test_the_fake_and_an_injector_are_undone_in_order_whatever_the_arguments(
    tmp_path: pathlib.Path,
) -> None:
    result = _run(tmp_path, FAKE_AFTER_FACTORY)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "2 passed" in output, output
