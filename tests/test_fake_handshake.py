"""FakeSspi's credentials and handshake (``testing/_handshake.py``): AcquireCredentialsHandleW to
CompleteAuthToken, at the ctypes level and through the public API.
"""

from __future__ import annotations

import ctypes
import gc
from ctypes import byref

import pytest

import sspi_import
from fake_raw import ALLOCATE, CONTINUE_NEEDED, Raw, read_wide, wide
from sspi_import._raw import constants as C  # noqa: N812
from sspi_import._raw.structs import (
    SEC_WINNT_AUTH_IDENTITY_W,
    SecBuffer,
    SecHandle,
    SecPkgContext_NamesW,
)
from sspi_import.testing import FakeSspi


@pytest.mark.parametrize("allocate", [False, True])
def test_raw_handshake(fake: FakeSspi, allocate: bool) -> None:
    raw = Raw()
    *handles, statuses = raw.handshake(allocate=allocate)
    assert statuses == [CONTINUE_NEEDED, CONTINUE_NEEDED, 0, 0]
    assert fake.outstanding().contexts == 2
    assert fake.outstanding().credentials == 2
    assert fake.outstanding().buffers == 0
    raw.close(*handles)
    assert not fake.outstanding()
    assert fake.calls("InitializeSecurityContextW") == 2
    assert fake.calls("AcceptSecurityContext") == 2


def test_caller_buffer_too_small(fake: FakeSspi) -> None:
    raw = Raw()
    cred = raw.acquire("NTLM", C.SECPKG_CRED_OUTBOUND)
    small = ctypes.create_string_buffer(4)
    desc, _ = raw.desc(SecBuffer(4, C.SECBUFFER_TOKEN, ctypes.addressof(small)))
    context = SecHandle()
    with pytest.raises(sspi_import.BufferTooSmallError):
        raw.api.InitializeSecurityContextW(
            byref(cred), None, None, 0, 0, 0, None, 0, byref(context), byref(desc), None, None
        )
    assert fake.outstanding().contexts == 0  # nothing created on failure
    raw.close(cred)


def test_explicit_identity_and_password(fake: FakeSspi) -> None:
    fake.password = "correct"
    user, domain, password = wide("bob"), wide("CORP"), wide("correct")
    identity = SEC_WINNT_AUTH_IDENTITY_W(
        ctypes.addressof(user), 3, ctypes.addressof(domain), 4, ctypes.addressof(password), 7, 2
    )
    raw = Raw()
    *handles, statuses = raw.handshake(identity=identity)
    assert statuses[-1] == 0
    names = SecPkgContext_NamesW()
    raw.api.QueryContextAttributesW(byref(handles[3]), C.SECPKG_ATTR_NAMES, byref(names))
    assert read_wide(names.sUserName) == "CORP\\bob"
    raw.api.FreeContextBuffer(names.sUserName)
    raw.close(*handles)
    wrong = sspi_import.Identity("bob", "CORP", "wrong")
    with pytest.raises(sspi_import.LogonDeniedError):
        sspi_import.loopback("NTLM", wrong)  # closes what it opened
    with sspi_import.Credentials.acquire("NTLM", "outbound", wrong):
        pass  # acquiring does not check the password; the acceptor does


def test_cleanup_after_logon_denied() -> None:
    with FakeSspi(password="secret") as fake:
        with pytest.raises(sspi_import.LogonDeniedError):
            sspi_import.loopback("NTLM", sspi_import.Identity("alice", "EXAMPLE", "guess"))
        client, server = sspi_import.loopback("NTLM")  # the default user knows it
        client.close()
        server.close()
        gc.collect()
        fake.assert_no_leaks()


def test_no_default_credentials() -> None:
    with FakeSspi(user=None) as fake:
        with pytest.raises(sspi_import.NoCredentialsError):
            Raw().acquire("NTLM", C.SECPKG_CRED_OUTBOUND)
        fake.assert_no_leaks()


def test_unknown_package_and_kerberos_without_target(fake: FakeSspi) -> None:
    raw = Raw()
    with pytest.raises(sspi_import.PackageNotFoundError):
        raw.acquire("Digest", C.SECPKG_CRED_OUTBOUND)
    cred = raw.acquire("Kerberos", C.SECPKG_CRED_OUTBOUND)
    context = SecHandle()
    with pytest.raises(sspi_import.TargetUnknownError):
        raw.api.InitializeSecurityContextW(
            byref(cred), None, None, ALLOCATE, 0, 0, None, 0, byref(context), None, None, None
        )
    raw.close(cred)


def test_inbound_credentials_cannot_initiate(fake: FakeSspi) -> None:
    raw = Raw()
    cred = raw.acquire("NTLM", C.SECPKG_CRED_INBOUND)
    context = SecHandle()
    with pytest.raises(sspi_import.NoCredentialsError):
        raw.api.InitializeSecurityContextW(
            byref(cred), None, None, ALLOCATE, 0, 0, None, 0, byref(context), None, None, None
        )
    raw.close(cred)


def test_garbage_token_is_invalid(fake: FakeSspi) -> None:
    raw = Raw()
    cred = raw.acquire("NTLM", C.SECPKG_CRED_INBOUND)
    junk = ctypes.create_string_buffer(b"not a token", 11)
    in_desc, _ = raw.desc(SecBuffer(11, C.SECBUFFER_TOKEN, ctypes.addressof(junk)))
    context = SecHandle()
    with pytest.raises(sspi_import.InvalidTokenError):
        raw.api.AcceptSecurityContext(
            byref(cred), None, byref(in_desc), ALLOCATE, 0, byref(context), None, None, None
        )
    raw.close(cred)


def test_complete_needed_goes_through_complete_auth_token() -> None:
    with FakeSspi(complete_needed=True) as fake:
        client, server = sspi_import.loopback("NTLM")
        client.close()
        server.close()
        assert fake.calls("CompleteAuthToken") == 1
        fake.assert_no_leaks()
