"""Build and drive the C stand-in for the Windows SSPI export/import calls.

``tests/stub/sspistub.c`` exports ``ExportSecurityContext``,
``ImportSecurityContextW``, ``DeleteSecurityContext``, ``FreeContextBuffer`` and
``CloseHandle`` with the sspi.h C ABI, plus ``stub_*`` control and inspection
functions.  :func:`build_stub` compiles it with gcc and :class:`Stub` wraps the
loaded library.

Where the library comes from (:func:`stub_source` says which, the fixtures follow it):

- ``SSPI_IMPORT_STUB_LIBRARY`` (:data:`ENV_VAR`) names a prebuilt stub: it is loaded
  as it is, on any OS, and a stub that does not load is an error, not a skip (it was
  asked for).  The Wine lane cross-compiles ``sspistub.dll`` with mingw-w64 and names
  it here; so can anyone with a DLL built elsewhere.
- Otherwise :func:`build_stub` runs ``gcc``: on Linux and macOS with ``-pthread``; on
  Windows (MinGW gcc on ``PATH``, as on the GitHub runners) only when the compiler
  builds for this interpreter's architecture (``gcc -dumpmachine``), with
  ``-Wl,--kill-at`` for x86, whose SSPI is ``__stdcall`` exported under undecorated
  names.  On Windows the stub locks with kernel32's SRWLOCK, so no
  ``libwinpthread-1.dll`` is needed beside it.  Anything missing raises
  :class:`StubUnavailable` with the reason, and the tests that need the stub skip.

A library that builds but does not load also raises :class:`StubUnavailable`,
never a bare ``OSError``.

The stub's state is process-global per loaded library file: every
``ctypes.CDLL`` opened on the same path shares one set of counters, live
handles and buffers.  Call :meth:`Stub.reset` between tests.

Only the ``stub_*`` functions get prototypes on :attr:`Stub.lib`; the SSPI
entry points are left for the code under test (or a separate ``ctypes.CDLL``
on :attr:`Stub.path`) to declare, so two declarations never fight over the
same function object.
"""

from __future__ import annotations

import ctypes
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
from typing import Final

__all__ = [
    "ENV_VAR",
    "FUNCTIONS",
    "HANDLE_UPPER",
    "SOURCE",
    "UINTPTR",
    "SecBuffer",
    "SecHandle",
    "Stub",
    "StubUnavailable",
    "build_stub",
    "library_name",
    "sspi_entry_points",
    "stub_source",
    "windows_target",
]

SOURCE: Final = pathlib.Path(__file__).resolve().parent / "stub" / "sspistub.c"
"""Path of the stub's C source."""

FUNCTIONS: Final = frozenset(
    {
        "ExportSecurityContext",
        "ImportSecurityContextW",
        "DeleteSecurityContext",
        "FreeContextBuffer",
        "CloseHandle",
    }
)
"""SSPI entry points the stub counts and can fail on demand."""

HANDLE_UPPER: Final = 0x5EC5EC
"""``dwUpper`` of every handle the stub issues."""

PACKAGE_MAX: Final = 256
"""UTF-16 units of the package name the stub records."""

BLOB_HEAD_MAX: Final = 64
"""Bytes of the imported blob the stub records."""

UINTPTR = ctypes.c_uint64 if ctypes.sizeof(ctypes.c_void_p) == 8 else ctypes.c_uint32
"""Fixed-width ctypes integer type matching ``uintptr_t``/``ULONG_PTR``."""

_UINTPTR_MAX: Final = (1 << (8 * ctypes.sizeof(ctypes.c_void_p))) - 1

ENV_VAR: Final = "SSPI_IMPORT_STUB_LIBRARY"
"""Environment variable naming a prebuilt stub library to load instead of building one."""

_COMPILE_FLAGS: Final = ("-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-pthread")
# Windows: no -pthread (the stub locks with SRWLOCK) and libgcc linked in, so the DLL
# needs nothing but kernel32 and msvcrt beside it.
_WINDOWS_FLAGS: Final = ("-shared", "-O2", "-Wall", "-Werror", "-static-libgcc")
_COMPILE_TIMEOUT: Final = 120.0

