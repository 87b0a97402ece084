"""Which SSPI library a command uses: ``--library``, ``--sspi-rs``, ``--fake`` or the default."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import library as _library
from ..errors import SspiUnavailableError
from ..library import find_sspi_rs

SIMULATED = "sspi_import.testing.FakeSspi (simulated, not Windows)"


@dataclasses.dataclass(frozen=True)
class Provider:
    """Which SSPI library a command talks to, and how to say so."""

    kind: str
    """``"secur32"``, ``"sspi-rs"``, ``"library"`` (any other path), ``"simulated"``, or
    ``"none"`` when nothing usable was found."""
    description: str
    """What to print: the library path or name."""
    library: str | None = None
    """The path given to ``use_library``, if any."""
    note: str = ""
    """Why this provider was chosen, when the user did not choose it."""

    @property
    def simulated(self) -> bool:
        """Whether this is ``sspi_import.testing.FakeSspi`` rather than real SSPI."""
        return self.kind == "simulated"

    def child_args(self) -> list[str]:
        """The options that make a child process use the same provider."""
        if self.simulated:
            return ["--fake"]
        if self.library is not None:
            return ["--library", self.library]
        return []

    def as_json(self) -> dict[str, Any]:
        """The ``provider`` member of the ``packages`` and ``selftest`` documents."""
        return {
            "kind": self.kind,
            "description": self.description,
            "library": self.library,
            "simulated": self.simulated,
            "note": self.note,
        }


class ProviderError(Exception):
    """The requested provider cannot be used; the message says why and what to do."""

    def __init__(self, message: str, provider: Provider) -> None:
        super().__init__(message)
        self.provider = provider
        """The provider that was asked for (for the document's ``provider`` member)."""


def fake_class() -> Any:
    """``sspi_import.testing.FakeSspi``, or ``None`` when this build has no simulated provider."""
    try:
        module = importlib.import_module("sspi_import.testing")
    except ImportError:
        return None
    return getattr(module, "FakeSspi", None)


def _is_sspi_rs(path: str) -> bool:
    with contextlib.suppress(SspiUnavailableError, OSError):
        if Path(path).resolve() == find_sspi_rs():
            return True
    return Path(path).name.startswith("libsspi")


def _for_path(path: str, source: str = "") -> Provider:
    kind = "sspi-rs" if _is_sspi_rs(path) else "library"
    where = f" (from {source})" if source else ""
    label = "sspi-rs" if kind == "sspi-rs" else "library"
    return Provider(kind, f"{label} ({path}){where}", path)


def choose_provider(args: argparse.Namespace) -> Provider:
    """Decide from ``--fake``, ``--sspi-rs``, ``--library`` and the platform.

    Raises ``ProviderError`` (carrying the provider asked for) when it cannot be used.
    """
    if args.fake:
        provider = Provider("simulated", SIMULATED)
        if fake_class() is None:
            raise ProviderError("the simulated provider is not in this build", provider)
        return provider
    if args.sspi_rs:
        try:
            path = str(find_sspi_rs())
        except SspiUnavailableError as exc:
            raise ProviderError(str(exc), Provider("sspi-rs", "sspi-rs (not found)")) from None
        return Provider("sspi-rs", f"sspi-rs ({path})", path)
    if args.library is not None:
        return _for_path(os.fspath(args.library))
    env = os.environ.get(_library.ENV_VAR)
    if env:
        return _for_path(env, _library.ENV_VAR)
    if sys.platform == "win32":
        return Provider("secur32", "secur32.dll (Windows SSPI)")
    else:  # an else, not a fall-through: mypy --platform win32 would call it unreachable
        return _default_off_windows()


def _default_off_windows() -> Provider:
    if fake_class() is None:
        raise ProviderError(
            "no SSPI library on this system and no simulated provider in this build: "
            "pass --library PATH or --sspi-rs (pip install sspilib)",
            Provider("none", "no provider"),
        )
    return Provider(
        "simulated",
        SIMULATED,
        note="no real SSPI provider on this system (Windows secur32 is the real one): "
        "using the simulated provider; pass --sspi-rs or --library PATH for another",
    )


@contextlib.contextmanager
def installed(provider: Provider) -> Iterator[_library.Api]:
    """Send SSPI calls to ``provider`` for the block, then restore the previous library."""
    if provider.simulated:
        with fake_class()() as fake:
            yield fake if isinstance(fake, _library.Api) else _library.api()
        return
    try:
        with _c_stdout_to_stderr():  # sspi-rs may print as it loads: not into our output
            if provider.library is not None:
                new = _library.load(provider.library)
            else:
                new = _library.load("secur32", "secur32.dll")
    except (SspiUnavailableError, TypeError) as exc:
        raise ProviderError(str(exc), provider) from None
    previous = _library.swap(new)
    try:
        yield new
    finally:
        _library.swap(previous)


@contextlib.contextmanager
def _c_stdout_to_stderr() -> Iterator[None]:
    """For the block, file descriptor 1 is the standard error: what C code prints goes there.

    With ``SSPI_LOG_PATH`` set, loading sspi-rs starts its logger, which prints
    ``[SSPI-DEBUG] SSPI_LOG_PATH = ...`` to the C stdout; a command's stdout is its output
    (JSON with ``--json``), so that line is sent to stderr. The command line has one
    thread here, so nothing else writes meanwhile. (On Windows, Rust writes to the
    process's output handle, which this does not move; sspi-rs there is rare.) Without
    the variable, or without the descriptors (pythonw.exe), nothing is moved.
    """
    if not os.environ.get(_library.LOG_PATH_VAR):
        yield
        return
    with contextlib.suppress(Exception):  # a closed or broken stdout: nothing to keep apart
        sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:
        yield
        return
    try:
        os.dup2(2, 1)
    except OSError:
        os.close(saved)
        yield
        return
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def non_empty(text: str) -> str:
    """An argument that must say something: empty is a usage error (exit status 2)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def add_provider_options(parser: argparse.ArgumentParser, sspi_rs_help: str = "") -> None:
    """``--library``, ``--fake`` and (with help text) ``--sspi-rs``, mutually exclusive."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--library",
        metavar="PATH",
        type=non_empty,
        help="an SSPI-compatible library to use instead of secur32 (or $SSPI_IMPORT_LIBRARY)",
    )
    group.add_argument(
        "--fake",
        action="store_true",
        help="use the simulated provider sspi_import.testing.FakeSspi",
    )
    if sspi_rs_help:
        group.add_argument("--sspi-rs", action="store_true", help=sspi_rs_help)
    else:
        parser.set_defaults(sspi_rs=False)
