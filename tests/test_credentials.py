"""``Identity`` and ``Credentials``: validation, secrecy, ownership (mocked raw boundary)."""

from __future__ import annotations

import ctypes
import datetime
import gc
import pickle
import socket
from typing import Any
from unittest.mock import Mock

import pytest
from pytest_mock import MockerFixture

import sspi_import
from sspi_import import credentials as credentials_module
from sspi_import._filetime import NEVER, filetime_to_datetime
from sspi_import._raw import constants as C  # noqa: N812
from sspi_import.credentials import Credentials, Identity

PASSWORD = "s3cr3t-Pässwörd-😀"
UTC = datetime.timezone.utc


def drop(box: list[Any]) -> None:
    """Drop the only reference and collect: the finalizer runs here."""
    box.clear()
    gc.collect()


def utf16_at(address: int, units: int) -> str:
    return ctypes.string_at(address, 2 * units).decode("utf-16-le")


@pytest.fixture
def lib(mocker: MockerFixture) -> Mock:
    """A mocked library: ACH writes a handle and an expiry, FreeCredentialsHandle records."""
    fake: Mock = mocker.Mock(name="lib")
    fake.freed = []

    def acquire(*args: Any) -> int:
        handle = args[7]._obj
        handle.dwLower, handle.dwUpper = 0x1234, 0xC4ED
        args[8]._obj.value = 0x01D9_0000_0000_0000
        return 0

    def free(handle: Any) -> int:
        handle = getattr(handle, "_obj", handle)  # byref(), or the structure as it is
        fake.freed.append((handle.dwLower, handle.dwUpper))
        return 0

    fake.AcquireCredentialsHandleW.side_effect = acquire
    fake.FreeCredentialsHandle.side_effect = free
    mocker.patch.object(credentials_module, "api", return_value=fake)
    return fake


# Identity ------------------------------------------------------------------------------


def test_identity_hides_the_password() -> None:
    identity = Identity("alice", "EXAMPLE", PASSWORD)
    for text in (repr(identity), str(identity), f"{identity}", f"{identity!r}"):
        assert PASSWORD not in text
        assert "alice" in text
        assert "EXAMPLE" in text
        assert "<hidden>" in text
    assert identity.user == "alice"
    assert identity.domain == "EXAMPLE"
    assert not hasattr(identity, "password")


