"""``processes.py``: ``start_python_child`` (the interpreter itself, not a venv's launcher) and the
pid checks every ``for_process`` makes (``target_pid``).
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

import sspi_import
from sspi_import import ExportedContext
from sspi_import.testing import FakeSspi


def test_start_python_child_bypasses_a_venv_launcher_on_windows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sspi_import import processes as module

    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(sys, "executable", r"C:\venv\Scripts\python.exe")
    monkeypatch.setattr(sys, "_base_executable", r"C:\Python313\python.exe", raising=False)
    executable, env = module._python_for_children({"KEEP": "1"})
    assert executable == r"C:\Python313\python.exe"
    assert env == {"KEEP": "1", "__PYVENV_LAUNCHER__": r"C:\venv\Scripts\python.exe"}
    monkeypatch.setattr(sys, "_base_executable", r"C:\venv\Scripts\python.exe")
    assert module._python_for_children(None) == (r"C:\venv\Scripts\python.exe", None)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(sys, "_base_executable", "/usr/bin/python3")
    assert module._python_for_children(None) == (r"C:\venv\Scripts\python.exe", None)
    with pytest.raises(TypeError, match="sequence of arguments"):
        module.start_python_child("-c pass")


class _NotStarted:
    pid: int | None = None


def test_for_process_arguments(fake: FakeSspi) -> None:
    exported = ExportedContext("NTLM", b"blob")
    with pytest.raises(ValueError, match="not started"):
        exported.for_process(_NotStarted())
    with pytest.raises(TypeError, match="pid"):
        exported.for_process("1234")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="pid"):
        exported.for_process(True)
    with pytest.raises(ValueError, match="not a process id"):
        exported.for_process(0)


@pytest.mark.parametrize("kwargs", [{"shell": True}, {"executable": "/bin/sh"}])
def test_start_python_child_refuses_what_would_change_its_pid(kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="is the interpreter's"):
        sspi_import.start_python_child(["-c", "pass"], **kwargs)
