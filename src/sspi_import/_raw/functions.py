"""Prototypes of every SSPI (and kernel32) call the library makes, declared once.

Each line reads like the C header, and says two more things about the function:

- ``result``: how its return value is checked. ``"status"`` (a ``SECURITY_STATUS``:
  negative is a failure), ``"win32"`` (a kernel32 ``BOOL`` or ``HANDLE``: zero is a
  failure, the reason in the thread's last error) or ``"none"`` (nothing to check:
  ``GetCurrentProcess``). The public layer turns this into the one check every call
  goes through (``sspi_import.errors.CHECKS``); nothing here raises.
- ``handle``: what kind of handle it works on, for the log record of each call.

``_proto`` builds the function type with ``WINFUNCTYPE`` where the platform has
stdcall (``SEC_ENTRY`` is ``__stdcall`` on x86 Windows) and ``CFUNCTYPE`` elsewhere.
Binding to a library happens in ``sspi_import.library``.
"""

from __future__ import annotations

import ctypes
from _ctypes import CFuncPtr  # ctypes._CFuncPtr: the base CDLL's own functions use
from collections.abc import Callable
from ctypes import POINTER, c_int32, c_void_p
from typing import Any, Literal, NamedTuple

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

__all__ = ["FUNCTYPE", "PROTOTYPES", "PROVIDER_EXTRAS", "Proto", "Result"]

FUNCTYPE: Callable[..., type[Any]] = getattr(ctypes, "WINFUNCTYPE", ctypes.CFUNCTYPE)

BOOL = c_int32
HANDLE = c_void_p

Result = Literal["status", "win32", "none"]


class Proto(NamedTuple):
    """One declared C function: its names, its ctypes type, how its result is checked.

    ``kernel32``: looked up in kernel32 on Windows when the SSPI library lacks it.
    """

    name: str
    symbol: str
    functype: type[Any]
    result: Result
    handle: str
    kernel32: bool = False


def _proto(
    name: str,
    restype: Any,
    argtypes: tuple[Any, ...],
    *,
    handle: str,
    kernel32: bool = False,
    result: Result | None = None,
) -> Proto:
    if kernel32 and hasattr(ctypes, "WINFUNCTYPE"):
        # A prototype built as FUNCTYPE(...)((name, dll)) ignores the DLL's own
        # use_last_error: the flag must be on the function type (CPython ctypes docs).
        functype = ctypes.WINFUNCTYPE(restype, *argtypes, use_last_error=True)
    else:
        functype = FUNCTYPE(restype, *argtypes)
    if result is None:  # SSPI returns a SECURITY_STATUS; kernel32 a BOOL or HANDLE
        result = "win32" if kernel32 else "status"
    return Proto(name, name, functype, result, handle, kernel32)


def _bare(declared: Proto) -> Proto:
    """``<name>_bare``: the same C function (restype, calling convention), no argtypes.

    For the hot paths only (the message calls, and the import, whose ``SecBuffer`` is
    then a ``struct``-packed ``bytes``: ctypes passes a ``bytes`` as the address of its
    data): with argtypes, ctypes makes a Python-level ``from_param`` call per argument,
    a third of a 64-byte encrypt+decrypt. Nothing is
    converted, so the caller passes exactly what C expects (``byref()`` for a pointer,
    an ``int`` only for a 32-bit integer, ``None`` for NULL). The declared prototype
    stays the one the ABI tests hold against the headers; the result is checked as
    the declared one's.
    """
    functype = declared.functype
    attributes = {"_flags_": functype._flags_, "_restype_": functype._restype_}
    bare = type(f"{declared.name}_bare", (CFuncPtr,), attributes)
    return declared._replace(name=f"{declared.name}_bare", functype=bare)


PCtxtHandle = POINTER(CtxtHandle)
PCredHandle = POINTER(CredHandle)
PSecBuffer = POINTER(SecBuffer)
PSecBufferDesc = POINTER(SecBufferDesc)
PULONG = POINTER(ULONG)
PTimeStamp = POINTER(TimeStamp)
LPWSTR = c_void_p  # UTF-16LE, NUL-terminated: passed as bytes, never c_wchar_p
CONTEXT, CREDENTIALS, BUFFER, TOKEN, PROCESS = (
    "context",
    "credentials",
    "buffer",
    "token",
    "process",
)

