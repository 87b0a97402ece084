"""User code that uses the context while the library logs: no deadlock, no lock held.

Issue 19, item 1: a logging filter that tags every record with ``ctx.user_name`` waited
for ever on the context's lock, because statuses were checked (and logged) while the
lock was held. The rule now: no user code runs while an owner's lock is held.

``ReadingFilter`` is such a filter on the ``"sspi_import"`` logger at DEBUG: for every
record it reads the contexts (``user_name``, ``sizes()``, ``flags``) on the logging
thread, and again from another thread, waiting at most ``READ_TIMEOUT`` for that one.
The first read would deadlock a non-reentrant lock; the second would wait for any lock
the logging thread holds while it logs (a re-entrant one included), so it names each
record that was logged under a lock. Each operation runs in a thread with a timeout, on
FakeSspi (with ``CompleteAuthToken`` in its handshake) and sspi-rs: the handshake steps
of both sides, ``impersonate()``, the message calls, ``export()`` and ``close()``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest

import sspi_import
from sspi_import import SecurityContext, SspiError
from sspi_import._handle import OwnedHandle
from sspi_import.errors import CHECKS
from sspi_import.testing import FakeSspi
from wrapped import TIMEOUT

ALICE = sspi_import.Identity("alice", "EXAMPLE", "p4ssw0rd")
READ_TIMEOUT = 5.0  # seconds another thread may take to read a context nobody holds


class ReadingFilter(logging.Filter):
    """Reads the contexts for every record, here and from another thread (see module)."""

    def __init__(self) -> None:
        super().__init__()
        self.contexts: list[Any] = []
        self.functions: list[str] = []
        self.logged_under_a_lock: list[str] = []
        self.reads = 0
        self.read_timeout = READ_TIMEOUT
        self._busy = threading.local()  # the filter's own reads log too: not re-read

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(self._busy, "reading", False):
            return True
        function = getattr(record, "sspi_function", "?")
        self.functions.append(function)
        self._read_all()
        reader = threading.Thread(target=self._read_all, daemon=True)
        reader.start()
        # Once one record was logged under a lock, the others are named without a long wait.
        reader.join(0.2 if self.logged_under_a_lock else self.read_timeout)
        if reader.is_alive():
            self.logged_under_a_lock.append(function)
        record.sspi_user = "tagged"
        return True

    def _read_all(self) -> None:
        self._busy.reading = True
        try:
            for context in list(self.contexts):
                for read in ("user_name", "sizes", "flags"):
                    # Closed, or not answered: the read took the lock all the same.
                    with contextlib.suppress(SspiError, ValueError):
                        value = getattr(context, read)
                        if callable(value):
                            value()
                    self.reads += 1
        finally:
            self._busy.reading = False


@pytest.fixture
def reading() -> Iterator[ReadingFilter]:
    logger = logging.getLogger("sspi_import")
    level = logger.level
    installed = ReadingFilter()
    logger.addFilter(installed)
    logger.setLevel(logging.DEBUG)
    try:
        yield installed
    finally:
        logger.removeFilter(installed)
        logger.setLevel(level)


@pytest.fixture(params=["fake", "sspi_rs"])
def provider(request: pytest.FixtureRequest) -> Iterator[str]:
    """FakeSspi with CompleteAuthToken in its handshake (as sspi-rs has), or sspi-rs."""
    if request.param == "sspi_rs":
        request.getfixturevalue("sspi_rs")
        yield "sspi_rs"
        return
    with FakeSspi(complete_needed=True) as fake:
        yield "fake"
    assert not fake.misuses
    fake.assert_no_leaks()


def _in_thread(operation: Callable[[], object]) -> None:
    """Run ``operation`` in a thread; fail if it does not end within ``TIMEOUT``."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            operation()
        except BaseException as exc:  # raised here, on the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(TIMEOUT)
    assert not thread.is_alive(), "the operation deadlocked while a filter read the context"
    if errors:
        raise errors[0]


def _unsupported_on_sspi_rs(provider: str, operation: Callable[[], object]) -> None:
    """sspi-rs answers SEC_E_UNSUPPORTED_FUNCTION (still one locked call, and a record)."""
    if provider == "sspi_rs":
        with pytest.raises(sspi_import.UnsupportedFunctionError):
            _in_thread(operation)
    else:
        _in_thread(operation)


def test_a_filter_reading_the_context_deadlocks_nothing(
    provider: str, reading: ReadingFilter
) -> None:
    client_creds = sspi_import.Credentials.acquire("NTLM", "outbound", ALICE)
    server_creds = sspi_import.Credentials.acquire("NTLM", "inbound", ALICE)
    client = SecurityContext.initiator(client_creds, "host/server")
    server = SecurityContext.acceptor(server_creds)
    reading.contexts += [client, server]
    with client_creds, server_creds, client, server:
        token: list[bytes | None] = [None]

        def step(side: SecurityContext) -> None:
            token[0] = side.step(token[0])

        for side in (client, server, client, server):  # both sides; CompleteAuthToken last
            _in_thread(partial(step, side))
        assert client.complete
        assert server.complete
        assert "CompleteAuthToken" in reading.functions
        sealed: list[bytes] = []
        _in_thread(lambda: sealed.append(client.encrypt(b"secret")))
        _in_thread(lambda: server.decrypt(sealed[0]))
        _in_thread(lambda: sealed.append(server.wrap(b"wrapped")))
        _in_thread(lambda: client.unwrap(sealed[1]))

        def impersonate() -> None:
            with server.impersonate():
                pass

        _unsupported_on_sspi_rs(provider, impersonate)
        _unsupported_on_sspi_rs(provider, lambda: server.export().close())
        _in_thread(client.close)
        assert reading.functions[-1] == "DeleteSecurityContext"
        _in_thread(server.close)
    for function in (
        "InitializeSecurityContextW",
        "AcceptSecurityContext",
        "EncryptMessage",
        "DecryptMessage",
        "ImpersonateSecurityContext",
        "ExportSecurityContext",
    ):
        assert function in reading.functions
    assert reading.logged_under_a_lock == []
    assert reading.reads > 100


def test_the_filter_sees_a_record_logged_under_the_lock(
    reading: ReadingFilter, monkeypatch: pytest.MonkeyPatch, sspi_fake: FakeSspi
) -> None:
    """The filter can fail: with the status checked (and logged) inside the lock, as it
    was, the read from another thread waits, and the record is named."""

    def check_inside(self: OwnedHandle[Any], function: str, *args: Any) -> int:
        fn = getattr(self._library(), function)
        with self._lock:  # type: ignore[union-attr]  # a live context: set up
            return CHECKS[function](fn(self._handle, *args), function)

    client, server = sspi_import.loopback("NTLM")
    with client, server:
        reading.contexts.append(server)
        reading.read_timeout = 0.5  # it will time out: no need to wait long
        monkeypatch.setattr(OwnedHandle, "_call", check_inside)
        _in_thread(lambda: server.user_name)
        monkeypatch.undo()
    assert reading.logged_under_a_lock == ["QueryContextAttributesW"]
