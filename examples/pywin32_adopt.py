"""Take over a context that pywin32 established, and hand it to a worker process.

A server that authenticates with pywin32's ``sspi.ServerAuth`` keeps its context in a
``PyCtxtHandle`` (``server.ctxt``), which cannot be exported. ``adopt_context`` takes it
over (pywin32 is detached and will never delete it), and from then on it is a context of
this library: export it, hand it to a worker, close it.

On Windows with pywin32 installed this runs pywin32's own NTLM loopback with the logged-on
user. Elsewhere pywin32 does not exist: the same steps run on the simulated provider, with
the handle given as the integer pywin32's ``PyCtxtHandle.Detach()`` would return, and the
output says so.

    python examples/pywin32_adopt.py
"""

from __future__ import annotations

import subprocess
import sys

import sspi_import
from sspi_import import ExportFlags, adopt_context
from sspi_import.testing import FakeSspi

CHILD = """
import sys
import sspi_import
from sspi_import.testing import FakeSspi

def main():
    exported = sspi_import.ExportedContext.from_bytes(sys.stdin.buffer.read())
    with exported, sspi_import.ImportedContext.from_exported(exported) as ctx:
        print(ctx.user_name)

if sys.argv[1] == "simulated":
    with FakeSspi(user="EXAMPLE\\\\alice", machine="PYWIN32-DEMO"):
        main()
else:
    main()
"""


def pywin32_server_handle() -> sspi_import.PyCtxtHandleLike:
    """pywin32's own NTLM loopback; returns the server's ``PyCtxtHandle``."""
    import sspi  # type: ignore[import-not-found]  # pywin32, Windows only

    client, server = sspi.ClientAuth("NTLM"), sspi.ServerAuth("NTLM")
    token = None
    while True:
        _, out = client.authorize(token)
        status, reply = server.authorize(out[0].Buffer)
        if status == 0:
            ctxt: sspi_import.PyCtxtHandleLike = server.ctxt
            return ctxt
        token = reply[0].Buffer


def simulated_handle() -> int:
    """A server context made by the simulated provider, as pywin32's Detach() integer."""
    from sspi_import.adopt import handle_to_int

    client, server = sspi_import.loopback("NTLM")
    client.close()
    lower, upper = server.detach()  # from here the integer is the only owner
    server.credentials.close()
    return handle_to_int(lower, upper)


def hand_off(handle: sspi_import.ForeignContextHandle, mode: str) -> str:
    """Adopt ``handle``, export it with DELETE_OLD, and import it in a child process."""
    with adopt_context(handle) as context:
        print(f"adopted: {context!r}, user {context.user_name}")
        exported = context.export(ExportFlags.DELETE_OLD)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    with exported, exported.for_process(child) as sent:
        out, _ = child.communicate(sent.to_bytes(), timeout=60)
    if child.returncode:
        raise SystemExit(f"the child failed with exit code {child.returncode}")
    return out.decode().strip()


def main() -> int:
    """Run the hand-off once, on pywin32 where it exists, simulated elsewhere."""
    if sys.platform == "win32":
        try:
            handle = pywin32_server_handle()
        except ImportError:
            print("pywin32 is not installed: pip install pywin32")
            return 1
        user = hand_off(handle, "windows")
    else:
        print("not Windows: no pywin32 here; simulating it with sspi_import.testing.FakeSspi")
        with FakeSspi(user="EXAMPLE\\alice", machine="PYWIN32-DEMO") as fake:
            user = hand_off(simulated_handle(), "simulated")
            fake.assert_no_leaks()
    print(f"the child process imported the context of {user}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
