"""Cross-process hand-off on FakeSspi: a spawned worker imports, protects, and we check here."""

from __future__ import annotations

import gc
import multiprocessing
import os
import pathlib
import pickle
import subprocess
import sys
from multiprocessing.connection import Connection
from typing import Any, get_args

import pytest

import sspi_import
import sspi_import.exported
import sspi_import.testing._fake
from sspi_import import ExportedContext, ExportFlags, ImportedContext
from sspi_import.testing import FakeSspi, SspiFunction

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


# Copies for this process, copies the receiver pulls, and a venv-like launcher ---------

ALL_CALLS: list[SspiFunction] = sorted(get_args(SspiFunction))  # every function simulated


def _total_calls(fake: FakeSspi) -> int:
    return sum(fake.calls(name) for name in ALL_CALLS)


def _server_export(fake: FakeSspi, package: str = "NTLM") -> ExportedContext:
    client, server = sspi_import.loopback(package)
    with client, server:
        return server.export()


def test_a_copy_for_this_process_round_trips_through_to_bytes(sspi_fake: FakeSspi) -> None:
    with _server_export(sspi_fake) as exported:
        local = exported.for_process(os.getpid())
        assert not local.closed  # owns a fresh duplicate
        assert local.token is not None
        assert local.token != exported.token
        payload = local.to_bytes()
        assert local.closed  # the duplicate went to the payload
        with pytest.raises(ValueError, match=r"call for_process\(os.getpid\(\)\) on the original"):
            local.to_bytes()  # handed over once
        with (
            ExportedContext.from_bytes(payload) as back,
            ImportedContext.from_exported(back) as context,
        ):
            assert back.token is not None
            assert not back.closed
            with context.impersonate():
                assert sspi_fake.impersonating == "EXAMPLE\\alice"  # the token came along
    assert sspi_fake.calls("OpenProcess") == 0  # this process: nothing to open


def test_a_copy_for_this_process_round_trips_through_pickle(sspi_fake: FakeSspi) -> None:
    with _server_export(sspi_fake) as exported:
        local = exported.for_process(os.getpid())
        data = pickle.dumps(local)
        assert local.closed
        with pickle.loads(data) as back, ImportedContext.from_exported(back) as context:
            assert context.user_name == "EXAMPLE\\alice"


def test_the_original_says_how_to_send_it(sspi_fake: FakeSspi) -> None:
    with _server_export(sspi_fake) as exported:
        for serialize in (exported.to_bytes, lambda: pickle.dumps(exported)):
            with pytest.raises(TypeError) as info:
                serialize()
            message = str(info.value)
            assert "for_process(pid)" in message
            assert "for_process(os.getpid())" in message
            assert "for_any_process()" in message
            assert "close()/detach()" in message


def test_a_copy_for_another_process_is_refused_where_it_was_made(sspi_fake: FakeSspi) -> None:
    with _server_export(sspi_fake) as exported:
        other = exported.for_process(1)
        for received in (
            ExportedContext.from_bytes(other.to_bytes()),
            pickle.loads(pickle.dumps(other)),
        ):
            # Read without failing (a pool's unpickler must not fail), refused where used.
            assert received.closed  # owns nothing: the handle is process 1's
            before = _total_calls(sspi_fake)
            with pytest.raises(ValueError, match="duplicated for process 1") as info:
                ImportedContext.from_exported(received)
            assert "start_python_child()" in str(info.value)
            assert "for_any_process()" in str(info.value)
            with pytest.raises(ValueError, match="duplicated for process 1"):
                received.token  # noqa: B018 - the property refuses
            with pytest.raises(ValueError, match="duplicated for process 1"):
                received.for_any_process()
            with pytest.raises(ValueError, match="duplicated for process 1"):
                received.for_process(os.getpid())
            assert _total_calls(sspi_fake) == before  # refused before any call
            # Sent on (a relay), it still reaches process 1 with process 1's handle.
            relayed = ExportedContext.from_bytes(received.to_bytes())
            assert relayed.to_bytes() == other.to_bytes()


