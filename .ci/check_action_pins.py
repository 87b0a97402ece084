"""Check that every action pinned by SHA in the workflows is the commit its tag names.

Usage (needs network access to github.com; part of docs/release-checklist.md)::

    python .ci/check_action_pins.py             # verify every pin, exit 1 on a mismatch
    python .ci/check_action_pins.py --commands  # only print the git ls-remote commands

Every ``uses:`` line must read ``owner/repo[/path]@<40 hex digits> # <tag>``. For each
pin this runs ``git ls-remote https://github.com/owner/repo refs/tags/<tag>
refs/tags/<tag>^{}`` and compares the pinned SHA with the commit the tag points to: the
peeled ``^{}`` line for an annotated tag (whose own line names the tag object, not the
commit), the plain line for a lightweight tag. Exit status 0 when every pin matches,
1 when one does not or its tag is missing, 2 when a ``uses:`` line is not pinned so.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

WORKFLOWS = Path(__file__).resolve().parent.parent / ".github" / "workflows"
_USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<spec>\S+)(?P<rest>.*)$")
_PINNED = re.compile(
    r"^(?P<repo>[\w.-]+/[\w.-]+)(?:/[^@\s]*)?@(?P<sha>[0-9a-f]{40})$",
)
_TAG = re.compile(r"^\s*#\s*(?P<tag>\S+)")

Runner = Callable[[Sequence[str]], str]
"""Runs a command and returns its standard output (``git ls-remote`` here)."""


class PinError(Exception):
    """A ``uses:`` line is not pinned to a full SHA with its tag in a comment."""


@dataclass(frozen=True, order=True)
class Pin:
    """One action reference: repository, pinned commit, and the tag the comment names."""

    repo: str
    sha: str
    tag: str

    def command(self) -> list[str]:
        """The ``git ls-remote`` command that shows what the tag points to."""
        ref = f"refs/tags/{self.tag}"
        return ["git", "ls-remote", f"https://github.com/{self.repo}", ref, ref + "^{}"]


def pins(workflows: Path = WORKFLOWS) -> list[Pin]:
    """Every distinct pin in the ``*.yml`` files of ``workflows``, sorted."""
    found: set[Pin] = set()
    for path in sorted(workflows.glob("*.yml")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            uses = _USES.match(line)
            if uses is None:
                continue
            pinned = _PINNED.match(uses["spec"])
            tag = _TAG.match(uses["rest"])
            if pinned is None or tag is None:
                raise PinError(
                    f"{path.name}:{number}: pin {uses['spec']!r} to a full commit SHA with "
                    "its tag in a comment (uses: owner/repo@<sha> # <tag>)"
                )
            found.add(Pin(pinned["repo"], pinned["sha"], tag["tag"]))
    return sorted(found)


def tagged_commit(pin: Pin, ls_remote: str) -> str | None:
    """The commit ``pin.tag`` names in ``git ls-remote`` output (None: no such tag)."""
    refs: dict[str, str] = {}
    for line in ls_remote.splitlines():
        sha, _, ref = line.strip().partition("\t")
        if ref:
            refs[ref] = sha
    ref = f"refs/tags/{pin.tag}"
    return refs.get(ref + "^{}", refs.get(ref))


def _git(command: Sequence[str]) -> str:
    return subprocess.run(
        list(command), capture_output=True, text=True, check=True, timeout=60
    ).stdout


def main(argv: list[str] | None = None, run: Runner = _git) -> int:
    """Verify (or, with ``--commands``, list) every pin; print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", action="store_true", help="print the commands only")
    parser.add_argument("--workflows", type=Path, default=WORKFLOWS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        found = pins(args.workflows)
    except PinError as exc:
        print(f"check_action_pins: {exc}", file=sys.stderr)
        return 2
    status = 0
    for pin in found:
        command = pin.command()
        if args.commands:
            print(" ".join(command))
            continue
        try:
            commit = tagged_commit(pin, run(command))
        except (OSError, subprocess.SubprocessError) as exc:
            said = (getattr(exc, "stderr", None) or "").strip()
            print(f"check_action_pins: {' '.join(command)} failed: {exc}", file=sys.stderr)
            if said:
                print(said, file=sys.stderr)
            return 1
        if commit == pin.sha:
            print(f"ok       {pin.repo}@{pin.sha} is {pin.tag}")
        else:
            status = 1
            said = f"is {commit}" if commit else "does not exist"
            print(f"MISMATCH {pin.repo}@{pin.sha}: tag {pin.tag} {said}")
    return status


if __name__ == "__main__":
    sys.exit(main())
