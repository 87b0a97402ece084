"""An interrupt anywhere: no lock held, no pin stuck, nothing freed twice, nothing lost.

Each operation runs once per point where CPython can deliver a ``KeyboardInterrupt``
(``interrupts.Interrupter``: a function's entry, right after every call returns, a
loop's jump back), interrupted there, on the simulated provider, which counts every
handle and buffer and records every misuse (a handle freed twice, used after it was
freed). After each run, and the garbage collected, the promises are checked:

- no owner's lock is left held, and no pin is left counted;
- the provider saw no misuse (nothing freed twice, nothing used after its free);
- nothing is left outstanding beyond what the test itself still owns, except at most
  the one thing the interrupted operation was making and had not handed out yet (the
  packed buffer and token of an export, a handshake's output token, the buffer of a
  query's answer: SSPI's own memory, held by no owner in the moment between the call
  and the copy). A *handle* being made (an import, an acquisition, a handshake's first
  call) is owned from before the call that makes it, so it never leaks: its finalizer
  frees it.

The same runs with ``LineInterrupter`` (an interrupt at every line, a coarser model that
also lands where no signal can) hold the same promises. ``test_a_real_sigint_storm``
then sends real signals at random moments.
"""

from __future__ import annotations

import _thread
import gc
import os
import pathlib
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import sspi_import
from interrupts import Interrupter, LineInterrupter, every_point
from sspi_import import ExportedContext, ExportFlags, Identity, ImportedContext
from sspi_import._handle import OwnedHandle
from sspi_import.testing import FakeSspi
from stubs import Stub

ALICE = Identity("alice", "EXAMPLE", "p4ssw0rd")
KINDS = [Interrupter, LineInterrupter]
# What an interrupt left half made is freed by its finalizer, which says so with a
# ResourceWarning, and an impersonate() block an interrupt kept from starting says it
# never started: both expected here (the counts below check that everything was freed).
pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore:ctx.impersonate:RuntimeWarning"),
]


@pytest.fixture
def fake() -> Iterator[FakeSspi]:
    with FakeSspi(user="EXAMPLE\\alice") as installed:
        yield installed


def _held(lock: Any) -> bool:
    """Whether another thread would wait for ``lock`` (an RLock: this thread never would)."""
    answer: list[bool] = []

    def probe() -> None:
        taken = lock.acquire(blocking=False)
        if taken:
            lock.release()
        answer.append(not taken)

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return answer[0]


def _owners(*roots: object) -> list[OwnedHandle[Any]]:
    """The owners the test keeps across runs (and the credentials of its contexts)."""
    found: list[OwnedHandle[Any]] = []
    for root in roots:
        if isinstance(root, OwnedHandle):
            found.append(root)
            credentials = getattr(root, "_credentials", None)
            if credentials is not None:
                found.append(credentials)
        token = getattr(root, "_token", None)
        if isinstance(token, OwnedHandle):
            found.append(token)
    return found


def _checker(
    fake: FakeSspi,
    *keep: object,
    cleanup: Callable[[], object] | None = None,
    **may_leak: int,
) -> Callable[[Any], None]:
    """The promises, checked after each interrupted run against the counts before it.

    ``keep`` are the objects the test holds across runs (their owners are checked for
    a lock left held or a pin left counted; what the operation makes and drops is
    finalized). ``may_leak`` names what the operation makes and may lose to an interrupt
    before it hands it out (``buffers=1``, ``tokens=1``); everything else must be as
    before. ``cleanup`` closes what the run's setup made, before the counts.
    """
    state = {"baseline": fake.outstanding()}

    def check(interrupter: Interrupter) -> None:
        if cleanup is not None:
            cleanup()
        gc.collect()
        where = interrupter.where or "the uninterrupted run"
        for owner in _owners(*keep):
            lock = owner._lock
            assert lock is None or not _held(lock), f"{owner!r} left locked at {where}"
            assert owner._pins == 0, f"{owner!r} left pinned at {where}"
        assert not fake.misuses, f"misuse after an interrupt at {where}: {fake.misuses}"
        fake.misuses.clear()
        assert fake.impersonating is None, f"still impersonating after {where}"
        now, baseline = fake.outstanding(), state["baseline"]
        for field in ("contexts", "credentials", "buffers", "tokens", "process_handles"):
            grew = getattr(now, field) - getattr(baseline, field)
            allowed = may_leak.get(field, 0) if interrupter.fired else 0
            assert 0 <= grew <= allowed, f"{field} after an interrupt at {where}: {now}"
        state["baseline"] = now

    return check


