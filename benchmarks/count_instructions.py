"""Instructions per call, counted by valgrind (callgrind): the same cases, without the noise.

    python benchmarks/count_instructions.py            # about four minutes
    python benchmarks/count_instructions.py --quick    # fewer calls per case

Wall-clock ratios on a shared machine move by a few percent from run to run; that is
too coarse where the provider does almost all the work (a 64 KiB round trip spends
over 99% of its time in sspi-rs's crypto, the same code for sspilib and for us). An
instruction count is repeatable to the instruction: this script runs every case of
``bench_import_export.py`` under ``valgrind --tool=callgrind`` twice, with ``n1`` and
``n2`` calls after the same set-up and warm-up, and reports ``(I(n2) - I(n1)) / (n2 -
n1)``: the instructions one call executes, set-up and interpreter start cancelled out.
Instructions are not time (cache misses and branch mispredictions are not counted), so
the wall-clock table stays the primary measure; this one says which side does less
work, exactly.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from _common import KIB, ROOT, Case, build_stub, machine, print_table, write_json

PAIRS: dict[str, tuple[str, str]] = {
    # ratio name: (numerator case, denominator case)
    "ImportedContext+close / careful": ("lib import", "careful import"),
    "export_context / careful": ("lib export", "careful export"),
    "ImportedContext+close / bare limit": ("lib import", "bare import"),
    "export_context / bare limit": ("lib export", "bare export"),
    "ImportedContext+close / raw": ("lib import", "raw import"),
    "export_context / raw": ("lib export", "raw export"),
    "round trip 64 B / sspilib minimal": ("lib rt 64", "sspilib-min rt 64"),
    "round trip 1 KiB / sspilib minimal": ("lib rt 1024", "sspilib-min rt 1024"),
    "round trip 16 KiB / sspilib minimal": ("lib rt 16384", "sspilib-min rt 16384"),
    "round trip 64 KiB / sspilib minimal": ("lib rt 65536", "sspilib-min rt 65536"),
    "NTLM loopback handshake / sspilib": ("lib loopback", "sspilib loopback"),
    "round trip 64 B / sspilib": ("lib rt 64", "sspilib rt 64"),
    "round trip 1 KiB / sspilib": ("lib rt 1024", "sspilib rt 1024"),
    "round trip 16 KiB / sspilib": ("lib rt 16384", "sspilib rt 16384"),
    "in place 64 B / sspilib": ("lib in place 64", "sspilib rt 64"),
    "round trip 64 KiB / sspilib": ("lib rt 65536", "sspilib rt 65536"),
    "in place 64 KiB / sspilib": ("lib in place 65536", "sspilib rt 65536"),
    # encrypt_into + decrypt_in_place, step for step like the minimal loop (one copy)
    "in place 64 B / sspilib minimal": ("lib min-in-place 64", "sspilib-min rt 64"),
    "in place 1 KiB / sspilib minimal": ("lib min-in-place 1024", "sspilib-min rt 1024"),
    "in place 16 KiB / sspilib minimal": ("lib min-in-place 16384", "sspilib-min rt 16384"),
    "in place 64 KiB / sspilib minimal": ("lib min-in-place 65536", "sspilib-min rt 65536"),
}
CALLS = {
    "stub": (200, 1200),
    "64": (200, 1200),
    "1024": (100, 600),
    "16384": (10, 60),
    "65536": (5, 45),
    "loopback": (10, 60),
}
QUICK_CALLS = {
    "stub": (50, 250),
    "64": (50, 250),
    "1024": (25, 125),
    "16384": (3, 13),
    "65536": (1, 4),
    "loopback": (3, 13),
}


def _calls_key(case: str) -> str:
    return "stub" if case.split()[-1] in ("import", "export") else case.split()[-1]


# Worker: set up one case, warm it up, run it n times -----------------------------------


def _stub_cases(stub_path: pathlib.Path) -> dict[str, Callable[[], Case]]:
    import bench_import_export as bench

    import sspi_import
    from stubs import SecHandle, Stub

    stub = Stub(stub_path)
    stub.reset()
    sspi_import.use_library(stub.path)
    raw = bench.RawSspi(stub.path)
    careful = bench.CarefulSspi(stub.path)
    blob = bytes(range(256)) * 4  # 1 KiB, as in bench_overhead

    def lib_export() -> Case:
        return bench.lib_export(sspi_import.ImportedContext(bench.PACKAGE, blob))

    return {
        "bare import": lambda: bench.bare_import_close(careful, bench.PACKAGE, blob),
        "careful import": lambda: bench.careful_import_close(careful, bench.PACKAGE, blob),
        "bare export": lambda: bench.bare_export(careful, SecHandle(*stub.new_context())),
        "careful export": lambda: bench.careful_export(careful, SecHandle(*stub.new_context())),
        "raw import": lambda: bench.raw_import_close(raw, bench.PACKAGE, blob),
        "lib import": lambda: bench.lib_import_close(bench.PACKAGE, blob),
        "raw export": lambda: bench.raw_export(raw, SecHandle(*stub.new_context())),
        "lib export": lib_export,
    }


def _round_trip_case(name: str) -> Case:
    import bench_import_export as bench

    import sspi_import
    from sspi_import.credentials import Identity

    if name == "sspilib loopback":
        return bench.sspilib_loopback()
    if name == "lib loopback":
        sspi_import.use_library(sspi_import.find_sspi_rs())
        return bench.lib_loopback()

    *kind, size_text = name.split()
    size = int(size_text)
    message = bytes(range(256)) * (size // 256) if size >= 256 else bytes(size)
    if kind == ["sspilib", "rt"]:
        client, server, trailer = bench._sspilib_pair()
        return bench.sspilib_round_trip(client, server, trailer, message)
    if kind == ["sspilib-min", "rt"]:
        client, server, trailer = bench._sspilib_pair()
        return bench.sspilib_minimal_round_trip(client, server, trailer, message)
    sspi_import.use_library(sspi_import.find_sspi_rs())
    ours = sspi_import.loopback("NTLM", Identity("user", "DOMAIN.LOCAL", "Password01"))
    if kind == ["lib", "rt"]:
        return bench.lib_round_trip(*ours, message)
    if kind == ["lib", "min-in-place"]:
        return bench.lib_minimal_round_trip_in_place(*ours, message)
    return bench.lib_round_trip_in_place(*ours, message)


def worker(case: str, calls: int, stub_path: pathlib.Path) -> None:
    stubs = _stub_cases(stub_path) if _calls_key(case) == "stub" else {}
    run = stubs[case]() if case in stubs else _round_trip_case(case)
    run(3)  # warm-up: bind prototypes, fill caches, the same in both runs
    run(calls)


# Parent: two counted runs per case -------------------------------------------------------

_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def count(case: str, calls: int, stub_path: pathlib.Path) -> int:
    """Instructions of one whole run of the worker for ``case`` with ``calls`` calls."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--worker",
        case,
        "--calls",
        str(calls),
        "--stub",
        str(stub_path),
    ]
    env = dict(os.environ, PYTHONHASHSEED="0")  # the same dict layouts in every run
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"callgrind run of {case!r} failed:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_call(case: str, calls: tuple[int, int], stub_path: pathlib.Path) -> float:
    n1, n2 = calls
    return (count(case, n2, stub_path) - count(case, n1, stub_path)) / (n2 - n1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer calls per case")
    parser.add_argument("--only", default="", help="only the ratios whose name contains this")
    parser.add_argument(
        "--json",
        type=pathlib.Path,
        default=ROOT / "benchmarks" / "results" / "instructions.json",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--stub", type=pathlib.Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.calls, args.stub)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: apt-get install valgrind", file=sys.stderr)
        return 2
    stub = build_stub()
    table = QUICK_CALLS if args.quick else CALLS
    pairs = {name: pair for name, pair in PAIRS.items() if args.only in name}
    cases = sorted({case for pair in pairs.values() for case in pair})
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = {c: pool.submit(per_call, c, table[_calls_key(c)], stub.path) for c in cases}
        instructions = {c: f.result() for c, f in futures.items()}
    ratios = {name: instructions[a] / instructions[b] for name, (a, b) in pairs.items()}
    print_table(
        "Instructions per call (callgrind, set-up cancelled out)",
        ["case", "instructions"],
        [[case, f"{instructions[case]:,.0f}"] for case in cases],
    )
    print_table(
        "Instruction ratios",
        ["ratio", "value", "difference per call"],
        [
            [name, f"{ratios[name]:.4f}x", f"{instructions[a] - instructions[b]:+,.0f}"]
            for name, (a, b) in pairs.items()
        ],
    )
    result: dict[str, Any] = {
        "machine": machine(),
        "calls": {c: table[_calls_key(c)] for c in cases},
        "instructions_per_call": instructions,
        "ratios": ratios,
        "message_bytes": [64, 64 * KIB],
    }
    write_json(args.json, result)
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
