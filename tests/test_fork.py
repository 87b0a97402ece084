"""After ``os.fork()``: the child neither hangs on nor uses what the parent owns.

Issue 19, item 2: a child forked while another thread was inside a call hung for ever in
``close()`` (its copy of the owner's lock stayed held), and parent and child could
protect messages with one NTLM keystream. Now an owner made before the fork belongs to
the parent: in the child every call on it raises ``InheritedHandleError`` saying what to
do, before anything reaches the provider, and ``close()`` only forgets the handle, at
once, taking no lock and freeing nothing.

Each test forks while another thread is inside a call on the owner (held there by
``wrapped.Wrapped``, before the provider), so the child inherits a held lock. The child
reports through a pipe, line by line, and leaves with ``os._exit``; one that does not
finish within ``wrapped.TIMEOUT`` is killed and the test fails, naming the last thing it
started. The provider counts every call the child makes: there must be none. Then the
parent goes on as if nothing had happened.

Linux only by design (Windows has no fork): listed in ``.ci/windows_deselect.txt``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import select
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import pytest

import sspi_import
from sspi_import import (
    BufferType,
    Credentials,
    ImportedContext,
    InheritedHandleError,
    IovBuffer,
    SecurityContext,
)
from sspi_import.testing import FakeSspi
from wrapped import TIMEOUT, Wrapped

ALICE = sspi_import.Identity("alice", "EXAMPLE", "p4ssw0rd")
# Forking a process with threads is what these tests are about (3.12+ warns about it).
pytestmark = pytest.mark.filterwarnings("ignore:This process .* multi-threaded:DeprecationWarning")

Checks = list[tuple[str, Callable[[], object]]]


def in_child(checks: Checks, wrapped: Wrapped) -> dict[str, str]:
    """Fork; in the child run each check and report how it ended; return the reports.

    A report is ``"returned"`` or ``"<exception type>: <message>"``; ``"provider calls"``
    reports the calls the child made to the provider, by function.
    """
    if sys.platform == "win32":  # pragma: no cover - deselected there (windows_deselect.txt)
        raise AssertionError("Linux only by design: Windows has no fork")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_end)
            before = dict(wrapped.counts)

            def say(key: str, value: str) -> None:
                os.write(write_end, json.dumps([key, value]).encode() + b"\n")

            for name, check in checks:
                say("started", name)
                try:
                    check()
                    outcome = "returned"
                except BaseException as exc:  # reported to the parent
                    outcome = f"{type(exc).__name__}: {exc}"
                say(name, outcome)
            made = {k: v - before.get(k, 0) for k, v in wrapped.counts.items()}
            say("provider calls", json.dumps({k: v for k, v in made.items() if v}))
        except BaseException:  # pragma: no cover - reported to the parent
            os.write(write_end, json.dumps(["child failed", traceback.format_exc()]).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    received = b""
    deadline = time.monotonic() + TIMEOUT
    try:
        while True:
            ready, _, _ = select.select([read_end], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                os.kill(pid, signal.SIGKILL)  # the child this test forked
                last = received.decode().strip().splitlines()[-1:]
                raise AssertionError(f"the fork child hung; its last report: {last}")
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            received += chunk
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    reports = dict(json.loads(line) for line in received.decode().splitlines())
    assert "child failed" not in reports, reports["child failed"]
    return reports


def _refused(reports: dict[str, str], checks: Checks) -> None:
    """Every check raised InheritedHandleError, saying what to do instead."""
    for name, _check in checks:
        outcome = reports[name]
        assert outcome.startswith("InheritedHandleError: "), f"{name}: {outcome}"
        assert "os.fork()" in outcome, outcome
        assert "Export it and import the export in this process" in outcome, outcome


class Held:
    """A thread inside ``function`` on an owner, held before the provider until released."""

    def __init__(self, wrapped: Wrapped, function: str, call: Callable[[], Any]) -> None:
        self.hold = wrapped.hold(function)
        self.result: list[Any] = []
        self.thread = threading.Thread(target=lambda: self.result.append(call()), daemon=True)
        self.thread.start()
        self.hold.wait_entered()

    def finish(self) -> Any:
        self.hold.release()
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive()
        assert not self.hold.timed_out
        return self.result[0]


@pytest.fixture(params=["sspi_fake", "sspi_rs"])
def wrapped(request: pytest.FixtureRequest) -> Wrapped:
    """The provider (FakeSspi, sspi-rs), wrapped and installed for the test."""
    return Wrapped(request.getfixturevalue(request.param)).install()


def test_a_child_forked_during_a_call_refuses_every_call_and_frees_nothing(
    wrapped: Wrapped,
) -> None:
    with ExitStack() as stack:
        creds = stack.enter_context(Credentials.acquire("NTLM", "outbound", ALICE))
        client, server = sspi_import.loopback("NTLM", ALICE)
        stack.enter_context(client)
        stack.enter_context(server)
        unstarted = stack.enter_context(SecurityContext.initiator(creds, "host/server"))
        started = stack.enter_context(SecurityContext.initiator(creds, "host/server"))
        first_token = started.step(None)
        server.sizes()  # cached: answered without a call, and still refused in the child
        sealed = client.encrypt(b"before the fork")
        wrapped_message = client.wrap(b"before the fork")
        checks: Checks = [
            ("encrypt", lambda: client.encrypt(b"same keystream?")),
            ("decrypt", lambda: server.decrypt(sealed)),
            ("wrap", lambda: client.wrap(b"same keystream?")),
            ("unwrap", lambda: server.unwrap(wrapped_message)),
            ("sign", lambda: client.sign(b"data")),
            ("wrap_iov", lambda: client.wrap_iov([IovBuffer(BufferType.DATA, bytearray(4))])),
            ("export", server.export),
            ("step, not started", lambda: unstarted.step(None)),
            ("step, in handshake", lambda: started.step(first_token)),
            ("impersonate", lambda: server.impersonate().__enter__()),
            ("user_name", lambda: server.user_name),
            ("sizes", server.sizes),
            ("session_key", server.session_key),
            ("package_name", lambda: server.package_name),
            ("lifespan", lambda: server.lifespan),
            ("detach", server.detach),
            ("detach credentials", creds.detach),
        ]
        held = Held(wrapped, "EncryptMessage", lambda: server.encrypt(b"in flight"))
        closes: Checks = [
            ("close the context in a call", server.close),
            ("close the others", lambda: [o.close() for o in (client, unstarted, started, creds)]),
        ]
        reports = in_child([*checks, *closes], wrapped)
        _refused(reports, checks)
        for name, _close in closes:
            assert reports[name] == "returned"
        assert reports["provider calls"] == "{}"
        # The parent goes on: the held call completes, the contexts work, and close.
        in_flight = held.finish()
        assert client.decrypt(in_flight) == b"in flight"
        assert server.decrypt(sealed) == b"before the fork"
        assert server.user_name == "EXAMPLE\\alice"
        deletes = wrapped.count("DeleteSecurityContext")
    assert wrapped.count("DeleteSecurityContext") == deletes + 3  # client, server, started
    assert wrapped.errors == []


def test_a_child_forked_inside_an_impersonation_ends_the_block_without_hanging(
    sspi_fake: FakeSspi,
) -> None:
    """The forking thread holds a pin (it impersonates) while another thread holds the
    context's lock: in the child, the block's end refuses the revert and drops the pin
    without taking the inherited lock."""
    wrapped = Wrapped(sspi_fake).install()
    client, server = sspi_import.loopback("NTLM")
    with client, server:
        block = server.impersonate()
        block.__enter__()
        held = Held(wrapped, "EncryptMessage", lambda: server.encrypt(b"in flight"))
        checks: Checks = [("end the block", lambda: block.__exit__(None, None, None))]
        reports = in_child([*checks, ("close", server.close)], wrapped)
        _refused(reports, checks)
        assert reports["close"] == "returned"
        assert reports["provider calls"] == "{}"
        assert sspi_fake.impersonating == "EXAMPLE\\alice"  # the parent's block goes on
        held.finish()
        block.__exit__(None, None, None)
        assert sspi_fake.impersonating is None


def test_a_child_refuses_the_parents_export_token(sspi_fake: FakeSspi) -> None:
    """FakeSspi (sspi-rs cannot export): the token of an export made before the fork is
    not duplicated, imported, detached or closed in the child, while another thread of the
    parent duplicates it."""
    wrapped = Wrapped(sspi_fake).install()
    client, server = sspi_import.loopback("NTLM")
    with client, server, server.export() as exported:
        checks: Checks = [
            ("for_process", lambda: exported.for_process(os.getpid())),
            ("for_any_process", lambda: exported.for_any_process().to_bytes()),
            ("from_exported", lambda: ImportedContext.from_exported(exported)),
            ("detach", exported.detach),
        ]
        held = Held(wrapped, "DuplicateHandle", lambda: exported.for_process(os.getpid()))
        reports = in_child([*checks, ("close", exported.close)], wrapped)
        _refused(reports, checks)
        assert reports["close"] == "returned"
        assert reports["provider calls"] == "{}"
        with held.finish() as copy, ImportedContext.from_exported(copy) as imported:
            assert imported.user_name == "EXAMPLE\\alice"
    assert not sspi_fake.misuses


def _worker(server: SecurityContext, answers: Any) -> None:
    """A multiprocessing worker (fork start method) that was handed the parent's context."""
    try:
        server.encrypt(b"from the worker")
        answers.send("encrypted")
    except InheritedHandleError as exc:
        answers.send(f"refused: {exc}")
    server.close()
    answers.send("closed")