def _run(
    operation: Callable[[], object],
    fake: FakeSspi,
    kind: type[Interrupter],
    *keep: object,
    setup: Callable[[], Callable[[], object]] | None = None,
    cleanup: Callable[[], object] | None = None,
    **may_leak: int,
) -> int:
    check = _checker(fake, *keep, cleanup=cleanup, **may_leak)
    runs = list(every_point(operation, check, kind=kind, setup=setup))
    assert runs[-1].fired is False  # the last run went to the end
    return len(runs)


@pytest.mark.parametrize("kind", KINDS)
def test_import_and_close(fake: FakeSspi, kind: type[Interrupter]) -> None:
    client, server = sspi_import.loopback("NTLM", ALICE)
    with client, server, server.export() as exported:
        blob, token = exported.blob, exported.token
        operation = lambda: ImportedContext("NTLM", blob, token).close()  # noqa: E731
        assert _run(operation, fake, kind, exported) > 10


@pytest.mark.parametrize("kind", KINDS)
def test_acquire_and_close(fake: FakeSspi, kind: type[Interrupter]) -> None:
    def operation() -> None:
        sspi_import.Credentials.acquire("NTLM", "outbound", ALICE).close()

    assert _run(operation, fake, kind) > 10


@pytest.mark.parametrize("step", range(4))
@pytest.mark.parametrize("kind", KINDS)
def test_each_handshake_step(fake: FakeSspi, kind: type[Interrupter], step: int) -> None:
    """Each step of an NTLM handshake, interrupted (the earlier ones made untraced): the
    first steps create the contexts, all pin the credentials, the last completes."""
    with (
        sspi_import.Credentials.acquire("NTLM", "outbound", ALICE) as client_creds,
        sspi_import.Credentials.acquire("NTLM", "inbound", ALICE) as server_creds,
    ):
        made: list[sspi_import.SecurityContext] = []

        def cleanup() -> None:
            for context in made:
                context.close()
            made.clear()

        def setup() -> Callable[[], object]:
            client = sspi_import.SecurityContext.initiator(client_creds, "host/x")
            server = sspi_import.SecurityContext.acceptor(server_creds)
            made.extend((client, server))
            sides = [client, server, client, server]
            token: bytes | None = None
            for side in sides[:step]:
                token = side.step(token)
            return lambda: sides[step].step(token)

        points = _run(
            lambda: None,
            fake,
            kind,
            client_creds,
            server_creds,
            setup=setup,
            cleanup=cleanup,
            buffers=1,
        )
        assert points > 10


@pytest.mark.parametrize("flags", [ExportFlags.NONE, ExportFlags.DELETE_OLD])
@pytest.mark.parametrize("kind", KINDS)
def test_export(fake: FakeSspi, kind: type[Interrupter], flags: ExportFlags) -> None:
    """A DELETE_OLD export interrupted right after SSPI deleted the source never deletes
    it again; the packed buffer and the token are freed whatever point it stopped at."""
    client, server = sspi_import.loopback("NTLM", ALICE)
    with client:

        def operation() -> None:
            source = ImportedContext.from_exported(keep)
            with source:
                source.export(flags).close()

        with server.export() as keep:
            assert _run(operation, fake, kind, keep, client, buffers=1, tokens=1) > 10
        server.close()


@pytest.mark.parametrize("kind", KINDS)
def test_messages(fake: FakeSspi, kind: type[Interrupter]) -> None:
    client, server = sspi_import.loopback("NTLM", ALICE)
    with client, server:

        def operation() -> None:
            client.encrypt(b"sealed")
            client.wrap(b"wrapped")
            client.sign(b"signed")
            sealed = bytearray(client.encrypted_size(4))
            client.encrypt_into(b"into", sealed)

        assert _run(operation, fake, kind, client, server) > 10


