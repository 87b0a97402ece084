"""Tests of the C SSPI stub itself, driven through raw ctypes."""

from __future__ import annotations

import ctypes
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from stubs import HANDLE_UPPER, SecBuffer, SecHandle, Stub, sspi_entry_points

SEC_E_OK = 0
SEC_E_INVALID_HANDLE = 0x80090301
SEC_E_SECPKG_NOT_FOUND = 0x80090305
SEC_E_INVALID_TOKEN = 0x80090308
SEC_E_INVALID_PARAMETER = 0x8009035D
SEC_E_NO_CREDENTIALS = 0x8009030E
SECBUFFER_TOKEN = 2
DELETE_OLD = 0x2
TO_KERNEL = 0x4

HandleP = ctypes.POINTER(SecHandle)
BufferP = ctypes.POINTER(SecBuffer)
UnitsP = ctypes.POINTER(ctypes.c_uint16)


@dataclass(frozen=True)
class Raw:
    """The SSPI entry points of the stub, declared the way a binding would."""

    lib: ctypes.CDLL

    def import_(
        self, package: str | None, blob: SecBuffer | None, token: int | None = None
    ) -> tuple[int, SecHandle]:
        handle = SecHandle()
        units = utf16(package) if package is not None else None
        status = self.lib.ImportSecurityContextW(
            units, None if blob is None else ctypes.byref(blob), token, ctypes.byref(handle)
        )
        return status & 0xFFFFFFFF, handle

    def export(
        self, handle: SecHandle, flags: int = 0, want_token: bool = True
    ) -> tuple[int, SecBuffer, int | None]:
        packed = SecBuffer()
        token = ctypes.c_void_p()
        status = self.lib.ExportSecurityContext(
            ctypes.byref(handle),
            flags,
            ctypes.byref(packed),
            ctypes.byref(token) if want_token else None,
        )
        return status & 0xFFFFFFFF, packed, token.value

    def delete(self, handle: SecHandle) -> int:
        return int(self.lib.DeleteSecurityContext(ctypes.byref(handle))) & 0xFFFFFFFF

    def free(self, pointer: int | None) -> int:
        return int(self.lib.FreeContextBuffer(pointer)) & 0xFFFFFFFF

    def close(self, token: int | None) -> int:
        return int(self.lib.CloseHandle(token))


