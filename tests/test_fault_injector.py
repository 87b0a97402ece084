"""FaultInjector over real providers, and the precise fault-injection arguments."""

from __future__ import annotations

import pathlib
import sys
from typing import get_args

import pytest

import sspi_import
from sspi_import import library
from sspi_import._raw.functions import PROTOTYPES
from sspi_import.testing import FakeSspi, FaultInjector, SspiFunction
from sspi_import.testing._faults import default_library
from sspi_import.testing._names import SIMULATED
from sspi_import.testing._state import FREED_REMEMBERED, Recent

IDENTITY = sspi_import.Identity("alice", "EXAMPLE", "p4ssw0rd")


def test_the_literal_names_exactly_the_symbols_the_library_calls() -> None:
    assert sorted(get_args(SspiFunction)) == sorted(SIMULATED)
    assert "EncryptMessage_bare" not in SIMULATED  # bare bindings resolve their symbol
    assert PROTOTYPES["EncryptMessage_bare"].symbol in SIMULATED


@pytest.mark.parametrize("owner", [FakeSspi, lambda: FaultInjector(FakeSspi())])
@pytest.mark.parametrize(
    ("status", "error", "match"),
    [
        (5, ValueError, "not a failure"),
        (0, ValueError, "not a failure"),
        ("SEC_I_CONTINUE_NEEDED", ValueError, "not a failure"),
        (0x1_0000_0000, ValueError, "32-bit"),
        (-0x8000_0001, ValueError, "32-bit"),
        ("SEC_E_NOPE", ValueError, "SEC_E_NOPE"),
        ("nonsense", ValueError, "unknown status"),
        (True, TypeError, "int or a SEC_E"),
        (3.5, TypeError, "int or a SEC_E"),
        (None, TypeError, "int or a SEC_E"),
    ],
)
def test_fail_refuses_what_is_no_failure_status(
    owner: type[FakeSspi], status: object, error: type[Exception], match: str
) -> None:
    target = owner()
    with pytest.raises(error, match=match):
        target.fail("DeleteSecurityContext", status)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a str"):
        target.fail(5, "SEC_E_NOT_OWNER")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not an SSPI function"):
        target.fail("EncryptMessage_bare", "SEC_E_NOT_OWNER")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="times"):
        target.fail("DeleteSecurityContext", "SEC_E_NOT_OWNER", times=True)


def test_fail_takes_signed_unsigned_unknown_and_named_failures() -> None:
    fake = FakeSspi()
    for status in (0x80090306, -2146893050, "0x80090306", "sec_e_not_owner", 0x8009FFFF):
        fake.fail("ImportSecurityContextW", status)
    assert fake._failures["ImportSecurityContextW"] == [-2146893050] * 4 + [-2146828289]


def test_freed_buffers_and_closed_handles_take_bounded_memory() -> None:
    with FakeSspi() as fake:
        client, server = sspi_import.loopback("NTLM")
        with client, server:
            for _ in range(FREED_REMEMBERED + 200):
                with sspi_import.export_context(client) as exported:
                    sspi_import.ImportedContext.from_exported(exported).close()
        assert len(fake._freed) <= FREED_REMEMBERED
        assert not hasattr(fake, "_gone")
        # a stale context is still told from an unknown one, by its number alone
        from sspi_import.testing._state import CTX_TAG

        handle = sspi_import._raw.structs.SecHandle(5, CTX_TAG)
        assert library.api().DeleteSecurityContext(handle) < 0
        handle = sspi_import._raw.structs.SecHandle(10**9, CTX_TAG)
        assert library.api().DeleteSecurityContext(handle) < 0
        assert [m.kind for m in fake.misuses] == ["deleted context", "unknown context"]
        fake.misuses.clear()
        fake.assert_no_leaks()


def test_the_freed_set_is_an_lru_of_fixed_size() -> None:
    recent = Recent(FREED_REMEMBERED)
    for value in range(3 * FREED_REMEMBERED):
        recent.add(value)
    assert len(recent) == FREED_REMEMBERED
    assert 0 not in recent
    assert 3 * FREED_REMEMBERED - 1 in recent


def test_over_a_fake_it_forwards_and_counts() -> None:
    fake = FakeSspi()
    with FaultInjector(fake) as faults:
        client, server = sspi_import.loopback("NTLM")
        with client, server:
            faults.fail("EncryptMessage", "SEC_E_INSUFFICIENT_MEMORY", times=2)
            for _ in range(2):
                with pytest.raises(sspi_import.InsufficientMemoryError):
                    server.encrypt(b"hi")
            assert faults.pending("EncryptMessage") == 0
            assert client.decrypt(server.encrypt(b"hi")) == b"hi"  # forwarded again
        assert faults.calls("EncryptMessage") == 3
        assert fake.calls("EncryptMessage") == 1  # the two failures never reached it
    fake.assert_no_leaks()
    assert fake.misuses == []


def test_the_bare_bindings_go_through_it() -> None:
    fake = FakeSspi()
    with FaultInjector(fake) as faults:
        bare = library.api().EncryptMessage_bare
        assert bare.__name__ == "EncryptMessage"
        faults.fail("EncryptMessage", "SEC_E_INSUFFICIENT_MEMORY")
        status = bare(None, 0, None, 0)  # the injected status, before any argument is read
        assert status == -2146893056
        assert faults.calls("EncryptMessage") == 1
        assert fake.calls("EncryptMessage") == 0