def test_a_multiprocessing_fork_worker_refuses_the_parents_context(wrapped: Wrapped) -> None:
    if sys.platform == "win32":  # pragma: no cover - deselected there (windows_deselect.txt)
        raise AssertionError("Linux only by design: Windows has no fork")
    client, server = sspi_import.loopback("NTLM", ALICE)
    with client, server:
        held = Held(wrapped, "EncryptMessage", lambda: server.encrypt(b"in flight"))
        context = multiprocessing.get_context("fork")
        receive, send = context.Pipe(duplex=False)
        worker = context.Process(target=_worker, args=(server, send))
        worker.start()
        try:
            answers: list[str] = []
            for _ in range(2):
                assert receive.poll(TIMEOUT), f"the worker hung after {answers}"
                answers.append(receive.recv())
        finally:
            worker.join(TIMEOUT)
            if worker.is_alive():  # pragma: no cover - only when it hung
                worker.kill()
        assert answers[0].startswith("refused: this security context was made before os.fork()")
        assert answers[1] == "closed"
        assert worker.exitcode == 0
        assert client.decrypt(held.finish()) == b"in flight"


def test_owners_made_in_the_child_are_the_childs_own(wrapped: Wrapped) -> None:
    """What the child makes after the fork works normally, and is freed there."""
    client, server = sspi_import.loopback("NTLM", ALICE)
    with client, server:
        held = Held(wrapped, "EncryptMessage", lambda: server.encrypt(b"in flight"))

        def new_pair() -> None:
            before = wrapped.count("DeleteSecurityContext")
            a, b = sspi_import.loopback("NTLM", ALICE)
            with a, b:
                assert b.decrypt(a.encrypt(b"in the child")) == b"in the child"
                assert b.user_name == "EXAMPLE\\alice"
            assert wrapped.count("DeleteSecurityContext") == before + 2

        reports = in_child([("a new pair", new_pair)], wrapped)
        assert reports["a new pair"] == "returned"
        assert client.decrypt(held.finish()) == b"in flight"
