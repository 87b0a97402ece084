"""Calls on one context from many threads while another thread closes it: bounded stress.

The guarantee under test (``sspi_import._handle``): every SSPI call on a handle holds the
owner's lock, so ``close()`` waits for a running call and a call after it raises the
"closed" ``ValueError`` without reaching the provider. Before this, sspi-rs crashed
(Rust panic, heap corruption, segfault) or hung when a context was deleted under a
running call, and FakeSspi saw deleted handles. Each run is a few tenths of a second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import sspi_import
from sspi_import import SecurityContext
from sspi_import.testing import FakeSspi

ALICE = sspi_import.Identity("alice", "EXAMPLE", "p4ssw0rd")
ROUNDS = 6
WORKERS = 4
RUN_FOR = 0.15  # seconds each round lets the workers run before the close


@pytest.fixture(params=["sspi_rs", "sspi_fake"])
def provider(request: pytest.FixtureRequest) -> str:
    request.getfixturevalue(request.param)
    name: str = request.param
    return name


def _closed(exc: BaseException) -> bool:
    return isinstance(exc, ValueError) and "closed" in str(exc)


class Workers:
    """Threads that call ``action`` until it raises; every exception is kept."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []
        self.calls = 0
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self, action: Callable[[], object], count: int = 1) -> None:
        def run() -> None:
            while True:
                try:
                    action()
                except BaseException as exc:  # judged by the test
                    with self._lock:
                        self.errors.append(exc)
                    return
                with self._lock:
                    self.calls += 1

        for _ in range(count):
            thread = threading.Thread(target=run, daemon=True)
            self._threads.append(thread)
            thread.start()

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=30)
            assert not thread.is_alive(), "a worker hung after the context was closed"


def _exporting(server: SecurityContext, provider: str) -> Callable[[], object]:
    def export() -> None:
        try:
            server.export().close()
        except sspi_import.UnsupportedFunctionError:
            if provider != "sspi_rs":  # sspi-rs has no export: the call still ran, locked
                raise

    return export


def _racing_round(provider: str) -> Workers:
    identity = ALICE if provider == "sspi_rs" else None
    client, server = sspi_import.loopback("NTLM", identity)
    with client:
        queue = iter([client.encrypt(b"message %d" % i) for i in range(300)])

        def decrypt_next() -> None:
            message = next(queue, None)
            if message is None:  # all decrypted: keep calling on the context
                assert server.user_name
            else:
                assert server.decrypt(message).startswith(b"message ")

        def query() -> None:
            server.sizes()
            assert server.user_name
            if provider != "sspi_rs":  # sspi-rs answers no lifespan
                server.lifespan  # noqa: B018

        workers = Workers()
        # Decrypts in order on one thread (NTLM's receive sequence); encrypts, queries
        # and exports on the same context from the others (its send state moves).
        workers.start(decrypt_next)
        workers.start(lambda: server.encrypt(b"x" * 64), WORKERS)
        workers.start(query)
        workers.start(_exporting(server, provider))
        time.sleep(RUN_FOR)
        server.close()
        workers.join()
    return workers


def test_calls_racing_close_see_only_the_closed_error(provider: str) -> None:
    for _ in range(ROUNDS):
        workers = _racing_round(provider)
        unexpected = [e for e in workers.errors if not _closed(e)]
        assert not unexpected, unexpected
        assert len(workers.errors) == WORKERS + 3  # every worker ended on "closed"
        assert workers.calls > 0


def test_close_from_many_threads_during_calls_deletes_once(sspi_fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client:
        workers = Workers()
        workers.start(lambda: server.encrypt(b"y" * 32), WORKERS)
        time.sleep(0.05)
        closers = [threading.Thread(target=server.close) for _ in range(8)]
        for thread in closers:
            thread.start()
        for thread in closers:
            thread.join()
        workers.join()
    assert all(_closed(e) for e in workers.errors), workers.errors
    assert sspi_fake.calls("DeleteSecurityContext") == 2  # server once, then client
    assert not sspi_fake.misuses


def _consuming_round() -> Workers:
    client, server = sspi_import.loopback("NTLM")
    with client:
        workers = Workers()
        workers.start(lambda: server.encrypt(b"z" * 16), WORKERS)
        time.sleep(0.02)
        results: list[Any] = []

        def consume() -> None:
            try:
                results.append(server.export(sspi_import.ExportFlags.DELETE_OLD))
            except ValueError as exc:
                results.append(exc)

        racer = threading.Thread(target=consume)
        racer.start()
        server.close()
        racer.join()
        workers.join()
        for result in results:
            if isinstance(result, sspi_import.ExportedContext):
                result.close()
            else:
                assert _closed(result)
    return workers


def test_consuming_export_racing_calls_and_close(sspi_fake: FakeSspi) -> None:
    for _ in range(ROUNDS):
        workers = _consuming_round()
        assert all(_closed(e) for e in workers.errors), workers.errors
    assert not sspi_fake.misuses


def _shared_credentials_round(identity: sspi_import.Identity | None) -> None:
    client_creds = sspi_import.Credentials.acquire("NTLM", "outbound", identity)
    server_creds = sspi_import.Credentials.acquire("NTLM", "inbound", identity)

    def handshake() -> None:
        client = SecurityContext.initiator(client_creds, "host/x")
        server = SecurityContext.acceptor(server_creds)
        with client, server:
            token = client.step(None)
            while token is not None and not (client.complete and server.complete):
                token = server.step(token)
                if token is not None:
                    token = client.step(token)

    workers = Workers()
    workers.start(handshake, WORKERS)
    time.sleep(RUN_FOR / 3)
    client_creds.close()  # freed after the steps using it, never under one
    server_creds.close()
    workers.join()
    unexpected = [e for e in workers.errors if not _closed(e)]
    assert not unexpected, unexpected
    assert client_creds.closed
    assert server_creds.closed


def test_credentials_closed_while_handshakes_step_on_them(provider: str) -> None:
    identity = ALICE if provider == "sspi_rs" else None
    for _ in range(ROUNDS):
        _shared_credentials_round(identity)