def test_a_payload_read_twice_here_is_refused_where_the_second_is_used(
    sspi_fake: FakeSspi,
) -> None:
    with _server_export(sspi_fake) as exported:
        payload = exported.for_process(os.getpid()).to_bytes()
        with ExportedContext.from_bytes(payload) as first:
            second = ExportedContext.from_bytes(payload)  # no failure while reading
            assert second.closed  # owns nothing: the first one owns the handle
            message = "already owned by an ExportedContext read from it"
            with pytest.raises(ValueError, match=message):
                ImportedContext.from_exported(second)
            for use in (lambda: second.token, second.to_bytes, second.for_any_process):
                with pytest.raises(ValueError, match=message):
                    use()
            with ImportedContext.from_exported(first) as context:
                assert context.user_name == "EXAMPLE\\alice"
            second.close()  # nothing to close: the first one's handle stays open
            assert not first.closed


@pytest.mark.parametrize("how", ["for_process", "for_any_process"])
def test_a_copy_made_for_sending_is_not_imported_here(sspi_fake: FakeSspi, how: str) -> None:
    with _server_export(sspi_fake) as exported:
        copy = exported.for_process(1) if how == "for_process" else exported.for_any_process()
        before = _total_calls(sspi_fake)
        with pytest.raises(ValueError, match="use the original ExportedContext"):
            ImportedContext.from_exported(copy)
        with pytest.raises(ValueError, match="use the original ExportedContext"):
            ImportedContext.from_exported(copy, package="NTLM")
        assert _total_calls(sspi_fake) == before  # refused before any call
        assert sspi_fake.calls("ImportSecurityContextW") == 0


def test_the_receiver_pulls_the_token_from_the_exporter(sspi_fake: FakeSspi) -> None:
    with _server_export(sspi_fake) as exported:
        pulled = exported.for_any_process()
        assert pulled.closed  # owns nothing
        assert pulled.token == exported.token  # the exporter's handle, duplicated later
        payload = pulled.to_bytes()
        assert sspi_fake.calls("DuplicateHandle") == 0  # nothing happens at the sender
        with ExportedContext.from_bytes(payload) as back:
            assert sspi_fake.calls("DuplicateHandle") == 0  # nor when it is read
            assert not back.closed  # a token to pull
            assert "token to pull from process" in repr(back)
            with ImportedContext.from_exported(back) as context, context.impersonate():
                assert sspi_fake.impersonating == "EXAMPLE\\alice"
            assert sspi_fake.calls("DuplicateHandle") == 1  # pulled where it was used
            assert back.token is not None
            assert back.token != exported.token
            with ImportedContext.from_exported(back):
                pass  # the same copy keeps the token it pulled
        assert sspi_fake.calls("DuplicateHandle") == 1
        assert not exported.closed  # the exporter still owns and closes its own
        with pickle.loads(pickle.dumps(pulled)) as again:  # each copy pulls its own
            assert again.token is not None
    assert sspi_fake.calls("DuplicateHandle") == 2


def test_a_pull_copy_of_a_closed_token_says_what_to_do(sspi_fake: FakeSspi) -> None:
    exported = _server_export(sspi_fake)
    pulled = exported.for_any_process()
    exported.close()
    with pytest.raises(ValueError, match="keep it open until the receiver has imported"):
        pulled.to_bytes()
    with pytest.raises(ValueError, match="for_any_process"):
        pulled.for_any_process()
    with pytest.raises(ValueError, match="original"):
        pulled.for_process(os.getpid())


def test_pull_flag_without_a_token_is_refused() -> None:
    data = bytearray(ExportedContext("NTLM", b"blob").to_bytes())
    data[5] |= 0x4
    with pytest.raises(ValueError, match="inconsistent token"):
        ExportedContext.from_bytes(bytes(data))