def utf16(text: str) -> ctypes.Array[ctypes.c_uint16]:
    """NUL-terminated UTF-16 units (``c_wchar`` is 32-bit on Linux, so not that)."""
    data = text.encode("utf-16-le")
    units = (ctypes.c_uint16 * (len(data) // 2 + 1))()
    ctypes.memmove(units, data, len(data))
    return units


def blob_of(data: bytes) -> tuple[SecBuffer, ctypes.Array[ctypes.c_char]]:
    """A SecBuffer over a ctypes copy of *data*; keep the second item alive."""
    storage = ctypes.create_string_buffer(data, len(data))
    return SecBuffer(len(data), SECBUFFER_TOKEN, ctypes.addressof(storage)), storage


def handle_of(pair: tuple[int, int]) -> SecHandle:
    return SecHandle(pair[0], pair[1])


@pytest.fixture(scope="session")
def stub_library(stub_build: Stub) -> Stub:
    """The suite's stub (conftest): prebuilt from SSPI_IMPORT_STUB_LIBRARY, or built."""
    return stub_build


@pytest.fixture(scope="session")
def raw_library(stub_library: Stub) -> Raw:
    # A second CDLL on the same file shares the stub's state but not its
    # function objects, so these prototypes cannot clash with anyone else's.
    lib = sspi_entry_points(stub_library.path)
    lib.ImportSecurityContextW.argtypes = [UnitsP, BufferP, ctypes.c_void_p, HandleP]
    lib.ImportSecurityContextW.restype = ctypes.c_int32
    lib.ExportSecurityContext.argtypes = [
        HandleP,
        ctypes.c_uint32,
        BufferP,
        ctypes.POINTER(ctypes.c_void_p),
    ]
    lib.ExportSecurityContext.restype = ctypes.c_int32
    lib.DeleteSecurityContext.argtypes = [HandleP]
    lib.DeleteSecurityContext.restype = ctypes.c_int32
    lib.FreeContextBuffer.argtypes = [ctypes.c_void_p]
    lib.FreeContextBuffer.restype = ctypes.c_int32
    lib.CloseHandle.argtypes = [ctypes.c_void_p]
    lib.CloseHandle.restype = ctypes.c_int32
    return Raw(lib)


@pytest.fixture
def stub(stub_library: Stub) -> Iterator[Stub]:
    stub_library.reset()
    yield stub_library
    stub_library.reset()


@pytest.fixture
def raw(raw_library: Raw, stub: Stub) -> Raw:
    return raw_library


def test_import_issues_live_handle_and_records_arguments(stub: Stub, raw: Raw) -> None:
    payload = bytes(range(100))
    blob, storage = blob_of(payload)
    status, handle = raw.import_("Negotiate", blob, token=0x1234)
    assert status == SEC_E_OK
    assert (handle.dwLower, handle.dwUpper) == (1, HANDLE_UPPER)
    assert stub.live_contexts() == 1
    assert stub.last_package() == "Negotiate"
    assert stub.last_blob_len() == 100
    assert stub.last_blob_ptr() == ctypes.addressof(storage)
    assert stub.last_blob_head() == payload[:64]
    assert stub.last_token() == 0x1234
    assert stub.calls("ImportSecurityContextW") == 1

    status, second = raw.import_("Kerberos", blob)
    assert status == SEC_E_OK
    assert second.dwLower == 2
    assert stub.last_token() == 0
    assert stub.live_contexts() == 2


def test_import_rejects_unknown_package_and_empty_blob(stub: Stub, raw: Raw) -> None:
    blob, _storage = blob_of(b"x")
    assert raw.import_("Unknown", blob)[0] == SEC_E_SECPKG_NOT_FOUND
    assert stub.last_package() == "Unknown"
    assert raw.import_(None, blob)[0] == SEC_E_SECPKG_NOT_FOUND
    assert raw.import_("NTLM", None)[0] == SEC_E_INVALID_TOKEN
    assert raw.import_("NTLM", SecBuffer(0, SECBUFFER_TOKEN, None))[0] == SEC_E_INVALID_TOKEN
    assert stub.live_contexts() == 0
    assert stub.calls("ImportSecurityContextW") == 4


def test_export_buffer_is_freed_exactly_once(stub: Stub, raw: Raw) -> None:
    source = handle_of(stub.new_context())
    status, packed, token = raw.export(source, flags=0)
    assert status == SEC_E_OK
    assert packed.BufferType == SECBUFFER_TOKEN
    assert packed.pvBuffer
    assert token is None
    content = ctypes.string_at(packed.pvBuffer, packed.cbBuffer)
    assert content == bytes(source) + b"stub-context"
    assert stub.live_buffers() == 1
    assert stub.live_contexts() == 1
    assert stub.last_flags() == 0
    assert stub.last_handle() == (source.dwLower, source.dwUpper)

    assert raw.free(packed.pvBuffer) == SEC_E_OK
    assert stub.live_buffers() == 0
    assert stub.bad_frees() == 0
    assert raw.free(packed.pvBuffer) == SEC_E_INVALID_HANDLE
    assert stub.bad_frees() == 1
    assert stub.calls("FreeContextBuffer") == 2


def test_export_payload_can_be_configured(stub: Stub, raw: Raw) -> None:
    source = handle_of(stub.new_context())
    stub.set_export_payload(b"\x00custom\xff")
    status, packed, _ = raw.export(source)
    assert status == SEC_E_OK
    assert ctypes.string_at(packed.pvBuffer, packed.cbBuffer) == b"\x00custom\xff"
    assert raw.free(packed.pvBuffer) == SEC_E_OK


def test_export_delete_old_removes_source(stub: Stub, raw: Raw) -> None:
    source = handle_of(stub.new_context())
    assert raw.export(source, flags=TO_KERNEL)[0] == SEC_E_INVALID_PARAMETER
    assert stub.live_buffers() == 0

    status, packed, _ = raw.export(source, flags=DELETE_OLD)
    assert status == SEC_E_OK
    assert stub.last_flags() == DELETE_OLD
    assert stub.live_contexts() == 0
    assert raw.export(source)[0] == SEC_E_INVALID_HANDLE
    assert raw.delete(source) == SEC_E_INVALID_HANDLE
    assert raw.free(packed.pvBuffer) == SEC_E_OK


def test_delete_twice_is_invalid_handle(stub: Stub, raw: Raw) -> None:
    source = handle_of(stub.new_context())
    assert raw.delete(source) == SEC_E_OK
    assert raw.delete(source) == SEC_E_INVALID_HANDLE
    assert raw.delete(SecHandle(12345, HANDLE_UPPER)) == SEC_E_INVALID_HANDLE
    assert stub.last_handle() == (12345, HANDLE_UPPER)
    assert stub.calls("DeleteSecurityContext") == 3


def test_fail_injects_for_exactly_times_calls(stub: Stub, raw: Raw) -> None:
    blob, _storage = blob_of(b"packed")
    stub.fail("ImportSecurityContextW", SEC_E_NO_CREDENTIALS, times=2)
    for _ in range(2):
        status, handle = raw.import_("Negotiate", blob)
        assert status == SEC_E_NO_CREDENTIALS
        assert (handle.dwLower, handle.dwUpper) == (0, 0)
    assert stub.live_contexts() == 0
    assert stub.last_package() == ""  # an injected failure records nothing
    assert raw.import_("Negotiate", blob)[0] == SEC_E_OK
    assert stub.calls("ImportSecurityContextW") == 3

    source = handle_of(stub.new_context())
    stub.fail("ExportSecurityContext", SEC_E_INVALID_HANDLE)
    assert raw.export(source, flags=DELETE_OLD)[0] == SEC_E_INVALID_HANDLE
    assert stub.live_contexts() == 2
    assert stub.live_buffers() == 0
    stub.fail("CloseHandle", 0)
    assert raw.close(0x99) == 0
    assert stub.bad_closes() == 0

    with pytest.raises(ValueError, match="unknown SSPI function"):
        stub.fail("AcceptSecurityContext", SEC_E_OK)


def test_token_tracking_with_close_handle(stub: Stub, raw: Raw) -> None:
    stub.set_export_token(0xABC0)
    source = handle_of(stub.new_context())
    status, packed, token = raw.export(source)
    assert status == SEC_E_OK
    assert token == 0xABC0
    assert stub.live_tokens() == 1
    assert raw.free(packed.pvBuffer) == SEC_E_OK

    status, packed, token = raw.export(source, want_token=False)
    assert status == SEC_E_OK
    assert token is None
    assert stub.live_tokens() == 1
    assert raw.free(packed.pvBuffer) == SEC_E_OK

    assert raw.close(0xABC0) == 1
    assert stub.live_tokens() == 0
    assert raw.close(0xABC0) == 0
    assert raw.close(None) == 0
    assert stub.bad_closes() == 2


def test_many_live_handles_survive_random_deletes(stub: Stub, raw: Raw) -> None:
    handles = [handle_of(stub.new_context()) for _ in range(20_000)]
    random.Random(1234).shuffle(handles)
    for index, handle in enumerate(handles):
        assert raw.delete(handle) == SEC_E_OK, index
        if index % 997 == 0:
            assert stub.live_contexts() == len(handles) - index - 1
    assert stub.live_contexts() == 0


def test_threads_import_delete_leave_no_live_contexts(stub: Stub, raw: Raw) -> None:
    threads, rounds = 8, 10_000

    def worker(_: int) -> int:
        blob, _storage = blob_of(b"thread-blob")
        package = utf16("Negotiate")
        handle = SecHandle()
        failures = 0
        for _ in range(rounds):
            status = raw.lib.ImportSecurityContextW(
                package, ctypes.byref(blob), None, ctypes.byref(handle)
            )
            failures += status != SEC_E_OK
            failures += raw.lib.DeleteSecurityContext(ctypes.byref(handle)) != SEC_E_OK
        return failures

    with ThreadPoolExecutor(max_workers=threads) as pool:
        assert sum(pool.map(worker, range(threads))) == 0
    assert stub.live_contexts() == 0
    assert stub.calls("ImportSecurityContextW") == threads * rounds
    assert stub.calls("DeleteSecurityContext") == threads * rounds
    assert stub.new_context()[0] == threads * rounds + 1
