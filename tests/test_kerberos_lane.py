"""The Kerberos lane's own rules: it skips with a reason where it cannot run, and fails
instead of skipping where CI says it must run (``SSPI_IMPORT_REQUIRE_KERBEROS=1``).

Checked in a child pytest on one lane test, with python-gssapi hidden from the child
(``sys.modules["gssapi"] = None``): the state of a developer's machine that did not run
``.ci/kerberos``. These tests need none of the lane's tools themselves.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ONE_LANE_TEST = "test_kerberos_handshake.py::test_identity_forms_that_log_on"
CHILD = (
    "import sys; sys.modules['gssapi'] = None; import pytest; "
    f"sys.exit(pytest.main(['-p', 'no:cacheprovider', '-rs', '-q', {ONE_LANE_TEST!r}]))"
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the lane is Linux only")


def run_child(require: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SSPI_IMPORT_REQUIRE_KERBEROS"}
    if require:
        env["SSPI_IMPORT_REQUIRE_KERBEROS"] = "1"
    return subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=TESTS,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_without_python_gssapi_the_lane_skips_saying_what_to_run() -> None:
    result = run_child(require=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 skipped" in result.stdout
    assert "python-gssapi (MIT GSSAPI, the acceptor) is not installed" in result.stdout
    assert "bash .ci/kerberos" in result.stdout


def test_where_the_lane_is_required_a_skip_fails() -> None:
    result = run_child(require=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "3 errors" in result.stdout  # the skip came from the fixture: a setup error
    assert "SSPI_IMPORT_REQUIRE_KERBEROS=1, but the Kerberos test skipped" in result.stdout
    assert "python-gssapi (MIT GSSAPI, the acceptor) is not installed" in result.stdout