_IMPORT = _proto(
    "ImportSecurityContextW",
    SECURITY_STATUS,
    (LPWSTR, PSecBuffer, c_void_p, PCtxtHandle),
    handle=CONTEXT,
)
_ENCRYPT = _proto(
    "EncryptMessage", SECURITY_STATUS, (PCtxtHandle, ULONG, PSecBufferDesc, ULONG), handle=CONTEXT
)
_DECRYPT = _proto(
    "DecryptMessage", SECURITY_STATUS, (PCtxtHandle, PSecBufferDesc, ULONG, PULONG), handle=CONTEXT
)

PROTOTYPES: dict[str, Proto] = {
    p.name: p
    for p in (
        # context export/import family
        _proto(
            "ExportSecurityContext",
            SECURITY_STATUS,
            (PCtxtHandle, ULONG, PSecBuffer, POINTER(c_void_p)),
            handle=CONTEXT,
        ),
        _IMPORT,
        _bare(_IMPORT),  # ImportSecurityContextW_bare: its SecBuffer packed by struct
        _proto("DeleteSecurityContext", SECURITY_STATUS, (PCtxtHandle,), handle=CONTEXT),
        _proto("FreeContextBuffer", SECURITY_STATUS, (c_void_p,), handle=BUFFER),
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
            handle=CREDENTIALS,
        ),
        _proto("FreeCredentialsHandle", SECURITY_STATUS, (PCredHandle,), handle=CREDENTIALS),
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
            handle=CONTEXT,
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
            handle=CONTEXT,
        ),
        _proto("CompleteAuthToken", SECURITY_STATUS, (PCtxtHandle, PSecBufferDesc), handle=CONTEXT),
        _proto(
            "SetCredentialsAttributesW",
            SECURITY_STATUS,
            (PCredHandle, ULONG, c_void_p, ULONG),
            handle=CREDENTIALS,
        ),
        # using a context
        _proto(
            "QueryContextAttributesW",
            SECURITY_STATUS,
            (PCtxtHandle, ULONG, c_void_p),
            handle=CONTEXT,
        ),
        _proto(
            "MakeSignature",
            SECURITY_STATUS,
            (PCtxtHandle, ULONG, PSecBufferDesc, ULONG),
            handle=CONTEXT,
        ),
        _proto(
            "VerifySignature",
            SECURITY_STATUS,
            (PCtxtHandle, PSecBufferDesc, ULONG, PULONG),
            handle=CONTEXT,
        ),
        _ENCRYPT,
        _bare(_ENCRYPT),  # EncryptMessage_bare and DecryptMessage_bare: see _bare
        _DECRYPT,
        _bare(_DECRYPT),
        _proto("ImpersonateSecurityContext", SECURITY_STATUS, (PCtxtHandle,), handle=CONTEXT),
        _proto("RevertSecurityContext", SECURITY_STATUS, (PCtxtHandle,), handle=CONTEXT),
        _proto(
            "QuerySecurityContextToken",
            SECURITY_STATUS,
            (PCtxtHandle, POINTER(HANDLE)),
            handle=CONTEXT,
        ),
        # packages
        _proto(
            "EnumerateSecurityPackagesW",
            SECURITY_STATUS,
            (PULONG, POINTER(POINTER(SecPkgInfoW))),
            handle="package list",
        ),
        # kernel32: tokens that ExportSecurityContext hands out
        _proto("CloseHandle", BOOL, (HANDLE,), handle=TOKEN, kernel32=True),
        _proto("GetCurrentProcess", HANDLE, (), handle=PROCESS, kernel32=True, result="none"),
        _proto(
            "OpenProcess",
            HANDLE,
            (ctypes.c_uint32, BOOL, ctypes.c_uint32),
            handle=PROCESS,
            kernel32=True,
        ),
        _proto(
            "DuplicateHandle",
            BOOL,
            (HANDLE, HANDLE, HANDLE, POINTER(HANDLE), ctypes.c_uint32, BOOL, ctypes.c_uint32),
            handle=TOKEN,
            kernel32=True,
        ),
        # sspi-rs: void RustSspiSetupLogger(void), extern "system"; nothing to check
        _proto("RustSspiSetupLogger", None, (), handle=PROCESS, result="none"),
    )
}

PROVIDER_EXTRAS = frozenset({"RustSspiSetupLogger"})
"""Functions one provider offers beyond the SSPI: used only where the library exports them.

sspi-rs's ``RustSspiSetupLogger`` starts its logger (``SSPI_LOG_PATH``); secur32 and the
simulated provider have no such function, and nothing simulates it.
"""
