"""Start-up: ``from sspi_import import ...`` against ``import sspilib``, side by side.

Run from the repository root::

    python benchmarks/bench_import_time.py              # 40 rounds
    python benchmarks/bench_import_time.py --rounds 10  # quicker
    python benchmarks/bench_import_time.py --src /tmp/old/src   # another checkout

Each sample is a fresh interpreter (``python -I``) that times only the import statement
(``time.perf_counter`` around it, so interpreter start-up is left out). The two
statements run interleaved, the order shuffled each round, so drifting machine load
hits both alike; the best sample of each is compared, as ``timeit`` recommends, and the
median is printed beside it. A script, never a test: tests/test_import_time.py holds
the start-up by module list instead.
"""

from __future__ import annotations

import argparse
import pathlib
import random
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

STATEMENTS = {
    "sspi_import": (
        "from sspi_import import ImportedContext, SecurityContext, SspiError, export_context"
    ),
    "sspilib": "import sspilib",
}

_TIMER = (
    "import sys, time\n"
    "sys.path.insert(0, {src!r})\n"
    "start = time.perf_counter()\n"
    "{statement}\n"
    "print(time.perf_counter() - start)\n"
)


def sample(statement: str, src: str) -> float:
    """Seconds one fresh interpreter spends on ``statement``."""
    done = subprocess.run(
        [sys.executable, "-I", "-c", _TIMER.format(src=src, statement=statement)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--src", default=str(ROOT / "src"), help="where sspi_import lives")
    args = parser.parse_args()
    samples: dict[str, list[float]] = {name: [] for name in STATEMENTS}
    names = list(STATEMENTS)
    for name in names:  # warm the file-system cache and the .pyc files first
        sample(STATEMENTS[name], args.src)
    for _ in range(args.rounds):
        random.shuffle(names)
        for name in names:
            samples[name].append(sample(STATEMENTS[name], args.src))
    print(f"{args.rounds} rounds, fresh interpreter each, {sys.version.split()[0]}")
    for name, values in samples.items():
        print(
            f"  {name:12} best {min(values) * 1e3:6.2f} ms   "
            f"median {statistics.median(values) * 1e3:6.2f} ms"
        )
    best = min(samples["sspi_import"]) / min(samples["sspilib"])
    middle = statistics.median(samples["sspi_import"]) / statistics.median(samples["sspilib"])
    print(f"  ratio sspi_import / sspilib: best {best:.2f}x, median {middle:.2f}x")


if __name__ == "__main__":
    main()
