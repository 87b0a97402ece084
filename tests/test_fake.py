"""FakeSspi: the simulated provider, first at the ctypes level, then through the public API."""

from __future__ import annotations

import ctypes
import gc
import os
import pickle
import sys
from collections.abc import Iterator
from ctypes import POINTER, byref, c_uint32, c_void_p
from typing import Any

import pytest

import sspi_import
from sspi_import import ExportedContext, ExportFlags, ImportedContext, library
from sspi_import._raw import constants as C  # noqa: N812
from sspi_import._raw.functions import PROTOTYPES, PROVIDER_EXTRAS
from sspi_import._raw.structs import (
    SEC_WINNT_AUTH_IDENTITY_W,
    ULONG,
    SecBuffer,
    SecBufferDesc,
    SecHandle,
    SecPkgContext_Flags,
    SecPkgContext_Lifespan,
    SecPkgContext_NamesW,
    SecPkgContext_NegotiationInfoW,
    SecPkgContext_PackageInfoW,
    SecPkgContext_SessionKey,
    SecPkgContext_Sizes,
    SecPkgInfoW,
    TimeStamp,
)
from sspi_import.errors import check, check_win32
from sspi_import.library import call
from sspi_import.testing import FakeSspi, Outstanding

ALLOCATE = 0x100
CONTINUE_NEEDED = 0x00090312
COMPLETE_NEEDED = 0x00090313


@pytest.fixture
def fake() -> Iterator[FakeSspi]:
    with FakeSspi() as installed:
        yield installed
        gc.collect()
    installed.assert_no_leaks()
    assert installed.misuses == []


def wide(text: str) -> ctypes.Array[ctypes.c_char]:
    return ctypes.create_string_buffer(text.encode("utf-16-le") + b"\0\0")


def read_wide(address: int | None) -> str:
    assert address
    units: list[int] = []
    while unit := ctypes.c_uint16.from_address(address + 2 * len(units)).value:
        units.append(unit)
    return b"".join(u.to_bytes(2, "little") for u in units).decode("utf-16-le")


class Checked:
    """The bound prototypes, each result handed to the library's one status check."""

    def __init__(self, api: library.Api) -> None:
        self._api = api

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._api, name)
        proto = PROTOTYPES[name]

        def call(*args: Any) -> Any:
            result = fn(*args)
            if proto.kernel32:
                return result if name == "GetCurrentProcess" else check_win32(result, name)
            return check(result, name)

        return call


