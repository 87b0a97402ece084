"""``sspi-import selftest``: handshake, use, export and import a context, here and in a child.

Document: ``selftest.schema.json`` (``"schema": "sspi-import/selftest/1"``). It always
lists the same seven steps, by stable ``id`` (``STEP_IDS``), each with its display
``name``, ``result`` (PASS, FAIL or SKIP), ``status`` (unsigned) and ``symbol``. Exit
status: 0 every step passed; 1 a step failed or the provider could not be used; 2 a
usage error (``--user`` with no password to be had, ``--password`` given).

The password of an explicit identity never comes from argv (other users can read a
process's arguments, shells keep them in history): it is read from
``SSPI_IMPORT_PASSWORD``, or asked for with ``getpass`` when stdin is a terminal.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import getpass
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import _CALL_ADVICE, SspiError, _lookup
from ..exported import ExportedContext
from ..handoff import ImportedContext
from ..processes import start_python_child
from ._output import (
    SafeText,
    UsageError,
    diagnose,
    dump_json,
    error_object,
    say,
    status_fields,
    wrap,
)
from ._provider import (
    Provider,
    ProviderError,
    add_provider_options,
    choose_provider,
    installed,
    non_empty,
)

if TYPE_CHECKING:
    from ..credentials import Identity

SCHEMA = "sspi-import/selftest/1"
PASSWORD_ENV = "SSPI_IMPORT_PASSWORD"  # noqa: S105 - a variable name, not a password
"""The environment variable an explicit identity's password is read from."""

DEMO_IDENTITY = ("demo", "SSPI-IMPORT", "demo-password")
"""User, domain and password used on sspi-rs when none are given: sspi-rs has no
logged-on user, and an NTLM loopback with any explicit identity succeeds there."""

STEP_IDS = ("handshake", "query", "sign", "encrypt", "export", "import_local", "import_child")
"""The steps, in order: stable identifiers for machines (display names may change)."""

_NAMES = {
    "handshake": "handshake ({package})",
    "query": "query",
    "sign": "protect (sign/verify)",
    "encrypt": "protect (encrypt/decrypt)",
    "export": "export",
    "import_local": "import (this process)",
    "import_child": "import (child process)",
}
_NEEDS = {
    "query": "handshake",
    "sign": "handshake",
    "encrypt": "handshake",
    "export": "handshake",
    "import_local": "export",
    "import_child": "export",
}
_MESSAGE = b"sspi_import selftest message"


@dataclasses.dataclass
class Step:
    """One step of ``selftest``: what was tried, and the status it ended with."""

    id: str
    """A stable identifier from ``STEP_IDS``."""
    name: str
    """Display text (``"handshake (NTLM)"``)."""
    result: str
    """``"PASS"``, ``"FAIL"`` or ``"SKIP"``."""
    status: int | None = None
    """The unsigned status the step ended with (0 on PASS), ``None`` when no SSPI
    status applies (skipped, or a failure that is not an SSPI error)."""
    detail: str = ""
    function: str | None = None
    """The SSPI function that failed, where known: it picks the advice (not in JSON)."""

    @property
    def symbol(self) -> str | None:
        """The status's name (``"SEC_E_OK"``), ``None`` for no or an unknown status."""
        symbol: str | None = status_fields(self.status)["symbol"]
        return symbol

    def lines(self) -> list[str]:
        """The lines printed for people, wrapped to 80 columns (long paths excepted)."""
        head = f"{self.result}  {self.name}  "
        if self.result == "SKIP":
            text = self.detail
        else:
            code = "error" if self.status is None else self.symbol or f"0x{self.status:08X}"
            if self.result == "PASS":
                text = f"{code}  {self.detail}" if self.detail else code
            else:
                text = f"{code}: {self.detail}"
        return wrap(text, "      ", head).splitlines()

    def as_json(self) -> dict[str, Any]:
        """One entry of the document's ``steps``."""
        return {
            "id": self.id,
            "name": self.name,
            "result": self.result,
            **status_fields(self.status),
            "detail": self.detail,
        }


