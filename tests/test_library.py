"""Loading the library: lazily, by env var or use_library, with clear errors otherwise."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

import sspi_import
from sspi_import import library
from stubs import Stub

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="secur32 is the default there")


def test_import_loads_nothing() -> None:
    code = (
        "import sys, sspi_import; "
        "assert not any('sspi' in str(m) for m in getattr(sys.modules['ctypes'], '_loaded', [])); "
        "from sspi_import import library; assert library._api is None; print('ok')"
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
    monkeypatch.setenv(library.ENV_VAR, str(stub.path))
    with sspi_import.ImportedContext("NTLM", b"blob"):
        assert stub.live_contexts() == 1
    assert library.ENV_VAR in sspi_import.library_description()


def test_bad_env_path_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    monkeypatch.setenv(library.ENV_VAR, str(tmp_path / "missing.so"))
    with pytest.raises(
        sspi_import.SspiUnavailableError, match="cannot load the SSPI library"
    ) as info:
        sspi_import.export_context((1, 2))
    # It names the variable as the source, and does not tell the user to set it.
    assert f"which the environment variable {library.ENV_VAR} names" in str(info.value)
    assert f"set the environment variable {library.ENV_VAR}=" not in str(info.value)


def test_a_nul_in_a_library_path_is_said_as_such(tmp_path: pathlib.Path) -> None:
    with pytest.raises(sspi_import.SspiUnavailableError, match="embedded null byte"):
        sspi_import.use_library(str(tmp_path) + "/a\0b.so")


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
    api = library.api()
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
    api = library.api()
    assert api.ImportSecurityContextW is api.ImportSecurityContextW
    assert api.ImportSecurityContextW.__name__ == "ImportSecurityContextW"
    assert api.ImportSecurityContextW.restype is ctypes.c_int32


def test_bare_bindings_are_declared_twins_without_argtypes() -> None:
    from sspi_import._raw.functions import PROTOTYPES
    from sspi_import.testing import FakeSspi

    bare = {name: proto for name, proto in PROTOTYPES.items() if name != proto.symbol}
    assert sorted(bare) == [
        "DecryptMessage_bare",
        "EncryptMessage_bare",
        "ImportSecurityContextW_bare",
    ]
    sspi_import.use_library(FakeSspi())
    api = library.api()
    for name, proto in bare.items():
        declared = PROTOTYPES[proto.symbol]
        assert name == f"{proto.symbol}_bare"
        assert proto.functype._flags_ == declared.functype._flags_  # same convention
        assert proto.functype._restype_ is declared.functype._restype_ is ctypes.c_int32
        fn = getattr(api, name)
        assert fn is getattr(api, name)  # bound once, like the declared one
        assert fn.argtypes is None  # nothing converted: the caller passes C values
        address = ctypes.cast(fn, ctypes.c_void_p).value
        assert address == ctypes.cast(getattr(api, proto.symbol), ctypes.c_void_p).value


def test_no_binding_checks_a_status_itself(stub: Stub) -> None:
    # One status convention: every caller hands the status to errors.check.
    api = library.api()
    assert api.DeleteSecurityContext.errcheck is None
    from sspi_import._raw.structs import SecHandle

    status = api.DeleteSecurityContext(SecHandle(1, 2))  # no such context
    assert status & 0xFFFF_FFFF == 0x80090301  # SEC_E_INVALID_HANDLE, returned, not raised


def test_unknown_names_are_not_bindings(stub: Stub) -> None:
    api = library.api()
    with pytest.raises(AttributeError):
        api.NoSuchFunction_bare  # noqa: B018
    with pytest.raises(AttributeError):
        api.DeleteSecurityContext_bare  # noqa: B018 - no bare twin is declared for it
    with pytest.raises(sspi_import.SspiUnavailableError):
        api.EncryptMessage_bare  # noqa: B018 - declared, but the stub lacks EncryptMessage


def test_kernel32_prototypes_save_the_last_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from sspi_import._raw import functions

    if hasattr(ctypes, "WINFUNCTYPE"):  # Windows: the declared types themselves
        for proto in functions.PROTOTYPES.values():
            saved = bool(proto.functype._flags_ & ctypes._FUNCFLAG_USE_LASTERROR)  # type: ignore[attr-defined]
            assert saved == proto.kernel32, proto.name
        return
    # Elsewhere: the factory asks WINFUNCTYPE for use_last_error on kernel32 calls only.
    asked: list[tuple[str, dict[str, object]]] = []

    def winfunctype(restype: object, *argtypes: object, **options: object) -> object:
        asked.append((str(restype), options))
        return ctypes.CFUNCTYPE(restype, *argtypes)  # type: ignore[arg-type]

    monkeypatch.setattr(ctypes, "WINFUNCTYPE", winfunctype, raising=False)
    functions._proto(
        "CloseHandle", functions.BOOL, (functions.HANDLE,), handle="token", kernel32=True
    )
    assert asked == [(str(functions.BOOL), {"use_last_error": True})]


def test_a_library_at_a_path_that_is_not_utf8_loads_and_says_what_it_lacks(
    stub: Stub, tmp_path: pathlib.Path
) -> None:
    """POSIX file names are bytes: ctypes's error for a missing symbol quotes the path and
    cannot decode it (UnicodeDecodeError escaped from every lookup of a missing export)."""
    odd = tmp_path / os.fsdecode(b"\xff-sspi.so")
    shutil.copyfile(stub.path, odd)
    sspi_import.use_library(odd)
    try:
        assert not library.api().has("EnumerateSecurityPackagesW")  # the stub lacks it
        assert library.api().has("DeleteSecurityContext")
    finally:
        sspi_import.use_library(None)
