"""The ``sspi-import`` command line: explain status codes, list packages, self-test a provider.

``python -m sspi_import`` and the ``sspi-import`` console script both call ``main``.
Every subcommand prints for people by default and, with ``--json``, one JSON document
for machines. Exit status: 0 success; 1 a code is unknown, a step failed or no
provider could be used; 2 a usage error (an argument that is no status code, say).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import dataclasses
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from ctypes import POINTER, byref, c_void_p
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ._buffers import free_context_buffer, read_utf16z
from ._raw import constants as C  # noqa: N812 - C names, read like the header
from ._raw import loader
from ._raw.structs import ULONG, SecBuffer, SecHandle, SecPkgInfoW
from .errors import (
    _CLASSES,
    SspiError,
    SspiUnavailableError,
    UnsupportedFunctionError,
    _lookup,
    _signed,
    check,
    error_from_status,
)
from .exported import ExportedContext
from .handoff import ImportedContext
from .library import find_sspi_rs

if TYPE_CHECKING:
    from .credentials import Identity

__all__ = [
    "EXPORTING_PACKAGES",
    "PackageInfo",
    "Provider",
    "Step",
    "capability_names",
    "enumerate_packages",
    "main",
]

PROG = "sspi-import"
OK = "SEC_E_OK"

EXPORTING_PACKAGES = frozenset(
    name.casefold()
    for name in (
        "NTLM",
        "Kerberos",
        "Negotiate",
        "Schannel",
        "Microsoft Unified Security Protocol Provider",
        "Default TLS SSP",
    )
)
"""Packages whose contexts Windows can export and import (case-folded names).

