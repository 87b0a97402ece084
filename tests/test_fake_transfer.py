"""FakeSspi's hand-off (``testing/_transfer.py``): ExportSecurityContext and
ImportSecurityContextW, the packed context they exchange and what they refuse.
"""

from __future__ import annotations

from ctypes import byref, c_void_p
from typing import Any

import pytest

import sspi_import
from sspi_import import ExportedContext, ExportFlags, ImportedContext, library
from sspi_import._raw import constants as C  # noqa: N812
from sspi_import._raw.structs import SecBuffer, SecHandle
from sspi_import.testing import FakeSspi


def test_export_import_round_trip_continues_the_sequence(fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client, server:
        server.verify(b"before", client.sign(b"before"))
        with server.export() as exported, ImportedContext.from_exported(exported) as imported:
            assert exported.package == "NTLM"
            assert exported.token is not None  # acceptor contexts carry a logon token
            assert imported.user_name == "EXAMPLE\\alice"
            assert imported.package == "NTLM"
            client.verify(b"reply", imported.sign(b"reply"))
            imported.verify(b"next", client.sign(b"next"))
            assert fake.outstanding().contexts == 3
            assert fake.outstanding().tokens == 1
        assert not server.closed


def test_delete_old_consumes_the_source(fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client, server:
        with server.export(ExportFlags.DELETE_OLD) as exported:
            assert server.closed
            assert fake.outstanding().contexts == 1
            with ImportedContext.from_exported(exported) as imported:
                client.verify(b"x", imported.sign(b"x"))
        deletes = fake.calls("DeleteSecurityContext")
    assert fake.calls("DeleteSecurityContext") == deletes + 1  # the client only
    assert fake.misuses == []


def test_reset_new_restarts_sequence_numbers(fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client, server:
        client.verify(b"a", server.sign(b"a"))
        with (
            export_context_reset(server) as exported,
            ImportedContext.from_exported(exported) as imported,
            pytest.raises(sspi_import.OutOfSequenceError),
        ):
            client.verify(b"b", imported.sign(b"b"))  # numbered 0 again


def export_context_reset(context: sspi_import.SecurityContext) -> ExportedContext:
    return sspi_import.export_context(context, ExportFlags.RESET_NEW)


def test_negotiate_export_imports_under_either_name(fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("Negotiate")
    with client, server, client.export() as exported:
        assert exported.token is None  # initiator: no token
        for name in ("Negotiate", "NTLM"):
            with ImportedContext.from_exported(exported, package=name) as imported:
                assert imported.package == name
        with pytest.raises(sspi_import.InvalidTokenError):
            ImportedContext.from_exported(exported, package="Kerberos")
        with pytest.raises(sspi_import.PackageNotFoundError):
            ImportedContext.from_exported(exported, package="Digest")


def test_to_kernel_is_refused(fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client, server:
        with pytest.raises(ValueError, match="kernel"):
            sspi_import.export_context(server, C.SECPKG_CONTEXT_EXPORT_TO_KERNEL)
        assert fake.calls("ExportSecurityContext") == 0
        packed, token = SecBuffer(), c_void_p()
        handle = SecHandle(*server.detach())
        try:
            status = library.api().ExportSecurityContext(
                byref(handle), C.SECPKG_CONTEXT_EXPORT_TO_KERNEL, byref(packed), byref(token)
            )
            assert status & 0xFFFF_FFFF == 0x8009035D  # SEC_E_INVALID_PARAMETER
            assert not packed.pvBuffer
        finally:
            library.api().DeleteSecurityContext(byref(handle))


def test_failed_export_keeps_the_source(fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client, server:
        fake.fail("ExportSecurityContext", "SEC_E_INSUFFICIENT_MEMORY")
        with pytest.raises(sspi_import.InsufficientMemoryError):
            server.export(ExportFlags.DELETE_OLD)
        assert not server.closed


def test_incomplete_context_cannot_be_exported(fake: FakeSspi) -> None:
    with sspi_import.Credentials.acquire("NTLM", "outbound") as credentials:
        context = sspi_import.SecurityContext.initiator(credentials, "host/x")
        with context:
            context.step(None)
            with pytest.raises(sspi_import.CannotPackError):
                context.export()


def _exported_blob(fake: FakeSspi) -> bytes:
    client, server = sspi_import.loopback("NTLM")
    with client, server, client.export() as exported:
        return exported.blob


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda b: b[:-1], id="truncated"),
        pytest.param(lambda b: b[:10], id="header-only"),
        pytest.param(lambda b: b[:40] + bytes([b[40] ^ 1]) + b[41:], id="bit-flip"),
        pytest.param(lambda b: b"XXXX" + b[4:], id="magic"),
        pytest.param(lambda b: b[:4] + b"\x09\x00" + b[6:], id="version"),
        pytest.param(lambda b: b + b"\0", id="trailing"),
        pytest.param(lambda b: b"\0", id="one-byte"),
    ],
)
def test_corrupted_blob_is_an_invalid_token(fake: FakeSspi, mangle: Any) -> None:
    blob = mangle(_exported_blob(fake))
    with pytest.raises(sspi_import.InvalidTokenError):
        ImportedContext("NTLM", blob)
    assert fake.outstanding().contexts == 0


def test_foreign_machine_blob_is_refused(fake: FakeSspi) -> None:
    blob = _exported_blob(fake)
    with FakeSspi(machine="OTHERHOST") as other:
        with pytest.raises(sspi_import.InvalidTokenError):
            ImportedContext("NTLM", blob)
        other.assert_no_leaks()
    with FakeSspi(machine="FAKEHOST") as same, ImportedContext("NTLM", blob) as imported:
        assert imported.user_name == "EXAMPLE\\alice"
        del same


@pytest.mark.parametrize(
    ("symbol", "error"),
    [
        ("SEC_E_UNKNOWN_CREDENTIALS", sspi_import.UnknownCredentialsError),
        ("SEC_E_NO_CREDENTIALS", sspi_import.NoCredentialsError),
        ("SEC_E_NOT_OWNER", sspi_import.NotOwnerError),
        ("SEC_E_INSUFFICIENT_MEMORY", sspi_import.InsufficientMemoryError),
        ("SEC_E_INTERNAL_ERROR", sspi_import.InternalError),
    ],
)
def test_import_failures_map_to_their_class(
    fake: FakeSspi, symbol: str, error: type[sspi_import.SspiError]
) -> None:
    blob = _exported_blob(fake)
    fake.fail("ImportSecurityContextW", symbol)
    with pytest.raises(error) as info:
        ImportedContext("NTLM", blob)
    assert info.value.symbol == symbol
    assert info.value.function == "ImportSecurityContextW"
    assert fake.outstanding().contexts == 0
    with ImportedContext("NTLM", blob):  # the next call works again
        pass
