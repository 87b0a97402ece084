"""Races ordered by events, not by luck: concurrent steps, and a token closed while in use.

Each race is set up with ``wrapped.Wrapped``, which holds one provider call in the
middle (before it reaches the provider) until the test lets it go, and, where a thread
must be seen waiting for an owner's lock, with ``LockProbe``, which stands in for the
lock and says which thread arrived at it. Nothing waits on a sleep; every wait is
bounded by ``wrapped.TIMEOUT``.

- Concurrent ``step()`` on one handshake (issue 19, item 8): two threads step with the
  same input at the same moment. Exactly one step reaches the provider; the other gets
  a ``ValueError`` saying what happened, without reaching it; the handshake then
  completes and protects messages. Every step of an NTLM handshake is raced, in each
  order the two threads can arrive in, on FakeSspi and on sspi-rs.
- The export's token is never used without its owner's protection (item 6):
  ``for_process`` (``DuplicateHandle``) and ``ImportedContext.from_exported``
  (``ImportSecurityContextW``), held inside the provider while another thread closes
  the ``ExportedContext``: the close is deferred past the use, and the provider sees
  no closed handle used.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import sspi_import
from sspi_import import Credentials, ImportedContext, SecurityContext
from sspi_import._handle import OwnedHandle, Pin
from sspi_import.testing import FakeSspi
from wrapped import TIMEOUT, Wrapped

ALICE = sspi_import.Identity("alice", "EXAMPLE", "p4ssw0rd")
HANDSHAKE = ("InitializeSecurityContextW", "AcceptSecurityContext")
STEPS = range(4)  # NTLM: client, server, client, server
ROUNDS = {"at-once": 12, "while-in-the-provider": 3, "both-read-first": 3}
REFUSED = "one at a time"


@pytest.fixture(params=["sspi_fake", "sspi_rs"])
def wrapped(request: pytest.FixtureRequest) -> Wrapped:
    """The provider (FakeSspi, sspi-rs), wrapped and installed for the test."""
    return Wrapped(request.getfixturevalue(request.param)).install()


class LockProbe:
    """Stands in for an owner's lock: records which threads arrived to take it.

    ``gate``, when set, is a barrier every thread passes once before its first wait
    for the lock: the threads then all arrive at the lock before any of them takes it.
    """

    def __init__(self, lock: Any, gate: threading.Barrier | None = None) -> None:
        self.lock = lock
        self.gate = gate
        self.arrived: dict[int, threading.Event] = {}
        self._passed: set[int] = set()

    def event(self, ident: int) -> threading.Event:
        return self.arrived.setdefault(ident, threading.Event())

    def __enter__(self) -> Any:
        me = threading.get_ident()
        self.event(me).set()
        if self.gate is not None and me not in self._passed:
            self._passed.add(me)
            self.gate.wait(TIMEOUT)
        return self.lock.__enter__()

    def __exit__(self, *exc_info: object) -> Any:
        return self.lock.__exit__(*exc_info)


class Racer(threading.Thread):
    """A thread that makes one ``step()``, after a barrier when given one.

    With a ``probe``, its arrival event is set when the step ends too: "tried" is then
    "refused (or done), or waiting for the context's lock", whichever comes first.
    """

    def __init__(
        self,
        context: SecurityContext,
        token: bytes | None,
        start: threading.Barrier | None = None,
        probe: LockProbe | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.context = context
        self.token = token
        self.start_line = start
        self.probe = probe
        self.result: bytes | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            if self.start_line is not None:
                self.start_line.wait(TIMEOUT)
            self.result = self.context.step(self.token)
        except BaseException as exc:  # judged by the test
            self.error = exc
        finally:
            self.done.set()
            if self.probe is not None:
                self.probe.event(threading.get_ident()).set()

    def tried(self) -> threading.Event:
        assert self.probe is not None
        return self.probe.event(self.ident or 0)


def _handshake(identity: sspi_import.Identity) -> tuple[list[SecurityContext], list[Any]]:
    client_creds = Credentials.acquire("NTLM", "outbound", identity)
    server_creds = Credentials.acquire("NTLM", "inbound", identity)
    client = SecurityContext.initiator(client_creds, "host/server")
    server = SecurityContext.acceptor(server_creds)
    return [client, server, client, server], [client, server, client_creds, server_creds]


def _race(wrapped: Wrapped, step: int, how: str) -> None:
    """One round: steps before ``step`` made, then ``step`` made by two threads at once."""
    sides, owned = _handshake(ALICE)
    try:
        token: bytes | None = None
        for side in sides[:step]:
            token = side.step(token)
        context = sides[step]
        function = HANDSHAKE[step % 2]
        made = wrapped.count(function)
        hold = wrapped.hold(function)
        gate = threading.Barrier(2) if how == "both-read-first" else None
        probe = LockProbe(context._lock, gate)
        context._lock = probe  # type: ignore[assignment]  # restored below
        start = threading.Barrier(2) if how == "at-once" else None
        racers = [Racer(context, token, start, probe), Racer(context, token, start, probe)]
        racers[0].start()
        if how == "while-in-the-provider":
            hold.wait_entered()  # the first is inside the provider, holding the lock
        racers[1].start()
        hold.wait_entered()
        first = next(r for r in racers if r.ident == hold.thread)
        second = racers[1 - racers.index(first)]
        tried = second.tried().wait(TIMEOUT)
        hold.release()
        assert tried, "the second step neither ended nor reached the context's lock"
        for racer in racers:
            assert racer.done.wait(TIMEOUT), "a step hung"
        context._lock = probe.lock
        assert not hold.timed_out
        assert first.error is None, first.error
        assert isinstance(second.error, ValueError), second.error
        assert REFUSED in str(second.error)
        assert "not made" in str(second.error)
        assert wrapped.count(function) == made + 1, "the refused step reached the provider"
        token = first.result
        for side in sides[step + 1 :]:
            if token is None:
                break
            token = side.step(token)
        client, server = sides[0], sides[1]
        assert client.complete
        assert server.complete
        assert server.decrypt(client.encrypt(b"after the race")) == b"after the race"
        assert client.unwrap(server.wrap(b"and back")) == b"and back"
    finally:
        for item in owned:
            item.close()


@pytest.mark.parametrize("how", list(ROUNDS))
@pytest.mark.parametrize("step", STEPS, ids=["client-1", "server-1", "client-2", "server-2"])
def test_concurrent_steps_one_reaches_the_provider(wrapped: Wrapped, step: int, how: str) -> None:
    """``at-once``: both released by a barrier, in either order; ``while-in-the-provider``:
    the second starts once the first is inside the provider; ``both-read-first``: both
    reach the context's lock before either takes it (both saw the handshake unstarted)."""
    for _ in range(ROUNDS[how]):
        _race(wrapped, step, how)
    assert wrapped.errors == []