class Raw:
    """Drives the fake through the bound ctypes prototypes, as the library does."""

    def __init__(self) -> None:
        self.api = Checked(library.api())

    def acquire(self, package: str, use: int, identity: Any = None) -> SecHandle:
        handle = SecHandle()
        expiry = TimeStamp()
        auth = ctypes.addressof(identity) if identity is not None else None
        self.api.AcquireCredentialsHandleW(
            None, wide(package), use, None, auth, None, None, byref(handle), byref(expiry)
        )
        return handle

    @staticmethod
    def desc(*buffers: SecBuffer) -> tuple[SecBufferDesc, Any]:
        array = (SecBuffer * len(buffers))(*buffers)
        return SecBufferDesc(0, len(buffers), ctypes.cast(array, POINTER(SecBuffer))), array

    def handshake(
        self, package: str = "NTLM", allocate: bool = False, identity: Any = None
    ) -> tuple[SecHandle, SecHandle, SecHandle, SecHandle, list[int]]:
        """A full handshake with caller buffers (or SSPI-allocated ones)."""
        client_cred = self.acquire(package, C.SECPKG_CRED_OUTBOUND, identity)
        server_cred = self.acquire(package, C.SECPKG_CRED_INBOUND)
        client, server = SecHandle(), SecHandle()
        statuses: list[int] = []
        attrs = c_uint32()
        expiry = TimeStamp()
        req = ALLOCATE if allocate else 0
        token: bytes | None = None
        target = wide("host/fake")
        for leg in range(4):
            storage = ctypes.create_string_buffer(4096)
            out = SecBuffer(
                0 if allocate else 4096,
                C.SECBUFFER_TOKEN,
                None if allocate else ctypes.addressof(storage),
            )
            out_desc, out_array = self.desc(out)
            in_desc: Any = None
            keep: Any = None
            if token is not None:
                keep = ctypes.create_string_buffer(token, len(token))
                in_desc, _ = self.desc(
                    SecBuffer(len(token), C.SECBUFFER_TOKEN, ctypes.addressof(keep))
                )
            if leg % 2 == 0:
                status = self.api.InitializeSecurityContextW(
                    byref(client_cred),
                    byref(client) if leg else None,
                    target,
                    req,
                    0,
                    0,
                    byref(in_desc) if in_desc is not None else None,
                    0,
                    byref(client),
                    byref(out_desc),
                    byref(attrs),
                    byref(expiry),
                )
            else:
                status = self.api.AcceptSecurityContext(
                    byref(server_cred),
                    byref(server) if leg > 1 else None,
                    byref(in_desc),
                    req,
                    0,
                    byref(server),
                    byref(out_desc),
                    byref(attrs),
                    byref(expiry),
                )
            statuses.append(status)
            result = out_array[0]
            token = ctypes.string_at(result.pvBuffer, result.cbBuffer) if result.cbBuffer else None
            if allocate and result.pvBuffer:
                self.api.FreeContextBuffer(result.pvBuffer)
            del keep
        return client_cred, server_cred, client, server, statuses

    def close(self, *handles: SecHandle) -> None:
        for handle in handles:
            if handle.dwUpper == 0x5EC2F4CE:
                self.api.FreeCredentialsHandle(byref(handle))
            else:
                self.api.DeleteSecurityContext(byref(handle))


# Installation ---------------------------------------------------------------------


def test_context_manager_installs_and_restores() -> None:
    assert library.swap(None) is None
    with FakeSspi() as outer:
        first = library.api()
        assert first.source is outer
        with FakeSspi(machine="INNER") as inner:
            assert library.api().source is inner
        assert library.api() is first
    assert library.swap(None) is None


def test_use_library_accepts_it_and_every_prototype_is_simulated() -> None:
    fake = FakeSspi()
    sspi_import.use_library(fake)
    assert "FakeSspi" in sspi_import.library_description()
    for name in {proto.symbol for proto in PROTOTYPES.values()} - PROVIDER_EXTRAS:
        assert fake.sspi_function_address(name)
        assert library.api().has(name)
    for name in PROVIDER_EXTRAS:  # one provider's own (sspi-rs's logger): not simulated
        assert fake.sspi_function_address(name) is None
        assert not library.api().has(name)
    assert fake.sspi_function_address("NoSuchFunction") is None
    sspi_import.use_library(None)


def test_constructor_validates_packages() -> None:
    with pytest.raises(ValueError, match="packages"):
        FakeSspi(packages=())


# The handshake at the ctypes level -------------------------------------------------


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


def test_double_free_and_unknown_pointer(fake: FakeSspi) -> None:
    raw = Raw()
    info = POINTER(SecPkgInfoW)()
    raw.api.EnumerateSecurityPackagesW(byref(ULONG()), byref(info))
    address = ctypes.cast(info, c_void_p).value
    assert fake.outstanding().buffers == 1
    assert raw.api.FreeContextBuffer(address) == 0
    # No binding checks a status itself: the bare call returns the signed LONG.
    assert library.api().FreeContextBuffer(address) & 0xFFFF_FFFF == 0x80090301  # INVALID_HANDLE
    local = ctypes.create_string_buffer(8)
    with pytest.raises(sspi_import.InvalidHandleError):
        call(raw.api, "FreeContextBuffer", ctypes.addressof(local))
    assert raw.api.FreeContextBuffer(None) == 0  # NULL is fine, as in C
    assert [m.kind for m in fake.misuses] == ["double free", "unknown pointer"]
    fake.misuses.clear()


