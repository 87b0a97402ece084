"""What FakeSspi holds (``testing/_state.py``): the ledger of what is out, misuse, and the
leak report.
"""

from __future__ import annotations

import ctypes
from ctypes import POINTER, byref, c_void_p

import pytest

import sspi_import
from fake_raw import Raw
from sspi_import import library
from sspi_import._raw.structs import ULONG, SecHandle, SecPkgInfoW
from sspi_import.library import call
from sspi_import.testing import FakeSspi, Outstanding


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
