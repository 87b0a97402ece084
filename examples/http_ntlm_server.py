"""An HTTP server on 127.0.0.1 that authenticates each connection with NTLM.

The flow browsers, ``requests-ntlm`` and ``curl --ntlm`` speak (MS-NTHT):

1. a request without credentials gets ``401`` and ``WWW-Authenticate: NTLM``;
2. the client sends ``Authorization: NTLM <NEGOTIATE>`` and gets ``401`` with
   ``WWW-Authenticate: NTLM <CHALLENGE>``;
3. the client sends ``Authorization: NTLM <AUTHENTICATE>`` on the *same connection*
   and, once the acceptor context completes, gets the answer: the client's user name.

NTLM authenticates the connection, not the request: the server keeps one
``SecurityContext`` per connection (HTTP/1.1 keep-alive), later requests on that
connection are answered without a new handshake, and the context is closed with the
connection. A failed handshake (wrong password) is answered with ``401`` again.

On Windows (``--handoff``, the default there) the established context is exported
and handed to a ``multiprocessing`` worker process, which imports it and writes the
answer, so the process that accepted the connection never acts on the client's behalf.
``--handoff`` on a provider that cannot export and import contexts (sspi-rs, Wine's
secur32) is refused at start, with the provider's answer: the server would otherwise
drop every authenticated connection.

Why not the simulated provider, ``sspi_import.testing.FakeSspi``, off Windows? Its
handshake tokens are its own format, not NTLM messages: no real client (requests-ntlm,
``curl --ntlm``, a browser) can talk to a server on it. It is for tests in which this
library plays both sides.

Caution, off Windows: the provider is sspi-rs (bundled in the ``sspilib`` wheel), a
test peer, not an authority. Its NTLM acceptor checks only the password of its *own*
identity (the one the server's credentials were acquired with) and reports whatever
user name the client claimed: ``EVIL\\administrator`` with that password is
"authenticated" as ``EVIL\\administrator``. Never use it to protect anything.

    python examples/http_ntlm_server.py [--port 8080]
    # then: python -c "import requests, requests_ntlm; print(requests.get(
    #     'http://127.0.0.1:8080/', auth=requests_ntlm.HttpNtlmAuth('EXAMPLE\\\\alice',
    #     'Passw0rd!')).text)"
"""

from __future__ import annotations

import argparse
import base64
import binascii
import multiprocessing
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from typing import Any

import sspi_import
from sspi_import import ChannelBindings, Credentials, Identity, SecurityContext

# Off Windows, sspi-rs's acceptor needs an identity of its own: this one.
DEMO_IDENTITY_HINT = "Passw0rd!"  # a demo password, printed on purpose: try it
DEMO_IDENTITY = Identity("alice", "EXAMPLE", DEMO_IDENTITY_HINT)


def worker(conn: Connection) -> None:
    """The worker process: import each context sent to it and answer for the client."""
    with conn:
        while True:
            try:
                exported = conn.recv()
            except EOFError:
                return
            if exported is None:
                return
            with exported, sspi_import.ImportedContext.from_exported(exported) as context:
                conn.send(f"hello {context.user_name}, from worker process {os.getpid()}\n")


class HandoffUnavailableError(RuntimeError):
    """The provider cannot export or import contexts: ``--handoff`` cannot work here."""


def check_handoff(identity: Identity | None) -> None:
    """Hand one context over before serving, so a provider without export fails at start.

    An NTLM handshake of the provider with itself, then an export of the acceptor's
    context and an import of it here: what every authenticated connection will do.
    """
    try:
        client, server = sspi_import.loopback("NTLM", identity)
    except sspi_import.SspiError as exc:
        raise HandoffUnavailableError(
            f"--handoff: {sspi_import.library_description()} could not run an NTLM "
            f"handshake with itself to try a hand-off: {exc}"
        ) from exc
    with client, server:
        try:
            with server.export(sspi_import.ExportFlags.DELETE_OLD) as exported:
                sspi_import.ImportedContext.from_exported(exported).close()
        except sspi_import.SspiError as exc:
            raise HandoffUnavailableError(
                f"--handoff needs a provider that exports and imports contexts: "
                f"{sspi_import.library_description()} answers {exc.function} with "
                f"{exc.symbol} ({exc.status:#010x}). Run without --handoff (the server then "
                "answers itself); export and import are real on Windows (secur32)."
            ) from exc