No capability bit says whether a package implements ``ExportSecurityContext``; this is
what Microsoft documents and what the library's users rely on: NTLM, Kerberos,
Negotiate (the export holds the negotiated package's context) and Schannel under its
three names. ``packages`` answers "yes" for these, "no" when the provider itself does
not implement the call, and "unknown" for every other package.
"""

DEMO_IDENTITY = ("demo", "SSPI-IMPORT", "demo-password")
"""User, domain and password used on sspi-rs when none are given: sspi-rs has no
logged-on user, and an NTLM loopback with any explicit identity succeeds there."""

_CAPABILITIES: tuple[tuple[str, int], ...] = tuple(
    (name.removeprefix("SECPKG_FLAG_"), value)
    for name, value in vars(C).items()
    if name.startswith("SECPKG_FLAG_") and isinstance(value, int)
)


def capability_names(flags: int) -> list[str]:
    """Names of the ``SECPKG_FLAG_*`` bits set in ``flags``, without the prefix.

    Bits no constant names are given as hex, so nothing is silently dropped.
    """
    names = [name for name, value in _CAPABILITIES if flags & value]
    rest = flags & ~sum(value for _, value in _CAPABILITIES)
    if rest:
        names.append(f"0x{rest:08X}")
    return names


# ---------------------------------------------------------------------------------------
# Providers


@dataclasses.dataclass(frozen=True)
class Provider:
    """Which SSPI library a subcommand talks to, and how to say so."""

    kind: str
    """``"secur32"``, ``"sspi-rs"``, ``"library"`` (any other path) or ``"simulated"``."""
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
        """A JSON-ready description."""
        return {
            "kind": self.kind,
            "description": self.description,
            "library": self.library,
            "simulated": self.simulated,
            "note": self.note,
        }


def _fake_class() -> Any:
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


class ProviderError(Exception):
    """The requested provider cannot be used; the message says why and what to do."""


def choose_provider(args: argparse.Namespace) -> Provider:
    """Decide from ``--fake``, ``--sspi-rs``, ``--library`` and the platform."""
    if args.fake:
        if _fake_class() is None:
            raise ProviderError(
                "the simulated provider sspi_import.testing.FakeSspi is not in this build"
            )
        return Provider("simulated", "sspi_import.testing.FakeSspi (simulated, not Windows)")
    if args.sspi_rs:
        try:
            path = str(find_sspi_rs())
        except SspiUnavailableError as exc:
            raise ProviderError(str(exc)) from None
        return Provider("sspi-rs", f"sspi-rs ({path})", path)
    if args.library is not None:
        path = os.fspath(args.library)
        kind = "sspi-rs" if _is_sspi_rs(path) else "library"
        return Provider(kind, f"{'sspi-rs' if kind == 'sspi-rs' else 'library'} ({path})", path)
    env = os.environ.get(loader.ENV_VAR)
    if env:
        kind = "sspi-rs" if _is_sspi_rs(env) else "library"
        return Provider(kind, f"{env} (from {loader.ENV_VAR})", env)
    if sys.platform == "win32":
        return Provider("secur32", "secur32.dll (Windows SSPI)")
    else:  # an else, not a fall-through: mypy --platform win32 would call it unreachable
        return _default_off_windows()


def _default_off_windows() -> Provider:
    if _fake_class() is None:
        raise ProviderError(
            "no SSPI library on this system and no simulated provider in this build: "
            "pass --library PATH or --sspi-rs (pip install sspilib)"
        )
    return Provider(
        "simulated",
        "sspi_import.testing.FakeSspi (simulated, not Windows)",
        note="no real SSPI provider on this system (Windows secur32 is the real one): "
        "using the simulated provider; pass --sspi-rs or --library PATH for another",
    )


@contextlib.contextmanager
def installed(provider: Provider) -> Iterator[loader.Api]:
    """Send SSPI calls to ``provider`` for the block, then restore the previous library."""
    if provider.simulated:
        with _fake_class()() as fake:
            yield fake if isinstance(fake, loader.Api) else loader.api()
        return
    if provider.library is not None:
        try:
            new = loader.load(provider.library)
        except (SspiUnavailableError, TypeError) as exc:
            raise ProviderError(str(exc)) from None
    else:
        try:
            new = loader.load("secur32", "secur32.dll")
        except SspiUnavailableError as exc:
            raise ProviderError(str(exc)) from None
    previous = loader.swap(new)
    try:
        yield new
    finally:
        loader.swap(previous)


# ---------------------------------------------------------------------------------------
# explain


def _explain_one(text: str) -> dict[str, Any]:
    value, info = _lookup(text)  # ValueError for no code at all
    result: dict[str, Any] = {
        "input": text,
        "known": info is not None,
        "symbol": None,
        "status": value,
        "hex": f"0x{value:08X}",
        "signed": _signed(value),
        "meaning": None,
        "advice": None,
        "aliases": [],
        "exception": None,
    }
    if info is not None:
        cls = _CLASSES.get(value)
        result.update(
            symbol=info.symbol,
            meaning=info.meaning,
            advice=info.advice or None,
            aliases=list(info.aliases),
            exception=f"sspi_import.{cls.__name__}" if cls is not None else None,
        )
    return result


def _cmd_explain(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    results: list[dict[str, Any]] = []
    status = 0
    for text in args.codes:
        try:
            result = _explain_one(text)
        except ValueError as exc:
            results.append({"input": text, "error": str(exc)})
            print(f"{PROG} explain: {exc}", file=err)
            status = 2
            continue
        results.append(result)
        if not result["known"]:
            status = max(status, 1)
    if args.json:
        json.dump(results, out, indent=2)
        out.write("\n")
        return status
    for result in results:
        if "error" in result:
            continue
        if not result["known"]:
            print(
                f"{result['hex']}  {result['signed']}  unknown: not an SSPI status code in "
                "winerror.h (it may be a Win32 error or an NTSTATUS from the provider)",
                file=out,
            )
            continue
        print(f"{result['symbol']}  {result['hex']}  {result['signed']}", file=out)
        print(f"  meaning:   {result['meaning']}", file=out)
        if result["advice"]:
            print(f"  advice:    {result['advice']}", file=out)
        if result["exception"]:
            print(f"  raises:    {result['exception']}", file=out)
        if result["aliases"]:
            print(f"  also:      {', '.join(result['aliases'])}", file=out)
    return status


# ---------------------------------------------------------------------------------------
# packages


@dataclasses.dataclass(frozen=True)
class PackageInfo:
    """One installed security package, as ``EnumerateSecurityPackagesW`` lists it."""

    name: str
    comment: str
    capabilities: int
    version: int
    rpc_id: int
    max_token: int
    export: str
    """``"yes"``, ``"no"`` or ``"unknown"``: see ``EXPORTING_PACKAGES``."""

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready description, with the capability names decoded."""
        data = dataclasses.asdict(self)
        data["capability_names"] = capability_names(self.capabilities)
        return data


def provider_exports(lib: loader.Api, provider: Provider) -> bool:
    """Whether the provider implements ``ExportSecurityContext`` at all.

    secur32 does. Any other library is asked with an empty handle: a provider that
    implements the call rejects the handle (``SEC_E_INVALID_HANDLE``), one that does not
    says ``SEC_E_UNSUPPORTED_FUNCTION`` (sspi-rs, Wine).
    """
    if provider.kind == "secur32":
        return True
    if not lib.has("ExportSecurityContext"):
        return False
    packed = SecBuffer()
    token = c_void_p()
    status = lib.ExportSecurityContext(byref(SecHandle()), 0, byref(packed), byref(token))
    if packed.pvBuffer:  # a provider that "exports" an empty handle: free what it gave
        free_context_buffer(lib, packed.pvBuffer)
    return status >= 0 or not isinstance(error_from_status(status), UnsupportedFunctionError)


def enumerate_packages(lib: loader.Api, provider: Provider) -> list[PackageInfo]:
    """List the packages of ``lib`` with ``EnumerateSecurityPackagesW``; frees the array."""
    count = ULONG()
    array = POINTER(SecPkgInfoW)()
    status = lib.EnumerateSecurityPackagesW(byref(count), byref(array))
    packages: list[PackageInfo] = []
    try:  # the array is freed whatever happens after the call
        check(status, "EnumerateSecurityPackagesW")
        exports = provider_exports(lib, provider)
        for index in range(count.value):
            entry = array[index]
            name = read_utf16z(entry.Name) if entry.Name else ""
            if not exports:
                export = "no"
            elif name.casefold() in EXPORTING_PACKAGES:
                export = "yes"
            else:
                export = "unknown"
            packages.append(
                PackageInfo(
                    name=name,
                    comment=read_utf16z(entry.Comment) if entry.Comment else "",
                    capabilities=entry.fCapabilities,
                    version=entry.wVersion,
                    rpc_id=entry.wRPCID,
                    max_token=entry.cbMaxToken,
                    export=export,
                )
            )
    finally:
        if array:
            free_context_buffer(lib, ctypes.cast(array, c_void_p))
    return packages


def _cmd_packages(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        provider = choose_provider(args)
        with installed(provider) as lib:
            packages = enumerate_packages(lib, provider)
    except (ProviderError, SspiUnavailableError, SspiError) as exc:
        if args.json:
            json.dump({"ok": False, "error": str(exc)}, out, indent=2)
            out.write("\n")
        print(f"{PROG} packages: {exc}", file=err)
        return 1
    if args.json:
        document = {
            "ok": True,
            "provider": provider.as_json(),
            "packages": [p.as_json() for p in packages],
        }
        json.dump(document, out, indent=2)
        out.write("\n")
        return 0
    print(f"provider: {provider.description}", file=out)
    if provider.note:
        print(f"note: {provider.note}", file=out)
    width = max([len("NAME"), *(len(p.name) for p in packages)])
    print(f"{'NAME':<{width}}  {'MAX TOKEN':>9}  EXPORT   CAPABILITIES", file=out)
    for p in packages:
        caps = " ".join(capability_names(p.capabilities)) or "-"
        print(f"{p.name:<{width}}  {p.max_token:>9}  {p.export:<7}  {caps}", file=out)
    print(
        "export: yes = NTLM, Kerberos, Negotiate or Schannel (Windows exports these); "
        "no = this provider does not implement ExportSecurityContext; "
        "unknown = no capability bit says, try it",
        file=out,
    )
    return 0


# ---------------------------------------------------------------------------------------
# selftest


@dataclasses.dataclass
class Step:
    """One line of ``selftest``: what was tried, and the status it ended with."""

    name: str
    result: str
    """``"PASS"``, ``"FAIL"`` or ``"SKIP"``."""
    status: str | None
    """The status code name (``"SEC_E_OK"``, ``"SEC_E_UNSUPPORTED_FUNCTION"``...)."""
    detail: str = ""

    def line(self) -> str:
        """The line printed for people."""
        if self.result == "PASS":
            tail = f"  {self.detail}" if self.detail else ""
            return f"PASS  {self.name}  {self.status}{tail}"
        if self.result == "SKIP":
            return f"SKIP  {self.name}  {self.detail}"
        return f"FAIL  {self.name}  {self.status or 'error'}: {self.detail}"

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return dataclasses.asdict(self)


def _status_of(exc: BaseException) -> str | None:
    if isinstance(exc, SspiError):
        return exc.symbol or f"0x{exc.status:08X}"
    if isinstance(exc, _ChildError):
        return exc.status
    return None


class _Runner:
    """Runs the steps in order; a step needing an earlier failed one is skipped."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.failed: set[str] = set()

    def run(
        self, name: str, action: Callable[[], str], *, needs: Sequence[str] = (), key: str = ""
    ) -> bool:
        missing = [n for n in needs if n in self.failed]
        if missing:
            self.steps.append(Step(name, "SKIP", None, f"needs {missing[0]}, which failed"))
            self.failed.add(key or name)
            return False
        try:
            detail = action()
        except Exception as exc:  # every failure becomes a FAIL line, nothing escapes
            status = _status_of(exc)
            text = str(exc) if status else f"{type(exc).__name__}: {exc}"
            self.steps.append(Step(name, "FAIL", status, text))
            self.failed.add(key or name)
            return False
        self.steps.append(Step(name, "PASS", OK, detail))
        return True


def _identity(args: argparse.Namespace, provider: Provider) -> Identity | None:
    given = (args.user, args.domain, args.password)
    if any(v is not None for v in given):
        if args.user is None or args.password is None:
            raise ValueError("--user and --password go together (and --domain, if any)")
        user, domain, password = args.user, args.domain or "", args.password
    elif provider.kind == "sspi-rs":
        user, domain, password = DEMO_IDENTITY
    else:
        return None  # the logged-on user (Windows) or the fake's default
    from .credentials import Identity

    return Identity(user, domain, password)


_MESSAGE = b"sspi_import selftest message"


def _selftest_steps(args: argparse.Namespace, provider: Provider, stack: Any) -> _Runner:
    runner = _Runner()
    state: dict[str, Any] = {}
    package = args.package

    def handshake() -> str:
        from .handshake import loopback

        client, server = loopback(package, _identity(args, provider), args.target)
        stack.callback(client.close)
        stack.callback(server.close)
        state["client"], state["server"] = client, server
        return f"server sees {server.user_name}"

    def query() -> str:
        server = state["server"]
        sizes = server.sizes()
        return (
            f"user {server.user_name}, package {server.package_name}, "
            f"max signature {sizes.max_signature} bytes"
        )

    def sign() -> str:
        client, server = state["client"], state["server"]
        signature = client.sign(_MESSAGE)
        server.verify(_MESSAGE, signature)
        return f"client signed {len(_MESSAGE)} bytes ({len(signature)}-byte signature), verified"

    def encrypt() -> str:
        client, server = state["client"], state["server"]
        sealed = client.encrypt(_MESSAGE)
        if server.decrypt(sealed) != _MESSAGE:
            raise ValueError("decrypt(encrypt(message)) is not the message")
        return f"client encrypted {len(_MESSAGE)} bytes, server decrypted them"

    def export() -> str:
        exported = state["server"].export()
        stack.callback(exported.close)
        state["exported"] = exported
        # One message, decrypted by each imported copy (both start where the export was).
        state["sealed"] = state["client"].encrypt(_MESSAGE)
        token = "a token" if exported.token is not None else "no token"
        return f"{len(exported.blob)} bytes for package {exported.package}, {token}"

    def import_here() -> str:
        with ImportedContext.from_exported(state["exported"]) as imported:
            if imported.decrypt(state["sealed"]) != _MESSAGE:
                raise ValueError("the imported context decrypted something else")
            return f"user {imported.user_name}; decrypted the client's message"

    def import_child() -> str:
        return _import_in_child(state["exported"], state["sealed"], provider)

    runner.run(f"handshake ({package})", handshake, key="handshake")
    runner.run("query", query, needs=["handshake"])
    runner.run("protect (sign/verify)", sign, needs=["handshake"])
    runner.run("protect (encrypt/decrypt)", encrypt, needs=["handshake"])
    runner.run("export", export, needs=["handshake"])
    runner.run("import (this process)", import_here, needs=["export"])
    runner.run("import (child process)", import_child, needs=["export"])
    return runner


def _import_in_child(exported: ExportedContext, sealed: bytes, provider: Provider) -> str:
    """Start a child, duplicate the token into it, send the context; it imports and decrypts."""
    code = "import sys; from sspi_import.cli import _child; sys.exit(_child(sys.argv[1:]))"
    child = subprocess.Popen(
        [sys.executable, "-c", code, *provider.child_args()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with exported.for_process(child.pid) as copy:  # the token, duplicated into the child
            request = {
                "exported": base64.b64encode(copy.to_bytes()).decode("ascii"),
                "sealed": base64.b64encode(sealed).decode("ascii"),
            }
        stdout, stderr = child.communicate(json.dumps(request), timeout=120)
    finally:
        if child.poll() is None:  # failed before the answer, or timed out: never leave it
            child.kill()
            child.communicate()
    try:
        answer = json.loads(stdout)
    except ValueError:
        raise RuntimeError(
            f"the child process (exit {child.returncode}) gave no answer: {stderr.strip()}"
        ) from None
    if not answer.get("ok"):
        status = answer.get("status")
        if status:
            raise _ChildError(status, answer.get("error", ""))
        raise RuntimeError(answer.get("error", "the child process failed"))
    return f"pid {child.pid}: user {answer['user_name']}; decrypted the client's message"


class _ChildError(Exception):
    """A failure the child reported, with its status code name."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


def _child(argv: Sequence[str]) -> int:
    """The child side of ``selftest``: import the context from stdin, decrypt, answer."""
    parser = argparse.ArgumentParser(prog=f"{PROG} (selftest child)")
    _add_provider_options(parser)
    args = parser.parse_args(argv)
    answer: dict[str, Any]
    try:
        request = json.loads(sys.stdin.read())
        provider = choose_provider(args)
        with installed(provider):
            exported = ExportedContext.from_bytes(base64.b64decode(request["exported"]))
            with exported, ImportedContext.from_exported(exported) as imported:
                plain = imported.decrypt(base64.b64decode(request["sealed"]))
                if plain != _MESSAGE:
                    raise ValueError("the imported context decrypted something else")
                answer = {"ok": True, "status": OK, "user_name": imported.user_name}
    except Exception as exc:  # reported to the parent, which prints the FAIL line
        answer = {"ok": False, "status": _status_of(exc), "error": str(exc)}
    print(json.dumps(answer))
    return 0 if answer["ok"] else 1


def _cmd_selftest(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        provider = choose_provider(args)
    except ProviderError as exc:
        return _provider_failure(args, out, err, exc)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(installed(provider))
        except (ProviderError, SspiUnavailableError) as exc:
            return _provider_failure(args, out, err, exc)
        runner = _selftest_steps(args, provider, stack)
    ok = all(step.result == "PASS" for step in runner.steps)
    if args.json:
        document = {
            "ok": ok,
            "provider": provider.as_json(),
            "simulated": provider.simulated,
            "steps": [step.as_json() for step in runner.steps],
        }
        json.dump(document, out, indent=2)
        out.write("\n")
        return 0 if ok else 1
    print(f"provider: {provider.description}", file=out)
    if provider.note:
        print(f"note: {provider.note}", file=out)
    for step in runner.steps:
        print(step.line(), file=out)
    passed = sum(step.result == "PASS" for step in runner.steps)
    verdict = "all steps passed" if ok else f"{passed} of {len(runner.steps)} steps passed"
    where = " on the SIMULATED provider (this says nothing about Windows)" * provider.simulated
    print(f"{'PASS' if ok else 'FAIL'}: {verdict}{where}", file=out)
    return 0 if ok else 1


def _provider_failure(
    args: argparse.Namespace, out: TextIO, err: TextIO, exc: BaseException
) -> int:
    step = Step("provider", "FAIL", None, str(exc))
    if args.json:
        json.dump({"ok": False, "provider": None, "steps": [step.as_json()]}, out, indent=2)
        out.write("\n")
    else:
        print(step.line(), file=out)
    return 1


# ---------------------------------------------------------------------------------------
# the parser


EPILOG = """\
examples:
  sspi-import explain 0x80090306 -2146893054 SEC_E_INVALID_TOKEN
  sspi-import packages
  sspi-import packages --sspi-rs --json
  sspi-import selftest                      secur32 on Windows, the simulated provider elsewhere
  sspi-import selftest --package Negotiate
  sspi-import selftest --sspi-rs            real handshake; export fails (sspi-rs lacks it)
  sspi-import selftest --fake --json

exit status: 0 success; 1 unknown code, failed step or no usable provider; 2 usage error
"""


def _add_provider_options(parser: argparse.ArgumentParser, sspi_rs_help: str = "") -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--library",
        metavar="PATH",
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


def build_parser() -> argparse.ArgumentParser:
    """The ``argparse`` parser of the command line."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Hand Windows SSPI security contexts to other processes: diagnostics.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    json_option = argparse.ArgumentParser(add_help=False)
    json_option.add_argument("--json", action="store_true", help="print one JSON document")

    explain = commands.add_parser(
        "explain",
        parents=[json_option],
        help="say what SSPI status codes mean and what to do",
        description="Explain SSPI status codes: symbol, hex, signed value, meaning, advice.",
        epilog="examples:\n  sspi-import explain 0x80090306\n  sspi-import explain "
        "-2146893054 sec_e_invalid_token 2148074248\n\nexit status: 0 all known; "
        "1 a code is not in winerror.h; 2 an argument is no status code",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    explain.add_argument(
        "codes",
        nargs="+",
        metavar="CODE",
        help="hex (0x80090306), decimal of either sign (-2146893050) or name (SEC_E_NOT_OWNER)",
    )
    explain.set_defaults(handler=_cmd_explain)

    packages = commands.add_parser(
        "packages",
        parents=[json_option],
        help="list the installed security packages",
        description="List security packages (EnumerateSecurityPackagesW): name, capabilities, "
        "maximum token size, and whether the package can export contexts.",
        epilog="examples:\n  sspi-import packages\n  sspi-import packages --sspi-rs --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_provider_options(packages, "use sspi-rs from the sspilib wheel")
    packages.set_defaults(handler=_cmd_packages)

    selftest = commands.add_parser(
        "selftest",
        parents=[json_option],
        help="authenticate, export, import (here and in a child), use the context",
        description="Run a loopback handshake, query and protect with the context, export "
        "it, import it in this process and in a child process. One line per step with its "
        "status; exit 0 only when every step passed.",
        epilog="examples:\n  sspi-import selftest\n  sspi-import selftest --package Negotiate\n"
        "  sspi-import selftest --sspi-rs --user alice --domain EXAMPLE --password secret\n"
        "  sspi-import selftest --fake --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_provider_options(
        selftest, "use sspi-rs from the sspilib wheel (a demo identity unless --user is given)"
    )
    selftest.add_argument("--package", default="NTLM", help="security package (default: NTLM)")
    selftest.add_argument(
        "--target", default="host/localhost", help="target name (SPN) (default: host/localhost)"
    )
    selftest.add_argument("--user", help="explicit identity: user name")
    selftest.add_argument("--domain", help="explicit identity: domain")
    selftest.add_argument("--password", help="explicit identity: password")
    selftest.set_defaults(handler=_cmd_selftest)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 2
    handler: Callable[[argparse.Namespace, TextIO, TextIO], int] = args.handler
    try:
        return handler(args, sys.stdout, sys.stderr)
    except BrokenPipeError:  # `sspi-import explain ... | head`: the reader left, stop quietly
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
