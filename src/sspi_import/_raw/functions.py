"""Prototypes of every SSPI (and kernel32) call the library makes, declared once.

Each line reads like the C header. ``_proto`` builds the function type with
``WINFUNCTYPE`` where the platform has stdcall (``SEC_ENTRY`` is ``__stdcall`` on x86
Windows) and ``CFUNCTYPE`` elsewhere. Nothing here checks a status: every caller hands
the result to ``sspi_import.errors.check`` (or ``check_win32`` for kernel32's ``BOOL``
and ``HANDLE`` results), the one place statuses become exceptions. Binding to a
library happens in ``loader``.
"""

from __future__ import annotations

import ctypes
from _ctypes import CFuncPtr  # ctypes._CFuncPtr: the base CDLL's own functions use
from collections.abc import Callable
from ctypes import POINTER, c_int32, c_void_p
from typing import Any, NamedTuple

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

__all__ = ["FUNCTYPE", "PROTOTYPES", "Proto"]

FUNCTYPE: Callable[..., type[Any]] = getattr(ctypes, "WINFUNCTYPE", ctypes.CFUNCTYPE)

BOOL = c_int32
HANDLE = c_void_p


class Proto(NamedTuple):
    """One declared C function: the attribute name, the exported symbol, its ctypes type.

    ``kernel32``: looked up in kernel32 on Windows when the SSPI library lacks it.
    """

    name: str
    symbol: str
    functype: type[Any]
    kernel32: bool = False


def _proto(name: str, restype: Any, argtypes: tuple[Any, ...], *, kernel32: bool = False) -> Proto:
    if kernel32 and hasattr(ctypes, "WINFUNCTYPE"):
        # A prototype built as FUNCTYPE(...)((name, dll)) ignores the DLL's own
        # use_last_error: the flag must be on the function type (CPython ctypes docs).
        functype = ctypes.WINFUNCTYPE(restype, *argtypes, use_last_error=True)
    else:
        functype = FUNCTYPE(restype, *argtypes)
    return Proto(name, name, functype, kernel32)


def _bare(declared: Proto) -> Proto:
    """``<name>_bare``: the same C function (restype, calling convention), no argtypes.

    For the per-message hot path only: with argtypes, ctypes makes a Python-level
    ``from_param`` call per argument, a third of a 64-byte encrypt+decrypt. Nothing is
    converted, so the caller passes exactly what C expects (``byref()`` for a pointer,
    an ``int`` only for a 32-bit integer, ``None`` for NULL). The declared prototype
    stays the one the ABI tests hold against the headers.
    """
    functype = declared.functype
    attributes = {"_flags_": functype._flags_, "_restype_": functype._restype_}
    bare = type(f"{declared.name}_bare", (CFuncPtr,), attributes)
    return Proto(f"{declared.name}_bare", declared.symbol, bare, declared.kernel32)


PCtxtHandle = POINTER(CtxtHandle)
PCredHandle = POINTER(CredHandle)
PSecBuffer = POINTER(SecBuffer)
PSecBufferDesc = POINTER(SecBufferDesc)
PULONG = POINTER(ULONG)
PTimeStamp = POINTER(TimeStamp)
LPWSTR = c_void_p  # UTF-16LE, NUL-terminated: passed as bytes, never c_wchar_p

_ENCRYPT = _proto("EncryptMessage", SECURITY_STATUS, (PCtxtHandle, ULONG, PSecBufferDesc, ULONG))
_DECRYPT = _proto("DecryptMessage", SECURITY_STATUS, (PCtxtHandle, PSecBufferDesc, ULONG, PULONG))

PROTOTYPES: dict[str, Proto] = {
    p.name: p
    for p in (
        # context export/import family
        _proto(
            "ExportSecurityContext",
            SECURITY_STATUS,
            (PCtxtHandle, ULONG, PSecBuffer, POINTER(c_void_p)),
        ),
        _proto(
            "ImportSecurityContextW",
            SECURITY_STATUS,
            (LPWSTR, PSecBuffer, c_void_p, PCtxtHandle),
        ),
        _proto("DeleteSecurityContext", SECURITY_STATUS, (PCtxtHandle,)),
        _proto("FreeContextBuffer", SECURITY_STATUS, (c_void_p,)),
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
        _ENCRYPT,
        _bare(_ENCRYPT),  # EncryptMessage_bare and DecryptMessage_bare: see _bare
        _DECRYPT,
        _bare(_DECRYPT),
        _proto("ImpersonateSecurityContext", SECURITY_STATUS, (PCtxtHandle,)),
        _proto("RevertSecurityContext", SECURITY_STATUS, (PCtxtHandle,)),
        # packages
        _proto(
            "EnumerateSecurityPackagesW",
            SECURITY_STATUS,
            (PULONG, POINTER(POINTER(SecPkgInfoW))),
        ),
        # kernel32: tokens that ExportSecurityContext hands out
        _proto("CloseHandle", BOOL, (HANDLE,), kernel32=True),
        _proto("GetCurrentProcess", HANDLE, (), kernel32=True),
        _proto(
            "OpenProcess",
            HANDLE,
            (ctypes.c_uint32, BOOL, ctypes.c_uint32),
            kernel32=True,
        ),
        _proto(
            "DuplicateHandle",
            BOOL,
            (HANDLE, HANDLE, HANDLE, POINTER(HANDLE), ctypes.c_uint32, BOOL, ctypes.c_uint32),
            kernel32=True,
        ),
    )
}
