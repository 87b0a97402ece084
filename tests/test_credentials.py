"""``Identity`` and ``Credentials``: validation, secrecy, ownership (mocked raw boundary)."""

from __future__ import annotations

import ctypes
import datetime
import gc
import pickle
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
