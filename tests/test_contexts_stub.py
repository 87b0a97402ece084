"""ImportedContext, ExportedContext and export_context through a real C library (the stub).

The stub exports the SSPI calls with the sspi.h ABI and tracks every handle and buffer,
so these tests see the marshalling and the ownership exactly as a DLL would.
"""

from __future__ import annotations

import ctypes
import gc
import mmap

import pytest

import sspi_import
from sspi_import import ExportedContext, ExportFlags, ImportedContext, export_context
from sspi_import._raw.structs import SecHandle
from stubs import HANDLE_UPPER, Stub
from wrapped import at_once

BLOB = b"packed-context-\x00\x01\x02-bytes"


def test_import_passes_name_blob_and_token(stub: Stub) -> None:
    with ImportedContext("Kerberos", BLOB, 0x1234) as ctx:
        assert not ctx.closed
        assert ctx.package == "Kerberos"
        assert stub.live_contexts() == 1
        assert stub.last_package() == "Kerberos"
        assert stub.last_blob_len() == len(BLOB)
        assert stub.last_blob_head() == BLOB
        assert stub.last_token() == 0x1234
    assert ctx.closed
    assert stub.live_contexts() == 0
    assert stub.calls("DeleteSecurityContext") == 1


def test_non_ascii_package_name_crosses_as_utf16(stub: Stub) -> None:
    with ImportedContext("Négociation-✓-𝄞", BLOB):
        assert stub.last_package() == "Négociation-✓-𝄞"


def test_no_token_is_null(stub: Stub) -> None:
    with ImportedContext("NTLM", BLOB, None):
        assert stub.last_token() == 0
    with ImportedContext("NTLM", BLOB, 0):
        assert stub.last_token() == 0


def _address(data: bytes) -> int | None:
    return ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "memoryview-of-bytes"])
def test_blob_is_not_copied(stub: Stub, kind: str) -> None:
    raw = bytearray(BLOB * 100)
    frozen = bytes(raw)
    data: bytes | bytearray | memoryview
    if kind == "bytes":
        data, address = frozen, _address(frozen)
    elif kind == "memoryview-of-bytes":
        data, address = memoryview(frozen), _address(frozen)
    else:
        data = raw if kind == "bytearray" else memoryview(raw)
        address = ctypes.addressof(ctypes.c_char.from_buffer(raw))
    with ImportedContext("NTLM", data):
        assert stub.last_blob_ptr() == address
        assert stub.last_blob_len() == len(raw)


def test_non_contiguous_and_typed_views_are_imported_correctly(stub: Stub) -> None:
    strided = memoryview(bytearray(range(200)))[::2]
    with ImportedContext("NTLM", strided):
        assert stub.last_blob_len() == 100
        assert stub.last_blob_head() == bytes(range(0, 128, 2))
    words = memoryview(bytearray(b"\x01\x00\x00\x00" * 8)).cast("I")
    with ImportedContext("NTLM", words):
        assert stub.last_blob_len() == 32  # bytes, not items


def test_mmap_blob_is_read_in_place(stub: Stub) -> None:
    with mmap.mmap(-1, 4096) as region:
        region[:4] = b"MMAP"
        with ImportedContext("NTLM", memoryview(region)) as ctx:
            view = memoryview(region)
            address = ctypes.addressof(ctypes.c_char.from_buffer(view))
            assert stub.last_blob_ptr() == address
            assert stub.last_blob_head()[:4] == b"MMAP"
            ctx.close()
            view.release()


def test_export_copies_once_and_frees_the_sspi_buffer(stub: Stub) -> None:
    stub.set_export_payload(b"exported-secret-blob")
    with ImportedContext("NTLM", BLOB) as ctx:
        exported = export_context(ctx)
        assert exported.blob == b"exported-secret-blob"
        assert exported.package == "NTLM"
        assert exported.buffer_type == 2
        assert exported.token is None
        assert stub.calls("FreeContextBuffer") == 1
        assert stub.live_buffers() == 0
        assert stub.last_flags() == 0
        assert not ctx.closed  # a plain export leaves the source usable
    assert stub.live_contexts() == 0


def test_export_method_is_export_context(stub: Stub) -> None:
    with ImportedContext("NTLM", BLOB) as ctx:
        assert ctx.export(ExportFlags.RESET_NEW).package == "NTLM"
        assert stub.last_flags() == ExportFlags.RESET_NEW


def test_delete_old_marks_source_closed_and_never_deletes_again(stub: Stub) -> None:
    ctx = ImportedContext("NTLM", BLOB)
    exported = export_context(ctx, ExportFlags.DELETE_OLD | ExportFlags.RESET_NEW)
    assert stub.last_flags() == 3
    assert ctx.closed
    assert stub.live_contexts() == 0  # SSPI deleted it
    ctx.close()
    del ctx
    gc.collect()
    assert stub.calls("DeleteSecurityContext") == 0
    assert exported.blob