class Handoff:
    """One worker process that answers for established contexts (Windows)."""

    def __init__(self) -> None:
        spawn = multiprocessing.get_context("spawn")  # a fresh interpreter, as on Windows
        self._conn, child = spawn.Pipe()
        self.process = spawn.Process(target=worker, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self._lock = threading.Lock()  # one context at a time through the pipe

    def answer(self, context: SecurityContext) -> str:
        """Export ``context`` (consumed) to the worker; return the worker's answer."""
        with self._lock, context.export(sspi_import.ExportFlags.DELETE_OLD) as exported:
            # The token is duplicated into the worker; the copy is the worker's to close.
            self._conn.send(exported.for_process(self.process))
            answer: str = self._conn.recv()
        return answer

    def close(self) -> None:
        """Stop the worker."""
        with self._lock:
            try:
                self._conn.send(None)
            finally:
                self._conn.close()
                self.process.join(30)


class NtlmServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` with the acceptor credentials and the optional hand-off."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int] = ("127.0.0.1", 0),
        identity: Identity | None = None,
        *,
        handoff: bool = False,
        channel_bindings: ChannelBindings | None = None,
    ) -> None:
        if handoff:
            check_handoff(identity)  # before anything is acquired or started
        self.credentials = Credentials.acquire("NTLM", "inbound", identity)
        self.channel_bindings = channel_bindings  # over TLS: tls_server_end_point(cert)
        self.handoff = Handoff() if handoff else None
        self.contexts_opened = 0
        self.contexts_closed = 0
        self._count = threading.Lock()
        try:
            super().__init__(address, NtlmHandler)
        except BaseException:
            self.close()
            raise

    def answer(self, context: SecurityContext) -> str:
        """The body for an authenticated client."""
        if self.handoff is not None:
            return self.handoff.answer(context)
        return f"hello {context.user_name}\n"

    def counted(self, opened: int = 0, closed: int = 0) -> None:
        """Count contexts (the test checks that every connection closed its own)."""
        with self._count:
            self.contexts_opened += opened
            self.contexts_closed += closed

    def close(self) -> None:
        """Stop the worker and free the credentials (after ``server_close``)."""
        try:
            if self.handoff is not None:
                self.handoff.close()
        finally:
            self.credentials.close()

    def server_close(self) -> None:
        """Close the listening socket, then the worker and the credentials."""
        super().server_close()
        self.close()


class NtlmHandler(BaseHTTPRequestHandler):
    """One connection: at most one ``SecurityContext``, closed with the connection."""

    protocol_version = "HTTP/1.1"  # keep-alive: NTLM authenticates the connection
    server: NtlmServer
    context: SecurityContext | None
    user_answer: str | None

    def setup(self) -> None:
        """Start the connection with no context."""
        super().setup()
        self.context = None
        self.user_answer = None

    def finish(self) -> None:
        """End the connection: its context goes with it."""
        try:
            super().finish()
        finally:
            self._close_context()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test and the demo print what matters."""

    def do_GET(self) -> None:
        """Answer an authenticated connection, or carry its handshake one step on."""
        if self.user_answer is not None:  # authenticated earlier on this connection
            self._send(200, self.user_answer)
            return
        scheme, _, data = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "ntlm" or not data.strip():
            self._close_context()
            self._send(401, "authenticate with NTLM\n", challenge="NTLM")
            return
        try:
            token = base64.b64decode(data.strip(), validate=True)
        except binascii.Error:
            self._send(400, "the Authorization header is not base64\n")
            return
        if self.context is None:
            self.context = SecurityContext.acceptor(
                self.server.credentials, channel_bindings=self.server.channel_bindings
            )
            self.server.counted(opened=1)
        try:
            reply = self.context.step(token)
        except sspi_import.SspiError as exc:  # wrong password, bad token, bad bindings
            self._close_context()
            self._send(401, f"authentication failed: {exc.symbol}\n", challenge="NTLM")
            return
        header = "NTLM" if reply is None else "NTLM " + base64.b64encode(reply).decode()
        if not self.context.complete:
            self._send(401, "", challenge=header)
            return
        self.user_answer = self.server.answer(self.context)
        self._send(200, self.user_answer, challenge=header if reply is not None else None)

    def _send(self, status: int, body: str, *, challenge: str | None = None) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        if challenge is not None:
            self.send_header("WWW-Authenticate", challenge)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _close_context(self) -> None:
        context, self.context = self.context, None
        if context is not None:
            context.close()  # a no-op for one the hand-off consumed
            self.server.counted(closed=1)


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog=(
            "Off Windows the acceptor is sspi-rs (from the sspilib wheel), which checks only "
            "the password of its own identity. Not the simulated provider "
            "(sspi_import.testing.FakeSspi): its tokens are not NTLM messages, so no real "
            "client (requests-ntlm, curl --ntlm, a browser) can talk to it."
        ),
    )
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--handoff",
        action=argparse.BooleanOptionalAction,
        default=sys.platform == "win32",
        help=(
            "answer from a worker process that imports the context (default on Windows); "
            "refused at start where the provider cannot export (sspi-rs, Wine)"
        ),
    )
    args = parser.parse_args(argv)
    identity = None
    if sys.platform != "win32":
        sspi_import.use_library(sspi_import.find_sspi_rs())
        identity = DEMO_IDENTITY
        print(
            "not Windows: the acceptor is sspi-rs, which checks only the password of its own "
            f"identity ({identity.domain}\\{identity.user}, password {DEMO_IDENTITY_HINT}) "
            "and reports whatever user name the client claims"
        )
    try:
        server = NtlmServer(("127.0.0.1", args.port), identity, handoff=args.handoff)
    except HandoffUnavailableError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    print(f"serving on http://127.0.0.1:{server.server_address[1]}/")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