# sysconfig.get_platform() of a Windows interpreter -> what `gcc -dumpmachine` must
# start with to build a DLL it can load, and the extra flags.
_WINDOWS_TARGETS: Final = {
    "win-amd64": ("x86_64-", ()),
    # sspi.h's SEC_ENTRY is __stdcall on x86; secur32 exports it undecorated.
    "win32": ("i686-", ("-Wl,--kill-at",)),
    "win-arm64": ("aarch64-", ()),
}


class StubUnavailable(RuntimeError):  # noqa: N818 - name fixed by the test API
    """The stub library cannot be built or loaded here (the tests that need it skip).

    Raised when no compiler for this interpreter is found or the compilation or the
    load fails; the message says why and what to do.
    """


class SecHandle(ctypes.Structure):
    """``SecHandle``/``CtxtHandle``: two ``ULONG_PTR`` words."""

    _fields_ = [("dwLower", UINTPTR), ("dwUpper", UINTPTR)]


class SecBuffer(ctypes.Structure):
    """``SecBuffer``: length, type and pointer of one buffer."""

    _fields_ = [
        ("cbBuffer", ctypes.c_uint32),
        ("BufferType", ctypes.c_uint32),
        ("pvBuffer", ctypes.c_void_p),
    ]


def library_name() -> str:
    """Return the platform's file name for the built stub library."""
    if sys.platform == "darwin":
        return "libsspistub.dylib"
    if sys.platform == "win32":
        return "sspistub.dll"
    return "libsspistub.so"


def windows_target() -> tuple[str, tuple[str, ...]]:
    """The ``gcc -dumpmachine`` prefix and extra flags for this Windows interpreter.

    Raises:
        StubUnavailable: an architecture the stub has no recipe for.
    """
    platform = sysconfig.get_platform()
    try:
        return _WINDOWS_TARGETS[platform]
    except KeyError:
        raise StubUnavailable(
            f"cannot build the SSPI stub for a {platform} interpreter: set {ENV_VAR} "
            "to a stub DLL built for it"
        ) from None


def stub_source() -> pathlib.Path | None:
    """The prebuilt stub named by :data:`ENV_VAR`, or ``None``: build one."""
    value = os.environ.get(ENV_VAR, "")
    return pathlib.Path(value) if value else None


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=_COMPILE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise StubUnavailable(f"cannot build the SSPI stub: running gcc failed: {exc}") from exc


def _compile_flags(gcc: str, target: tuple[str, tuple[str, ...]] | None) -> tuple[str, ...]:
    """The flags for this OS; on Windows, refuse a gcc that builds for another architecture."""
    if target is None:
        return _COMPILE_FLAGS
    prefix, extra = target
    machine = _run([gcc, "-dumpmachine"]).stdout.strip()
    if not machine.startswith(prefix):
        raise StubUnavailable(
            f"cannot build the SSPI stub for this {sysconfig.get_platform()} interpreter: "
            f"the gcc on PATH builds for {machine or 'an unknown target'} (a DLL of another "
            f"architecture does not load: WinError 193). Put a {prefix}w64-mingw32 gcc on "
            f"PATH, or set {ENV_VAR} to a stub DLL built for this interpreter"
        )
    return (*_WINDOWS_FLAGS, *extra)


def build_stub(directory: pathlib.Path) -> pathlib.Path:
    """Compile the stub into *directory* and return the library's path.

    Runs ``gcc -shared -fPIC -O2 -Wall -Werror -pthread`` off Windows; on Windows
    ``gcc -shared -O2 -Wall -Werror -static-libgcc`` (plus ``-Wl,--kill-at`` for x86)
    after checking that gcc builds for this interpreter's architecture.  An existing
    library in *directory* is overwritten.

    Raises:
        StubUnavailable: gcc is not on ``PATH``, could not be run, builds for another
            architecture, or the compilation failed (the compiler's output is in the
            message).
    """
    target = windows_target() if sys.platform == "win32" else None  # refused before any search
    gcc = shutil.which("gcc")
    if gcc is None:
        raise StubUnavailable(
            "cannot build the SSPI stub: gcc was not found on PATH"
            + (f" (or set {ENV_VAR} to a prebuilt stub DLL)" if target else "")
        )
    if not SOURCE.is_file():
        raise StubUnavailable(f"cannot build the SSPI stub: source {SOURCE} is missing")
    flags = _compile_flags(gcc, target)
    directory.mkdir(parents=True, exist_ok=True)
    output = directory / library_name()
    command = [gcc, *flags, "-o", str(output), str(SOURCE)]
    result = _run(command)
    if result.returncode != 0 or not output.is_file():
        details = (result.stderr or result.stdout).strip() or "(no compiler output)"
        raise StubUnavailable(
            f"cannot build the SSPI stub: gcc exited with status {result.returncode}\n"
            f"command: {' '.join(command)}\n{details}"
        )
    return output


