"""A fault at every cleanup step: nothing completed is lost, nothing else stays outstanding.

FakeSspi's ``fail(name, status)`` makes the next call of ``name`` return ``status`` and do
nothing, so the item whose free was made to fail is still in the fake's ledger
afterwards: each test asserts that it is the only one, that the library did not try to
free it a second time, and that what the operation produced reached the caller.
"""

from __future__ import annotations

import warnings

import pytest

import sspi_import
from sspi_import import CleanupWarning, ExportFlags, ImportedContext, SecurityContext
from sspi_import.testing import FakeSspi

ALICE = sspi_import.Identity("alice", "EXAMPLE", "p4ssw0rd")


def _only_outstanding(fake: FakeSspi, kind: str) -> None:
    """Exactly one item is outstanding, of ``kind`` (the one whose free was made to fail)."""
    out = fake.outstanding()
    counts = {
        "contexts": out.contexts,
        "credentials": out.credentials,
        "buffers": out.buffers,
        "tokens": out.tokens,
    }
    assert counts == {k: int(k == kind) for k in counts}, out.details
    assert not fake.misuses, fake.misuses  # nothing freed twice trying again


def test_consuming_export_whose_credentials_free_fails_keeps_the_export() -> None:
    with FakeSspi() as fake:
        client, server = sspi_import.loopback("NTLM")
        client.close()
        fake.fail("FreeCredentialsHandle", "SEC_E_INTERNAL_ERROR")
        with pytest.warns(CleanupWarning, match="FreeCredentialsHandle failed") as caught:
            exported = server.export(ExportFlags.DELETE_OLD)
        (record,) = caught
        assert isinstance(record.message, CleanupWarning)
        assert record.message.result is exported  # the warning carries the export too
        assert server.closed
        assert server.credentials.closed  # taken out once, never freed again
        with exported, ImportedContext.from_exported(exported) as imported:
            assert imported.user_name == "EXAMPLE\\alice"
        _only_outstanding(fake, "credentials")


def test_the_warning_raised_as_an_error_still_carries_the_export() -> None:
    with FakeSspi() as fake:
        client, server = sspi_import.loopback("NTLM")
        client.close()
        fake.fail("FreeCredentialsHandle", "SEC_E_INTERNAL_ERROR")
        with warnings.catch_warnings():
            warnings.simplefilter("error", CleanupWarning)
            with pytest.raises(CleanupWarning) as info:
                server.export(ExportFlags.DELETE_OLD)
        exported = info.value.result
        assert isinstance(exported, sspi_import.ExportedContext)
        assert isinstance(info.value.errors[0], sspi_import.InternalError)
        assert server.closed
        with exported, ImportedContext.from_exported(exported) as imported:
            assert imported.package == "NTLM"
        _only_outstanding(fake, "credentials")


def test_export_whose_buffer_free_fails_keeps_the_export() -> None:
    with FakeSspi() as fake:
        client, server = sspi_import.loopback("NTLM")
        with client, server:
            fake.fail("FreeContextBuffer", "SEC_E_INVALID_HANDLE")
            with pytest.warns(CleanupWarning, match="FreeContextBuffer failed"):
                exported = server.export()
            with exported, ImportedContext.from_exported(exported) as imported:
                assert imported.user_name == "EXAMPLE\\alice"
        _only_outstanding(fake, "buffers")


def test_failed_export_leaves_the_context_owned_and_nothing_outstanding() -> None:
    with FakeSspi() as fake:
        client, server = sspi_import.loopback("NTLM")
        fake.fail("ExportSecurityContext", "SEC_E_INSUFFICIENT_MEMORY")
        with pytest.raises(sspi_import.InsufficientMemoryError):
            server.export(ExportFlags.DELETE_OLD)
        assert not server.closed  # SSPI did not consume it: still ours
        assert not server.credentials.closed
        client.close()
        server.close()
        fake.assert_no_leaks()
        assert not fake.misuses


def test_failed_delete_on_close_is_raised_once_and_never_retried() -> None:
    with FakeSspi() as fake:
        client, server = sspi_import.loopback("NTLM")
        with client, client.export() as exported:
            imported = ImportedContext.from_exported(exported)
            fake.fail("DeleteSecurityContext", "SEC_E_INTERNAL_ERROR")
            with pytest.raises(sspi_import.InternalError):
                imported.close()
            assert imported.closed
            imported.close()  # no second DeleteSecurityContext for the same handle
            calls = fake.calls("DeleteSecurityContext")
        server.close()
        assert fake.calls("DeleteSecurityContext") == calls + 2  # client, server only
        _only_outstanding(fake, "contexts")


def test_handshake_step_whose_token_free_fails_keeps_the_token() -> None:
    with FakeSspi() as fake:
        client_creds = sspi_import.Credentials.acquire("NTLM", "outbound")
        server_creds = sspi_import.Credentials.acquire("NTLM", "inbound")
        with client_creds, server_creds:
            client = SecurityContext.initiator(client_creds, "host/x")
            server = SecurityContext.acceptor(server_creds)
            with client, server:
                fake.fail("FreeContextBuffer", "SEC_E_INVALID_HANDLE")
                with pytest.warns(CleanupWarning, match="FreeContextBuffer failed") as caught:
                    token = client.step(None)
                assert token is not None
                assert caught[0].message.result == token  # type: ignore[union-attr]
                token = server.step(token)  # the handshake goes on from the kept token
                while token is not None and not (client.complete and server.complete):
                    token = client.step(token)
                    if token is not None:
                        token = server.step(token)
                assert client.complete
                assert server.complete
        _only_outstanding(fake, "buffers")


def test_loopback_raises_the_handshakes_own_error_when_cleanup_fails_too() -> None:
    with FakeSspi() as fake:
        fake.fail("AcceptSecurityContext", "SEC_E_LOGON_DENIED")
        fake.fail("FreeCredentialsHandle", "SEC_E_INTERNAL_ERROR")
        with pytest.raises(sspi_import.LogonDeniedError) as info:
            sspi_import.loopback("NTLM")
        notes = getattr(info.value, "__notes__", [])
        if hasattr(info.value, "add_note"):  # Python 3.11+
            assert any("FreeCredentialsHandle" in note for note in notes), notes
        # Everything else was closed: both contexts (one existed), the other credentials.
        _only_outstanding(fake, "credentials")


def test_loopback_failure_closes_everything_it_made() -> None:
    with FakeSspi(password="right") as fake:
        with pytest.raises(sspi_import.LogonDeniedError):
            sspi_import.loopback("NTLM", sspi_import.Identity("alice", "EXAMPLE", "wrong"))
        fake.assert_no_leaks()
        assert not fake.misuses
