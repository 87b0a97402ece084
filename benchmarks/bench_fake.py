"""FakeSspi against the C stub: one export+import+close cycle, fake/stub ratio.

The cycle is what a hand-off test does: ``export_context(source)``, then
``ImportedContext.from_exported(exported)``, then closing both (the export's buffer
and the imported context). On the C stub (tests/stubs.py builds it) the provider
returns at once, so the stub's time is the library's own cost; the fake's time adds
what the simulated provider costs. Both run in one process, interleaved round by
round (see _common.run_interleaved), and the ratio is the median of the per-round
ratios. The best (lowest) per-iteration time of each side is printed as well.

    python benchmarks/bench_fake.py [--rounds N] [--number N]

Measured, never timed in tests: tests/test_benchmarks.py only runs it small.
"""

from __future__ import annotations

import argparse
import time

from _common import Case, build_stub, ratio, run_interleaved

import sspi_import
from sspi_import import library
from sspi_import.testing import FakeSspi

TARGET = 8.0
"""The ratio issue 15.12 asks for at most."""


def cycle(api: library.Api, source: sspi_import.SecurityContextBase) -> Case:
    """``n`` export+import+close cycles of ``source`` with ``api`` installed."""
    export_context = sspi_import.export_context
    from_exported = sspi_import.ImportedContext.from_exported

    def case(n: int) -> float:
        previous = library.swap(api)
        try:
            start = time.perf_counter()
            for _ in range(n):
                with export_context(source) as exported:
                    from_exported(exported).close()
            return time.perf_counter() - start
        finally:
            library.swap(previous)

    return case


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--number", type=int, default=2000)
    args = parser.parse_args()

    stub = build_stub()
    stub.reset()
    stub_api = library.load(stub.path)
    library.swap(stub_api)
    stub_source = sspi_import.ImportedContext("NTLM", b"context")

    fake = FakeSspi()
    fake_api = library.load(fake, "FakeSspi")
    library.swap(fake_api)
    client, server = sspi_import.loopback("NTLM")
    library.swap(None)

    samples = run_interleaved(
        {"fake": cycle(fake_api, client), "stub": cycle(stub_api, stub_source)},
        args.number,
        args.rounds,
    )
    result = ratio(samples, "fake", "stub")
    for name in ("fake", "stub"):
        print(f"{name}: best {min(samples[name]) * 1e6:.2f} us per export+import+close")
    print(f"fake/stub: {result:.2f}x (median of {args.rounds} rounds; target <= {TARGET:g}x)")

    library.swap(fake_api)
    client.close()
    server.close()
    fake.assert_no_leaks()
    library.swap(stub_api)
    stub_source.close()
    library.swap(None)


if __name__ == "__main__":
    main()