def test_double_delete(fake: FakeSspi) -> None:
    raw = Raw()
    *handles, _ = raw.handshake()
    raw.close(*handles)
    with pytest.raises(sspi_import.InvalidHandleError):
        raw.api.DeleteSecurityContext(byref(handles[2]))
    with pytest.raises(sspi_import.InvalidHandleError):
        raw.api.FreeCredentialsHandle(byref(handles[0]))
    with pytest.raises(sspi_import.InvalidHandleError):  # a credential is not a context
        raw.api.DeleteSecurityContext(byref(SecHandle(1, 0x5EC2F4CE)))
    kinds = [m.kind for m in fake.misuses]
    assert kinds == ["deleted context", "deleted credentials", "unknown context"]
    assert fake.misuses[0].function == "DeleteSecurityContext"
    fake.misuses.clear()


def test_leak_report_names_what_leaked() -> None:
    with FakeSspi() as fake:
        raw = Raw()
        *handles, _ = raw.handshake()
        info = POINTER(SecPkgInfoW)()
        raw.api.EnumerateSecurityPackagesW(byref(ULONG()), byref(info))
        out = fake.outstanding()
        assert isinstance(out, Outstanding)
        assert (out.contexts, out.credentials, out.buffers, out.tokens) == (2, 2, 1, 0)
        with pytest.raises(AssertionError, match=r"acceptor NTLM context of 'EXAMPLE\\\\alice'"):
            fake.assert_no_leaks()
        raw.api.FreeContextBuffer(ctypes.cast(info, c_void_p))
        raw.close(*handles)
        fake.assert_no_leaks()


def test_wrap_no_encrypt_raw(fake: FakeSspi) -> None:
    raw = Raw()
    *handles, _ = raw.handshake()
    client, server = handles[2], handles[3]
    message = ctypes.create_string_buffer(b"plain", 5)
    trailer = ctypes.create_string_buffer(32)
    desc, _array = raw.desc(
        SecBuffer(32, C.SECBUFFER_TOKEN, ctypes.addressof(trailer)),
        SecBuffer(5, C.SECBUFFER_DATA, ctypes.addressof(message)),
    )
    raw.api.EncryptMessage(byref(client), C.SECQOP_WRAP_NO_ENCRYPT, byref(desc), 0)
    assert message.raw[:5] == b"plain"
    qop = c_uint32()
    raw.api.DecryptMessage(byref(server), byref(desc), 0, byref(qop))
    assert qop.value == C.SECQOP_WRAP_NO_ENCRYPT
    with pytest.raises(sspi_import.SspiError) as info:
        raw.api.EncryptMessage(byref(client), 5, byref(desc), 0)
    assert info.value.symbol == "SEC_E_QOP_NOT_SUPPORTED"
    raw.close(*handles)


# Faults, counting, internal errors -------------------------------------------------


def test_fail_injects_status_then_recovers(fake: FakeSspi) -> None:
    fake.fail("AcquireCredentialsHandleW", "SEC_E_INSUFFICIENT_MEMORY", times=2)
    for _ in range(2):
        with pytest.raises(sspi_import.InsufficientMemoryError):
            sspi_import.Credentials.acquire("NTLM", "outbound")
    with sspi_import.Credentials.acquire("NTLM", "outbound"):
        pass
    assert fake.calls("AcquireCredentialsHandleW") == 3
    assert fake.calls("FreeCredentialsHandle") == 1


