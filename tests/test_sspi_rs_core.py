"""The core calls against a real SSPI provider on Linux: sspi-rs, bundled in sspilib.

sspi-rs implements the SSPI C API but not context export/import: both answer
SEC_E_UNSUPPORTED_FUNCTION. That is a real failure path through a real DLL.
"""

from __future__ import annotations

import pathlib

import pytest

import sspi_import


def test_import_is_unsupported_by_sspi_rs(sspi_rs: pathlib.Path) -> None:
    with pytest.raises(sspi_import.UnsupportedFunctionError) as info:
        sspi_import.ImportedContext("NTLM", b"\x01" * 64)
    err = info.value
    assert err.function == "ImportSecurityContextW"
    assert err.status == 0x80090302
    assert err.winerror == -2146893054
    assert "SEC_E_UNSUPPORTED_FUNCTION" in str(err)


def test_export_is_unsupported_by_sspi_rs(sspi_rs: pathlib.Path) -> None:
    with pytest.raises(sspi_import.UnsupportedFunctionError) as info:
        sspi_import.export_context((1, 2))
    assert info.value.function == "ExportSecurityContext"


def test_sspi_rs_exports_the_whole_family(sspi_rs: pathlib.Path) -> None:
    from sspi_import import library

    api = library.api()
    for name in (
        "ExportSecurityContext",
        "ImportSecurityContextW",
        "DeleteSecurityContext",
        "FreeContextBuffer",
    ):
        assert api.has(name), name
    assert str(sspi_rs) in sspi_import.library_description()
