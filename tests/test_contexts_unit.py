"""Input validation and call shapes, with pytest-mock at the raw boundary (no DLL at all)."""

from __future__ import annotations

import ctypes
import mmap
from typing import Any
from unittest.mock import MagicMock

import pytest
from pytest_mock import MockerFixture

import sspi_import
from sspi_import import ExportFlags, ImportedContext, export_context
from sspi_import import exported as exported_module
from sspi_import import handoff as handoff_module
from sspi_import._raw.structs import SecBuffer, SecHandle

POINTER_MAX = (1 << (ctypes.sizeof(ctypes.c_void_p) * 8)) - 1


@pytest.fixture
def fake_api(mocker: MockerFixture) -> MagicMock:
    """A mocked library: the ctypes functions replaced, ``api()`` returning the mock."""
    lib = MagicMock(name="sspi")
    lib.ImportSecurityContextW_bare.return_value = 0
    lib.DeleteSecurityContext.return_value = 0
    lib.FreeContextBuffer.return_value = 0
    lib.CloseHandle.return_value = 1
    mocker.patch.object(handoff_module, "api", return_value=lib)  # imports
    mocker.patch.object(exported_module, "api", return_value=lib)  # exports of foreign handles
    return lib


def _no_call(lib: MagicMock) -> None:
    assert lib.method_calls == [], "a DLL function was called for bad input"


@pytest.mark.parametrize(
    ("package", "exc", "match"),
    [
        ("", ValueError, "empty"),
        ("NT\0LM", ValueError, "NUL"),
        ("\ud800", ValueError, "surrogate"),
        (b"NTLM", TypeError, "str"),
        (None, TypeError, "str"),
        (42, TypeError, "str"),
    ],
)
def test_bad_package_refused_before_any_call(
    fake_api: MagicMock, package: Any, exc: type[Exception], match: str
) -> None:
    with pytest.raises(exc, match=match):
        ImportedContext(package, b"blob")
    _no_call(fake_api)


@pytest.mark.parametrize(
    ("blob", "exc", "match"),
    [
        (b"", ValueError, "empty"),
        (bytearray(), ValueError, "empty"),
        (memoryview(b""), ValueError, "empty"),
        ("text blob", TypeError, "bytes"),
        (None, TypeError, "bytes"),
        (12, TypeError, "bytes"),
        ([1, 2, 3], TypeError, "bytes"),
    ],
)
def test_bad_blob_refused_before_any_call(
    fake_api: MagicMock, blob: Any, exc: type[Exception], match: str
) -> None:
    with pytest.raises(exc, match=match):
        ImportedContext("NTLM", blob)
    _no_call(fake_api)


def test_oversized_blob_refused_without_touching_it(fake_api: MagicMock) -> None:
    # 4 GiB + 1 of anonymous memory: nothing is committed until a page is touched.
    size = 0xFFFF_FFFF + 1
    try:
        region = mmap.mmap(-1, size)
    except (OSError, OverflowError, ValueError) as exc:
        pytest.skip(f"cannot map {size} bytes here: {exc}")
    with region, pytest.raises(ValueError, match="at most 4294967295"):
        ImportedContext("NTLM", memoryview(region))
    _no_call(fake_api)


@pytest.mark.parametrize(
    ("token", "exc"),
    [
        (-1, ValueError),
        (POINTER_MAX + 1, ValueError),
        ("0x10", TypeError),
        (1.0, TypeError),
        (True, TypeError),
    ],
)
def test_bad_token_refused_before_any_call(
    fake_api: MagicMock, token: Any, exc: type[Exception]
) -> None:
    with pytest.raises(exc, match="token"):
        ImportedContext("NTLM", b"blob", token)
    _no_call(fake_api)


def test_import_call_shape(fake_api: MagicMock) -> None:
    blob = b"blob"
    ctx = ImportedContext("NTLM", blob, 0x44, buffer_type=2)
    (name, packed, token, reference), _ = fake_api.ImportSecurityContextW_bare.call_args
    # The bare binding converts nothing: each argument is exactly what C reads.
    assert name == "NTLM".encode("utf-16-le") + b"\0\0"
    assert type(packed) is bytes  # the SecBuffer, packed: ctypes passes its data's address
    buffer = SecBuffer.from_buffer_copy(packed)
    assert (buffer.cbBuffer, buffer.BufferType) == (4, 2)
    assert buffer.pvBuffer == ctypes.cast(ctypes.c_char_p(blob), ctypes.c_void_p).value
    assert type(token) is ctypes.c_void_p  # pointer-sized: a bare int would be a C int
    assert token.value == 0x44
    handle = reference._obj  # byref(handle): the handle that is now owned
    assert type(handle) is SecHandle
    ctx.close()
    fake_api.DeleteSecurityContext.assert_called_once_with(handle)


def test_failed_import_owns_nothing(fake_api: MagicMock) -> None:
    fake_api.ImportSecurityContextW_bare.side_effect = sspi_import.error_from_status(
        0x80090306, "ImportSecurityContextW"
    )
    with pytest.raises(sspi_import.NotOwnerError):
        ImportedContext("NTLM", b"blob")
    fake_api.DeleteSecurityContext.assert_not_called()


