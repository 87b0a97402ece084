"""The error tree: classes by status, attributes, messages, pickling, explain()."""

from __future__ import annotations

import pickle

import pytest

import sspi_import
from sspi_import import errors
from sspi_import._raw.status_codes import ALIASES, STATUS_CODES

# The classes the core issue names, with the status each must carry.
NAMED = [
    (sspi_import.UnknownCredentialsError, 0x8009030D, "SEC_E_UNKNOWN_CREDENTIALS"),
    (sspi_import.NoCredentialsError, 0x8009030E, "SEC_E_NO_CREDENTIALS"),
    (sspi_import.NotOwnerError, 0x80090306, "SEC_E_NOT_OWNER"),
    (sspi_import.InsufficientMemoryError, 0x80090300, "SEC_E_INSUFFICIENT_MEMORY"),
    (sspi_import.InternalError, 0x80090304, "SEC_E_INTERNAL_ERROR"),
    (sspi_import.InvalidHandleError, 0x80090301, "SEC_E_INVALID_HANDLE"),
    (sspi_import.InvalidTokenError, 0x80090308, "SEC_E_INVALID_TOKEN"),
    (sspi_import.UnsupportedFunctionError, 0x80090302, "SEC_E_UNSUPPORTED_FUNCTION"),
    (sspi_import.PackageNotFoundError, 0x80090305, "SEC_E_SECPKG_NOT_FOUND"),
    (sspi_import.CannotPackError, 0x80090309, "SEC_E_CANNOT_PACK"),
    (sspi_import.ContextExpiredError, 0x80090317, "SEC_E_CONTEXT_EXPIRED"),
    (sspi_import.LogonDeniedError, 0x8009030C, "SEC_E_LOGON_DENIED"),
    (sspi_import.MessageAlteredError, 0x8009030F, "SEC_E_MESSAGE_ALTERED"),
    (sspi_import.OutOfSequenceError, 0x80090310, "SEC_E_OUT_OF_SEQUENCE"),
    (sspi_import.IncompleteMessageError, 0x80090318, "SEC_E_INCOMPLETE_MESSAGE"),
    (sspi_import.DecryptFailureError, 0x80090330, "SEC_E_DECRYPT_FAILURE"),
    (sspi_import.WrongPrincipalError, 0x80090322, "SEC_E_WRONG_PRINCIPAL"),
    (
        sspi_import.NoAuthenticatingAuthorityError,
        0x80090311,
        "SEC_E_NO_AUTHENTICATING_AUTHORITY",
    ),
]


@pytest.mark.parametrize(("cls", "status", "symbol"), NAMED, ids=[n[2] for n in NAMED])
def test_each_named_status_maps_to_its_class(
    cls: type[sspi_import.SspiError], status: int, symbol: str
) -> None:
    signed = status - (1 << 32)
    for code in (status, signed):
        err = sspi_import.error_from_status(code, "ImportSecurityContextW")
        assert type(err) is cls
        assert isinstance(err, sspi_import.SspiError)
        assert isinstance(err, OSError)
        assert err.status == status
        assert err.winerror == signed
        assert err.symbol == symbol
        assert err.function == "ImportSecurityContextW"
        assert symbol in str(err)
        assert f"0x{status:08X}" in str(err)
        assert "ImportSecurityContextW" in str(err)


def test_class_names_are_exported() -> None:
    for cls, _, _ in NAMED:
        assert getattr(sspi_import, cls.__name__) is cls
        assert cls.__name__ in sspi_import.__all__
        assert cls.__doc__


def test_unknown_code_raises_base_with_hex() -> None:
    err = sspi_import.error_from_status(0x8009FFFF, "ExportSecurityContext")
    assert type(err) is sspi_import.SspiError
    assert err.symbol is None
    assert "0x8009FFFF" in str(err)
    assert str(-2146828289) in str(err)


def test_known_code_without_class_raises_base_with_symbol() -> None:
    err = sspi_import.error_from_status(0x80090327)  # SEC_E_CERT_UNKNOWN: no own class
    assert type(err) is sspi_import.SspiError
    assert err.symbol == "SEC_E_CERT_UNKNOWN"
    assert "SSPI call failed" in str(err)


def test_alias_statuses_share_the_primary_class() -> None:
    assert ALIASES["SEC_E_NOT_SUPPORTED"] == "SEC_E_UNSUPPORTED_FUNCTION"
    err = sspi_import.error_from_status(0x80090302)
    assert isinstance(err, sspi_import.UnsupportedFunctionError)
    assert err.symbol == "SEC_E_UNSUPPORTED_FUNCTION"  # the primary name, not the alias


