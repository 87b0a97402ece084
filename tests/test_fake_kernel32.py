"""FakeSspi's kernel32 (``testing/_kernel32.py``): process and token handles, duplicated into
another process by ``ExportedContext.for_process``; what a missing or foreign process says.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import pytest

import sspi_import
from sspi_import import ExportedContext, ImportedContext
from sspi_import.testing import FakeSspi


def test_for_process_duplicates_the_token(fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client, server, server.export() as exported, client.export() as plain:
        copy = plain.for_process(1)
        assert copy.token is None
        assert copy.blob == plain.blob
        assert exported.token is not None
        with exported.for_process(os.getpid()) as local:
            assert local.token not in (None, exported.token)
            assert fake.outstanding().tokens == 2
        other = exported.for_process(1)
        assert other.closed
        assert other.token in fake.sent_tokens
        assert fake.sent_tokens[other.token] == 1
        assert "token for process 1" in repr(other)
        other.close()  # owns nothing here: closes nothing
        for received in (
            pickle.loads(pickle.dumps(other)),
            ExportedContext.from_bytes(other.to_bytes()),
        ):
            with pytest.raises(ValueError, match="for process 1"):  # read, refused at use
                ImportedContext.from_exported(received)
        with pytest.raises(ValueError, match="duplicate from the original"):
            other.for_process(1)
        assert fake.calls("OpenProcess") == 1
        assert fake.outstanding().process_handles == 0


@pytest.mark.skipif(sys.platform == "win32", reason="the fake checks pids with os.kill(pid, 0)")
def test_for_process_to_a_missing_process_fails(fake: FakeSspi) -> None:
    # Issue 22 §3: it said "[Errno None] ... OpenProcess failed (Windows error 0)".
    client, server = sspi_import.loopback("NTLM")
    with client, server, server.export() as exported:
        for pid in (0x7FFF_FFF0, _a_pid_that_has_exited()):
            with pytest.raises(ProcessLookupError) as info:
                exported.for_process(pid)
            message = str(info.value)
            assert f"cannot duplicate the token into process {pid}: there is no such process" in (
                message
            )
            assert "for_any_process()" in message  # what to do
            assert "Errno None" not in message
            assert "Windows error 0" not in message
    assert fake.outstanding().process_handles == 0


def _a_pid_that_has_exited() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.skipif(sys.platform == "win32", reason="the fake checks pids with os.kill(pid, 0)")
def test_for_process_to_another_users_process_says_so(
    fake: FakeSspi, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CI runs as root, which may signal anyone: another user's process is simulated.
    other = os.getppid()
    kill = os.kill

    def denied(pid: int, signal: int) -> None:
        if pid == other:
            raise PermissionError(1, "Operation not permitted")
        kill(pid, signal)

    monkeypatch.setattr(os, "kill", denied)
    client, server = sspi_import.loopback("NTLM")
    with client, server, server.export() as exported:
        with pytest.raises(PermissionError, match="another user") as info:
            exported.for_process(other)
        assert f"cannot duplicate the token into process {other}" in str(info.value)
    assert fake.outstanding().process_handles == 0