@pytest.mark.parametrize(
    ("flags", "exc", "match"),
    [
        (4, ValueError, "kernel"),
        (ExportFlags.DELETE_OLD | 4, ValueError, "kernel"),
        (8, ValueError, "unknown export flags"),
        (-1, ValueError, "kernel|unknown"),
        (1 << 40, ValueError, "unknown"),
        ("DELETE_OLD", TypeError, "ExportFlags"),
        (None, TypeError, "ExportFlags"),
        (True, TypeError, "ExportFlags"),
    ],
)
def test_bad_flags_refused_before_any_call(
    fake_api: MagicMock, flags: Any, exc: type[Exception], match: str
) -> None:
    with pytest.raises(exc, match=match):
        export_context((1, 2), flags)
    _no_call(fake_api)


@pytest.mark.parametrize(
    ("context", "exc"),
    [
        ((1,), TypeError),
        ((1, 2, 3), TypeError),
        (("1", 2), TypeError),
        ((1.0, 2), TypeError),
        ((True, 2), TypeError),
        ((-1, 2), ValueError),
        ((1, POINTER_MAX + 1), ValueError),
        ([1, 2], TypeError),
        (12.5, TypeError),
        (-1, ValueError),  # pywin32 int form: its invalid handle
        (None, TypeError),
        (b"handle", TypeError),
    ],
)
def test_bad_context_refused_before_any_call(
    fake_api: MagicMock, context: Any, exc: type[Exception]
) -> None:
    with pytest.raises(exc):
        export_context(context)
    _no_call(fake_api)


def test_export_frees_buffer_even_when_copy_fails(
    fake_api: MagicMock, mocker: MockerFixture
) -> None:
    def export(handle: Any, flags: int, packed: Any, token: Any) -> int:
        packed.cbBuffer, packed.BufferType, packed.pvBuffer = 8, 2, 0xDEAD0000
        return 0

    fake_api.ExportSecurityContext.side_effect = export
    mocker.patch.object(exported_module, "string_at", side_effect=MemoryError)
    with pytest.raises(MemoryError):
        export_context((1, 2))
    fake_api.FreeContextBuffer.assert_called_once_with(0xDEAD0000)


def test_export_failure_status_frees_buffer_and_raises_typed_error(fake_api: MagicMock) -> None:
    # No prototype checks a status: export_context hands it to errors.check.
    def export(handle: Any, flags: int, packed: Any, token: Any) -> int:
        packed.pvBuffer = 0xBEEF0000
        return -0x7FF6FD00  # 0x80090300 as the signed LONG the DLL returns

    fake_api.ExportSecurityContext.side_effect = export
    with pytest.raises(sspi_import.InsufficientMemoryError) as info:
        export_context((1, 2))
    assert info.value.status == 0x80090300
    assert info.value.function == "ExportSecurityContext"
    fake_api.FreeContextBuffer.assert_called_once_with(0xBEEF0000)


def test_free_context_buffer_failure_after_export_keeps_the_export(fake_api: MagicMock) -> None:
    data = ctypes.create_string_buffer(b"abc", 3)

    def export(handle: Any, flags: int, packed: Any, token: Any) -> int:
        packed.cbBuffer, packed.pvBuffer = 3, ctypes.addressof(data)
        return 0

    fake_api.ExportSecurityContext.side_effect = export
    fake_api.FreeContextBuffer.return_value = -0x7FF6FCFF  # 0x80090301 SEC_E_INVALID_HANDLE
    # The export completed: it is handed over, and the failed free is a CleanupWarning
    # (raised here, under filterwarnings=error) that carries it.
    with pytest.raises(sspi_import.CleanupWarning, match="FreeContextBuffer failed") as info:
        export_context((1, 2))
    exported = info.value.result
    assert isinstance(exported, sspi_import.ExportedContext)
    assert exported.blob == b"abc"
    (error,) = info.value.errors
    assert isinstance(error, sspi_import.InvalidHandleError)
    assert error.function == "FreeContextBuffer"
    fake_api.FreeContextBuffer.assert_called_once()
    with pytest.warns(sspi_import.CleanupWarning):  # where warnings are warnings: returned
        assert export_context((1, 2)).blob == b"abc"


def test_export_passes_flags_and_handle(fake_api: MagicMock) -> None:
    seen: dict[str, Any] = {}

    def export(handle: Any, flags: int, packed: Any, token: Any) -> int:
        seen["handle"], seen["flags"] = (handle.dwLower, handle.dwUpper), flags
        data = ctypes.create_string_buffer(b"abc", 3)
        seen["keep"] = data
        packed.cbBuffer, packed.pvBuffer = 3, ctypes.addressof(data)
        return 0

    fake_api.ExportSecurityContext.side_effect = export
    exported = export_context((7, 9), ExportFlags.RESET_NEW)
    assert seen["handle"] == (7, 9)
    assert seen["flags"] == 1
    assert exported.blob == b"abc"
    fake_api.FreeContextBuffer.assert_called_once()


def test_public_api_is_complete() -> None:
    required = {
        "ImportedContext",
        "ExportedContext",
        "export_context",
        "ExportFlags",
        "SspiError",
        "SspiUnavailableError",
        "error_from_status",
        "explain",
        "use_library",
        "UnsupportedFunctionError",
    }
    assert required <= set(sspi_import.__all__)
    for name in sspi_import.__all__:
        obj = getattr(sspi_import, name)
        if name != "__version__":
            assert obj.__doc__, f"{name} has no docstring"


def test_export_flags_values_match_the_header() -> None:
    assert int(ExportFlags.NONE) == 0
    assert int(ExportFlags.RESET_NEW) == 0x1
    assert int(ExportFlags.DELETE_OLD) == 0x2
    assert not hasattr(ExportFlags, "TO_KERNEL")
