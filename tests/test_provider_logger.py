"""sspi-rs's own log (``SSPI_LOG_PATH``) honoured: its logger started at load (issue 21, 2.3).

sspi-rs writes why a call failed only after ``RustSspiSetupLogger`` ran, and reads
``SSPI_LOG_PATH`` in that call, once per process. ``sspi_import`` calls it when it loads a
library that exports it and the variable is set: never at ``import sspi_import``, never
without the variable (which would spend sspi-rs's one chance), once per library. On a
provider double (every OS), then on sspi-rs itself in child processes (each a fresh
process: the logger starts once per process). The Kerberos lane shows a wrong password's
reason in the file (test_kerberos_library.py).
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import sspi_import
from kdc import closed_port, unreachable_krb5_conf
from sspi_import import library
from sspi_import._raw.functions import PROTOTYPES


class LoggingProvider:
    """The least an ``SspiLibrary`` needs to load, plus sspi-rs's logger, counted."""

    def __init__(self, *, logger: bool = True) -> None:
        self.started = 0
        free = PROTOTYPES["FreeContextBuffer"].functype(lambda pointer: 0)
        start = PROTOTYPES["RustSspiSetupLogger"].functype(self._start)
        self._callbacks = {"FreeContextBuffer": free}
        if logger:
            self._callbacks["RustSspiSetupLogger"] = start

    def _start(self) -> None:
        self.started += 1

    def sspi_function_address(self, name: str) -> int | None:
        callback = self._callbacks.get(name)
        return None if callback is None else ctypes.cast(callback, ctypes.c_void_p).value


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No logger started yet in this process, as far as ``library`` knows; the log path."""
    monkeypatch.setattr(library, "_loggers_started", set())
    log = tmp_path / "sspi.log"
    monkeypatch.setenv("SSPI_LOG_PATH", str(log))
    return log


def test_loading_a_library_with_the_logger_starts_it_once(fresh: Path) -> None:
    provider = LoggingProvider()
    sspi_import.use_library(provider)
    assert provider.started == 1
    sspi_import.use_library(provider)  # loaded again: the same function, not again
    library.load(provider)
    assert provider.started == 1
    other = LoggingProvider()  # another library: its own logger
    sspi_import.use_library(other)
    assert other.started == 1


def test_without_sspi_log_path_it_is_not_called(
    fresh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # sspi-rs reads the variable in its one call: called without it, never again.
    monkeypatch.delenv("SSPI_LOG_PATH")
    provider = LoggingProvider()
    sspi_import.use_library(provider)
    assert provider.started == 0
    monkeypatch.setenv("SSPI_LOG_PATH", str(fresh))
    sspi_import.use_library(provider)  # set later: the next load starts it
    assert provider.started == 1


def test_an_empty_sspi_log_path_counts_as_unset(
    fresh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSPI_LOG_PATH", "")
    provider = LoggingProvider()
    sspi_import.use_library(provider)
    assert provider.started == 0


def test_a_library_without_the_logger_loads_as_before(fresh: Path) -> None:
    provider = LoggingProvider(logger=False)
    sspi_import.use_library(provider)
    assert not library.api().has("RustSspiSetupLogger")


def test_nothing_simulates_it() -> None:
    from sspi_import.testing import FakeSspi, FaultInjector

    fake = FakeSspi()
    assert fake.sspi_function_address("RustSspiSetupLogger") is None
    assert FaultInjector(fake).sspi_function_address("RustSspiSetupLogger") is None


# sspi-rs, in child processes ----------------------------------------------------------

FAIL_A_KERBEROS_LOGIN = textwrap.dedent(
    """
    import sspi_import
    print("imported", flush=True)
    identity = sspi_import.Identity("bob", "EXAMPLE.TEST", "pw")
    with sspi_import.Credentials.acquire("Kerberos", "outbound", identity) as creds:
        with sspi_import.SecurityContext.initiator(creds, "HTTP/localhost") as context:
            try:
                context.step(None)
            except sspi_import.NoAuthenticatingAuthorityError:
                print("failed as expected", flush=True)
    """
)


def run_child(
    code: str, env: dict[str, str], *args: str, module: bool = False
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", *args] if module else [sys.executable, "-c", code]
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def child_env(sspi_rs_path: Path, tmp_path: Path) -> Iterator[dict[str, str]]:
    """sspi-rs by SSPI_IMPORT_LIBRARY, a krb5.conf whose KDC refuses connections."""
    with closed_port() as port:
        conf = unreachable_krb5_conf(tmp_path / "krb5.conf", port)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SSPI_", "KRB5"))}
        env.update({"SSPI_IMPORT_LIBRARY": str(sspi_rs_path), "KRB5_CONFIG": str(conf)})
        yield env


def test_sspi_rs_writes_why_a_call_failed(child_env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "sspi.log"
    result = run_child(FAIL_A_KERBEROS_LOGIN, {**child_env, "SSPI_LOG_PATH": str(log)})
    assert result.returncode == 0, result.stderr
    # sspi-rs says where it logs on the C stdout: after the import, at the first call
    assert result.stdout.splitlines() == [
        "imported",
        f"[SSPI-DEBUG] SSPI_LOG_PATH = {log}",
        "failed as expected",
    ]
    text = log.read_text(encoding="utf-8", errors="replace")
    assert "NoAuthenticatingAuthority" in text  # errors only: SSPI_LOG_LEVEL is unset
    assert "Connection refused" in text


def test_import_alone_starts_nothing(child_env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "sspi.log"
    result = run_child("import sspi_import", {**child_env, "SSPI_LOG_PATH": str(log)})
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert not log.exists()  # this sspi-rs creates the file when its logger starts


def test_without_the_variable_sspi_rs_stays_silent(child_env: dict[str, str]) -> None:
    result = run_child(FAIL_A_KERBEROS_LOGIN, child_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["imported", "failed as expected"]


def test_the_command_lines_json_stays_clean(child_env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "sspi.log"
    env = {**child_env, "SSPI_LOG_PATH": str(log)}
    result = run_child("", env, "sspi_import", "packages", "--sspi-rs", "--json", module=True)
    assert result.returncode == 0, result.stdout + result.stderr
    answer = json.loads(result.stdout)  # the line sspi-rs prints went to stderr
    assert answer["ok"] is True
    assert f"[SSPI-DEBUG] SSPI_LOG_PATH = {log}" in result.stderr
    assert log.exists()