def test_failed_delete_old_export_keeps_the_source_owned(stub: Stub) -> None:
    ctx = ImportedContext("NTLM", BLOB)
    stub.fail("ExportSecurityContext", 0x80090309)
    with pytest.raises(sspi_import.CannotPackError) as info:
        export_context(ctx, ExportFlags.DELETE_OLD)
    assert info.value.function == "ExportSecurityContext"
    assert not ctx.closed
    ctx.close()
    assert stub.calls("DeleteSecurityContext") == 1


def test_export_token_is_owned_and_closed_once(stub: Stub) -> None:
    stub.set_export_token(0xBEEF)
    with ImportedContext("NTLM", BLOB) as ctx, ctx.export() as exported:
        assert exported.token == 0xBEEF
        assert stub.live_tokens() == 1
        with ImportedContext.from_exported(exported) as again:
            assert stub.last_token() == 0xBEEF
            assert again.package == "NTLM"
    assert exported.token is None
    assert exported.closed
    exported.close()
    assert stub.calls("CloseHandle") == 1
    assert stub.live_tokens() == 0


def test_exported_token_detach_hands_it_over(stub: Stub) -> None:
    stub.set_export_token(0x77)
    with ImportedContext("NTLM", BLOB) as ctx:
        exported = ctx.export()
    assert exported.detach() == 0x77
    assert exported.token is None
    assert stub.calls("CloseHandle") == 0
    stub.lib.CloseHandle(ctypes.c_void_p(0x77))  # we own it now


def test_forgotten_exported_token_warns_and_is_closed(stub: Stub) -> None:
    stub.set_export_token(0x99)
    with ImportedContext("NTLM", BLOB) as ctx:
        exported = ctx.export()
    with pytest.warns(
        ResourceWarning, match="unclosed <ExportedContext token package='NTLM' open>"
    ):
        del exported  # the last reference: CPython finalizes it here
    assert stub.live_tokens() == 0
    assert stub.calls("CloseHandle") == 1


def test_only_a_token_carries_a_finalizer(stub: Stub) -> None:
    # An export without a token owns nothing: it is a plain value, not an object with
    # __del__ (which cost 6% of an export). The token's owner is the finalized part.
    assert not hasattr(ExportedContext, "__del__")
    stub.set_export_token(0x44)
    with ImportedContext("NTLM", BLOB) as ctx, ctx.export() as exported:
        assert hasattr(type(exported._token), "__del__")


def test_eight_threads_closing_one_exported_token_close_it_once(stub: Stub) -> None:
    stub.set_export_token(0x55)
    with ImportedContext("NTLM", BLOB) as ctx:
        for _ in range(50):
            exported = ctx.export()
            at_once(exported.close)
            assert exported.closed
            assert exported.token is None
    assert stub.calls("CloseHandle") == 50
    assert stub.live_tokens() == 0


def test_closed_token_cannot_be_detached(stub: Stub) -> None:
    stub.set_export_token(0x66)
    with ImportedContext("NTLM", BLOB) as ctx, ctx.export() as exported:
        assert not exported.closed
    assert exported.closed
    with pytest.raises(ValueError, match="closed; there is no handle to detach"):
        exported.detach()
    with pytest.raises(ValueError, match="closed; there is no handle to detach"):
        ExportedContext("NTLM", b"blob").detach()  # never had a token


def test_export_of_raw_tuple_and_sechandle(stub: Stub) -> None:
    lower, upper = stub.new_context()
    exported = export_context((lower, upper))
    assert exported.package is None
    assert stub.last_handle() == (lower, upper)
    exported2 = export_context(SecHandle(lower, upper), ExportFlags.DELETE_OLD)
    assert exported2.blob
    assert stub.live_contexts() == 0


def test_export_of_dead_handle_raises_invalid_handle(stub: Stub) -> None:
    with pytest.raises(sspi_import.InvalidHandleError) as info:
        export_context((12345, HANDLE_UPPER))
    assert info.value.function == "ExportSecurityContext"
    assert stub.live_buffers() == 0


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (0x8009030D, sspi_import.UnknownCredentialsError),
        (0x8009030E, sspi_import.NoCredentialsError),
        (0x80090306, sspi_import.NotOwnerError),
        (0x80090300, sspi_import.InsufficientMemoryError),
        (0x80090304, sspi_import.InternalError),
        (0x80090308, sspi_import.InvalidTokenError),
        (0x80090302, sspi_import.UnsupportedFunctionError),
        (0x8009FFFF, sspi_import.SspiError),
    ],
)
def test_import_failures_raise_their_class(
    stub: Stub, status: int, cls: type[sspi_import.SspiError]
) -> None:
    stub.fail("ImportSecurityContextW", status)
    with pytest.raises(cls) as info:
        ImportedContext("NTLM", BLOB)
    assert type(info.value) is cls
    assert info.value.status == status
    assert info.value.function == "ImportSecurityContextW"
    assert stub.live_contexts() == 0


