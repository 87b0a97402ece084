"""ctypes mirrors of the sspi.h structures, under their C names and C field names.

Only explicit-width types: ``ctypes.wintypes.ULONG`` is 8 bytes on 64-bit Linux and
would silently shift every field after it there. ``ULONG`` is 32 bits on Windows at
every width; pointer-sized fields follow the interpreter (x64, x86, arm64).
``tests/test_abi.py`` holds these layouts against a table generated from the SDK headers.
"""

from __future__ import annotations

import ctypes
from ctypes import POINTER, Structure, c_int32, c_int64, c_uint16, c_uint32, c_void_p

__all__ = [
    "LONG",
    "POINTER_BYTES",
    "PVOID",
    "SECURITY_STATUS",
    "SEC_CHANNEL_BINDINGS",
    "SEC_WINNT_AUTH_IDENTITY_EXW",
    "SEC_WINNT_AUTH_IDENTITY_W",
    "ULONG",
    "ULONG_PTR",
    "USHORT",
    "CredHandle",
    "CtxtHandle",
    "SecBuffer",
    "SecBufferDesc",
    "SecHandle",
    "SecPkgContext_Flags",
    "SecPkgContext_Lifespan",
    "SecPkgContext_NamesW",
    "SecPkgContext_NegotiationInfoW",
    "SecPkgContext_PackageInfoW",
    "SecPkgContext_SessionKey",
    "SecPkgContext_Sizes",
    "SecPkgCredentials_KdcProxySettingsW",
    "SecPkgInfoW",
    "TimeStamp",
]

ULONG = c_uint32
LONG = c_int32
USHORT = c_uint16
PVOID = c_void_p
SECURITY_STATUS = c_int32  # LONG in the headers; the public API speaks unsigned
POINTER_BYTES = ctypes.sizeof(c_void_p)  # 8 on x64 and arm64, 4 on x86
ULONG_PTR = ctypes.c_uint64 if POINTER_BYTES == 8 else c_uint32
# SECURITY_INTEGER is a LARGE_INTEGER: 100 ns ticks since 1601 (FILETIME scale).
TimeStamp = c_int64
# SEC_WCHAR * is a UTF-16 pointer; kept as void* so ctypes never decodes it as UTF-32.
PSEC_WCHAR = c_void_p


class SecHandle(Structure):
    """``SecHandle``: the two pointer-sized words that name a context or credential."""

    _fields_ = [("dwLower", ULONG_PTR), ("dwUpper", ULONG_PTR)]

    def __repr__(self) -> str:
        return f"SecHandle(dwLower={self.dwLower:#x}, dwUpper={self.dwUpper:#x})"


CtxtHandle = SecHandle
CredHandle = SecHandle


class SecBuffer(Structure):
    """``SecBuffer``: one typed buffer handed to or returned by SSPI."""

    _fields_ = [("cbBuffer", ULONG), ("BufferType", ULONG), ("pvBuffer", PVOID)]


class SecBufferDesc(Structure):
    """``SecBufferDesc``: an array of ``SecBuffer`` with its version."""

    _fields_ = [("ulVersion", ULONG), ("cBuffers", ULONG), ("pBuffers", POINTER(SecBuffer))]


class SEC_WINNT_AUTH_IDENTITY_W(Structure):  # noqa: N801 - C name
    """``SEC_WINNT_AUTH_IDENTITY_W``: explicit user, domain and password (UTF-16)."""

    _fields_ = [
        ("User", PSEC_WCHAR),
        ("UserLength", ULONG),
        ("Domain", PSEC_WCHAR),
        ("DomainLength", ULONG),
        ("Password", PSEC_WCHAR),
        ("PasswordLength", ULONG),
        ("Flags", ULONG),
    ]


class SecPkgInfoW(Structure):
    """``SecPkgInfoW``: one security package as ``EnumerateSecurityPackagesW`` lists it."""

    _fields_ = [
        ("fCapabilities", ULONG),
        ("wVersion", USHORT),
        ("wRPCID", USHORT),
        ("cbMaxToken", ULONG),
        ("Name", PSEC_WCHAR),
        ("Comment", PSEC_WCHAR),
    ]


