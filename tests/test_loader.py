"""Loading the library: lazily, by env var or use_library, with clear errors otherwise."""

from __future__ import annotations

import ctypes
import ctypes.util
import pathlib
import subprocess
import sys

import pytest

import sspi_import
from sspi_import._raw import loader
from stubs import Stub

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="secur32 is the default there")


def test_import_loads_nothing() -> None:
    code = (
        "import sys, sspi_import; "
        "assert not any('sspi' in str(m) for m in getattr(sys.modules['ctypes'], '_loaded', [])); "
        "from sspi_import._raw import loader; assert loader._api is None; print('ok')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "ok"


def test_no_library_error_says_what_to_do() -> None:
    with pytest.raises(sspi_import.SspiUnavailableError) as info:
        sspi_import.ImportedContext("NTLM", b"blob")
    text = str(info.value)
    assert "SSPI_IMPORT_LIBRARY" in text
    assert "use_library" in text
    assert "sspilib" in text
    assert isinstance(info.value, OSError)


def test_env_var_names_the_library(stub: Stub, monkeypatch: pytest.MonkeyPatch) -> None:
    sspi_import.use_library(None)
    monkeypatch.setenv(loader.ENV_VAR, str(stub.path))
    with sspi_import.ImportedContext("NTLM", b"blob"):
        assert stub.live_contexts() == 1
    assert loader.ENV_VAR in sspi_import.library_description()


def test_bad_env_path_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    monkeypatch.setenv(loader.ENV_VAR, str(tmp_path / "missing.so"))
    with pytest.raises(sspi_import.SspiUnavailableError, match="cannot load the SSPI library"):
        sspi_import.export_context((1, 2))


def test_use_library_bad_path_fails_at_once(tmp_path: pathlib.Path) -> None:
    with pytest.raises(sspi_import.SspiUnavailableError, match=r"missing\.so"):
        sspi_import.use_library(tmp_path / "missing.so")


def test_use_library_refuses_non_sspi_library() -> None:
    libc = ctypes.util.find_library("c")
    if libc is None:
        pytest.skip("no C library to load")
    with pytest.raises(
        sspi_import.SspiUnavailableError, match="does not look like an SSPI library"
    ):
        sspi_import.use_library(libc)


@pytest.mark.parametrize("bad", [42, b"/lib/x.so", object(), ""])
def test_use_library_type_errors(bad: object) -> None:
    with pytest.raises(TypeError):
        sspi_import.use_library(bad)  # type: ignore[arg-type]


def test_use_library_accepts_a_loaded_cdll(stub: Stub) -> None:
    sspi_import.use_library(ctypes.CDLL(str(stub.path)))
    with sspi_import.ImportedContext("NTLM", b"blob"):
        assert stub.live_contexts() == 1


def test_missing_function_is_reported_by_name(stub: Stub) -> None:
    # The stub exports the export/import family only: a handshake call is missing.
    api = loader.api()
    assert not api.has("AcceptSecurityContext")
    with pytest.raises(
        sspi_import.SspiUnavailableError, match="does not export AcceptSecurityContext"
    ):
        api.AcceptSecurityContext  # noqa: B018


def test_provider_object_protocol(stub: Stub) -> None:
    real = ctypes.CDLL(str(stub.path))

    class Provider:
        def __init__(self) -> None:
            self.asked: list[str] = []

        def sspi_function_address(self, name: str) -> int | None:
            self.asked.append(name)
            fn = getattr(real, name, None)
            return None if fn is None else ctypes.cast(fn, ctypes.c_void_p).value

    provider = Provider()
    sspi_import.use_library(provider)
    with sspi_import.ImportedContext("NTLM", b"blob"):
        assert stub.live_contexts() == 1
    assert "ImportSecurityContextW" in provider.asked


def test_prototypes_are_bound_once(stub: Stub) -> None:
    api = loader.api()
    assert api.ImportSecurityContextW is api.ImportSecurityContextW
    assert api.ImportSecurityContextW.__name__ == "ImportSecurityContextW"
    assert api.ImportSecurityContextW.restype is ctypes.c_int32


def test_bare_binding_is_the_same_function_without_argtypes_or_errcheck(stub: Stub) -> None:
    from sspi_import._raw.functions import PROTOTYPES
    from sspi_import._raw.structs import SecHandle

    api = loader.api()
    declared, bare = api.DeleteSecurityContext, api.DeleteSecurityContext_bare
    assert bare is api.DeleteSecurityContext_bare  # bound once, like the declared one
    assert ctypes.cast(bare, ctypes.c_void_p).value == ctypes.cast(declared, ctypes.c_void_p).value
    proto = PROTOTYPES["DeleteSecurityContext"]
    assert type(bare)._flags_ == proto.functype._flags_  # same calling convention
    assert bare.restype is ctypes.c_int32
    assert bare.argtypes is None  # nothing converted: the caller passes C values
    assert bare.errcheck is None
    assert declared.errcheck is not None
    # A failure comes back as the signed status instead of raising.
    status = bare(ctypes.byref(ctypes.create_string_buffer(64)))  # no such context
    assert status & 0xFFFF_FFFF == 0x80090301  # SEC_E_INVALID_HANDLE
    with pytest.raises(sspi_import.InvalidHandleError):
        declared(ctypes.byref(SecHandle(1, 2)))


def test_bare_names_only_declared_functions(stub: Stub) -> None:
    api = loader.api()
    with pytest.raises(AttributeError):
        api.NoSuchFunction_bare  # noqa: B018
    with pytest.raises(sspi_import.SspiUnavailableError):
        api.AcceptSecurityContext_bare  # noqa: B018 - declared, but the stub lacks it


def test_bare_function_types_are_made_once(stub: Stub) -> None:
    from sspi_import._raw.functions import PROTOTYPES

    proto = PROTOTYPES["DeleteSecurityContext"]
    assert proto.bare() is proto.bare()
    before = type(loader.api().DeleteSecurityContext_bare)
    sspi_import.use_library(stub.path)  # a new Api binds with the same type again
    assert type(loader.api().DeleteSecurityContext_bare) is before is proto.bare()