@pytest.mark.parametrize("method", ["encrypt", "wrap"])
def test_the_plaintext_copy_is_wiped_wherever_a_seal_stops(
    fake: FakeSspi, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """encrypt and wrap copy the plaintext into the object they return, and seal it
    there: an interrupt anywhere after the copy leaves zeros, not the plaintext, but for
    the one point Python cannot close, right as the copy is returned to them."""
    from sspi_import import _cpython, messages

    plain = b"the plaintext, to be wiped"
    made: list[bytes] = []
    real = _cpython.fresh_bytes

    def recording(head: bytes, tail: Any) -> Any:
        fresh = real(head, tail)
        assert fresh is not None  # CPython
        made.append(fresh[0])
        return fresh

    monkeypatch.setattr(messages, "fresh_bytes", recording)
    source = pathlib.Path(messages.__file__).read_text().splitlines()
    copied_at = {  # the line the copy returns to: there, the one point left open
        n for n, line in enumerate(source, 1) if "fresh = fresh_bytes(" in line
    }
    client, server = sspi_import.loopback("NTLM", ALICE)
    with client, server:
        seal = getattr(client, method)
        left: list[str] = []

        def check(interrupter: Interrupter) -> None:
            copy = made.pop() if made else None
            if not interrupter.fired:
                return
            if copy is not None and plain in copy:
                name, _, rest = interrupter.where.partition(":")
                if not (name == method and int(rest.split()[0]) in copied_at):
                    left.append(interrupter.where)

        runs = list(every_point(lambda: seal(plain), check, kind=Interrupter))
        assert len(runs) > 5
        assert not left, f"the plaintext copy was left unwiped at: {left}"


@pytest.mark.parametrize("kind", KINDS)
def test_queries_free_what_sspi_allocated(fake: FakeSspi, kind: type[Interrupter]) -> None:
    client, server = sspi_import.loopback("NTLM", ALICE)
    with client, server:

        def operation() -> None:
            assert server.user_name
            assert server.session_key()
            assert server.package_name

        assert _run(operation, fake, kind, client, server, buffers=1) > 10


@pytest.mark.parametrize("kind", KINDS)
def test_impersonation_is_always_reverted(fake: FakeSspi, kind: type[Interrupter]) -> None:
    client, server = sspi_import.loopback("NTLM", ALICE)
    with client, server:

        def operation() -> None:
            with server.impersonate():
                assert fake.impersonating == "EXAMPLE\\alice"

        assert _run(operation, fake, kind, client, server) > 5


@pytest.mark.parametrize("kind", KINDS)
def test_client_token_is_closed_once_wherever_it_stops(
    fake: FakeSspi, kind: type[Interrupter]
) -> None:
    """The token QuerySecurityContextToken writes is owned (or closed) whatever point an
    interrupt stops client_token() at: never leaked, never closed twice."""
    client, server = sspi_import.loopback("NTLM", ALICE)
    with client, server:

        def operation() -> None:
            server.client_token().close()

        assert _run(operation, fake, kind, client, server) > 10


@pytest.mark.parametrize("kind", KINDS)
def test_a_payload_for_this_process(fake: FakeSspi, kind: type[Interrupter]) -> None:
    client, server = sspi_import.loopback("NTLM", ALICE)
    with client, server, server.export() as exported:

        def operation() -> None:
            payload = exported.for_process(os.getpid()).to_bytes()
            ExportedContext.from_bytes(payload).close()

        # The duplicate being made leaks if the interrupt lands as DuplicateHandle returns.
        assert _run(operation, fake, kind, exported, client, server, tokens=1) > 10


@pytest.mark.parametrize("kind", KINDS)
def test_a_pull_copy_pulled_and_imported(fake: FakeSspi, kind: type[Interrupter]) -> None:
    client, server = sspi_import.loopback("NTLM", ALICE)
    with client, server, server.export() as exported:
        payload = exported.for_any_process().to_bytes()

        def operation() -> None:
            with (
                ExportedContext.from_bytes(payload) as received,
                ImportedContext.from_exported(received),
            ):
                pass

        # The duplicate being pulled leaks if the interrupt lands as DuplicateHandle returns.
        assert _run(operation, fake, kind, exported, client, server, tokens=1) > 10


class _Storm:
    """SIGINTs sent to the main thread at short, varying intervals while it works.

    Real signals where there are (``pthread_kill``); on Windows, ``_thread.interrupt_main``,
    which trips the same handler machinery a console Ctrl-C does. The handler raises
    ``KeyboardInterrupt`` as Python's own does, but only while ``body`` runs: a signal that
    lands in the storm's own loop (its backward jump, starting or stopping the thread) is
    counted in ``late`` instead, since a ``KeyboardInterrupt`` out of a test would stop the
    whole pytest session.
    """

    def __init__(self) -> None:
        self.sent = 0
        self.late = 0
        self.in_finalizers = 0
        self.other: list[BaseException | None] = []
        self._unraisables: list[Any] = []
        self._armed = False  # attribute stores: no signal can land in (dis)arming
        self._stop = False
        self._main = threading.get_ident()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        kill = getattr(signal, "pthread_kill", None)
        while not self._stop:
            time.sleep(0.0002 + (self.sent % 7) * 0.0001)
            if kill is not None:
                kill(self._main, signal.SIGINT)
            else:
                _thread.interrupt_main()
            self.sent += 1

    def _handler(self, signum: int, frame: types.FrameType | None) -> None:
        if self._armed:
            raise KeyboardInterrupt
        self.late += 1

    def loop(self, body: Callable[[], object], seconds: float) -> int:
        """Run ``body`` over and over for ``seconds``; return how often it was interrupted.

        A signal can also land in a finalizer the garbage collector runs meanwhile: Python
        reports that as an "unraisable" exception, which the storm counts in
        ``in_finalizers`` (its hook is a list's ``append``, which no signal can interrupt,
        where pytest's own hook, Python code, could be).
        """
        interrupted = 0
        deadline = time.monotonic() + seconds
        previous_handler = signal.signal(signal.SIGINT, self._handler)
        previous_hook = sys.unraisablehook
        # The list's own append, a C function: a signal cannot land inside the hook.
        sys.unraisablehook = self._unraisables.append
        self._thread.start()
        try:
            while time.monotonic() < deadline:
                self._armed = True
                try:
                    body()
                except KeyboardInterrupt:
                    interrupted += 1
                self._armed = False
        finally:
            self._armed = False
            self._stop = True
            self._thread.join()
            time.sleep(0.005)  # a signal sent before the join returned is handled here
            signal.signal(signal.SIGINT, previous_handler)
            sys.unraisablehook = previous_hook
        for unraisable in self._unraisables:
            if unraisable.exc_type is KeyboardInterrupt:
                self.in_finalizers += 1
            else:  # pragma: no cover - anything else is a real failure
                self.other.append(unraisable.exc_value)
        self._unraisables.clear()
        return interrupted


def test_a_real_sigint_storm_on_the_stub(stub: Stub) -> None:
    """Import, export and close in C (no Python inside the provider) under real SIGINTs.

    No double free (the stub counts every bad free and close); what is left after the
    garbage is collected is at most the export being made when each interrupt landed.
    """
    source = ImportedContext("NTLM", b"source blob")
    storm = _Storm()

    def body() -> None:
        with ImportedContext("NTLM", b"a packed context") as ctx, ctx.export() as exported:
            ImportedContext.from_exported(exported).close()

    interrupted = storm.loop(body, 1.5)
    gc.collect()
    source.close()
    assert interrupted > 10, f"only {interrupted} interrupts landed of {storm.sent} sent"
    assert storm.other == []
    assert stub.bad_frees() == 0
    assert stub.bad_closes() == 0
    # Every context freed (owned from before the call that made it), but for the ones
    # whose finalizer a signal cut short before its free.
    assert stub.live_contexts() <= storm.in_finalizers
    assert stub.live_buffers() <= interrupted  # at most the export being made, each time
    stub.reset()  # what the interrupted exports lost, so the fixture's leak check passes


def test_a_real_sigint_storm_on_sspi_rs(sspi_rs: object) -> None:
    """Handshakes and messages on sspi-rs under real SIGINTs: a double delete, or a call
    on a handle freed under it, would abort the process (sspi-rs panics); no lock or pin
    is left behind."""
    client, server = sspi_import.loopback("NTLM", ALICE)
    storm = _Storm()

    def body() -> None:
        # A fresh pair each time: a message lost to an interrupt puts a pair out of step.
        server.user_name  # noqa: B018 - a query on the kept pair, interrupted at times
        a, b = sspi_import.loopback("NTLM", ALICE)
        with a, b:
            assert b.decrypt(a.encrypt(b"message")) == b"message"
            b.unwrap(a.wrap(b"wrapped"))

    interrupted = storm.loop(body, 1.5)
    gc.collect()
    assert interrupted > 10, f"only {interrupted} interrupts landed of {storm.sent} sent"
    assert storm.other == []
    for owner in _owners(client, server):
        assert owner._lock is None or not _held(owner._lock)
        assert owner._pins == 0
    client.close()
    server.close()


def test_the_storm_test_would_see_a_stuck_lock(fake: FakeSspi) -> None:
    """The checker fails on a lock left held (so the tests above can fail)."""
    client, server = sspi_import.loopback("NTLM", ALICE)
    check = _checker(fake, server)
    assert server._lock is not None
    server._lock.acquire()
    try:
        with pytest.raises(AssertionError, match="left locked"):
            check(Interrupter(0))
    finally:
        server._lock.release()
    client.close()
    server.close()
