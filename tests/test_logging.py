"""The ``sspi_import`` logger: one DEBUG record per call, from errors.check, no secrets."""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys

import pytest

import sspi_import
from sspi_import import Identity, ImportedContext, export_context, loopback
from sspi_import._raw.functions import PROTOTYPES
from sspi_import.testing import FakeSspi

PASSWORD = "Pa55-w0rd-n0t-in-logs"
PLAINTEXT = b"attack at dawn, said the plaintext"


def _records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "sspi_import"]


def _forms(secret: bytes) -> list[str]:
    """The ways a blob could leak into text: repr, hex (both cases), base64."""
    forms = [repr(secret), secret.hex(), secret.hex().upper(), base64.b64encode(secret).decode()]
    return [form for form in forms if len(form) >= 8]


def _text(record: logging.LogRecord) -> str:
    # Everything a handler or formatter could print: the message, its args, the extras.
    return f"{record.getMessage()} {record.args!r} {record.__dict__!r}"


def test_every_call_of_a_handoff_is_one_record_without_secrets(
    sspi_fake: FakeSspi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sspi_import")
    client, server = loopback("NTLM", Identity("alice", "CONTOSO", PASSWORD))
    with client, server:
        sealed = client.encrypt(PLAINTEXT)
        assert server.decrypt(sealed) == PLAINTEXT
        key = server.session_key()
        exported = export_context(server)
        with exported, ImportedContext.from_exported(exported) as imported:
            assert imported.session_key() == key
        blob = exported.blob
    records = _records(caplog)
    assert records, "no record at all"
    assert {r.levelno for r in records} == {logging.DEBUG}
    functions = [r.sspi_function for r in records]  # type: ignore[attr-defined]
    for expected in (
        "AcquireCredentialsHandleW",
        "InitializeSecurityContextW",
        "AcceptSecurityContext",
        "EncryptMessage",
        "DecryptMessage",
        "QueryContextAttributesW",
        "ExportSecurityContext",
        "ImportSecurityContextW",
        "FreeContextBuffer",
        "DeleteSecurityContext",
        "FreeCredentialsHandle",
    ):
        assert expected in functions, expected
    assert functions.count("ExportSecurityContext") == 1
    assert functions.count("ImportSecurityContextW") == 1
    # Three contexts deleted: client, server (a copy export leaves it) and the imported
    # one; the handshake's SEC_I_CONTINUE_NEEDED statuses are logged, not raised.
    assert functions.count("DeleteSecurityContext") == 3
    symbols = {r.sspi_symbol for r in records}  # type: ignore[attr-defined]
    assert {"SEC_E_OK", "SEC_I_CONTINUE_NEEDED"} <= symbols
    for record in records:
        function = record.sspi_function  # type: ignore[attr-defined]
        assert record.sspi_handle_kind == PROTOTYPES[function].handle  # type: ignore[attr-defined]
        status = record.sspi_status  # type: ignore[attr-defined]
        if function == "CloseHandle":  # the export's token, through check_win32
            assert record.getMessage() == "CloseHandle (token): succeeded"
            continue
        assert record.getMessage() == (
            f"{function} ({PROTOTYPES[function].handle}): {record.sspi_symbol} "  # type: ignore[attr-defined]
            f"(0x{status:08X})"
        )
    export_record = records[functions.index("ExportSecurityContext")]
    assert export_record.getMessage() == "ExportSecurityContext (context): SEC_E_OK (0x00000000)"
    free = records[functions.index("FreeContextBuffer")]
    assert free.sspi_handle_kind == "buffer"  # type: ignore[attr-defined]
    assert records[functions.index("AcquireCredentialsHandleW")].sspi_handle_kind == (  # type: ignore[attr-defined]
        "credentials"
    )
    secrets = [PASSWORD, *_forms(PLAINTEXT), *_forms(key), *_forms(blob), *_forms(sealed)]
    assert len(blob) > 16
    assert len(key) >= 8
    for record in records:
        text = _text(record)
        for secret in secrets:
            assert secret not in text, (record.getMessage(), secret)


def test_a_failed_call_is_logged_before_it_raises(
    sspi_fake: FakeSspi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sspi_import")
    garbage = b"not-a-packed-context-at-all-0123456789"
    with pytest.raises(sspi_import.SspiError) as raised:
        ImportedContext("NTLM", garbage)
    (record,) = _records(caplog)
    assert record.sspi_function == "ImportSecurityContextW"  # type: ignore[attr-defined]
    assert record.sspi_symbol == raised.value.symbol  # type: ignore[attr-defined]
    assert record.sspi_status == raised.value.status  # type: ignore[attr-defined]
    assert f"0x{raised.value.status:08X}" in record.getMessage()
    for secret in _forms(garbage):
        assert secret not in _text(record)


def test_token_duplication_is_logged_by_check_win32(
    sspi_fake: FakeSspi, caplog: pytest.LogCaptureFixture
) -> None:
    client, server = loopback("NTLM", Identity("alice", "", PASSWORD))
    with client, server, export_context(server) as exported:
        assert exported.token is not None, "FakeSspi hands an acceptor's export a token"
        caplog.set_level(logging.DEBUG, logger="sspi_import")
        with exported.for_process(os.getpid()) as copy:
            token = copy.token
            assert token is not None
    records = _records(caplog)
    duplicate = next(r for r in records if r.sspi_function == "DuplicateHandle")  # type: ignore[attr-defined]
    assert duplicate.getMessage() == "DuplicateHandle (token): succeeded"
    assert duplicate.sspi_handle_kind == "token"  # type: ignore[attr-defined]
    assert "CloseHandle" in [r.sspi_function for r in records]  # type: ignore[attr-defined]
    for record in records:
        assert str(token) not in record.getMessage()  # never the handle value


def test_nothing_is_recorded_above_debug(
    sspi_fake: FakeSspi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sspi_import")
    client, server = loopback("NTLM", Identity("alice", "", PASSWORD))
    client.close()
    server.close()
    assert _records(caplog) == []


def test_the_logger_has_a_null_handler(sspi_fake: FakeSspi) -> None:
    client, server = loopback("NTLM", Identity("alice", "", PASSWORD))
    client.close()
    server.close()
    handlers = logging.getLogger("sspi_import").handlers
    assert [type(h) for h in handlers].count(logging.NullHandler) == 1


def test_every_declared_function_has_a_documented_handle_kind() -> None:
    kinds = {proto.handle for proto in PROTOTYPES.values()}
    assert PROTOTYPES, "the prototype table is empty?"
    # the kinds docs/debugging.md lists
    assert kinds <= {"context", "credentials", "buffer", "token", "process", "package list"}


def test_logging_imported_after_sspi_import_still_records() -> None:
    # sspi_import never imports logging itself; a logger configured later must still work.
    code = (
        "import sys\n"
        "from sspi_import import _log, errors\n"
        "errors.check(0, 'DeleteSecurityContext')\n"
        "assert 'logging' not in sys.modules and _log._logger is None\n"
        "import logging\n"
        "logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format='%(message)s')\n"
        "errors.check(0x00090312, 'InitializeSecurityContextW')\n"
        "try:\n"
        "    errors.check(-2146893048, 'ImportSecurityContextW')\n"
        "except errors.InvalidTokenError:\n"
        "    pass\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines() == [
        "InitializeSecurityContextW (context): SEC_I_CONTINUE_NEEDED (0x00090312)",
        "ImportSecurityContextW (context): SEC_E_INVALID_TOKEN (0x80090308)",
    ]


# The level test every call makes (_log.levels) and check's one shortcut -------------------


def test_the_level_test_answers_what_is_enabled_for_answers(sspi_fake: FakeSspi) -> None:
    """``_log.levels.get(DEBUG, True)`` is false only where ``isEnabledFor(DEBUG)`` is."""
    from sspi_import import _log

    logger = logging.getLogger("sspi_import")
    old = logger.level
    try:
        for level, enabled in ((logging.INFO, False), (logging.DEBUG, True)):
            logger.setLevel(level)  # empties the cache: "ask"
            assert _log.levels.get(_log.DEBUG, True)
            client, server = loopback("NTLM")  # calls ask, and fill the cache
            client.close()
            server.close()
            assert bool(_log.levels.get(_log.DEBUG, True)) is enabled
            assert logger.isEnabledFor(logging.DEBUG) is enabled
    finally:
        logger.setLevel(old)


def test_a_success_skips_the_check_only_when_debug_is_off(
    sspi_fake: FakeSspi, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SEC_E_OK without DEBUG costs no ``check`` call; with DEBUG each call is logged."""
    from sspi_import import errors

    checked: list[str] = []

    def counting(status: int, function: str) -> int:
        checked.append(function)
        return errors.check(status, function)

    for function in ("EncryptMessage", "DecryptMessage", "DeleteSecurityContext"):
        monkeypatch.setitem(errors.CHECKS, function, counting)
    client, server = loopback("NTLM")
    caplog.set_level(logging.INFO, logger="sspi_import")  # empties the level cache
    assert server.decrypt(client.encrypt(b"asks")) == b"asks"  # the first call asks
    checked.clear()
    assert server.decrypt(client.encrypt(b"quiet")) == b"quiet"
    assert checked == []
    caplog.set_level(logging.DEBUG, logger="sspi_import")
    assert server.decrypt(client.encrypt(b"logged")) == b"logged"
    client.close()
    assert checked == ["EncryptMessage", "DecryptMessage", "DeleteSecurityContext"]
    logged = [r.sspi_function for r in _records(caplog)]  # type: ignore[attr-defined]
    assert logged == [*checked, "FreeCredentialsHandle"]  # the loopback's credentials
    server.close()


def test_the_shortcut_never_skips_a_kernel32_failure(sspi_fake: FakeSspi) -> None:
    """For kernel32 a 0 is FALSE, a failure: only SECURITY_STATUS functions skip check."""
    from sspi_import.errors import STATUS_FUNCTIONS
    from sspi_import.testing import FaultInjector

    status = {name for name, proto in PROTOTYPES.items() if proto.result == "status"}
    assert status == STATUS_FUNCTIONS
    assert not any(PROTOTYPES[name].kernel32 for name in STATUS_FUNCTIONS)
    with FaultInjector(sspi_fake) as faults:
        client, server = loopback("NTLM")
        with client, server:
            token = server.client_token()
            value = token.value
            faults.fail("CloseHandle", "SEC_E_INTERNAL_ERROR")  # kernel32: FALSE
            with pytest.raises(OSError, match="CloseHandle"):
                token.close()
            assert token.closed  # taken out before the call: never closed twice
            assert faults.calls("CloseHandle") == 1
            assert sspi_import.library.api().CloseHandle(value)  # the fake's, for real
