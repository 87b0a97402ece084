"""The core promise on real Windows: secur32 exports, another process imports.

Only the Windows CI lane runs these (marked ``windows``; skipped elsewhere with the
reason). They assert what the documentation says Windows does; where Windows could
answer with more than one code, the accepted set is named in the assertion.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

import sspi_import
from sspi_import import ExportFlags, ImportedContext, SecurityContext, loopback

pytestmark = pytest.mark.windows_sspi

CHILD = textwrap.dedent(
    """
    import sys
    import sspi_import

    data = sys.stdin.buffer.read()
    size = int.from_bytes(data[:4], "little")
    payload, sealed = data[4 : 4 + size], data[4 + size :]
    exported = sspi_import.ExportedContext.from_bytes(payload)
    with exported, sspi_import.ImportedContext.from_exported(exported) as ctx:
        print(ctx.user_name)
        print(ctx.decrypt(sealed).decode())
        sys.stdout.flush()
        sys.stdout.buffer.write(b"--\\n" + ctx.encrypt(b"reply from the child"))
    """
)


@pytest.fixture(params=["NTLM", "Negotiate"])
def pair(request: pytest.FixtureRequest) -> Iterator[tuple[SecurityContext, SecurityContext]]:
    client, server = loopback(request.param)
    with client, server:
        yield client, server


def test_export_for_process_and_import_in_a_child(
    pair: tuple[SecurityContext, SecurityContext],
) -> None:
    client, server = pair
    user = server.user_name
    exported = server.export(ExportFlags.DELETE_OLD)
    assert server.closed  # consumed: never deleted again
    sealed = client.encrypt(b"for the worker")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    with exported, exported.for_process(child) as sent:
        payload = sent.to_bytes()
        out, _ = child.communicate(len(payload).to_bytes(4, "little") + payload + sealed, 120)
    assert child.returncode == 0
    text, reply = out.split(b"--\n", 1)
    lines = text.decode().splitlines()
    assert lines == [user, "for the worker"]
    assert client.decrypt(reply) == b"reply from the child"


def test_delete_old_invalidates_the_source_handle(
    pair: tuple[SecurityContext, SecurityContext],
) -> None:
    _client, server = pair
    raw = server.detach()  # keep the numbers, then let SSPI consume the context
    with sspi_import.adopt_context(raw, server.package) as adopted:
        exported = adopted.export(ExportFlags.DELETE_OLD)
    exported.close()
    with pytest.raises(sspi_import.InvalidHandleError):
        sspi_import.export_context(raw)  # the handle SSPI deleted


def test_plain_export_keeps_the_source_usable(
    pair: tuple[SecurityContext, SecurityContext],
) -> None:
    client, server = pair
    with server.export() as exported:
        assert not server.closed
        with ImportedContext.from_exported(exported, server.package_name) as imported:
            assert imported.user_name == server.user_name
    assert server.decrypt(client.encrypt(b"still mine")) == b"still mine"


def test_reset_new_restarts_the_sequence(pair: tuple[SecurityContext, SecurityContext]) -> None:
    client, server = pair
    assert server.decrypt(client.encrypt(b"message 0")) == b"message 0"  # sequence 0 used
    with (
        server.export() as same,
        ImportedContext.from_exported(same, server.package_name) as continued,
    ):
        assert continued.decrypt(client.encrypt(b"message 1")) == b"message 1"
    with (
        server.export(ExportFlags.RESET_NEW) as reset,
        ImportedContext.from_exported(reset, server.package_name) as restarted,
        pytest.raises(sspi_import.SspiError) as info,
    ):
        restarted.decrypt(client.encrypt(b"message 2"))  # expects 0 again
    assert isinstance(
        info.value, (sspi_import.OutOfSequenceError, sspi_import.MessageAlteredError)
    ), info.value


def test_corrupted_blob_is_refused(pair: tuple[SecurityContext, SecurityContext]) -> None:
    _client, server = pair
    with server.export() as exported:
        blob = bytearray(exported.blob)
        blob[len(blob) // 2] ^= 0xFF
        blob[-1] ^= 0xFF
        with pytest.raises(sspi_import.SspiError) as info:
            ImportedContext(server.package_name, bytes(blob[: len(blob) // 3]))
        assert info.value.function == "ImportSecurityContextW"
        assert info.value.symbol in ("SEC_E_INVALID_TOKEN", "SEC_E_INVALID_PARAMETER"), info.value


def test_wrong_package_name_is_refused(pair: tuple[SecurityContext, SecurityContext]) -> None:
    _client, server = pair
    with server.export() as exported, pytest.raises(sspi_import.PackageNotFoundError):
        ImportedContext("NoSuchPackage", exported.blob)


def test_closed_context_is_refused_before_secur32(
    pair: tuple[SecurityContext, SecurityContext],
) -> None:
    _client, server = pair
    server.close()
    with pytest.raises(ValueError, match="closed"):
        server.export()
