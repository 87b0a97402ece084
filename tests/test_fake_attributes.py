"""What a FakeSspi context answers (``testing/_attributes.py``): QueryContextAttributesW,
impersonation, the package list.
"""

from __future__ import annotations

import ctypes
from ctypes import POINTER, byref, c_uint32, c_void_p

import pytest

import sspi_import
from fake_raw import Raw, read_wide
from sspi_import import ImportedContext, library
from sspi_import._raw import constants as C  # noqa: N812
from sspi_import._raw.structs import (
    SecHandle,
    SecPkgContext_Flags,
    SecPkgContext_Lifespan,
    SecPkgContext_NegotiationInfoW,
    SecPkgContext_PackageInfoW,
    SecPkgContext_SessionKey,
    SecPkgContext_Sizes,
    SecPkgInfoW,
)
from sspi_import.testing import FakeSspi


def test_raw_attributes(fake: FakeSspi) -> None:
    raw = Raw()
    *handles, _ = raw.handshake("Negotiate")
    client, server = handles[2], handles[3]
    query = raw.api.QueryContextAttributesW

    sizes = SecPkgContext_Sizes()
    query(byref(server), C.SECPKG_ATTR_SIZES, byref(sizes))
    assert (sizes.cbMaxSignature, sizes.cbSecurityTrailer) == (32, 32)
    span = SecPkgContext_Lifespan()
    query(byref(server), C.SECPKG_ATTR_LIFESPAN, byref(span))
    assert span.tsExpiry - span.tsStart == 10 * 3600 * 10**7

    keys = []
    for handle in (client, server):
        key = SecPkgContext_SessionKey()
        query(byref(handle), C.SECPKG_ATTR_SESSION_KEY, byref(key))
        keys.append(ctypes.string_at(key.SessionKey, key.SessionKeyLength))
        raw.api.FreeContextBuffer(key.SessionKey)
    assert keys[0] == keys[1]
    assert len(keys[0]) == 16

    info = SecPkgContext_PackageInfoW()
    query(byref(server), C.SECPKG_ATTR_PACKAGE_INFO, byref(info))
    assert read_wide(info.PackageInfo.contents.Name) == "Negotiate"
    raw.api.FreeContextBuffer(ctypes.cast(info.PackageInfo, c_void_p))

    negotiation = SecPkgContext_NegotiationInfoW()
    query(byref(server), C.SECPKG_ATTR_NEGOTIATION_INFO, byref(negotiation))
    assert read_wide(negotiation.PackageInfo.contents.Name) == "NTLM"
    assert negotiation.NegotiationState == 0
    raw.api.FreeContextBuffer(ctypes.cast(negotiation.PackageInfo, c_void_p))

    flags = SecPkgContext_Flags()
    query(byref(client), C.SECPKG_ATTR_FLAGS, byref(flags))
    assert flags.Flags == 0
    with pytest.raises(sspi_import.UnsupportedFunctionError):
        query(byref(server), 0x7777, byref(flags))
    raw.close(*handles)


def test_negotiation_info_only_for_negotiate(fake: FakeSspi) -> None:
    raw = Raw()
    *handles, _ = raw.handshake("NTLM")
    negotiation = SecPkgContext_NegotiationInfoW()
    with pytest.raises(sspi_import.UnsupportedFunctionError):
        raw.api.QueryContextAttributesW(
            byref(handles[3]), C.SECPKG_ATTR_NEGOTIATION_INFO, byref(negotiation)
        )
    raw.close(*handles)


def test_packages(fake: FakeSspi) -> None:
    raw = Raw()
    count = c_uint32()
    infos = POINTER(SecPkgInfoW)()
    raw.api.EnumerateSecurityPackagesW(byref(count), byref(infos))
    names = [read_wide(infos[i].Name) for i in range(count.value)]
    assert names == ["NTLM", "Kerberos", "Negotiate"]
    assert infos[0].cbMaxToken == 2888
    raw.api.FreeContextBuffer(ctypes.cast(infos, c_void_p))


def test_imported_acceptor_impersonates_only_with_its_token(fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client, server, server.export() as exported:
        with ImportedContext.from_exported(exported) as imported, imported.impersonate():
            assert fake.impersonating == "EXAMPLE\\alice"
        with ImportedContext("NTLM", exported.blob) as tokenless:
            with pytest.raises(sspi_import.SspiError) as info, tokenless.impersonate():
                pass
            assert info.value.symbol == "SEC_E_NO_IMPERSONATION"


def test_unreverted_impersonation_is_a_leak() -> None:
    with FakeSspi() as fake:
        client, server = sspi_import.loopback("NTLM")
        raw = SecHandle(*server.detach())
        library.api().ImpersonateSecurityContext(byref(raw))
        assert fake.outstanding().impersonations == 1
        with pytest.raises(AssertionError, match="impersonation of"):
            fake.assert_no_leaks()
        library.api().RevertSecurityContext(byref(raw))
        library.api().DeleteSecurityContext(byref(raw))
        client.close()
        server.close()
        fake.assert_no_leaks()