def test_package_not_found_from_the_library(stub: Stub) -> None:
    with pytest.raises(sspi_import.PackageNotFoundError):
        ImportedContext("Unknown", BLOB)


def test_close_is_idempotent_and_detach_hands_over(stub: Stub) -> None:
    ctx = ImportedContext("NTLM", BLOB)
    ctx.close()
    ctx.close()
    assert stub.calls("DeleteSecurityContext") == 1
    other = ImportedContext("NTLM", BLOB)
    lower, upper = other.detach()
    assert upper == HANDLE_UPPER
    assert other.closed
    other.close()
    assert stub.calls("DeleteSecurityContext") == 1
    with pytest.raises(ValueError, match="closed"):
        other.detach()
    stub_lib = ctypes.CDLL(str(stub.path))  # the pair is ours now: delete it by hand
    stub_lib.DeleteSecurityContext(ctypes.byref(SecHandle(lower, upper)))


def test_delete_failure_on_close_raises_but_context_is_closed(stub: Stub) -> None:
    ctx = ImportedContext("NTLM", BLOB)
    stub.fail("DeleteSecurityContext", 0x80090301)
    with pytest.raises(sspi_import.InvalidHandleError):
        ctx.close()
    assert ctx.closed
    ctx.close()  # nothing left to do: no second delete
    assert stub.calls("DeleteSecurityContext") == 1
    # the stub still holds the handle it never deleted: release it for the leak check
    assert stub.live_contexts() == 1
    stub.reset()


def test_closed_context_cannot_be_exported(stub: Stub) -> None:
    ctx = ImportedContext("NTLM", BLOB)
    ctx.close()
    with pytest.raises(ValueError, match="closed"):
        export_context(ctx)
    with pytest.raises(ValueError, match="closed"):
        ctx.export(ExportFlags.DELETE_OLD)
    with pytest.raises(ValueError, match="closed"):
        ctx.export(ExportFlags.RESET_NEW)
    assert stub.calls("ExportSecurityContext") == 0


def test_forgotten_context_warns_and_is_deleted(stub: Stub) -> None:
    ctx = ImportedContext("NTLM", BLOB)
    with pytest.warns(ResourceWarning, match="unclosed <ImportedContext package='NTLM' open>"):
        del ctx  # the last reference: CPython finalizes it here
    assert stub.calls("DeleteSecurityContext") == 1
    assert stub.live_contexts() == 0


def test_repr_shows_package_and_state_never_the_blob(stub: Stub) -> None:
    stub.set_export_payload(b"TOPSECRET")
    with ImportedContext("NTLM", b"TOPSECRET") as ctx:
        assert repr(ctx) == "<ImportedContext package='NTLM' open>"
        exported = ctx.export()
    assert repr(ctx) == "<ImportedContext package='NTLM' closed>"
    text = repr(exported) + str(exported)
    assert "TOPSECRET" not in text
    assert "9 bytes" in text


def test_eight_threads_closing_one_context_delete_it_once(stub: Stub) -> None:
    for _ in range(50):
        ctx = ImportedContext("NTLM", BLOB)
        at_once(ctx.close)
        assert ctx.closed
    assert stub.calls("DeleteSecurityContext") == 50
    assert stub.live_contexts() == 0


def test_contexts_keep_the_library_that_made_them(stub: Stub) -> None:
    ctx = ImportedContext("NTLM", BLOB)
    sspi_import.use_library(None)  # nothing installed now: the context still knows its DLL
    ctx.close()
    assert stub.live_contexts() == 0


def test_exported_context_is_an_immutable_value() -> None:
    exported = ExportedContext("NTLM", b"blob", 2)
    assert (exported.package, exported.blob, exported.buffer_type, exported.token) == (
        "NTLM",
        b"blob",
        2,
        None,
    )
    with pytest.raises(AttributeError):
        exported.blob = b"other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        exported.package = "Kerberos"  # type: ignore[misc]
    assert exported.closed  # no token: nothing to close
    exported.close()
    with pytest.raises(ValueError, match="32-bit"):
        ExportedContext("NTLM", b"blob", 1 << 32)
    with pytest.raises(ValueError, match="32-bit"):
        ExportedContext("NTLM", b"blob", -1)


def test_from_exported_needs_a_package() -> None:
    exported = ExportedContext(None, b"blob")
    with pytest.raises(ValueError, match="package"):
        ImportedContext.from_exported(exported)
    with pytest.raises(TypeError):
        ImportedContext.from_exported(b"blob")  # type: ignore[arg-type]


def test_from_exported_package_override(stub: Stub) -> None:
    with ImportedContext.from_exported(ExportedContext(None, b"blob", 2), "Kerberos") as ctx:
        assert ctx.package == "Kerberos"
        assert stub.last_package() == "Kerberos"
