"""Shared helpers of the benchmarks: the C stub, interleaved timing, medians, output.

Timing rules: every case of a comparison runs in the same process, interleaved round
by round (the order shuffled each round), with the garbage collector paused while a
case runs. A ratio is computed inside each round and the median over rounds is
reported, so drifting machine load hits both sides of a ratio alike.
"""

from __future__ import annotations

import gc
import json
import os
import pathlib
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))  # stubs.py builds the C stub
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from stubs import Stub  # noqa: E402 - needs the path set up above

K = TypeVar("K", bound=Hashable)  # a case's name: a str, or a tuple such as (kind, size)

Case = Callable[[int], float]
"""Runs ``n`` iterations of one operation and returns the elapsed seconds."""

KIB = 1024
MIB = 1024 * KIB


def build_stub() -> Stub:
    """Compile the C stub into a fresh temporary directory and load it."""
    directory = pathlib.Path(tempfile.mkdtemp(prefix="sspi_import_bench_"))
    return Stub.build(directory)


def run_interleaved(
    cases: Mapping[K, Case], number: int, rounds: int, seed: int = 7
) -> dict[K, list[float]]:
    """Seconds per iteration of each case, one sample per round, cases interleaved."""
    order = list(cases)
    samples: dict[K, list[float]] = {name: [] for name in order}
    rng = random.Random(seed)
    for name in order:  # warm-up: bind prototypes, fill caches
        cases[name](max(1, number // 10))
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            enabled = gc.isenabled()
            gc.disable()
            try:
                elapsed = cases[name](number)
            finally:
                if enabled:
                    gc.enable()
            samples[name].append(elapsed / number)
    return samples


def median(values: list[float]) -> float:
    return statistics.median(values)


def ratio(samples: Mapping[K, list[float]], numerator: K, denominator: K) -> float:
    """Median over rounds of the per-round ratio ``numerator / denominator``."""
    pairs = zip(samples[numerator], samples[denominator], strict=True)
    return statistics.median(a / b for a, b in pairs)


def timed(body: Callable[[], object]) -> Case:
    """Turn a no-argument operation into a ``Case`` (for the slower, larger cases)."""

    def case(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            body()
        return time.perf_counter() - start

    return case


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }


def write_json(path: pathlib.Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def size_label(size: int) -> str:
    if size >= MIB and size % MIB == 0:
        return f"{size // MIB} MiB"
    if size >= KIB and size % KIB == 0:
        return f"{size // KIB} KiB"
    return f"{size} B"


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