@pytest.mark.parametrize(
    "cls_status", [n[:2] for n in NAMED] + [(sspi_import.SspiError, 0x8009FFFF)]
)
def test_errors_pickle_with_class_and_attributes(
    cls_status: tuple[type[sspi_import.SspiError], int],
) -> None:
    cls, status = cls_status
    err = sspi_import.error_from_status(status, "ImportSecurityContextW")
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is cls
    assert (copy.status, copy.winerror, copy.symbol, copy.function) == (
        err.status,
        err.winerror,
        err.symbol,
        err.function,
    )
    assert str(copy) == str(err)


def test_error_is_raisable_and_catchable_as_oserror() -> None:
    with pytest.raises(OSError, match="SEC_E_NOT_OWNER") as info:
        raise sspi_import.error_from_status(0x80090306)
    assert isinstance(info.value, sspi_import.NotOwnerError)


def test_direct_construction_keeps_detail() -> None:
    err = sspi_import.NotOwnerError(0x80090306, "ImportSecurityContextW", "while importing")
    assert "while importing" in str(err)
    assert pickle.loads(pickle.dumps(err)).detail == "while importing"


@pytest.mark.parametrize("bad", [1 << 32, -(1 << 31) - 1, 10**30])
def test_out_of_range_codes_are_refused(bad: int) -> None:
    with pytest.raises(ValueError, match="32-bit"):
        sspi_import.error_from_status(bad)


@pytest.mark.parametrize("bad", ["0x80090306", 1.5, None, True])
def test_non_int_codes_are_refused(bad: object) -> None:
    with pytest.raises(TypeError):
        sspi_import.error_from_status(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "form",
    [
        0x80090306,
        -2146893050,
        "0x80090306",
        "0X80090306",
        "-2146893050",
        "2148074246",
        "SEC_E_NOT_OWNER",
        "sec_e_not_owner",
        "  SEC_E_NOT_OWNER\n",
    ],
)
def test_explain_accepts_every_form(form: int | str) -> None:
    text = sspi_import.explain(form)
    assert text.startswith("SEC_E_NOT_OWNER (0x80090306, -2146893050): ")
    assert text.endswith(".")


def test_explain_alias_symbol_gives_primary() -> None:
    assert sspi_import.explain("SEC_E_NO_SPM").startswith("SEC_E_INTERNAL_ERROR (0x80090304")


def test_explain_includes_advice_for_unsupported() -> None:
    text = sspi_import.explain(0x80090302)
    assert "sspi-rs" in text  # the advice names the providers that do not implement export


def test_explain_unknown_numbers_say_so() -> None:
    assert "not an SSPI status code" in sspi_import.explain(5)
    assert "0x8009FFFF" in sspi_import.explain("0x8009ffff")
    assert sspi_import.status_info(0x8009FFFF) is None


@pytest.mark.parametrize("garbage", ["", "hello", "0xZZ", "SEC_E_NOPE", "1e5", "0x1_0000_0000"])
def test_explain_garbage_raises_value_error(garbage: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - message varies by form
        sspi_import.explain(garbage)


def test_status_info_fields() -> None:
    info = sspi_import.status_info("SEC_E_INTERNAL_ERROR")
    assert info is not None
    assert info.status == 0x80090304
    assert info.winerror == -2146893052
    assert "SEC_E_NO_SPM" in info.aliases
    assert info.meaning


def test_every_table_code_explains_and_builds_an_error() -> None:
    assert len(STATUS_CODES) >= 95
    for symbol, value, _meaning, _advice in STATUS_CODES:
        info = sspi_import.status_info(symbol)
        assert info is not None
        assert info.status == value
        err = sspi_import.error_from_status(value)
        assert err.status == value
        assert err.symbol == ALIASES.get(symbol, symbol)


def test_registry_has_no_class_for_success_codes() -> None:
    assert all(status & 0x8000_0000 for status in errors._CLASSES)


@pytest.mark.parametrize("code", [0x80090306, 0x80090301, 0x8009030C, 0x80091234])
def test_oserror_fields_are_set_the_same_way_for_every_code(code: int) -> None:
    error = sspi_import.error_from_status(code, "ImportSecurityContextW")
    assert isinstance(error, OSError)
    assert error.errno is None  # an SSPI status maps to no C errno
    assert error.strerror == str(error)
    assert error.winerror == code - 0x1_0000_0000
    again = pickle.loads(pickle.dumps(error))
    assert (again.errno, again.strerror, again.winerror) == (None, str(error), error.winerror)