class _ChildError(Exception):
    """A failure the child process reported, with its status (``None`` if not SSPI)."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(message)
        self.sspi_status = status


def _status_and_detail(exc: BaseException) -> tuple[int | None, str]:
    """A failed step's status and short detail: the status's meaning is said once, later."""
    if isinstance(exc, SspiError):
        where = f"{exc.function} failed" if exc.function else "an SSPI call failed"
        return exc.status, f"{where} ({exc.detail})" if exc.detail else where
    if isinstance(exc, _ChildError):
        return exc.sspi_status, f"in the child process: {exc}"
    return None, f"{type(exc).__name__}: {exc}"


class _Runner:
    """Runs the steps in order; a step needing an earlier failed one is skipped."""

    def __init__(self, package: str) -> None:
        self.package = package
        self.steps: list[Step] = []
        self.failed: set[str] = set()

    def name(self, step_id: str) -> str:
        return _NAMES[step_id].format(package=self.package)

    def skip_all(self, why: str) -> None:
        self.steps = [Step(i, self.name(i), "SKIP", None, why) for i in STEP_IDS]

    def run(self, step_id: str, action: Callable[[], str]) -> None:
        need = _NEEDS.get(step_id)
        if need in self.failed:
            detail = f"needs {self.name(need or '')}, which failed"
            self.steps.append(Step(step_id, self.name(step_id), "SKIP", None, detail))
            self.failed.add(step_id)
            return
        try:
            detail = action()
        except Exception as exc:  # every failure becomes a FAIL line, nothing escapes
            status, text = _status_and_detail(exc)
            function = exc.function if isinstance(exc, SspiError) else None
            self.steps.append(Step(step_id, self.name(step_id), "FAIL", status, text, function))
            self.failed.add(step_id)
            return
        self.steps.append(Step(step_id, self.name(step_id), "PASS", 0, detail))


def resolve_identity(
    args: argparse.Namespace,
    provider: Provider,
    *,
    environ: dict[str, str] | os._Environ[str] = os.environ,
    stdin: TextIO | None = None,
    ask: Callable[[str], str] | None = None,
) -> Identity | None:
    """The explicit identity asked for, its password from the environment or a prompt.

    Raises ``UsageError`` (exit 2) for ``--password``, ``--domain`` without ``--user``,
    and ``--user`` when ``SSPI_IMPORT_PASSWORD`` is unset and stdin is no terminal.
    """
    if args.password is not None:
        raise UsageError(
            "--password is not accepted: other users can read a command line. "
            f"Set {PASSWORD_ENV}, or run in a terminal to be asked for it."
        )
    if args.user is None:
        if args.domain is not None:
            raise UsageError("--domain needs --user")
        if provider.kind == "sspi-rs":
            user, domain, password = DEMO_IDENTITY
        else:
            return None  # the logged-on user (Windows) or the fake's default
    else:
        user, domain = args.user, args.domain or ""
        shown = f"{domain}\\{user}" if domain else user
        from_env = environ.get(PASSWORD_ENV)
        if from_env is not None:
            password = from_env
        else:
            stream = sys.stdin if stdin is None else stdin
            if not (stream is not None and stream.isatty()):
                raise UsageError(
                    f"--user needs a password: set {PASSWORD_ENV}, or run in a "
                    "terminal to be asked for it."
                )
            password = (ask or getpass.getpass)(f"password for {shown}: ")
    from ..credentials import Identity

    try:
        return Identity(user, domain, password)
    except (TypeError, ValueError) as exc:  # the message never holds the password
        raise UsageError(str(exc)) from None


def _selftest_steps(
    runner: _Runner,
    identity: Identity | None,
    args: argparse.Namespace,
    provider: Provider,
    stack: contextlib.ExitStack,
) -> None:
    state: dict[str, Any] = {}

    def handshake() -> str:
        from ..handshake import loopback

        client, server = loopback(args.package, identity, args.target)
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

    def import_local() -> str:
        with ImportedContext.from_exported(state["exported"]) as imported:
            if imported.decrypt(state["sealed"]) != _MESSAGE:
                raise ValueError("the imported context decrypted something else")
            return f"user {imported.user_name}; decrypted the client's message"

    def import_child() -> str:
        return _import_in_child(state["exported"], state["sealed"], provider)

    for step_id, action in (
        ("handshake", handshake),
        ("query", query),
        ("sign", sign),
        ("encrypt", encrypt),
        ("export", export),
        ("import_local", import_local),
        ("import_child", import_child),
    ):
        runner.run(step_id, action)


_CHILD_CODE = (
    "import sys; from sspi_import.cli._selftest import child_main; "
    "sys.exit(child_main(sys.argv[1:]))"
)


def start_child(provider_args: Sequence[str]) -> subprocess.Popen[str]:
    """Start the Python child that imports the context (the one place children start).

    Its stdin takes one JSON request, its stdout gives one JSON answer (both ASCII).
    """
    # Not Popen([sys.executable, ...]): in a Windows venv its pid is the venv launcher's,
    # and for_process() would hand the token to the launcher (bpo-35797).
    return start_python_child(
        ["-c", _CHILD_CODE, *provider_args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="backslashreplace",
    )


def _import_in_child(exported: ExportedContext, sealed: bytes, provider: Provider) -> str:
    """Start a child, duplicate the token into it, send the context; it imports and decrypts."""
    child = start_child(provider.child_args())
    try:
        with exported.for_process(child) as copy:  # the token, duplicated into the child
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
        last = stderr.strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(
            f"the child process (exit {child.returncode}) gave no answer: {last[0]}"
        ) from None
    if not answer.get("ok"):
        raise _ChildError(answer.get("status"), answer.get("error", "it failed"))
    return f"pid {child.pid}: user {answer['user_name']}; decrypted the client's message"


def child_main(argv: Sequence[str]) -> int:
    """The child side of ``selftest``: import the context from stdin, decrypt, answer."""
    parser = argparse.ArgumentParser(prog="sspi-import (selftest child)")
    add_provider_options(parser)
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
                answer = {"ok": True, "status": 0, "user_name": imported.user_name}
    except Exception as exc:  # reported to the parent, which prints the FAIL line
        status, detail = _status_and_detail(exc)
        if not isinstance(exc, SspiError):
            detail = str(exc)
        answer = {"ok": False, "status": status, "error": detail}
    print(json.dumps(answer, ensure_ascii=True))
    return 0 if answer["ok"] else 1


def run(args: argparse.Namespace, out: SafeText, err: SafeText) -> int:
    """The ``selftest`` command."""
    runner = _Runner(args.package)
    error: BaseException | None = None
    try:
        provider = choose_provider(args)
    except ProviderError as exc:
        provider, error = exc.provider, exc
    identity = resolve_identity(args, provider)  # UsageError: exit 2, before any call
    with contextlib.ExitStack() as stack:
        if error is None:
            try:
                stack.enter_context(installed(provider))
            except ProviderError as exc:
                error = exc
        if error is None:
            _selftest_steps(runner, identity, args, provider, stack)
        else:
            runner.skip_all("the provider could not be used")
    ok = error is None and all(step.result == "PASS" for step in runner.steps)
    if error is not None:
        diagnose(err, "selftest", str(error))
    elif provider.note:
        diagnose(err, "selftest", provider.note)
    _explain_failures(runner.steps, err)
    if args.json:
        dump_json(
            out,
            {
                "schema": SCHEMA,
                "ok": ok,
                "provider": provider.as_json(),
                "steps": [step.as_json() for step in runner.steps],
                "error": None if error is None else error_object(error),
            },
        )
        return 0 if ok else 1
    out.write(f"provider: {provider.description}\n")  # a path is never broken
    for step in runner.steps:
        for line in step.lines():
            out.write(line + "\n")
    passed = sum(step.result == "PASS" for step in runner.steps)
    verdict = "all steps passed" if ok else f"{passed} of {len(runner.steps)} steps passed"
    where = " on the SIMULATED provider (this says nothing about Windows)" * provider.simulated
    say(out, f"{'PASS' if ok else 'FAIL'}: {verdict}{where}", "      ", "")
    return 0 if ok else 1


def _explain_failures(steps: Sequence[Step], err: SafeText) -> None:
    """Each failing status's meaning, once, on stderr (not in every step's line).

    Where the failing call has advice of its own (``errors._CALL_ADVICE``), it is said
    here: ``explain SYMBOL`` would give the status's general advice instead.
    """
    seen: list[tuple[int, str | None]] = []
    for step in steps:
        failure = (step.status, step.function)
        if step.result == "FAIL" and step.status is not None and failure not in seen:
            seen.append((step.status, step.function))
    for status, function in seen:
        value, info = _lookup(status)
        if info is None:
            diagnose(err, "selftest", f"0x{value:08X} is not a status in winerror.h")
            continue
        specific = None if function is None else _CALL_ADVICE.get((info.symbol, function))
        if specific is not None:
            diagnose(err, "selftest", f"{info.symbol} from {function}: {info.meaning} {specific}")
            continue
        diagnose(
            err,
            "selftest",
            f"{info.symbol}: {info.meaning} For what to do: sspi-import explain {info.symbol}",
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``selftest`` options."""
    add_provider_options(
        parser, "use sspi-rs from the sspilib wheel (a demo identity unless --user is given)"
    )
    parser.add_argument(
        "--package", default="NTLM", type=non_empty, help="security package (default: NTLM)"
    )
    parser.add_argument(
        "--target",
        default="host/localhost",
        type=non_empty,
        help="target name (SPN) (default: host/localhost)",
    )
    parser.add_argument(
        "--user",
        help=f"explicit identity: user name; the password is read from ${PASSWORD_ENV} "
        "or asked for when stdin is a terminal",
    )
    parser.add_argument("--domain", help="explicit identity: domain")
    parser.add_argument(
        "--password",
        nargs="?",
        const="",
        help=f"refused (a command line is readable by other users): use ${PASSWORD_ENV}",
    )
