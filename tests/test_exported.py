"""``ExportedContext`` (``exported.py``): serialization (pickle, ``to_bytes``/``from_bytes``), a
token valid only here, and the provider ``for_process`` needs (its pid checks are
``processes.py``'s: ``test_processes.py``).
"""

from __future__ import annotations

import pickle
import sys
from typing import Any

import pytest

import sspi_import
from sspi_import import ExportedContext, ExportFlags, ImportedContext
from sspi_import.testing import FakeSspi


def test_pickle_and_bytes_round_trip_without_token(fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client, server, client.export() as exported:
        signature = server.sign(b"m")
        for copy in (
            pickle.loads(pickle.dumps(exported)),
            ExportedContext.from_bytes(exported.to_bytes()),
        ):
            assert type(copy) is ExportedContext
            assert (copy.package, copy.blob, copy.buffer_type, copy.token) == (
                "NTLM",
                exported.blob,
                exported.buffer_type,
                None,
            )
            with ImportedContext.from_exported(copy) as imported:
                assert imported.user_name == "EXAMPLE\\alice"
                imported.verify(b"m", signature)  # each copy expects message 0


def test_to_bytes_layout() -> None:
    exported = ExportedContext(None, b"BLOB", 7)
    data = exported.to_bytes()
    assert data[:4] == b"SSPX"
    assert data[4] == 1
    assert data.endswith(b"BLOB")
    copy = ExportedContext.from_bytes(memoryview(data))
    assert (copy.package, copy.blob, copy.buffer_type) == (None, b"BLOB", 7)
    assert ExportedContext.from_bytes(ExportedContext("Kerberos", b"x").to_bytes()).package == (
        "Kerberos"
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"SSPX",
        b"XXXX" + bytes(30),
        b"SSPX\x02" + bytes(30),
        b"SSPX\x01\x04" + bytes(30),
    ],
)
def test_from_bytes_rejects_garbage(data: bytes) -> None:
    with pytest.raises(ValueError, match="exported context"):
        ExportedContext.from_bytes(data)


def test_from_bytes_rejects_inconsistent_fields() -> None:
    good = ExportedContext("NTLM", b"blob").to_bytes()
    with pytest.raises(ValueError, match="truncated"):
        ExportedContext.from_bytes(good[:-1])
    with pytest.raises(ValueError, match="token"):
        ExportedContext.from_bytes(good[:5] + b"\x03" + good[6:])
    with pytest.raises(TypeError):
        ExportedContext.from_bytes("SSPX")  # type: ignore[arg-type]


def test_a_token_valid_only_here_is_not_serialized(fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client, server, server.export() as exported:
        with pytest.raises(TypeError, match="for_process"):
            pickle.dumps(exported)
        with pytest.raises(TypeError, match="for_process"):
            exported.to_bytes()


@pytest.mark.skipif(sys.platform == "win32", reason="kernel32 duplicates handles on Windows")
def test_for_process_needs_a_duplicating_library(stub: Any) -> None:
    stub.set_export_token(0x1234)
    with sspi_import.export_context(stub.new_context(), ExportFlags.DELETE_OLD) as exported:
        assert exported.token == 0x1234
        with pytest.raises(sspi_import.SspiUnavailableError, match="FakeSspi"):
            exported.for_process(1)


# Found by a review of the hand-off (a closed export, copies, payload limits) -------------


@pytest.mark.parametrize("use", ["for_process", "for_any_process", "from_exported"])
def test_a_closed_export_is_not_copied_or_imported_without_its_token(
    fake: FakeSspi, use: str
) -> None:
    """Closed too early, the export says so: a copy or an import would go without the
    client's token, and the mistake would surface far away (impersonation failing)."""
    import os

    client, server = sspi_import.loopback("NTLM")
    with client, server:
        exported = server.export()
        exported.close()
        uses: dict[str, Any] = {
            "for_process": lambda: exported.for_process(os.getpid()),
            "for_any_process": exported.for_any_process,
            "from_exported": lambda: ImportedContext.from_exported(exported),
        }
        with pytest.raises(ValueError, match="token was closed"):
            uses[use]()


def test_an_export_that_never_had_a_token_still_copies_plainly(fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client, server:
        exported = sspi_import.export_context(client)  # an initiator's: no client token
        assert exported.token is None
        assert exported.for_any_process().token is None
        with ImportedContext.from_exported(exported) as imported:
            assert imported.package == "NTLM"


def test_detach_on_a_copy_says_why_it_cannot_be_used_here(fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client, server, server.export() as exported:
        with pytest.raises(ValueError, match="made by for_any_process"):
            exported.for_any_process().detach()
        payload = exported.for_process(1).to_bytes()  # duplicated for another process
        with pytest.raises(ValueError, match="duplicated for process 1"):
            ExportedContext.from_bytes(payload).detach()


def test_a_package_name_the_layout_cannot_carry_is_refused_at_once(fake: FakeSspi) -> None:
    with pytest.raises(ValueError, match="longer than 65,535 UTF-8 bytes"):
        ExportedContext("\u00e9" * 0x8000, b"blob")  # 32,768 characters, 65,536 bytes
    assert ExportedContext("N" * 0xFFFF, b"blob").package == "N" * 0xFFFF


def test_long_names_are_checked_but_not_kept(fake: FakeSspi) -> None:
    from sspi_import import _buffers

    name = "P" * 65
    ExportedContext(name, b"blob")
    assert name not in _buffers._NAMES
    assert _buffers.encode_name(name) == name.encode("utf-16-le") + b"\0\0"


def test_export_flags_take_no_float(fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client, server:
        for flags in (0.0, 1.0):
            with pytest.raises(TypeError, match="must be an int"):
                sspi_import.export_context(server, flags)  # type: ignore[arg-type]


def test_a_received_copy_with_a_bad_package_pulls_nothing(fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client, server, server.export() as exported:
        received = ExportedContext.from_bytes(exported.for_any_process().to_bytes())
        with pytest.raises(TypeError):
            ImportedContext.from_exported(received, package=123)  # type: ignore[arg-type]
        assert fake.calls("DuplicateHandle") == 0
        received.close()


def test_flags_of_the_other_kind_are_a_type_error_and_an_int_subclass_is_an_int(
    fake: FakeSspi,
) -> None:
    """ExportFlags.DELETE_OLD and RequestFlags.MUTUAL_AUTH are both 2: a mix-up must not
    pass as the other request. A valid value of an int subclass exports; before, any
    such value was refused as if it asked for TO_KERNEL."""
    import enum

    class Plain(int):
        pass

    class Mine(enum.IntEnum):
        ONE = 1

    client, server = sspi_import.loopback("NTLM")
    with client, server:
        with pytest.raises(TypeError, match="not RequestFlags"):
            # an int to the type checker (ExportFlags | int): refused when run
            sspi_import.export_context(server, sspi_import.RequestFlags.MUTUAL_AUTH)
        with pytest.raises(TypeError, match="not Mine"):
            sspi_import.export_context(server, Mine.ONE)
        with sspi_import.export_context(server, Plain(0)) as exported:
            assert exported.blob
        with (
            sspi_import.Credentials.acquire("NTLM", "outbound") as credentials,
            pytest.raises(TypeError, match="not ExportFlags"),
        ):
            sspi_import.SecurityContext.initiator(
                credentials,
                "host/x",
                ExportFlags.DELETE_OLD,  # an int to the type checker: refused when run
            )