def test_a_step_after_an_overtaken_one_goes_on(sspi_fake: FakeSspi) -> None:
    """The refused thread's next step, with the winner's token, is an ordinary step."""
    wrapped = Wrapped(sspi_fake).install()
    sides, owned = _handshake(ALICE)
    try:
        client, server = sides[0], sides[1]
        hold = wrapped.hold("InitializeSecurityContextW")
        winner = Racer(client, None)
        winner.start()
        hold.wait_entered()
        with pytest.raises(ValueError, match=REFUSED):
            client.step(None)  # refused at once: the winner is still inside the provider
        hold.release()
        assert winner.done.wait(TIMEOUT)
        assert winner.error is None
        challenge = server.step(winner.result)
        assert challenge is not None
        server.step(client.step(challenge))
        assert client.complete
        assert server.complete
        assert wrapped.count("InitializeSecurityContextW") == 2
    finally:
        for item in owned:
            item.close()


# The export's token, used while another thread closes it ---------------------------


@pytest.fixture
def exported(sspi_fake: FakeSspi) -> Iterator[tuple[Wrapped, sspi_import.ExportedContext]]:
    """An export with a token (an acceptor's, on FakeSspi: sspi-rs cannot export)."""
    wrapped = Wrapped(sspi_fake).install()
    client, server = sspi_import.loopback("NTLM")
    with client, server:
        export = server.export()
        assert export.token is not None
        with export:
            yield wrapped, export