class _Lacking(FakeSspi):
    """The simulated provider without ExportSecurityContext and CloseHandle."""

    def sspi_function_address(self, name: str) -> int | None:
        if name in ("ExportSecurityContext", "CloseHandle"):
            return None
        return super().sspi_function_address(name)


def test_a_function_the_provider_lacks_is_absent() -> None:
    faults = FaultInjector(_Lacking())
    assert faults.sspi_function_address("ExportSecurityContext") is None
    assert faults.sspi_function_address("EncryptMessage_bare") is None  # never a symbol
    assert faults.sspi_function_address("FreeContextBuffer")


def test_a_kernel32_function_the_provider_lacks_is_kernel32s_on_windows_only() -> None:
    # The loader binds the kernel32 calls (CloseHandle, DuplicateHandle, OpenProcess) to
    # kernel32 itself on Windows when the provider lacks them, and the injector wraps
    # what the loader binds; elsewhere there is no kernel32 to fall back to.
    faults = FaultInjector(_Lacking())
    address = faults.sspi_function_address("CloseHandle")
    if sys.platform == "win32":
        assert address  # a forwarding callback around kernel32's CloseHandle
    else:
        assert address is None


def test_without_a_real_provider_it_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(library.ENV_VAR, raising=False)
    if sys.platform == "win32":
        assert default_library() == "secur32"  # Windows always has a real provider
        return
    with pytest.raises(sspi_import.SspiUnavailableError, match="find_sspi_rs"):
        FaultInjector()


def test_on_sspi_rs_the_injected_failure_comes_out_typed(sspi_rs_path: pathlib.Path) -> None:
    with FaultInjector(sspi_rs_path) as faults:
        faults.fail("AcceptSecurityContext", "SEC_E_INSUFFICIENT_MEMORY")
        with pytest.raises(sspi_import.InsufficientMemoryError) as caught:
            sspi_import.loopback("NTLM", IDENTITY)
        assert caught.value.function == "AcceptSecurityContext"
        assert faults.calls("InitializeSecurityContextW") == 1  # the real first leg ran
        assert faults.calls("AcceptSecurityContext") == 1
        assert faults.calls("FreeCredentialsHandle") == 2  # loopback cleaned up for real
        client, server = sspi_import.loopback("NTLM", IDENTITY)  # everything else is real
        with client, server:
            assert server.user_name == "EXAMPLE\\alice"
            assert client.decrypt(server.encrypt(b"hi")) == b"hi"
        assert faults.calls("AcceptSecurityContext") == 3


@pytest.mark.windows_sspi
def test_on_secur32_the_injected_failure_comes_out_typed(
    sspi_faults: FaultInjector,
) -> None:
    sspi_faults.fail("AcceptSecurityContext", "SEC_E_INSUFFICIENT_MEMORY")
    with pytest.raises(sspi_import.InsufficientMemoryError) as caught:
        sspi_import.loopback("NTLM")  # the logged-on user
    assert caught.value.function == "AcceptSecurityContext"
    assert sspi_faults.calls("InitializeSecurityContextW") == 1
    assert sspi_faults.calls("FreeCredentialsHandle") == 2
    client, server = sspi_import.loopback("NTLM")
    with client, server:
        assert client.decrypt(server.encrypt(b"hi")) == b"hi"
    sspi_faults.fail("CloseHandle", "SEC_E_INTERNAL_ERROR")  # kernel32: FALSE
    with pytest.raises(OSError):  # noqa: PT011 - check_win32 raises a plain OSError
        sspi_import.errors.check_win32(
            library.api().CloseHandle(library.api().GetCurrentProcess()), "CloseHandle"
        )
    assert sspi_faults.calls("CloseHandle") == 1


def test_a_forwarded_call_that_raises_surfaces_as_itself() -> None:
    # ctypes reports an access violation in the provider as OSError: raised inside the
    # forwarding callback, it would escape into ctypes, which then hands the library a
    # garbage status ("unknown status 0x00FAACC0"). The library must get a definite
    # failure instead, and the exception must come out as itself.
    def crashing(*args: object) -> int:
        raise OSError("exception: access violation reading 0x0000000000000032")

    faults = FaultInjector(FakeSspi())
    # What the forwarding callback calls (Api caches each binding as an attribute).
    setattr(faults._api, "AcquireCredentialsHandleW", crashing)  # noqa: B010
    with pytest.raises(OSError, match="access violation") as caught, faults:  # noqa: PT012
        with pytest.raises(sspi_import.SspiError) as inner:
            sspi_import.Credentials.acquire("NTLM", "outbound", IDENTITY)
        assert inner.value.status == 0x80090304  # SEC_E_INTERNAL_ERROR, not garbage
        assert inner.value.function == "AcquireCredentialsHandleW"
        assert [str(e) for e in faults.errors] == [
            "exception: access violation reading 0x0000000000000032"
        ]
    assert not isinstance(caught.value, sspi_import.SspiError)
    assert faults.errors == []  # raised once, by leaving the block
    faults.check()  # nothing left to raise
