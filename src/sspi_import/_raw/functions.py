"""Prototypes of every SSPI (and kernel32) call the library makes, declared once.

Each line reads like the C header. ``_proto`` builds the function type with
``WINFUNCTYPE`` where the platform has stdcall (``SEC_ENTRY`` is ``__stdcall`` on x86
Windows) and ``CFUNCTYPE`` elsewhere, and names the ``errcheck`` that turns a failed
status into a typed exception. Binding to a library happens in ``loader``.
"""

from __future__ import annotations

import ctypes
from _ctypes import CFuncPtr  # ctypes._CFuncPtr: the base CDLL's own functions use
from collections.abc import Callable
from ctypes import POINTER, c_int32, c_void_p
from typing import Any, NamedTuple

from ..errors import error_from_status
from .structs import (
    SECURITY_STATUS,
    ULONG,
    CredHandle,
    CtxtHandle,
    SecBuffer,
    SecBufferDesc,
    SecPkgInfoW,
    TimeStamp,
)

__all__ = ["FUNCTYPE", "PROTOTYPES", "Proto", "free_buffer"]

FUNCTYPE: Callable[..., type[Any]] = getattr(ctypes, "WINFUNCTYPE", ctypes.CFUNCTYPE)

BOOL = c_int32
HANDLE = c_void_p
Errcheck = Callable[[Any, Any, tuple[Any, ...]], Any]


def check_status(result: int, func: Any, args: tuple[Any, ...]) -> int:
    """Raise the typed error for a failed ``SECURITY_STATUS``; pass success codes on."""
    if result < 0:
        raise error_from_status(result, func.__name__)
    return result


def check_bool(result: int, func: Any, args: tuple[Any, ...]) -> int:
    """Raise ``OSError`` for a kernel32 ``BOOL`` failure, with the thread's last error."""
    if not result:
        get_last_error = getattr(ctypes, "get_last_error", None)
        code = get_last_error() if get_last_error is not None else 0
        raise OSError(0, f"{func.__name__} failed (Windows error {code})", None, code or None)
    return result


def free_buffer(lib: Any, pointer: Any) -> None:
    """``FreeContextBuffer(pointer)``, its status checked (the prototype has no errcheck)."""
    status = lib.FreeContextBuffer(pointer)
    if status < 0:
        raise error_from_status(status, "FreeContextBuffer")


class Proto(NamedTuple):
    """One declared C function: its name, ctypes function type and errcheck."""

    name: str
    functype: type[Any]
    errcheck: Errcheck | None
    kernel32: bool = False

    def bare(self) -> type[Any]:
        """The same C function (restype, calling convention) with no argtypes.

        For the per-message hot path only (``Api``'s ``<name>_bare`` attributes): with
        argtypes, ctypes makes a Python-level ``from_param`` call per argument, a third
        of a 64-byte encrypt+decrypt. Nothing is converted or checked, so the caller
        passes exactly what C expects (``byref()`` for a pointer, an ``int`` only for a
        32-bit integer, ``None`` for NULL) and checks the status itself. The declared
        prototype stays the one the ABI tests hold against the headers.
        """
        made = _BARE_TYPES.get(self.name)
        if made is None:  # one type per function: ctypes types live as long as the process
            attributes = {"_flags_": self.functype._flags_, "_restype_": self.functype._restype_}
            made = _BARE_TYPES[self.name] = type(f"{self.name}_bare", (CFuncPtr,), attributes)
        return made


_BARE_TYPES: dict[str, type[Any]] = {}


def _proto(
    name: str,
    restype: Any,
    argtypes: tuple[Any, ...],
    errcheck: Errcheck | None = check_status,
    *,
    kernel32: bool = False,
) -> Proto:
    return Proto(name, FUNCTYPE(restype, *argtypes), errcheck, kernel32)


PCtxtHandle = POINTER(CtxtHandle)
PCredHandle = POINTER(CredHandle)
PSecBuffer = POINTER(SecBuffer)
PSecBufferDesc = POINTER(SecBufferDesc)
PULONG = POINTER(ULONG)
PTimeStamp = POINTER(TimeStamp)
LPWSTR = c_void_p  # UTF-16LE, NUL-terminated: passed as bytes, never c_wchar_p

