"""Cross-process hand-off on FakeSspi: a spawned worker imports, protects, and we check here."""

from __future__ import annotations

import multiprocessing
import os
import pathlib
import subprocess
import sys
from multiprocessing.connection import Connection
from typing import Any

import pytest

import sspi_import
from sspi_import import ExportedContext, ExportFlags, ImportedContext
from sspi_import.testing import FakeSspi

MACHINE = "HANDOFF-TEST"
EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "examples" / "worker_handoff.py"
TIMEOUT = 60


def _worker(conn: Connection, machine: str) -> None:
    """Runs in the spawned child: import what arrives, answer, report leaks."""
    with conn, FakeSspi(machine=machine) as fake:
        try:
            kind, payload = conn.recv()
            exported = ExportedContext.from_bytes(payload) if kind == "bytes" else payload
            with exported, ImportedContext.from_exported(exported) as context:
                with context.impersonate():
                    impersonated = fake.impersonating
                reply = f"{context.user_name} in {os.getpid()}".encode()
                conn.send(("ok", reply, context.sign(reply), context.encrypt(reply), impersonated))
        except sspi_import.SspiError as exc:
            conn.send(("error", exc.symbol, None, None, None))
        fake.assert_no_leaks()


def _hand_off(machine: str, transport: str) -> tuple[Any, ...]:
    spawn = multiprocessing.get_context("spawn")
    with FakeSspi(machine=MACHINE) as fake:
        client, server = sspi_import.loopback("NTLM")
        parent_end, child_end = spawn.Pipe()
        process = spawn.Process(target=_worker, args=(child_end, machine))
        process.start()
        child_end.close()
        try:
            with client, server, server.export(ExportFlags.DELETE_OLD) as exported:
                assert server.closed
                copy = exported.for_process(process)
                assert copy.token in fake.sent_tokens
                parent_end.send((transport, copy.to_bytes() if transport == "bytes" else copy))
                assert parent_end.poll(TIMEOUT), "the worker did not answer"
                status, reply, signature, sealed, impersonated = parent_end.recv()
                if status == "ok":
                    client.verify(reply, signature)
                    assert client.decrypt(sealed) == reply
        finally:
            parent_end.close()
            process.join(TIMEOUT)
        assert process.exitcode == 0
        fake.assert_no_leaks()
        assert fake.misuses == []
    return status, reply, process.pid, impersonated


@pytest.mark.parametrize("transport", ["pickle", "bytes"])
def test_spawned_worker_imports_and_answers(transport: str) -> None:
    status, reply, pid, impersonated = _hand_off(MACHINE, transport)
    assert status == "ok"
    assert reply == f"EXAMPLE\\alice in {pid}".encode()
    assert impersonated == "EXAMPLE\\alice"  # the duplicated token came along


def test_worker_on_another_machine_refuses_the_blob() -> None:
    status, symbol, _, _ = _hand_off("SOMEWHERE-ELSE", "pickle")
    assert status == "error"
    assert symbol == "SEC_E_INVALID_TOKEN"


def test_example_runs() -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    result = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "client decrypted and verified: 'hello EXAMPLE\\\\alice" in result.stdout
    if sys.platform != "win32":
        assert "simulated provider sspi_import.testing.FakeSspi" in result.stdout