def test_negotiate_exports_record_the_negotiated_package(
    sspi_fake: FakeSspi, monkeypatch: pytest.MonkeyPatch
) -> None:

    with _server_export(sspi_fake, "Negotiate") as exported:
        assert exported.package == "NTLM"  # what Negotiate chose
        with ImportedContext.from_exported(exported) as context:
            assert context.package == "NTLM"
        with ImportedContext.from_exported(exported, package="Negotiate") as context:
            assert context.package == "Negotiate"  # the documented override
    monkeypatch.setattr(sspi_import.exported, "NEGOTIATE_IMPORTS_AS", "credentials")
    with _server_export(sspi_fake, "Negotiate") as exported:
        assert exported.package == "Negotiate"  # the one switch
    with _server_export(sspi_fake, "NTLM") as exported:
        assert exported.package == "NTLM"


WORKER = """
import os
import sys

import sspi_import
from sspi_import.testing import FakeSspi

with FakeSspi(machine=sys.argv[1]) as fake:
    payload = sys.stdin.buffer.read()
    exported = sspi_import.ExportedContext.from_bytes(payload)  # reading never fails
    try:
        context = sspi_import.ImportedContext.from_exported(exported)
    except ValueError as exc:
        print("refused", exc)
        sys.exit(3)
    with exported, context:
        with context.impersonate():
            impersonated = fake.impersonating
        print("ok", os.getpid(), context.user_name, impersonated)
    fake.assert_no_leaks()
"""

LAUNCHER = """
import subprocess
import sys

sys.exit(subprocess.run([sys.executable, *sys.argv[1:]]).returncode)
"""


def _run_worker(
    tmp_path: pathlib.Path, how: str, *, launcher: bool
) -> tuple[int, str, subprocess.Popen[bytes]]:
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    args = [str(worker), MACHINE]
    if launcher:  # what a Windows venv's python.exe does: start the real one as a child
        (tmp_path / "launcher.py").write_text(LAUNCHER)
        args = [str(tmp_path / "launcher.py"), *args]
    pipes: dict[str, Any] = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE}
    with FakeSspi(machine=MACHINE) as fake:
        client, server = sspi_import.loopback("NTLM")
        with client, server, server.export(ExportFlags.DELETE_OLD) as exported:
            child = sspi_import.start_python_child(args, **pipes)
            sent = exported.for_process(child) if how == "push" else exported.for_any_process()
            out, _ = child.communicate(sent.to_bytes(), TIMEOUT)  # the exporter holds on
        gc.collect()
        if how == "pull":
            fake.assert_no_leaks()
    return child.returncode, out.decode(), child


def test_a_worker_behind_a_launcher_refuses_a_token_pushed_to_the_launcher(
    tmp_path: pathlib.Path,
) -> None:
    code, out, child = _run_worker(tmp_path, "push", launcher=True)
    assert code == 3, out
    assert out.startswith(
        f"refused this exported context's token was duplicated for process {child.pid}"
    )
    assert "start_python_child()" in out


def test_a_worker_behind_a_launcher_pulls_the_token_and_impersonates(
    tmp_path: pathlib.Path,
) -> None:
    code, out, child = _run_worker(tmp_path, "pull", launcher=True)
    assert code == 0, out
    word, pid, user, impersonated = out.split()
    assert word == "ok"
    assert int(pid) != child.pid  # the worker is not the process Popen started
    assert user == impersonated == "EXAMPLE\\alice"


def test_a_worker_started_directly_takes_a_pushed_token(tmp_path: pathlib.Path) -> None:
    code, out, child = _run_worker(tmp_path, "push", launcher=False)
    assert code == 0, out
    word, pid, user, impersonated = out.split()
    assert (word, int(pid)) == ("ok", child.pid)
    assert user == impersonated == "EXAMPLE\\alice"