def sspi_entry_points(path: pathlib.Path) -> ctypes.CDLL:
    """The stub at *path* loaded for its SSPI entry points, in sspi.h's convention.

    ``WinDLL`` on Windows (``__stdcall``, which only x86 tells apart), ``CDLL``
    elsewhere.  The ``stub_*`` functions are cdecl: :class:`Stub` loads those.
    """
    if sys.platform == "win32":
        return ctypes.WinDLL(str(path))
    return ctypes.CDLL(str(path))


def _to_int32(status: int) -> int:
    """Convert a status given as unsigned (``0x80090306``) or signed to int32."""
    if not -(1 << 31) <= status < (1 << 32):
        raise ValueError(f"status {status:#x} does not fit in 32 bits")
    return status - (1 << 32) if status >= (1 << 31) else status


def _function_name(function: str) -> bytes:
    """Validate an SSPI function name and encode it for ``c_char_p``."""
    if function not in FUNCTIONS:
        known = ", ".join(sorted(FUNCTIONS))
        raise ValueError(f"unknown SSPI function {function!r}; expected one of {known}")
    return function.encode("ascii")


class Stub:
    """The loaded stub library with Pythonic accessors for its control API."""

    def __init__(self, path: pathlib.Path) -> None:
        """Load the library at *path* (see :func:`build_stub`) and declare prototypes.

        Raises:
            StubUnavailable: the library could not be loaded (any ``OSError`` from
                the loader, such as a wrong architecture or a missing dependency).
        """
        self._path = pathlib.Path(path)
        try:
            self._lib = ctypes.CDLL(str(self._path))
        except OSError as exc:
            raise StubUnavailable(f"cannot load the SSPI stub {self._path}: {exc}") from exc
        self._declare()

    @classmethod
    def build(cls, directory: pathlib.Path) -> Stub:
        """Build the stub into *directory* and load it.

        Raises:
            StubUnavailable: the stub cannot be built or loaded here; the message says
                why.
        """
        return cls(build_stub(directory))

    @property
    def path(self) -> pathlib.Path:
        """Path of the loaded library file."""
        return self._path

    @property
    def lib(self) -> ctypes.CDLL:
        """The underlying ``ctypes.CDLL``."""
        return self._lib

    def _declare(self) -> None:
        """Give every ``stub_*`` export explicit argtypes and restype."""
        lib = self._lib
        i32, u32, i64 = ctypes.c_int32, ctypes.c_uint32, ctypes.c_int64
        handle_p = ctypes.POINTER(SecHandle)
        prototypes: dict[str, tuple[list[type[ctypes._CData]], type[ctypes._CData] | None]] = {
            "stub_reset": ([], None),
            "stub_fail": ([ctypes.c_char_p, i32, i32], None),
            "stub_calls": ([ctypes.c_char_p], i64),
            "stub_live_contexts": ([], i64),
            "stub_live_buffers": ([], i64),
            "stub_live_tokens": ([], i64),
            "stub_bad_frees": ([], i64),
            "stub_bad_closes": ([], i64),
            "stub_set_export_token": ([UINTPTR], None),
            "stub_set_export_payload": ([ctypes.c_char_p, u32], None),
            "stub_last_package": ([ctypes.POINTER(ctypes.c_uint16), i32], i32),
            "stub_last_blob_len": ([], u32),
            "stub_last_blob_ptr": ([], UINTPTR),
            "stub_last_blob_head": ([ctypes.POINTER(ctypes.c_uint8), i32], i32),
            "stub_last_token": ([], UINTPTR),
            "stub_last_flags": ([], u32),
            "stub_last_handle": ([handle_p], None),
            "stub_new_context": ([handle_p], None),
        }
        for name, (argtypes, restype) in prototypes.items():
            function = getattr(lib, name)
            function.argtypes = argtypes
            function.restype = restype

    def reset(self) -> None:
        """Forget all state: counters, handles, injections, settings; free buffers."""
        self._lib.stub_reset()

    def fail(self, function: str, status: int, times: int = 1) -> None:
        """Make the next *times* calls of *function* return *status* and do nothing else.

        *status* may be given unsigned (``0x80090306``); ``times <= 0`` cancels
        a pending injection.  For ``CloseHandle`` the status is the BOOL result.
        """
        if not -(1 << 31) <= times < (1 << 31):
            raise ValueError(f"times {times} does not fit in int32")
        self._lib.stub_fail(_function_name(function), _to_int32(status), times)

    def calls(self, function: str) -> int:
        """Number of calls of *function* since the last reset (injected failures included)."""
        return int(self._lib.stub_calls(_function_name(function)))

    def live_contexts(self) -> int:
        """Number of live security context handles."""
        return int(self._lib.stub_live_contexts())

    def live_buffers(self) -> int:
        """Number of exported packed buffers not yet passed to FreeContextBuffer."""
        return int(self._lib.stub_live_buffers())

    def live_tokens(self) -> int:
        """Number of exported tokens not yet passed to CloseHandle."""
        return int(self._lib.stub_live_tokens())

    def bad_frees(self) -> int:
        """FreeContextBuffer calls on pointers that were not outstanding."""
        return int(self._lib.stub_bad_frees())

    def bad_closes(self) -> int:
        """CloseHandle calls on values that were not outstanding tokens."""
        return int(self._lib.stub_bad_closes())

    def set_export_token(self, token: int) -> None:
        """Return *token* from later exports (0 means NULL, i.e. no token)."""
        if not 0 <= token <= _UINTPTR_MAX:
            raise ValueError(f"token {token:#x} does not fit in a pointer")
        self._lib.stub_set_export_token(token)

    def set_export_payload(self, data: bytes | None) -> None:
        """Use *data* as the packed context of later exports; ``None`` restores the default.

        The default payload is the 16 bytes of the exported handle followed by
        ASCII ``stub-context``.  ``b""`` makes exports return zero-length buffers.
        """
        if data is None:
            self._lib.stub_set_export_payload(None, 0)
            return
        if len(data) >= (1 << 32):
            raise ValueError("payload longer than 4 GiB")
        self._lib.stub_set_export_payload(bytes(data), len(data))

    def last_package(self) -> str:
        """Package name passed to the last ImportSecurityContextW (at most 256 units)."""
        buffer = (ctypes.c_uint16 * PACKAGE_MAX)()
        count = min(int(self._lib.stub_last_package(buffer, PACKAGE_MAX)), PACKAGE_MAX)
        raw = b"".join(unit.to_bytes(2, "little") for unit in buffer[:count])
        return raw.decode("utf-16-le", errors="surrogatepass")

    def last_blob_len(self) -> int:
        """``cbBuffer`` of the last imported blob."""
        return int(self._lib.stub_last_blob_len())

    def last_blob_ptr(self) -> int:
        """``pvBuffer`` address of the last imported blob (to check zero-copy)."""
        return int(self._lib.stub_last_blob_ptr())

    def last_blob_head(self) -> bytes:
        """Copy of the first up to 64 bytes of the last imported blob."""
        buffer = (ctypes.c_uint8 * BLOB_HEAD_MAX)()
        count = min(int(self._lib.stub_last_blob_head(buffer, BLOB_HEAD_MAX)), BLOB_HEAD_MAX)
        return bytes(buffer[:count])

    def last_token(self) -> int:
        """Token value passed to the last ImportSecurityContextW (0 for NULL)."""
        return int(self._lib.stub_last_token())

    def last_flags(self) -> int:
        """``fFlags`` of the last ExportSecurityContext."""
        return int(self._lib.stub_last_flags())

    def last_handle(self) -> tuple[int, int]:
        """``(dwLower, dwUpper)`` last passed to ExportSecurityContext or DeleteSecurityContext."""
        handle = SecHandle()
        self._lib.stub_last_handle(ctypes.byref(handle))
        return int(handle.dwLower), int(handle.dwUpper)

    def new_context(self) -> tuple[int, int]:
        """Issue a live handle as if a handshake had made it; returns ``(dwLower, dwUpper)``."""
        handle = SecHandle()
        self._lib.stub_new_context(ctypes.byref(handle))
        if handle.dwLower == 0:
            raise MemoryError("the stub could not allocate a new context")
        return int(handle.dwLower), int(handle.dwUpper)
