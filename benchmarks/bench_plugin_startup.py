"""What installing sspi-import costs a pytest session that never uses it: ``pytest --co``.

Run from the repository root::

    python benchmarks/bench_plugin_startup.py                  # fresh venv, 30 rounds
    python benchmarks/bench_plugin_startup.py --rounds 10      # quicker
    python benchmarks/bench_plugin_startup.py --python .venv/bin/python   # an existing env

Installing ``sspi-import`` registers its pytest plugin (entry point ``pytest11`` named
``sspi_import``), so every pytest session in that environment loads it, used or not.
This script builds an unrelated project (plain test modules that never mention
``sspi_import``) and runs ``python -m pytest --co -q`` on it, once with the plugin
autoloaded and once with ``-p no:sspi_import``, in two settings:

- ``.pyc cached``: bytecode is written and reused (``PYTHONPYCACHEPREFIX`` points at a
  directory of this run, so the other setting never finds what this one wrote);
- ``PYTHONDONTWRITEBYTECODE=1``, as in many containers: nothing is written, so pytest
  rewrites the asserts of every module it imports, on every run.

Without ``--python``, the checkout is installed (``pip install .``, a wheel, as users
get it) with pytest into a fresh venv. Each sample is the wall-clock time of one whole
``pytest`` process; the four cases run interleaved, in a shuffled order each round, so
drifting machine load hits them alike. Reported per setting: the medians, the median of
the per-round differences (plugin on - off) with its interquartile range, and the
median of the per-round ratios. A script, never a timed test:
tests/test_pytest_plugin.py holds the plugin's start-up imports by module list.

On a shared machine the per-round differences spread over tens of milliseconds.
``--instructions`` also runs each of the four cases once under valgrind's callgrind
(``PYTHONHASHSEED=0``) and reports the instructions executed, which other jobs do not
change: the difference, the ratio, and the difference in milliseconds at the rate the
"off" case ran in this run (instructions per CPU millisecond).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import venv
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
SETTINGS = (".pyc cached", "PYTHONDONTWRITEBYTECODE=1")
PLUGIN = ("on", "off")  # autoloaded, or -p no:sspi_import

TEST_MODULE = """\
import pytest


class TestThings:
    def test_add(self):
        assert 1 + 1 == 2

    def test_text(self):
        assert "abc".upper() == "ABC"


@pytest.mark.parametrize("value", range({params}))
def test_value(value):
    assert value >= 0
"""


def make_project(directory: pathlib.Path, modules: int, params: int) -> None:
    """An unrelated project: ``modules`` test modules of ``params + 2`` tests each."""
    directory.mkdir(parents=True)
    (directory / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n", encoding="utf-8")
    tests = directory / "tests"
    tests.mkdir()
    for index in range(modules):
        path = tests / f"test_module_{index:02d}.py"
        path.write_text(TEST_MODULE.format(params=params), encoding="utf-8")


def make_venv(directory: pathlib.Path) -> pathlib.Path:
    """A fresh venv with this checkout (as a wheel) and pytest; its python."""
    venv.create(directory, with_pip=True)
    python = directory / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(ROOT), "pytest"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"pip install failed:\n{done.stdout}{done.stderr}")
    return python


def base_env() -> dict[str, str]:
    """The environment of every run: nothing of the caller's pytest or Python settings."""
    env = dict(os.environ)
    for name in (
        "PYTEST_ADDOPTS",
        "PYTEST_PLUGINS",
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
        "PYTHONPATH",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONPYCACHEPREFIX",
    ):
        env.pop(name, None)
    return env


def command(python: pathlib.Path, plugin: str, *extra: str) -> list[str]:
    args = [str(python), "-m", "pytest", "--co", "-q", *extra]
    return args if plugin == "on" else [*args, "-p", "no:sspi_import"]


_VERSIONS = "import sys, pytest; print(pytest.__version__, sys.version.split()[0])"


def check_plugin(python: pathlib.Path, project: pathlib.Path, env: dict[str, str]) -> str:
    """Fail unless the plugin loads by itself and ``-p no:sspi_import`` keeps it out."""
    found = subprocess.run(
        [str(python), "-c", _VERSIONS],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.strip()
    for plugin, expected in (("on", True), ("off", False)):
        markers = subprocess.run(
            command(python, plugin, "--markers"),
            cwd=project,
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout
        if ("windows_sspi" in markers) != expected:
            raise SystemExit(
                f"with the plugin {plugin}, 'pytest --markers' "
                f"{'lacks' if expected else 'shows'} windows_sspi: is sspi-import installed "
                f"in {python}?"
            )
    return "pytest {}, CPython {}".format(*found.split())


def run_once(
    python: pathlib.Path, project: pathlib.Path, plugin: str, env: dict[str, str]
) -> dict[str, float]:
    """One ``pytest --co`` process: seconds of wall clock and, where the OS says, of CPU."""
    start = time.perf_counter()
    process = subprocess.Popen(
        command(python, plugin), cwd=project, env=env, stdout=subprocess.DEVNULL
    )
    if hasattr(os, "wait4"):  # the child's own CPU time: what other jobs on the machine
        _, status, usage = os.wait4(process.pid, 0)  # change least
        process.returncode = os.waitstatus_to_exitcode(status)
        measures = {"cpu": usage.ru_utime + usage.ru_stime}
    else:
        process.wait()
        measures = {}
    measures["wall"] = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"pytest --co failed ({process.returncode}) in {project}")
    return measures


_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def instructions(
    python: pathlib.Path, project: pathlib.Path, plugin: str, env: dict[str, str]
) -> int:
    """Instructions one ``pytest --co`` process executes, counted by callgrind."""
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            *command(python, plugin),
        ],
        cwd=project,
        env={**env, "PYTHONHASHSEED": "0"},
        capture_output=True,
        text=True,
        check=False,
    )
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"callgrind run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return int(found.group(1))


def quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--python", type=pathlib.Path, help="a python with sspi-import and pytest")
    parser.add_argument("--modules", type=int, default=20, help="test modules in the project")
    parser.add_argument("--params", type=int, default=8, help="parametrized tests per module")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured runs of each case")
    parser.add_argument("--json", type=pathlib.Path, help="also write the results here")
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions (valgrind)"
    )
    args = parser.parse_args()
    if args.instructions and shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind: apt-get install valgrind")

    work = pathlib.Path(tempfile.mkdtemp(prefix="sspi_import_plugin_bench_"))
    try:
        python = args.python.absolute() if args.python else make_venv(work / "venv")
        env = base_env()
        envs = {
            SETTINGS[0]: {**env, "PYTHONPYCACHEPREFIX": str(work / "pycache")},
            SETTINGS[1]: {**env, "PYTHONDONTWRITEBYTECODE": "1"},
        }
        projects = {}
        for index, setting in enumerate(SETTINGS):  # one project each: no shared caches
            projects[setting] = work / f"project{index}"
            make_project(projects[setting], args.modules, args.params)
        versions = check_plugin(python, projects[SETTINGS[1]], envs[SETTINGS[1]])

        cases = [(setting, plugin) for setting in SETTINGS for plugin in PLUGIN]
        samples: dict[tuple[str, str], list[dict[str, float]]] = {case: [] for case in cases}
        for setting, plugin in cases * args.warmup:  # .pyc files, the file-system cache
            run_once(python, projects[setting], plugin, envs[setting])
        rng = random.Random(7)
        for _ in range(args.rounds):
            rng.shuffle(cases)
            for setting, plugin in cases:
                samples[setting, plugin].append(
                    run_once(python, projects[setting], plugin, envs[setting])
                )
        counted = {
            (setting, plugin): instructions(python, projects[setting], plugin, envs[setting])
            for setting, plugin in sorted(cases)
            if args.instructions
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)

    tests = args.modules * (args.params + 2)
    print(
        f"pytest --co on an unrelated project ({tests} tests in {args.modules} modules): "
        f"{versions}, {args.rounds} rounds, interleaved"
    )
    header = ["setting", "measure", "plugin off", "plugin on", "on - off (IQR)", "on / off"]
    rows = []
    results: dict[str, dict[str, Any]] = {}
    for setting in SETTINGS:
        results[setting] = {}
        for measure in samples[setting, "on"][0]:
            on = [sample[measure] for sample in samples[setting, "on"]]
            off = [sample[measure] for sample in samples[setting, "off"]]
            diffs = [a - b for a, b in zip(on, off, strict=True)]
            ratios = [a / b for a, b in zip(on, off, strict=True)]
            low, high = quartiles(diffs)
            diff = statistics.median(diffs)
            ratio = statistics.median(ratios)
            rows.append(
                [
                    setting,
                    measure,
                    f"{statistics.median(off) * 1e3:.1f} ms",
                    f"{statistics.median(on) * 1e3:.1f} ms",
                    f"{diff * 1e3:+.1f} ms ({low * 1e3:+.1f} to {high * 1e3:+.1f})",
                    f"{ratio:.3f}x",
                ]
            )
            results[setting][measure] = {
                "off_ms": statistics.median(off) * 1e3,
                "on_ms": statistics.median(on) * 1e3,
                "difference_ms": diff * 1e3,
                "difference_iqr_ms": [low * 1e3, high * 1e3],
                "ratio": ratio,
            }
        if counted:
            on_count, off_count = counted[setting, "on"], counted[setting, "off"]
            cpu_off = statistics.median(s["cpu"] for s in samples[setting, "off"])
            rate = off_count / (cpu_off * 1e3)  # instructions per CPU millisecond
            extra = on_count - off_count
            rows.append(
                [
                    setting,
                    "instr.",
                    f"{off_count / 1e6:.1f} M",
                    f"{on_count / 1e6:.1f} M",
                    f"{extra / 1e6:+.2f} M (~{extra / rate:+.1f} ms)",
                    f"{on_count / off_count:.4f}x",
                ]
            )
            results[setting]["instructions"] = {
                "off": off_count,
                "on": on_count,
                "difference": extra,
                "difference_ms_at_this_rate": extra / rate,
                "ratio": on_count / off_count,
            }
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    print(
        "on - off: median of the per-round differences (interquartile range); "
        "on / off: median of the per-round ratios. cpu: the pytest process's user+system "
        "time (what other jobs on the machine change least); wall: start to exit; instr.: "
        "instructions of one run under callgrind, and their difference in ms at the rate "
        "the 'off' case ran here."
    )
    if args.json is not None:
        data = {"versions": versions, "rounds": args.rounds, "tests": tests, "settings": results}
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