def test_identity_is_immutable_and_not_picklable() -> None:
    identity = Identity("alice", "", PASSWORD)
    with pytest.raises(AttributeError):
        identity._password = "other"
    with pytest.raises(AttributeError):
        del identity._user
    with pytest.raises(TypeError, match="cannot be pickled") as info:
        pickle.dumps(identity)
    assert PASSWORD not in str(info.value)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((1, "D", "p"), TypeError),
        (("u", None, "p"), TypeError),
        (("u", "D", b"p"), TypeError),
        (("", "D", "p"), ValueError),
        (("u", "D", "pa\0ss"), ValueError),
        (("u", "D", "pass\ud800word"), ValueError),
        (("u\0", "D", "p"), ValueError),
    ],
)
def test_identity_rejects_bad_input(args: tuple[Any, Any, Any], error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        Identity(*args)
    for part in args:
        if isinstance(part, str) and len(part) > 2:
            assert part not in str(info.value)


def test_identity_allows_empty_domain_and_password() -> None:
    identity = Identity("alice", "", "")
    assert identity.domain == ""


def test_password_is_handed_over_as_utf16_and_wiped_after_the_call(
    lib: Mock, mocker: MockerFixture
) -> None:
    spy = mocker.spy(credentials_module, "_wide_buffer")
    seen: dict[str, Any] = {}

    def acquire(*args: Any) -> int:
        auth = args[4]._obj
        seen["flags"] = auth.Flags
        seen["user"] = utf16_at(auth.User, auth.UserLength)
        seen["domain"] = utf16_at(auth.Domain, auth.DomainLength)
        seen["password"] = utf16_at(auth.Password, auth.PasswordLength)
        seen["lengths"] = (auth.UserLength, auth.DomainLength, auth.PasswordLength)
        seen["addresses"] = (auth.User, auth.Domain, auth.Password)
        args[7]._obj.dwLower = 1
        return 0

    lib.AcquireCredentialsHandleW.side_effect = acquire
    with Credentials.acquire("NTLM", "outbound", Identity("alice", "EXAMPLE", PASSWORD)):
        pass
    assert seen["flags"] == C.SEC_WINNT_AUTH_IDENTITY_UNICODE
    assert (seen["user"], seen["domain"], seen["password"]) == ("alice", "EXAMPLE", PASSWORD)
    # lengths in UTF-16 units without the NUL: the emoji is a surrogate pair
    assert seen["lengths"] == (5, 7, len(PASSWORD.encode("utf-16-le")) // 2)
    buffers = [call for call in spy.spy_return_list]
    assert tuple(ctypes.addressof(b) for b in buffers) == seen["addresses"]
    for buffer in buffers:  # the spy keeps them alive: read what SSPI saw, now
        assert bytes(buffer) == b"\0" * ctypes.sizeof(buffer)


def test_password_is_wiped_when_the_call_fails(lib: Mock, mocker: MockerFixture) -> None:
    spy = mocker.spy(credentials_module, "_wide_buffer")
    lib.AcquireCredentialsHandleW.side_effect = sspi_import.error_from_status(
        0x8009030C, "AcquireCredentialsHandleW"
    )
    with pytest.raises(sspi_import.LogonDeniedError) as info:
        Credentials.acquire("NTLM", "outbound", Identity("alice", "EXAMPLE", PASSWORD))
    assert PASSWORD not in str(info.value)
    assert PASSWORD not in repr(info.value)
    assert len(spy.spy_return_list) == 3
    for buffer in spy.spy_return_list:
        assert bytes(buffer) == b"\0" * ctypes.sizeof(buffer)
    assert lib.freed == []  # nothing was acquired, nothing to free


# Credentials ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "value"),
    [
        ("outbound", C.SECPKG_CRED_OUTBOUND),
        ("inbound", C.SECPKG_CRED_INBOUND),
        ("both", C.SECPKG_CRED_BOTH),
    ],
)
def test_acquire_passes_package_and_usage(lib: Mock, usage: Any, value: int) -> None:
    with Credentials.acquire("Negotiate", usage) as creds:
        args = lib.AcquireCredentialsHandleW.call_args.args
        assert args[1] == "Negotiate".encode("utf-16-le") + b"\0\0"
        assert args[2] == value
        assert args[4] is None  # no identity: the logged-on user
        assert creds.package == "Negotiate"
        assert creds.usage == usage
        assert repr(creds) == f"<Credentials package='Negotiate' usage={usage!r} open>"
    assert lib.freed == [(0x1234, 0xC4ED)]
    assert repr(creds).endswith("closed>")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"package": 1}, TypeError),
        ({"package": ""}, ValueError),
        ({"package": "NTLM", "usage": 2}, TypeError),
        ({"package": "NTLM", "usage": "sideways"}, ValueError),
        ({"package": "NTLM", "identity": ("u", "d", "p")}, TypeError),
    ],
)
def test_acquire_validates_before_any_call(
    lib: Mock, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        Credentials.acquire(**kwargs)
    lib.AcquireCredentialsHandleW.assert_not_called()


def test_credentials_cannot_be_constructed_directly() -> None:
    with pytest.raises(TypeError, match="acquire"):
        Credentials()


def test_close_twice_frees_once(lib: Mock) -> None:
    creds = Credentials.acquire("NTLM")
    creds.close()
    creds.close()
    assert creds.closed
    assert lib.freed == [(0x1234, 0xC4ED)]


def test_detach_gives_up_ownership(lib: Mock) -> None:
    creds = Credentials.acquire("NTLM")
    assert creds.detach() == (0x1234, 0xC4ED)
    creds.close()
    del creds
    gc.collect()
    assert lib.freed == []


def test_finalizer_frees_and_warns(lib: Mock) -> None:
    box = [Credentials.acquire("NTLM")]
    with pytest.warns(ResourceWarning, match="unclosed <Credentials"):
        drop(box)
    assert lib.freed == [(0x1234, 0xC4ED)]


def test_expiry_is_aware_utc(lib: Mock) -> None:
    with Credentials.acquire("NTLM") as creds:
        assert creds.expiry == filetime_to_datetime(0x01D9_0000_0000_0000)
        assert creds.expiry is not None
        assert creds.expiry.tzinfo is UTC


def test_filetime_conversion() -> None:
    assert filetime_to_datetime(0) is None
    assert filetime_to_datetime(-5) is None
    assert filetime_to_datetime(0x7FFF_FFFF_FFFF_FFFF) is NEVER
    assert filetime_to_datetime(0x7FFF_FF36_D596_9FFF) is NEVER  # Kerberos' "infinite"
    # 2000-01-01T00:00:00Z is 125911584000000000 ticks
    assert filetime_to_datetime(125911584000000000) == datetime.datetime(2000, 1, 1, tzinfo=UTC)
    assert NEVER.tzinfo is UTC


def test_public_names() -> None:
    assert sspi_import.Identity is Identity
    assert sspi_import.Credentials is Credentials
    for name in ("Identity", "Credentials"):
        assert name in sspi_import.__all__


# Windows: the logged-on user's credentials ---------------------------------------------


@pytest.mark.windows_sspi
@pytest.mark.parametrize("package", ["NTLM", "Negotiate"])
@pytest.mark.parametrize("usage", ["outbound", "inbound", "both"])
def test_windows_acquire_logged_on_user(package: str, usage: Any) -> None:
    with Credentials.acquire(package, usage) as creds:
        assert not creds.closed
        expiry = creds.expiry
        assert expiry is None or expiry.tzinfo is UTC
    assert creds.closed


@pytest.mark.windows_sspi
def test_windows_unknown_package() -> None:
    with pytest.raises(sspi_import.PackageNotFoundError) as info:
        Credentials.acquire("NoSuchPackage")
    assert info.value.function == "AcquireCredentialsHandleW"


# Negotiate's package list (SEC_WINNT_AUTH_IDENTITY_EXW) ----------------------------------


def _seen_ex(lib: Mock) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def acquire(*args: Any) -> int:
        auth = args[4]._obj
        seen["type"] = type(auth).__name__
        seen["version"] = auth.Version
        seen["length"] = auth.Length
        seen["flags"] = auth.Flags
        seen["packages"] = utf16_at(auth.PackageList, auth.PackageListLength)
        seen["nul"] = ctypes.string_at(auth.PackageList + 2 * auth.PackageListLength, 2)
        seen["user"] = auth.User and utf16_at(auth.User, auth.UserLength)
        seen["domain"] = auth.Domain and utf16_at(auth.Domain, auth.DomainLength)
        seen["password"] = auth.Password and utf16_at(auth.Password, auth.PasswordLength)
        seen["lengths"] = (auth.UserLength, auth.DomainLength, auth.PasswordLength)
        args[7]._obj.dwLower = 1
        return 0

    lib.AcquireCredentialsHandleW.side_effect = acquire
    return seen


@pytest.mark.parametrize(
    ("packages", "text"),
    [
        ("!ntlm", "!ntlm"),
        (["kerberos", "!ntlm"], "kerberos,!ntlm"),
        (("!kerberos",), "!kerberos"),
        ("Kerberos,NTLM", "Kerberos,NTLM"),
    ],
)
def test_package_list_goes_in_an_identity_ex(lib: Mock, packages: Any, text: str) -> None:
    seen = _seen_ex(lib)
    identity = Identity("alice", "EXAMPLE", PASSWORD)
    with Credentials.acquire("Negotiate", "outbound", identity, packages=packages):
        pass
    assert seen["type"] == "SEC_WINNT_AUTH_IDENTITY_EXW"
    assert seen["version"] == C.SEC_WINNT_AUTH_IDENTITY_VERSION
    assert seen["length"] == ctypes.sizeof(sspi_import._raw.structs.SEC_WINNT_AUTH_IDENTITY_EXW)
    assert seen["flags"] == C.SEC_WINNT_AUTH_IDENTITY_UNICODE
    assert seen["packages"] == text
    assert seen["nul"] == b"\0\0"
    assert (seen["user"], seen["domain"], seen["password"]) == ("alice", "EXAMPLE", PASSWORD)


def test_package_list_for_the_logged_on_user_has_no_user(lib: Mock) -> None:
    seen = _seen_ex(lib)
    with Credentials.acquire("negotiate", "inbound", packages="!ntlm"):
        pass
    assert seen["packages"] == "!ntlm"
    assert (seen["user"], seen["domain"], seen["password"]) == (None, None, None)  # NULL
    assert seen["lengths"] == (0, 0, 0)


def test_without_a_package_list_the_plain_identity_is_passed(lib: Mock) -> None:
    seen: dict[str, Any] = {}

    def acquire(*args: Any) -> int:
        seen["type"] = type(args[4]._obj).__name__
        return 0

    lib.AcquireCredentialsHandleW.side_effect = acquire
    with Credentials.acquire("Negotiate", "outbound", Identity("alice", "", "pw")):
        pass
    assert seen["type"] == "SEC_WINNT_AUTH_IDENTITY_W"


@pytest.mark.parametrize(
    ("package", "packages", "error", "match"),
    [
        ("NTLM", "!kerberos", ValueError, "only applies to Negotiate"),
        ("Kerberos", ["ntlm"], ValueError, "only applies to Negotiate"),
        ("Negotiate", [], ValueError, "empty"),
        ("Negotiate", "", ValueError, "not a package name"),
        ("Negotiate", "kerberos,,ntlm", ValueError, "not a package name"),
        ("Negotiate", ["!"], ValueError, "not a package name"),
        ("Negotiate", ["!!ntlm"], ValueError, "not a package name"),
        ("Negotiate", ["kerberos,ntlm"], ValueError, "not a package name"),
        ("Negotiate", ["ntlm\0"], ValueError, "not a package name"),
        ("Negotiate", [b"ntlm"], TypeError, "must be a str"),
        ("Negotiate", b"ntlm", TypeError, "list of package names"),
        ("Negotiate", 3, TypeError, "list of package names"),
    ],
)
def test_package_list_is_checked_before_any_call(
    lib: Mock, package: str, packages: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        Credentials.acquire(package, "outbound", packages=packages)
    lib.AcquireCredentialsHandleW.assert_not_called()


def test_a_refused_package_list_says_so(lib: Mock) -> None:
    lib.AcquireCredentialsHandleW.side_effect = None
    lib.AcquireCredentialsHandleW.return_value = -2146893043  # SEC_E_UNKNOWN_CREDENTIALS
    with pytest.raises(sspi_import.UnknownCredentialsError) as info:
        Credentials.acquire("Negotiate", "outbound", Identity("a", "", PASSWORD), packages="!ntlm")
    message = str(info.value)
    assert "SEC_WINNT_AUTH_IDENTITY_EXW" in message
    assert "'!ntlm'" in message
    assert "without packages=" in message
    assert PASSWORD not in message
    assert info.value.function == "AcquireCredentialsHandleW"
    with pytest.raises(sspi_import.UnknownCredentialsError) as plain:
        Credentials.acquire("Negotiate", "outbound")
    assert "SEC_WINNT_AUTH_IDENTITY_EXW" not in str(plain.value)
    assert lib.freed == []


SSPI_RS_IDENTITY = Identity("alice", "EXAMPLE", "Passw0rd!")


@pytest.mark.sspi_rs
def test_sspi_rs_honours_the_package_list(sspi_rs: Any) -> None:
    """Measured on sspi-rs: "!ntlm" leaves Kerberos, which has no KDC here; "!kerberos" NTLM."""
    from sspi_import import SecurityContext

    def first_token(packages: str | None) -> bytes:
        creds = Credentials.acquire("Negotiate", "outbound", SSPI_RS_IDENTITY, packages=packages)
        with creds, SecurityContext.initiator(creds, "HTTP/localhost") as ctx:
            token = ctx.step(None)
            assert token is not None
            return token

    ntlm_oid = bytes.fromhex("060a2b06010401823702020a")  # 1.3.6.1.4.1.311.2.2.10
    assert ntlm_oid in first_token(None)
    assert ntlm_oid in first_token("!kerberos")
    assert ntlm_oid in first_token("ntlm")
    with pytest.raises(sspi_import.NoAuthenticatingAuthorityError):
        first_token("!ntlm")
    with pytest.raises(sspi_import.NoAuthenticatingAuthorityError):
        first_token("kerberos")


def _windows_negotiate(packages: str) -> tuple[Any, Any]:
    from sspi_import import SecurityContext

    client_creds = Credentials.acquire("Negotiate", "outbound", packages=packages)
    server_creds = Credentials.acquire("Negotiate", "inbound")
    client = SecurityContext.initiator(client_creds, f"host/{socket.gethostname()}")
    server = SecurityContext.acceptor(server_creds)
    client._owns_credentials = server._owns_credentials = True
    try:
        token = client.step(None)
        while token is not None and not server.complete:
            token = server.step(token)
            if token is not None:
                token = client.step(token)
    except BaseException:
        client.close()
        server.close()
        raise
    return client, server


@pytest.mark.windows_sspi
def test_windows_negotiate_without_ntlm_fails_or_picks_kerberos() -> None:
    failure: sspi_import.SspiError | None = None
    try:
        client, server = _windows_negotiate("!ntlm")
    except sspi_import.SspiError as exc:  # a workgroup machine: no KDC, and NTLM excluded
        failure = exc
    if failure is not None:
        assert failure.function in ("InitializeSecurityContextW", "AcceptSecurityContext")
        return
    with client, server:
        assert client.complete
        assert server.complete
        assert server.package_name == "Kerberos"


@pytest.mark.windows_sspi
def test_windows_negotiate_without_kerberos_gives_ntlm() -> None:
    client, server = _windows_negotiate("!kerberos")
    with client, server:
        assert client.complete
        assert server.complete
        assert server.package_name == "NTLM"
        assert client.package_name == "NTLM"