PROTOTYPES: dict[str, Proto] = {
    p.name: p
    for p in (
        # context export/import family. Export and FreeContextBuffer have no errcheck:
        # export_context checks the export's status inline and frees through
        # free_buffer() (the errcheck round trip is a measurable share of an export).
        _proto(
            "ExportSecurityContext",
            SECURITY_STATUS,
            (PCtxtHandle, ULONG, PSecBuffer, POINTER(c_void_p)),
            None,
        ),
        _proto(
            "ImportSecurityContextW",
            SECURITY_STATUS,
            (LPWSTR, PSecBuffer, c_void_p, PCtxtHandle),
        ),
        _proto("DeleteSecurityContext", SECURITY_STATUS, (PCtxtHandle,)),
        _proto("FreeContextBuffer", SECURITY_STATUS, (c_void_p,), None),
        # credentials and handshake
        _proto(
            "AcquireCredentialsHandleW",
            SECURITY_STATUS,
            (
                LPWSTR,
                LPWSTR,
                ULONG,
                c_void_p,
                c_void_p,
                c_void_p,
                c_void_p,
                PCredHandle,
                PTimeStamp,
            ),
        ),
        _proto("FreeCredentialsHandle", SECURITY_STATUS, (PCredHandle,)),
        _proto(
            "InitializeSecurityContextW",
            SECURITY_STATUS,
            (
                PCredHandle,
                PCtxtHandle,
                LPWSTR,
                ULONG,
                ULONG,
                ULONG,
                PSecBufferDesc,
                ULONG,
                PCtxtHandle,
                PSecBufferDesc,
                PULONG,
                PTimeStamp,
            ),
        ),
        _proto(
            "AcceptSecurityContext",
            SECURITY_STATUS,
            (
                PCredHandle,
                PCtxtHandle,
                PSecBufferDesc,
                ULONG,
                ULONG,
                PCtxtHandle,
                PSecBufferDesc,
                PULONG,
                PTimeStamp,
            ),
        ),
        _proto("CompleteAuthToken", SECURITY_STATUS, (PCtxtHandle, PSecBufferDesc)),
        # using a context
        _proto("QueryContextAttributesW", SECURITY_STATUS, (PCtxtHandle, ULONG, c_void_p)),
        _proto("MakeSignature", SECURITY_STATUS, (PCtxtHandle, ULONG, PSecBufferDesc, ULONG)),
        _proto("VerifySignature", SECURITY_STATUS, (PCtxtHandle, PSecBufferDesc, ULONG, PULONG)),
        _proto("EncryptMessage", SECURITY_STATUS, (PCtxtHandle, ULONG, PSecBufferDesc, ULONG)),
        _proto("DecryptMessage", SECURITY_STATUS, (PCtxtHandle, PSecBufferDesc, ULONG, PULONG)),
        _proto("ImpersonateSecurityContext", SECURITY_STATUS, (PCtxtHandle,)),
        _proto("RevertSecurityContext", SECURITY_STATUS, (PCtxtHandle,)),
        # packages
        _proto(
            "EnumerateSecurityPackagesW",
            SECURITY_STATUS,
            (PULONG, POINTER(POINTER(SecPkgInfoW))),
        ),
        _proto(
            "QuerySecurityPackageInfoW",
            SECURITY_STATUS,
            (LPWSTR, POINTER(POINTER(SecPkgInfoW))),
        ),
        # kernel32: tokens that ExportSecurityContext hands out
        _proto("CloseHandle", BOOL, (HANDLE,), check_bool, kernel32=True),
        _proto("GetCurrentProcess", HANDLE, (), None, kernel32=True),
        _proto(
            "OpenProcess",
            HANDLE,
            (ctypes.c_uint32, BOOL, ctypes.c_uint32),
            check_bool,
            kernel32=True,
        ),
        _proto(
            "DuplicateHandle",
            BOOL,
            (HANDLE, HANDLE, HANDLE, POINTER(HANDLE), ctypes.c_uint32, BOOL, ctypes.c_uint32),
            check_bool,
            kernel32=True,
        ),
    )
}
