"""The C stub as a Windows DLL: cross-compiled with mingw-w64, exports checked.

The Wine lane loads the x86-64 DLL and runs every stub test on the Windows interpreter;
no x86 interpreter runs here, so what an x86 one needs is checked in the DLL itself:
``__stdcall`` entry points exported under their undecorated names (as secur32 exports
them: ``ImportSecurityContextW``, not ``ImportSecurityContextW@16``), and nothing but
kernel32 and msvcrt to load beside it (no ``libwinpthread-1.dll``). Needs the mingw-w64
cross compilers, which ``.ci/run`` installs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import stubs

# mingw-w64 target -> the Windows interpreter (sysconfig platform) it builds for.
TARGETS = {
    "x86_64-w64-mingw32": "win-amd64",
    "i686-w64-mingw32": "win32",
}
CONTROL = {
    "stub_reset",
    "stub_fail",
    "stub_calls",
    "stub_live_contexts",
    "stub_live_buffers",
    "stub_live_tokens",
    "stub_bad_frees",
    "stub_bad_closes",
    "stub_set_export_token",
    "stub_set_export_payload",
    "stub_last_package",
    "stub_last_blob_len",
    "stub_last_blob_ptr",
    "stub_last_blob_head",
    "stub_last_token",
    "stub_last_flags",
    "stub_last_handle",
    "stub_new_context",
}


def _tool(target: str, name: str) -> str:
    path = shutil.which(f"{target}-{name}")
    if path is None:
        pytest.skip(f"needs the mingw-w64 cross compiler {target}-{name} (.ci/run installs it)")
    return path


def _build(target: str, tmp_path: Path, extra: tuple[str, ...] = ()) -> tuple[Path, str]:
    gcc, objdump = _tool(target, "gcc"), _tool(target, "objdump")
    _, flags = stubs._WINDOWS_TARGETS[TARGETS[target]]
    dll = tmp_path / "sspistub.dll"
    command = [gcc, *stubs._WINDOWS_FLAGS, *flags, *extra, "-o", str(dll), str(stubs.SOURCE)]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    dump = subprocess.run(
        [objdump, "-p", str(dll)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    return dll, dump


def _exports(dump: str) -> set[str]:
    table = dump.split("[Ordinal/Name Pointer] Table", 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"\]\s+(\S+)", table))


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_stub_dll_exports_undecorated_names_and_needs_no_pthread_dll(
    target: str, tmp_path: Path
) -> None:
    _, dump = _build(target, tmp_path)
    assert _exports(dump) == set(stubs.FUNCTIONS) | CONTROL
    imported = {name.lower() for name in re.findall(r"DLL Name: (\S+)", dump)}
    assert imported == {"kernel32.dll", "msvcrt.dll"}


def test_without_kill_at_the_x86_entry_points_would_be_decorated(tmp_path: Path) -> None:
    """What --kill-at is for: the x86 stub's SSPI entry points really are __stdcall."""
    target = "i686-w64-mingw32"
    gcc = _tool(target, "gcc")
    objdump = _tool(target, "objdump")
    dll = tmp_path / "decorated.dll"
    flags = [*stubs._WINDOWS_FLAGS, "-o", str(dll), str(stubs.SOURCE)]
    subprocess.run([gcc, *flags], check=True, capture_output=True, timeout=120)
    dump = subprocess.run(
        [objdump, "-p", str(dll)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    exports = _exports(dump)
    # 4-byte arguments each: ImportSecurityContextW takes four, CloseHandle one.
    assert {"ImportSecurityContextW@16", "ExportSecurityContext@16", "CloseHandle@4"} <= exports
    assert "stub_reset" in exports  # the control functions stay cdecl, undecorated
