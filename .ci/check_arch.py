r"""Fail unless this interpreter is the Windows architecture the CI matrix asked for.

Usage (with the interpreter that will run the tests, the venv's)::

    .venv\Scripts\python .ci/check_arch.py x64|x86|arm64

Three facts must agree with the matrix entry: the pointer size
(``struct.calcsize("P")``), the platform the interpreter was built for
(``sysconfig.get_platform()``: ``win-amd64``, ``win32``, ``win-arm64``, read from the
compiler tag in ``sys.version``), and the machine Windows reports
(``platform.machine()``). The machine is the operating system's, not the process's:
a 32-bit Python on the x64 runner reports ``AMD64``, and an x64 Python emulated on an
arm64 runner may report ``ARM64``, so only the first two tell the interpreter apart;
the third proves the job landed on the runner the matrix meant. Exit status 0 when all
agree, 1 when one does not, 2 for an unknown architecture.
"""

from __future__ import annotations

import platform
import struct
import sys
import sysconfig
from dataclasses import dataclass


@dataclass(frozen=True)
class Seen:
    """What the running interpreter says about itself."""

    bits: int
    build: str
    machine: str

    @classmethod
    def here(cls) -> Seen:
        """Read the facts from this interpreter."""
        return cls(struct.calcsize("P") * 8, sysconfig.get_platform(), platform.machine())


@dataclass(frozen=True)
class Want:
    """What a matrix architecture requires."""

    bits: int
    build: str
    machines: frozenset[str]


EXPECTED: dict[str, Want] = {
    "x64": Want(64, "win-amd64", frozenset({"AMD64"})),
    # 32-bit Python runs under WOW64 on the x64 runner: the machine is the OS's.
    "x86": Want(32, "win32", frozenset({"AMD64", "x86"})),
    "arm64": Want(64, "win-arm64", frozenset({"ARM64"})),
}


def problems(arch: str, seen: Seen) -> list[str]:
    """Every way ``seen`` differs from what ``arch`` requires (empty when it matches)."""
    want = EXPECTED[arch]
    found = []
    if seen.bits != want.bits:
        found.append(f"pointers are {seen.bits}-bit, {arch} needs {want.bits}-bit")
    if seen.build != want.build:
        found.append(f"the interpreter is built for {seen.build!r}, {arch} needs {want.build!r}")
    if seen.machine not in want.machines:
        allowed = " or ".join(sorted(want.machines))
        found.append(f"platform.machine() is {seen.machine!r}, {arch} needs {allowed}")
    return found


def main(argv: list[str] | None = None, seen: Seen | None = None) -> int:
    """Compare this interpreter with the architecture in ``argv``; print why on a mismatch."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in EXPECTED:
        known = ", ".join(EXPECTED)
        print(f"check_arch: give one architecture of {known}; got {args}", file=sys.stderr)
        return 2
    arch = args[0]
    seen = Seen.here() if seen is None else seen
    print(f"check_arch: {sys.executable}: {sys.version}")
    print(f"check_arch: {seen.bits}-bit, built for {seen.build}, machine {seen.machine}")
    found = problems(arch, seen)
    for problem in found:
        print(f"check_arch: not {arch}: {problem}", file=sys.stderr)
    if not found:
        print(f"check_arch: this interpreter is {arch}, as the matrix says")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