def test_fail_accepts_numbers_and_rejects_unknown_names(fake: FakeSspi) -> None:
    fake.fail("EnumerateSecurityPackagesW", 0x80090306)
    info = POINTER(SecPkgInfoW)()
    with pytest.raises(sspi_import.NotOwnerError):
        Raw().api.EnumerateSecurityPackagesW(byref(ULONG()), byref(info))
    with pytest.raises(ValueError, match="not an SSPI function"):
        # the library never calls QuerySecurityPackageInfoW
        fake.fail("QuerySecurityPackageInfoW", 0x80090306)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not an SSPI function"):
        fake.fail("ImportSecurityContextA", 0x80090306)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not an SSPI function"):
        fake.calls("Nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="times"):
        fake.fail("DeleteSecurityContext", 0x80090306, times=0)
    with pytest.raises(ValueError, match="SEC_E_NOPE"):
        fake.fail("DeleteSecurityContext", "SEC_E_NOPE")
    with pytest.raises(ValueError, match="cannot fail"):
        fake.fail("GetCurrentProcess", 0x80090306)


def test_kernel32_failures_return_false(fake: FakeSspi) -> None:
    fake.fail("OpenProcess", "SEC_E_INTERNAL_ERROR")
    assert not library.api().OpenProcess(0x40, False, os.getpid())  # NULL, as kernel32 says
    assert fake.calls("OpenProcess") == 1


class _Broken(FakeSspi):
    def _FreeCredentialsHandle(self, ph: Any) -> int:  # noqa: N802
        raise RuntimeError("boom")


def test_exceptions_never_escape_into_ctypes() -> None:
    with _Broken() as fake:
        credentials = sspi_import.Credentials.acquire("NTLM", "outbound")
        with pytest.raises(sspi_import.InternalError):
            credentials.close()
        assert len(fake.internal_errors) == 1
        assert "RuntimeError: boom" in fake.internal_errors[0]
        with pytest.raises(AssertionError, match="internal error"):
            fake.assert_no_leaks()


# Messages and attributes through the public API ------------------------------------


def test_public_api_end_to_end(fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("Negotiate")
    with client, server:
        assert server.user_name == "EXAMPLE\\alice"
        assert client.user_name == "EXAMPLE\\alice"
        assert server.package_name == "NTLM"
        assert client.session_key() == server.session_key()
        start, end = server.lifespan
        assert start is not None
        assert end is not None
        assert end > start
        signature = client.sign(b"hello")
        server.verify(b"hello", signature)
        sealed = server.encrypt(b"secret")
        assert b"secret" not in sealed
        assert client.decrypt(sealed) == b"secret"
        with server.impersonate():
            assert fake.impersonating == "EXAMPLE\\alice"
        assert fake.impersonating is None
        with pytest.raises(sspi_import.SspiError) as info, client.impersonate():
            pass
        assert info.value.symbol == "SEC_E_NO_IMPERSONATION"


def test_tampering_replay_and_reflection(fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client, server:
        first, second = client.sign(b"one"), client.sign(b"two")
        with pytest.raises(sspi_import.MessageAlteredError):
            server.verify(b"onE", first)
        with pytest.raises(sspi_import.OutOfSequenceError):
            server.verify(b"two", second)  # "one" was never accepted
        server.verify(b"one", first)
        with pytest.raises(sspi_import.OutOfSequenceError):
            server.verify(b"one", first)  # replay
        server.verify(b"two", second)
        with pytest.raises(sspi_import.MessageAlteredError):
            client.verify(b"three", client.sign(b"three"))  # reflected to its sender
        sealed = bytearray(server.encrypt(b"payload"))
        sealed[-1] ^= 1
        with pytest.raises(sspi_import.MessageAlteredError):
            client.decrypt(bytes(sealed))


def test_expired_context() -> None:
    with FakeSspi(lifetime=0) as fake:
        client, server = sspi_import.loopback("NTLM")
        with client, server, pytest.raises(sspi_import.ContextExpiredError):
            client.sign(b"late")
        fake.assert_no_leaks()


def test_complete_needed_goes_through_complete_auth_token() -> None:
    with FakeSspi(complete_needed=True) as fake:
        client, server = sspi_import.loopback("NTLM")
        client.close()
        server.close()
        assert fake.calls("CompleteAuthToken") == 1
        fake.assert_no_leaks()


# Export and import -----------------------------------------------------------------


def test_export_import_round_trip_continues_the_sequence(fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client, server:
        server.verify(b"before", client.sign(b"before"))
        with server.export() as exported, ImportedContext.from_exported(exported) as imported:
            assert exported.package == "NTLM"
            assert exported.token is not None  # acceptor contexts carry a logon token
            assert imported.user_name == "EXAMPLE\\alice"
            assert imported.package == "NTLM"
            client.verify(b"reply", imported.sign(b"reply"))
            imported.verify(b"next", client.sign(b"next"))
            assert fake.outstanding().contexts == 3
            assert fake.outstanding().tokens == 1
        assert not server.closed


def test_delete_old_consumes_the_source(fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client, server:
        with server.export(ExportFlags.DELETE_OLD) as exported:
            assert server.closed
            assert fake.outstanding().contexts == 1
            with ImportedContext.from_exported(exported) as imported:
                client.verify(b"x", imported.sign(b"x"))
        deletes = fake.calls("DeleteSecurityContext")
    assert fake.calls("DeleteSecurityContext") == deletes + 1  # the client only
    assert fake.misuses == []


def test_reset_new_restarts_sequence_numbers(fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client, server:
        client.verify(b"a", server.sign(b"a"))
        with (
            export_context_reset(server) as exported,
            ImportedContext.from_exported(exported) as imported,
            pytest.raises(sspi_import.OutOfSequenceError),
        ):
            client.verify(b"b", imported.sign(b"b"))  # numbered 0 again


def export_context_reset(context: sspi_import.SecurityContext) -> ExportedContext:
    return sspi_import.export_context(context, ExportFlags.RESET_NEW)


def test_negotiate_export_imports_under_either_name(fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("Negotiate")
    with client, server, client.export() as exported:
        assert exported.token is None  # initiator: no token
        for name in ("Negotiate", "NTLM"):
            with ImportedContext.from_exported(exported, package=name) as imported:
                assert imported.package == name
        with pytest.raises(sspi_import.InvalidTokenError):
            ImportedContext.from_exported(exported, package="Kerberos")
        with pytest.raises(sspi_import.PackageNotFoundError):
            ImportedContext.from_exported(exported, package="Digest")


def test_to_kernel_is_refused(fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client, server:
        with pytest.raises(ValueError, match="kernel"):
            sspi_import.export_context(server, C.SECPKG_CONTEXT_EXPORT_TO_KERNEL)
        assert fake.calls("ExportSecurityContext") == 0
        packed, token = SecBuffer(), c_void_p()
        handle = SecHandle(*server.detach())
        try:
            status = library.api().ExportSecurityContext(
                byref(handle), C.SECPKG_CONTEXT_EXPORT_TO_KERNEL, byref(packed), byref(token)
            )
            assert status & 0xFFFF_FFFF == 0x8009035D  # SEC_E_INVALID_PARAMETER
            assert not packed.pvBuffer
        finally:
            library.api().DeleteSecurityContext(byref(handle))


def test_failed_export_keeps_the_source(fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client, server:
        fake.fail("ExportSecurityContext", "SEC_E_INSUFFICIENT_MEMORY")
        with pytest.raises(sspi_import.InsufficientMemoryError):
            server.export(ExportFlags.DELETE_OLD)
        assert not server.closed


def test_incomplete_context_cannot_be_exported(fake: FakeSspi) -> None:
    with sspi_import.Credentials.acquire("NTLM", "outbound") as credentials:
        context = sspi_import.SecurityContext.initiator(credentials, "host/x")
        with context:
            context.step(None)
            with pytest.raises(sspi_import.CannotPackError):
                context.export()


def _exported_blob(fake: FakeSspi) -> bytes:
    client, server = sspi_import.loopback("NTLM")
    with client, server, client.export() as exported:
        return exported.blob


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda b: b[:-1], id="truncated"),
        pytest.param(lambda b: b[:10], id="header-only"),
        pytest.param(lambda b: b[:40] + bytes([b[40] ^ 1]) + b[41:], id="bit-flip"),
        pytest.param(lambda b: b"XXXX" + b[4:], id="magic"),
        pytest.param(lambda b: b[:4] + b"\x09\x00" + b[6:], id="version"),
        pytest.param(lambda b: b + b"\0", id="trailing"),
        pytest.param(lambda b: b"\0", id="one-byte"),
    ],
)
def test_corrupted_blob_is_an_invalid_token(fake: FakeSspi, mangle: Any) -> None:
    blob = mangle(_exported_blob(fake))
    with pytest.raises(sspi_import.InvalidTokenError):
        ImportedContext("NTLM", blob)
    assert fake.outstanding().contexts == 0


def test_foreign_machine_blob_is_refused(fake: FakeSspi) -> None:
    blob = _exported_blob(fake)
    with FakeSspi(machine="OTHERHOST") as other:
        with pytest.raises(sspi_import.InvalidTokenError):
            ImportedContext("NTLM", blob)
        other.assert_no_leaks()
    with FakeSspi(machine="FAKEHOST") as same, ImportedContext("NTLM", blob) as imported:
        assert imported.user_name == "EXAMPLE\\alice"
        del same


@pytest.mark.parametrize(
    ("symbol", "error"),
    [
        ("SEC_E_UNKNOWN_CREDENTIALS", sspi_import.UnknownCredentialsError),
        ("SEC_E_NO_CREDENTIALS", sspi_import.NoCredentialsError),
        ("SEC_E_NOT_OWNER", sspi_import.NotOwnerError),
        ("SEC_E_INSUFFICIENT_MEMORY", sspi_import.InsufficientMemoryError),
        ("SEC_E_INTERNAL_ERROR", sspi_import.InternalError),
    ],
)
def test_import_failures_map_to_their_class(
    fake: FakeSspi, symbol: str, error: type[sspi_import.SspiError]
) -> None:
    blob = _exported_blob(fake)
    fake.fail("ImportSecurityContextW", symbol)
    with pytest.raises(error) as info:
        ImportedContext("NTLM", blob)
    assert info.value.symbol == symbol
    assert info.value.function == "ImportSecurityContextW"
    assert fake.outstanding().contexts == 0
    with ImportedContext("NTLM", blob):  # the next call works again
        pass


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


# ExportedContext serialization -------------------------------------------------------


def test_pickle_and_bytes_round_trip_without_token(fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client, server, client.export() as exported:
        signature = server.sign(b"m")
        for copy in (
            pickle.loads(pickle.dumps(exported)),
            ExportedContext.from_bytes(exported.to_bytes()),
        ):
            assert type(copy) is ExportedContext
            assert (copy.package, copy.blob, copy.buffer_type, copy.token) == (
                "NTLM",
                exported.blob,
                exported.buffer_type,
                None,
            )
            with ImportedContext.from_exported(copy) as imported:
                assert imported.user_name == "EXAMPLE\\alice"
                imported.verify(b"m", signature)  # each copy expects message 0


def test_to_bytes_layout() -> None:
    exported = ExportedContext(None, b"BLOB", 7)
    data = exported.to_bytes()
    assert data[:4] == b"SSPX"
    assert data[4] == 1
    assert data.endswith(b"BLOB")
    copy = ExportedContext.from_bytes(memoryview(data))
    assert (copy.package, copy.blob, copy.buffer_type) == (None, b"BLOB", 7)
    assert ExportedContext.from_bytes(ExportedContext("Kerberos", b"x").to_bytes()).package == (
        "Kerberos"
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"SSPX",
        b"XXXX" + bytes(30),
        b"SSPX\x02" + bytes(30),
        b"SSPX\x01\x04" + bytes(30),
    ],
)
def test_from_bytes_rejects_garbage(data: bytes) -> None:
    with pytest.raises(ValueError, match="exported context"):
        ExportedContext.from_bytes(data)


def test_from_bytes_rejects_inconsistent_fields() -> None:
    good = ExportedContext("NTLM", b"blob").to_bytes()
    with pytest.raises(ValueError, match="truncated"):
        ExportedContext.from_bytes(good[:-1])
    with pytest.raises(ValueError, match="token"):
        ExportedContext.from_bytes(good[:5] + b"\x03" + good[6:])
    with pytest.raises(TypeError):
        ExportedContext.from_bytes("SSPX")  # type: ignore[arg-type]


def test_a_token_valid_only_here_is_not_serialized(fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client, server, server.export() as exported:
        with pytest.raises(TypeError, match="for_process"):
            pickle.dumps(exported)
        with pytest.raises(TypeError, match="for_process"):
            exported.to_bytes()


def test_for_process_duplicates_the_token(fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client, server, server.export() as exported, client.export() as plain:
        copy = plain.for_process(1)
        assert copy.token is None
        assert copy.blob == plain.blob
        assert exported.token is not None
        with exported.for_process(os.getpid()) as local:
            assert local.token not in (None, exported.token)
            assert fake.outstanding().tokens == 2
        other = exported.for_process(1)
        assert other.closed
        assert other.token in fake.sent_tokens
        assert fake.sent_tokens[other.token] == 1
        assert "token for process 1" in repr(other)
        other.close()  # owns nothing here: closes nothing
        with pytest.raises(ValueError, match="for process 1"):
            pickle.loads(pickle.dumps(other))
        with pytest.raises(ValueError, match="for process 1"):
            ExportedContext.from_bytes(other.to_bytes())
        with pytest.raises(ValueError, match="duplicate from the original"):
            other.for_process(1)
        assert fake.calls("OpenProcess") == 1
        assert fake.outstanding().process_handles == 0


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


@pytest.mark.skipif(sys.platform == "win32", reason="the fake checks pids with os.kill(pid, 0)")
def test_for_process_to_a_missing_process_fails(fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client, server, server.export() as exported, pytest.raises(OSError, match="OpenProcess"):
        exported.for_process(0x7FFF_FFF0)


@pytest.mark.skipif(sys.platform == "win32", reason="kernel32 duplicates handles on Windows")
def test_for_process_needs_a_duplicating_library(stub: Any) -> None:
    stub.set_export_token(0x1234)
    with sspi_import.export_context(stub.new_context(), ExportFlags.DELETE_OLD) as exported:
        assert exported.token == 0x1234
        with pytest.raises(sspi_import.SspiUnavailableError, match="FakeSspi"):
            exported.for_process(1)


def test_its_tokens_are_not_ntlm_and_real_ntlm_is_refused(fake: FakeSspi) -> None:
    # What the testing guide, the FakeSspi docstring and examples/http_ntlm_server.py say
    # (issue 22 §3): no real client or server can talk to a FakeSspi.
    spnego = pytest.importorskip("spnego")
    outbound = sspi_import.Credentials.acquire("NTLM", "outbound")
    with outbound, sspi_import.SecurityContext.initiator(outbound, "HTTP/x") as initiator:
        first = initiator.step(None)
    assert first is not None
    assert not first.startswith(b"NTLMSSP\x00"), first[:16]
    real = spnego.client("alice", "Passw0rd!", protocol="ntlm").step()  # pure-Python NTLM
    assert real.startswith(b"NTLMSSP\x00")  # a real NEGOTIATE_MESSAGE
    inbound = sspi_import.Credentials.acquire("NTLM", "inbound")
    acceptor = sspi_import.SecurityContext.acceptor(inbound)
    with inbound, acceptor, pytest.raises(sspi_import.InvalidTokenError):
        acceptor.step(real)
