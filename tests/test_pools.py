"""Worker pools (issue 22 §1): a context handed to ``ProcessPoolExecutor`` and ``Pool`` tasks.

A pool gives no worker pid at submit time, so the copy is ``for_any_process()``: the
worker pulls the token from the exporter where it imports. Here on the simulated
provider, in every start method the OS has (Windows has only ``spawn``), with
``sspi_import.testing.install_fake`` as the pool's initializer. What is held:

- receiving a copy never fails (a pool's unpickler failing breaks the pool, and the
  reason lands on the worker's stderr); every failure of the pull reaches the caller
  through the task's result, with its own message: the export closed too early, the
  exporter gone, a worker with no provider, a worker that may not open the exporter;
- the exporter may close its export in the task's done callback;
- a copy received and never used owns nothing and warns about nothing;
- under ``fork``, what a worker inherited refuses use (``InheritedHandleError``).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import multiprocessing.pool
import os
import pickle
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import pool_tasks
import sspi_import
from sspi_import import ExportedContext, ExportFlags, ImportedContext, SecurityContext
from sspi_import.testing import FakeSspi, SspiFunction
from wrapped import at_once

MACHINE = "FAKEHOST"  # the sspi_fake fixture's, and install_fake's default
TIMEOUT = 60
METHODS = ["spawn", "forkserver", "fork"]
KINDS = ["executor", "pool"]

# Forking a process that runs threads warns (Python 3.12+): pytest's own threads, and
# the pools' own, are there. What a forked worker inherits is what the fork test checks.
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*use of fork\\(\\) may lead to deadlocks:DeprecationWarning"
)


def _context(method: str) -> Any:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"{sys.platform} has no {method!r} start method: Windows has only spawn")
    return multiprocessing.get_context(method)


class Runner:
    """One pool of either kind, one worker: ``submit`` returns a future-like result."""

    def __init__(self, kind: str, method: str, *, initializer: bool = True) -> None:
        self.kind = kind
        start: Callable[..., object] | None = pool_tasks.start if initializer else None
        args: tuple[Any, ...] = (MACHINE,) if initializer else ()
        context = _context(method)
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None
        self._pool: multiprocessing.pool.Pool | None = None
        if kind == "executor":
            self._executor = concurrent.futures.ProcessPoolExecutor(
                1, mp_context=context, initializer=start, initargs=args
            )
        else:
            self._pool = context.Pool(1, initializer=start, initargs=args)

    def run(
        self, task: Callable[..., Any], *args: Any, done: Callable[[], object] | None = None
    ) -> Any:
        """Run ``task(*args)`` in the worker; ``done()`` runs as the pool reports it done."""
        finished = threading.Event()

        def callback(_: object) -> None:
            if done is not None:
                done()
            finished.set()

        try:
            if self._executor is not None:
                future = self._executor.submit(task, *args)
                future.add_done_callback(callback)
                return future.result(TIMEOUT)
            assert self._pool is not None
            result = self._pool.apply_async(task, args, callback=callback, error_callback=callback)
            return result.get(TIMEOUT)
        finally:
            assert finished.wait(TIMEOUT), "the done callback did not run"

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        if self._pool is not None:
            self._pool.close()
            self._pool.join()


@contextmanager
def running(kind: str, method: str, *, initializer: bool = True) -> Iterator[Runner]:
    runner = Runner(kind, method, initializer=initializer)
    try:
        yield runner
    finally:
        runner.close()


def _established() -> tuple[SecurityContext, SecurityContext]:
    return sspi_import.loopback("NTLM")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", KINDS)
def test_the_recipe_in_every_start_method(sspi_fake: FakeSspi, kind: str, method: str) -> None:
    client, server = _established()
    with client, running(kind, method) as pool:
        worker = pool.run(pool_tasks.pid)
        assert worker != os.getpid()

        # A copy received and never used: nothing pulled, owned or warned about.
        with sspi_import.export_context(server) as exported:
            closed, shown, pulls, warned = pool.run(
                pool_tasks.receive_only, exported.for_any_process()
            )
        assert (closed, pulls, warned) == (False, 0, [])
        assert f"token to pull from process {os.getpid()}" in shown

        # The recipe: the exporter closes its export when the pool reports the task done.
        exported = sspi_import.export_context(server, ExportFlags.DELETE_OLD)
        assert server.closed
        reply, signature, sealed, impersonated = pool.run(
            pool_tasks.serve, exported.for_any_process(), done=exported.close
        )
        assert exported.closed  # closed by the done callback
        assert reply == f"EXAMPLE\\alice in {worker}".encode()
        assert impersonated == "EXAMPLE\\alice"  # the pulled token came along
        client.verify(reply, signature)
        assert client.decrypt(sealed) == reply

        # Closed too early: the worker's import says so, through the task's result.
        again_client, again_server = _established()
        with again_client, again_server, again_server.export() as early:
            payload = early.for_any_process().to_bytes()
        assert early.closed
        with pytest.raises(OSError, match=r"its handle \S+ is not open there any more") as info:
            pool.run(pool_tasks.serve_bytes, payload)
        message = str(info.value)
        assert f"cannot pull the token from the exporting process {os.getpid()}" in message
        assert "future.add_done_callback(lambda _: exported.close())" in message

        # A worker that may not open the exporter (another user's): its own message.
        if sys.platform != "win32":  # simulated with os.kill, which Windows lacks
            third_client, third_server = _established()
            with (
                third_client,
                third_server,
                third_server.export() as denied,
                pytest.raises(PermissionError, match="another user than the exporter"),
            ):
                pool.run(pool_tasks.serve_as_another_user, denied.for_any_process())

        # The pool survived every failure: the same worker answers.
        assert pool.run(pool_tasks.pid) == worker
    sspi_fake.assert_no_leaks()


@pytest.mark.parametrize(("kind", "method"), [("executor", "spawn"), ("pool", "forkserver")])
def test_a_worker_without_a_provider_says_how_to_give_it_one(
    sspi_fake: FakeSspi, kind: str, method: str
) -> None:
    client, server = _established()
    with (
        client,
        server,
        server.export() as exported,
        running(kind, method, initializer=False) as pool,
    ):
        with pytest.raises(sspi_import.SspiUnavailableError) as info:
            pool.run(pool_tasks.serve, exported.for_any_process())
        message = str(info.value)
        assert f"cannot pull the exported context's token from process {os.getpid()}" in message
        assert "initializer=sspi_import.testing.install_fake" in message
        assert pool.run(pool_tasks.pid) != os.getpid()  # the pool still works


def _export_elsewhere(connection: Any) -> None:
    """Runs in a process that exports, sends the pull copy and exits."""
    with FakeSspi(machine=MACHINE):
        client, server = sspi_import.loopback("NTLM")
        with client, server, server.export() as exported:
            connection.send(exported.for_any_process().to_bytes())
            connection.recv()  # keep the export open until told


@pytest.mark.skipif(sys.platform == "win32", reason="the fake checks pids with os.kill(pid, 0)")
def test_an_exporter_that_exited_is_named(sspi_fake: FakeSspi) -> None:
    spawn = multiprocessing.get_context("spawn")
    here, there = spawn.Pipe()
    exporter = spawn.Process(target=_export_elsewhere, args=(there,))
    exporter.start()
    there.close()
    assert here.poll(TIMEOUT)
    payload = here.recv()
    with running("executor", "spawn") as pool:
        assert pool.run(pool_tasks.serve_bytes, payload)[3] == "EXAMPLE\\alice"  # alive: fine
        here.send("exit")
        exporter.join(TIMEOUT)
        assert exporter.exitcode == 0
        with pytest.raises(ProcessLookupError) as info:
            pool.run(pool_tasks.serve_bytes, payload)
    message = str(info.value)
    assert f"cannot pull the token from the exporting process {exporter.pid}" in message
    assert "does not exist any more (it has exited)" in message
    assert "The exporter must stay alive" in message


@pytest.mark.parametrize("kind", KINDS)
def test_what_a_forked_worker_inherited_is_refused(sspi_fake: FakeSspi, kind: str) -> None:
    client, server = _established()
    with client, server:
        pool_tasks.inherited = server
        try:
            with running(kind, "fork") as pool:
                with pytest.raises(sspi_import.InheritedHandleError, match=r"before os\.fork"):
                    pool.run(pool_tasks.use_inherited)
                # Handed over as the recipe says, the same context works there.
                with server.export() as exported:
                    reply, *_ = pool.run(
                        pool_tasks.serve, exported.for_any_process(), done=exported.close
                    )
                assert reply.startswith(b"EXAMPLE\\alice in ")
        finally:
            pool_tasks.inherited = None


# The same promises in this process (no pool): reading, pulling on use, the messages --


def _pull_payload(exported: ExportedContext) -> bytes:
    return exported.for_any_process().to_bytes()


def test_reading_a_pull_copy_makes_no_call_and_owns_nothing(sspi_fake: FakeSspi) -> None:
    client, server = _established()
    with client, server, server.export() as exported:
        payload = _pull_payload(exported)
        names: list[SspiFunction] = ["OpenProcess", "DuplicateHandle"]
        calls = {name: sspi_fake.calls(name) for name in names}
        for received in (
            ExportedContext.from_bytes(payload),
            pickle.loads(pickle.dumps(exported.for_any_process())),
        ):
            assert not received.closed
            assert sspi_fake.outstanding().tokens == 1  # the exporter's only
            del received  # never used: no finalizer, no ResourceWarning (filterwarnings=error)
        assert {n: sspi_fake.calls(n) for n in calls} == calls


def test_a_pull_copy_sent_on_unused_is_pulled_by_the_next_receiver(sspi_fake: FakeSspi) -> None:
    client, server = _established()
    with client, server, server.export() as exported:
        received = ExportedContext.from_bytes(_pull_payload(exported))
        relayed = ExportedContext.from_bytes(received.to_bytes())  # a relay sends it on
        assert sspi_fake.calls("DuplicateHandle") == 0
        with relayed, ImportedContext.from_exported(relayed) as context:
            assert context.user_name == "EXAMPLE\\alice"
        assert sspi_fake.calls("DuplicateHandle") == 1
        received.close()  # before any use: drops the pull, closes nothing
        assert received.closed
        with pytest.raises(ValueError, match="token was closed"):  # not imported without it
            ImportedContext.from_exported(received)
        assert sspi_fake.calls("DuplicateHandle") == 1


def test_a_pulled_copy_owns_its_duplicate_once(sspi_fake: FakeSspi) -> None:
    client, server = _established()
    with client, server, server.export() as exported:
        received = ExportedContext.from_bytes(_pull_payload(exported))
        value = received.token  # a use: pulled now
        assert value is not None
        assert value != exported.token
        assert received.token == value  # once
        assert sspi_fake.outstanding().tokens == 2
        with pytest.raises(TypeError, match="valid only in this process"):
            received.to_bytes()  # it owns a handle of this process now, like an original
        detached = received.detach()
        assert detached == value
        assert received.closed
        sspi_import.library.call(sspi_import.library.api(), "CloseHandle", detached)


def test_threads_racing_to_pull_one_copy_make_one_owner(sspi_fake: FakeSspi) -> None:
    client, server = _established()
    with client, server, server.export() as exported:
        received = ExportedContext.from_bytes(_pull_payload(exported))
        seen: list[int | None] = []
        at_once(lambda: seen.append(received.token))
        assert len(set(seen)) == 1
        assert seen[0] is not None
        received.close()
        assert sspi_fake.outstanding().tokens == 1  # the losers closed their duplicates
        assert sspi_fake.misuses == []


def test_closed_too_early_in_this_process_too(sspi_fake: FakeSspi) -> None:
    client, server = _established()
    with client, server:
        exported = server.export()
        payload = _pull_payload(exported)
        exported.close()
        received = ExportedContext.from_bytes(payload)  # reading still works
        with pytest.raises(OSError, match="closed its ExportedContext") as info:
            ImportedContext.from_exported(received)
        assert info.value.errno is not None
        assert sspi_fake.calls("ImportSecurityContextW") == 0
        assert sspi_fake.outstanding().tokens == 0
        # In one process the fake sees the closed handle itself, and records the misuse.
        assert [m.kind for m in sspi_fake.misuses] == ["closed handle"]
        sspi_fake.misuses.clear()


def test_a_token_another_fake_left_open_does_not_hide_a_closed_one() -> None:
    # Windows never gives an open handle's value to another handle. Each FakeSspi once
    # numbered its tokens from 1, so a token one fake still held made another fake's
    # closed token read as open to a worker's pull (the whole suite hit it).
    with FakeSspi(machine=MACHINE) as first:
        client, server = _established()
        with client, server, server.export() as kept:
            held = kept.detach()  # left open in `first`, as a leaked token would be
    try:
        with FakeSspi(machine=MACHINE) as second:
            client, server = _established()
            with client, server, server.export() as early:
                payload = early.for_any_process().to_bytes()
                assert early.token != held
            with running("executor", "spawn") as pool, pytest.raises(OSError, match="not open"):
                pool.run(pool_tasks.serve_bytes, payload)
            second.assert_no_leaks()
    finally:
        with first:
            sspi_import.library.call(sspi_import.library.api(), "CloseHandle", held)
            first.assert_no_leaks()
