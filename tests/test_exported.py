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