def _close_during(
    wrapped: Wrapped,
    export: sspi_import.ExportedContext,
    function: str,
    use: Callable[[], Any],
) -> tuple[Any, list[str]]:
    """``use()`` in a thread, held inside ``function`` while this thread closes ``export``.

    Returns what ``use`` returned and the order in which the provider saw ``function``
    and the token's ``CloseHandle``.
    """
    token = export.token
    order: list[str] = []
    wrapped.before(function, lambda *args: order.append(function))
    wrapped.before(
        "CloseHandle",
        lambda handle: order.append("CloseHandle(token)") if handle == token else None,
    )
    hold = wrapped.hold(function)
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(use())
        except BaseException as exc:  # judged below
            outcome.append(exc)

    user = threading.Thread(target=run, daemon=True)
    user.start()
    try:
        hold.wait_entered()
        closer = threading.Thread(target=export.close, daemon=True)
        closer.start()
        closer.join(TIMEOUT)  # it returns: the close is deferred past the use
        assert not closer.is_alive(), "close() hung while the token was in use"
        assert export.closed
        assert order == [function], "the token was closed while the provider was using it"
    finally:
        hold.release()
        user.join(TIMEOUT)
    assert not user.is_alive()
    assert not hold.timed_out
    assert not isinstance(outcome[0], BaseException), outcome[0]
    return outcome[0], order


@pytest.mark.parametrize("to", ["this process", "another process"])
def test_for_process_duplicates_the_token_before_a_racing_close(
    sspi_fake: FakeSspi, exported: tuple[Wrapped, sspi_import.ExportedContext], to: str
) -> None:
    wrapped, export = exported
    # Another process of our own: a parent may not be a process here (under Wine, a
    # Windows program started from a Linux shell has parent pid 0).
    other = None
    if to == "another process":
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        pid = os.getpid() if other is None else other.pid
        copy, order = _close_during(
            wrapped, export, "DuplicateHandle", lambda: export.for_process(pid)
        )
    finally:
        if other is not None:
            other.kill()
            other.wait()
    assert order == ["DuplicateHandle", "CloseHandle(token)"]
    assert copy.token is not None  # a working duplicate of a token that was still open
    copy.close()
    assert not sspi_fake.misuses


def test_from_exported_imports_with_the_token_before_a_racing_close(
    sspi_fake: FakeSspi, exported: tuple[Wrapped, sspi_import.ExportedContext]
) -> None:
    wrapped, export = exported

    def use() -> ImportedContext:
        return ImportedContext.from_exported(export)

    imported, order = _close_during(wrapped, export, "ImportSecurityContextW", use)
    assert order == ["ImportSecurityContextW", "CloseHandle(token)"]
    with imported, imported.impersonate():  # imported with its token: it impersonates
        assert sspi_fake.impersonating == "EXAMPLE\\alice"
    assert not sspi_fake.misuses


def test_the_token_tests_see_an_unprotected_use(
    sspi_fake: FakeSspi,
    exported: tuple[Wrapped, sspi_import.ExportedContext],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the pin (a borrowed handle not counted), the close frees the token under
    the duplication: the test above fails, and the provider sees a closed handle used."""
    wrapped, export = exported

    def unprotected(self: OwnedHandle[Any]) -> tuple[Any, Pin]:
        return self._handle, Pin()

    monkeypatch.setattr(OwnedHandle, "_pin", unprotected)
    with pytest.raises(AssertionError, match="closed while the provider was using it"):
        _close_during(wrapped, export, "DuplicateHandle", lambda: export.for_process(os.getpid()))
    monkeypatch.undo()
    assert [(m.function, m.kind) for m in sspi_fake.misuses] == [
        ("DuplicateHandle", "closed handle")
    ]
    sspi_fake.misuses.clear()
