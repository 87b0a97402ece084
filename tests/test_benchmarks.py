"""The benchmark scripts still run: every case of the instruction counter, a few calls each.

Not a timing test: it only proves the cases are wired (the set-up works and each case
runs its calls against the stub or sspi-rs); the numbers come from running the scripts.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import subprocess
import sys
from types import ModuleType

import pytest

from stubs import Stub

BENCHMARKS = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPT = BENCHMARKS / "count_instructions.py"


def _load() -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("_count_instructions", SCRIPT)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


count_instructions = _load()
STUB_CASES = [
    f"{side} {job}" for side in ("bare", "careful", "raw", "lib") for job in ("import", "export")
]
ROUND_TRIP_CASES = sorted(
    {case for pair in count_instructions.PAIRS.values() for case in pair} - set(STUB_CASES)
)


def _run_worker(case: str, stub_path: pathlib.Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--worker", case, "--calls", "2", "--stub", str(stub_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_every_pair_names_known_cases() -> None:
    cases = {case for pair in count_instructions.PAIRS.values() for case in pair}
    assert set(STUB_CASES) <= cases
    for case in cases - set(STUB_CASES):
        assert case.split()[-1] in count_instructions.CALLS, case


@pytest.mark.parametrize("case", STUB_CASES)
def test_stub_cases_run(stub: Stub, case: str) -> None:
    _run_worker(case, stub.path)


@pytest.mark.parametrize("case", ROUND_TRIP_CASES)
def test_round_trip_cases_run(sspi_rs: pathlib.Path, stub: Stub, case: str) -> None:
    pytest.importorskip("sspilib")
    _run_worker(case, stub.path)


def test_callgrind_summary_is_parsed() -> None:
    text = "==123== Events    : Ir\n==123== Collected : 4087800\n==123==\n"
    found = count_instructions._COLLECTED.search(text)
    assert found is not None
    assert int(found.group(1)) == 4_087_800


def test_the_plugin_startup_benchmark_runs(tmp_path: pathlib.Path) -> None:
    # Wiring only (one round, no warm-up, this environment): never a timing assertion.
    results = tmp_path / "plugin.json"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "bench_plugin_startup.py"),
            *("--python", sys.executable, "--rounds", "1", "--warmup", "0"),
            *("--modules", "1", "--params", "1", "--json", str(results)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PYTHONDONTWRITEBYTECODE=1" in done.stdout
    data = json.loads(results.read_text())
    assert set(data["settings"]) == {".pyc cached", "PYTHONDONTWRITEBYTECODE=1"}
    for measures in data["settings"].values():
        assert "wall" in measures
