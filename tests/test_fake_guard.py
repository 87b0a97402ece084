"""The guard around every FakeSspi function (``testing/_guard.py``): counting, injected
failures (named as ``testing/_names.py`` checks them), no exception escaping into ctypes.
"""

from __future__ import annotations

import os
from ctypes import POINTER, byref
from typing import Any

import pytest

import sspi_import
from fake_raw import Raw
from sspi_import import library
from sspi_import._raw.structs import ULONG, SecPkgInfoW
from sspi_import.testing import FakeSspi


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
