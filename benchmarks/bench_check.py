"""What logging costs ``errors.check`` when it is off: ns per call, against the old check.

Run from the repository root::

    python benchmarks/bench_check.py

``before`` is a copy of ``check`` as it was before logging (one comparison); ``check``
is the library's. Both run on a success status, interleaved round by round, in three
states: ``logging`` never imported (the library does not import it), imported with the
default WARNING level, and the ``sspi_import`` logger at DEBUG with only its
``NullHandler`` (records made, written nowhere). A script, never a test.
"""

from __future__ import annotations

import pathlib
import statistics
import sys
import timeit

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from sspi_import.errors import check, error_from_status  # noqa: E402

CALLS = 200_000
ROUNDS = 15


def before(status: int, function: str) -> int:
    """``check`` before logging was added."""
    if status < 0:
        raise error_from_status(status, function)
    return status


def _ns(function: object) -> float:
    timer = timeit.Timer("f(0, 'ExportSecurityContext')", globals={"f": function})
    return timer.timeit(CALLS) / CALLS * 1e9


def measure(label: str) -> None:
    """Print the best and median ns per call of both, interleaved."""
    samples: dict[str, list[float]] = {"before": [], "check": []}
    for _ in range(ROUNDS):
        samples["before"].append(_ns(before))
        samples["check"].append(_ns(check))
    best = {name: min(values) for name, values in samples.items()}
    middle = {name: statistics.median(values) for name, values in samples.items()}
    print(
        f"{label:40} before {best['before']:6.1f} ns  check {best['check']:6.1f} ns  "
        f"(+{best['check'] - best['before']:.1f} ns best, "
        f"+{middle['check'] - middle['before']:.1f} ns median)"
    )


def main() -> None:
    print(f"{CALLS} calls x {ROUNDS} rounds, {sys.version.split()[0]}")
    assert "logging" not in sys.modules
    measure("logging not imported")
    import logging

    measure("logging imported, default level")
    logging.getLogger("sspi_import").setLevel(logging.DEBUG)
    measure("sspi_import logger at DEBUG (NullHandler)")


if __name__ == "__main__":
    main()
