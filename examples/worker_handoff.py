"""Hand an authenticated security context to a worker process.

The parent authenticates a client (here both ends run in this process, through
``sspi_import.loopback``), exports the server side with ``DELETE_OLD`` and sends it to
a ``multiprocessing`` worker (spawn start method). The worker imports it, reads who the
client is, and encrypts a reply that only the client can decrypt; the parent decrypts
it with the client context. The worker also signs the reply; the client verifies it.

On Windows this uses the real SSPI (secur32.dll, NTLM with the logged-on user).
Elsewhere there is no SSPI that can export a context, so both processes use the
simulated provider ``sspi_import.testing.FakeSspi`` (same machine name, so the
worker's fake accepts the parent's blob), and the output says so.

    python examples/worker_handoff.py
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
from multiprocessing.connection import Connection

import sspi_import
from sspi_import.testing import FakeSspi

MACHINE = "HANDOFF-DEMO"


def provider(simulated: bool) -> contextlib.AbstractContextManager[object]:
    """The simulated provider off Windows, nothing (secur32) on Windows."""
    if simulated:
        return FakeSspi(user="EXAMPLE\\alice", machine=MACHINE)
    return contextlib.nullcontext()


def worker(conn: Connection, simulated: bool) -> None:
    """Import the context sent through ``conn`` and answer the client through it."""
    with provider(simulated) as fake, conn:
        exported: sspi_import.ExportedContext = conn.recv()
        with exported, sspi_import.ImportedContext.from_exported(exported) as context:
            user = context.user_name
            reply = f"hello {user}, from worker process".encode()
            conn.send((user, context.encrypt(reply), context.sign(reply)))
        if isinstance(fake, FakeSspi):
            fake.assert_no_leaks()


def main() -> int:
    """Run the hand-off once and report what happened."""
    simulated = sys.platform != "win32"
    if simulated:
        print("not Windows: using the simulated provider sspi_import.testing.FakeSspi")
    else:
        print("Windows: using the real SSPI (secur32.dll)")
    spawn = multiprocessing.get_context("spawn")
    with provider(simulated):
        client, server = sspi_import.loopback("NTLM")
        with client:
            parent_end, child_end = spawn.Pipe()
            process = spawn.Process(target=worker, args=(child_end, simulated))
            process.start()
            child_end.close()
            try:
                with server, server.export(sspi_import.ExportFlags.DELETE_OLD) as exported:
                    parent_end.send(exported.for_process(process))
                user, sealed, signature = parent_end.recv()
            finally:
                parent_end.close()
                process.join(60)
            reply = client.decrypt(sealed)
            client.verify(reply, signature)
    print(f"worker {process.pid} imported the context of {user}")
    print(f"client decrypted and verified: {reply.decode()!r}")
    return process.exitcode or 0


if __name__ == "__main__":
    sys.exit(main())
