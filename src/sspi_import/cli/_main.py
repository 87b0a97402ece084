"""The parser and ``main``: streams made safe, usage errors turned into exit status 2."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO, cast

from . import _explain, _packages, _selftest
from ._output import (
    PROG,
    OutputError,
    SafeText,
    UsageError,
    diagnose,
    forgiving_std_streams,
    safe,
)
from ._provider import add_provider_options

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

EPILOG = """\
examples:
  sspi-import explain 0x80090306 -2146893054 SEC_E_INVALID_TOKEN
  sspi-import packages
  sspi-import packages --sspi-rs --json
  sspi-import selftest            secur32 on Windows, simulated elsewhere
  sspi-import selftest --package Negotiate
  sspi-import selftest --sspi-rs  real handshake; sspi-rs cannot export
  sspi-import selftest --fake --json

exit status: 0 success; 1 a failed step (unknown code, failed selftest step,
unusable provider) or output that could not be written; 2 usage error
"""

Handler = Callable[[argparse.Namespace, SafeText, SafeText], int]


class _Parser(argparse.ArgumentParser):
    """argparse, except that help, version and usage go out through ``SafeText``.

    ``ArgumentParser._print_message`` (every version since 3.2) swallows an ``OSError``
    from the write, so ``--help > /dev/full`` would exit 0 having written nothing;
    through ``SafeText`` it raises ``OutputError`` like every other output of ``main``.
    """

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        if message:
            safe(cast(TextIO, sys.stderr if file is None else file)).write(message)


def build_parser() -> argparse.ArgumentParser:
    """The ``argparse`` parser of the command line."""
    parser = _Parser(
        prog=PROG,
        description="Hand Windows SSPI security contexts to other processes: diagnostics.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    json_option = _Parser(add_help=False)
    json_option.add_argument(
        "--json", action="store_true", help="print one JSON document (see docs/cli.md)"
    )

    explain = commands.add_parser(
        "explain",
        parents=[json_option],
        help="say what SSPI status codes mean and what to do",
        description="Explain SSPI status codes: symbol, hex, signed value, meaning, advice.",
        epilog="examples:\n  sspi-import explain 0x80090306\n  sspi-import explain "
        "-2146893054 sec_e_invalid_token 2148074248\n\nexit status: 0 all known; "
        "1 a code is not in winerror.h;\n2 an argument is no status code",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    explain.add_argument(
        "codes",
        nargs="+",
        metavar="CODE",
        help="hex (0x80090306), decimal of either sign (-2146893050) or name (SEC_E_NOT_OWNER)",
    )
    explain.set_defaults(handler=_explain.run)

    packages = commands.add_parser(
        "packages",
        parents=[json_option],
        help="list the installed security packages",
        description="List security packages (EnumerateSecurityPackagesW): name,\n"
        "capabilities, maximum token size, and whether the package can export contexts.",
        epilog="examples:\n  sspi-import packages\n  sspi-import packages --sspi-rs --json"
        "\n\nexit status: 0 listed; 1 the provider could not be used; 2 usage error",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_provider_options(packages, "use sspi-rs from the sspilib wheel")
    packages.set_defaults(handler=_packages.run)

    selftest = commands.add_parser(
        "selftest",
        parents=[json_option],
        help="authenticate, export, import (here and in a child), use the context",
        description="Run a loopback handshake, query and protect with the context,\n"
        "export it, import it in this process and in a child process. One line per\n"
        "step with its status; exit 0 only when every step passed.",
        epilog="examples:\n  sspi-import selftest\n  sspi-import selftest --package Negotiate\n"
        f"  {_selftest.PASSWORD_ENV}=secret sspi-import selftest --sspi-rs \\\n"
        "      --user alice --domain EXAMPLE\n  sspi-import selftest --fake --json\n\n"
        "exit status: 0 every step passed; 1 a step failed; 2 usage error",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _selftest.add_arguments(selftest)
    selftest.set_defaults(handler=_selftest.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status.

    0 success; 1 a failed step, or output that could not be written; 2 a usage error.
    Output never fails on text the console or pipe cannot encode: it is written as
    backslash escapes. When the output itself goes away (``... | head -1``: a broken pipe,
    ``EINVAL`` on Windows; ``> /dev/full``: no space left) the command stops with one line
    on stderr and status 1, never a traceback.
    """
    with forgiving_std_streams():
        try:
            return _run(argv)
        except OutputError as exc:
            return _output_failed(exc)


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors, already written
        _flush(sys.stdout)
        _flush(sys.stderr)
        return exc.code if isinstance(exc.code, int) else 2
    handler: Handler = args.handler
    out, err = safe(sys.stdout), safe(sys.stderr)
    try:
        status = handler(args, out, err)
    except UsageError as exc:
        diagnose(err, f"{args.command}: error", str(exc))
        status = 2
    # What is still buffered fails here, where it is handled, not at interpreter exit.
    out.flush()
    err.flush()
    return status


def _flush(stream: TextIO | None) -> None:
    if stream is not None:  # pythonw.exe has no standard streams
        safe(stream).flush()


def _output_failed(exc: OutputError) -> int:
    """One line on stderr (if it can still be written) and status 1."""
    # The interpreter flushes sys.stdout and sys.stderr again at exit: point what failed
    # at the null device first, so that flush finds nothing to complain about.
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "name", None) == exc.stream:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                null = os.open(os.devnull, os.O_WRONLY)
                try:
                    os.dup2(null, stream.fileno())
                finally:
                    os.close(null)
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"{exc}\n")
        sys.stderr.flush()
    return 1