class SecPkgContext_NamesW(Structure):  # noqa: N801 - C name
    """``SECPKG_ATTR_NAMES``: the user name, buffer owned by SSPI."""

    _fields_ = [("sUserName", PSEC_WCHAR)]


class SecPkgContext_Sizes(Structure):  # noqa: N801 - C name
    """``SECPKG_ATTR_SIZES``: token, signature, block and trailer sizes."""

    _fields_ = [
        ("cbMaxToken", ULONG),
        ("cbMaxSignature", ULONG),
        ("cbBlockSize", ULONG),
        ("cbSecurityTrailer", ULONG),
    ]


class SecPkgContext_Lifespan(Structure):  # noqa: N801 - C name
    """``SECPKG_ATTR_LIFESPAN``: start and expiry as FILETIME ticks."""

    _fields_ = [("tsStart", TimeStamp), ("tsExpiry", TimeStamp)]


class SecPkgContext_SessionKey(Structure):  # noqa: N801 - C name
    """``SECPKG_ATTR_SESSION_KEY``: the session key, buffer owned by SSPI."""

    _fields_ = [("SessionKeyLength", ULONG), ("SessionKey", PVOID)]


class SecPkgContext_PackageInfoW(Structure):  # noqa: N801 - C name
    """``SECPKG_ATTR_PACKAGE_INFO``: the package of a context, buffer owned by SSPI."""

    _fields_ = [("PackageInfo", POINTER(SecPkgInfoW))]


class SecPkgContext_NegotiationInfoW(Structure):  # noqa: N801 - C name
    """``SECPKG_ATTR_NEGOTIATION_INFO``: the package Negotiate chose, and its state."""

    _fields_ = [("PackageInfo", POINTER(SecPkgInfoW)), ("NegotiationState", ULONG)]


class SecPkgContext_Flags(Structure):  # noqa: N801 - C name
    """``SECPKG_ATTR_FLAGS``: the context attribute flags granted."""

    _fields_ = [("Flags", ULONG)]


class SEC_CHANNEL_BINDINGS(Structure):  # noqa: N801 - C name
    """``SEC_CHANNEL_BINDINGS``: the header of a channel-bindings block.

    Offsets are from the start of this header; the addresses and application data follow
    it in the same contiguous buffer (a ``SECBUFFER_CHANNEL_BINDINGS`` ``SecBuffer``).
    """

    _fields_ = [
        ("dwInitiatorAddrType", ULONG),
        ("cbInitiatorLength", ULONG),
        ("dwInitiatorOffset", ULONG),
        ("dwAcceptorAddrType", ULONG),
        ("cbAcceptorLength", ULONG),
        ("dwAcceptorOffset", ULONG),
        ("cbApplicationDataLength", ULONG),
        ("dwApplicationDataOffset", ULONG),
    ]


class SEC_WINNT_AUTH_IDENTITY_EXW(Structure):  # noqa: N801 - C name
    """``SEC_WINNT_AUTH_IDENTITY_EXW``: an identity plus a Negotiate package list (UTF-16)."""

    _fields_ = [
        ("Version", ULONG),
        ("Length", ULONG),
        ("User", PSEC_WCHAR),
        ("UserLength", ULONG),
        ("Domain", PSEC_WCHAR),
        ("DomainLength", ULONG),
        ("Password", PSEC_WCHAR),
        ("PasswordLength", ULONG),
        ("Flags", ULONG),
        ("PackageList", PSEC_WCHAR),
        ("PackageListLength", ULONG),
    ]


class SecPkgCredentials_KdcProxySettingsW(Structure):  # noqa: N801 - C name
    """``SECPKG_CRED_ATTR_KDC_PROXY_SETTINGS``: the header of a KDC proxy settings block.

    Offsets are from the start of this header and lengths are in bytes; the UTF-16 proxy
    server name (and the optional client TLS credential) follow it in the same buffer,
    whose whole size is ``SetCredentialsAttributesW``'s ``cbBuffer``.
    """

    _fields_ = [
        ("Version", ULONG),
        ("Flags", ULONG),
        ("ProxyServerOffset", USHORT),
        ("ProxyServerLength", USHORT),
        ("ClientTlsCredOffset", USHORT),
        ("ClientTlsCredLength", USHORT),
    ]
