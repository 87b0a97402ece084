"""Start-up cost, held by module list (never by time: timings live in benchmarks/).

``import sspi_import`` must stay as cheap as ``import sspilib``; the modules below are
the expensive ones it used to pull in (benchmarks/bench_import_time.py measures).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("importlib.metadata", "dataclasses", "inspect", "ctypes.wintypes", "logging")

STATEMENTS = (
    "import sspi_import",
    "from sspi_import import ImportedContext, SecurityContext, SspiError, export_context",
)


def _modules_after(statement: str) -> set[str]:
    code = f"{statement}; import sys; print('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True
    )
    return set(result.stdout.split())


@pytest.mark.parametrize("statement", STATEMENTS)
def test_import_pulls_in_no_heavy_module(statement: str) -> None:
    loaded = _modules_after(statement)
    assert "sspi_import" in loaded  # the import really ran
    assert sorted(loaded.intersection(HEAVY)) == []


def test_find_sspi_rs_still_finds_metadata_lazily() -> None:
    # The lazy import inside find_sspi_rs must work in a fresh process.
    code = (
        "import sspi_import, sys\n"
        "try:\n"
        "    sspi_import.find_sspi_rs()\n"
        "except sspi_import.SspiUnavailableError:\n"
        "    pass\n"
        "print('importlib.metadata' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "True"
