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


def test_explain_suggests_the_hex_code_digits_without_0x_were() -> None:
    """As the command line does: 80090306 is a decimal number nobody meant."""
    assert sspi_import.explain("80090306").endswith("Did you mean 0x80090306 (SEC_E_NOT_OWNER)?")
    assert "Did you mean" not in sspi_import.explain("12")  # 0x12 is no SSPI code either
    assert "Did you mean" not in sspi_import.explain(80090306)  # an int was meant as given


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "hello",
        "0xZZ",
        "SEC_E_NOPE",
        "1e5",
        "0x1_0000_0000",
        "\u0661\u0662\u0663",  # Arabic-Indic digits: int() takes them, a status is ASCII
        "\uff11\uff12\uff13",  # fullwidth digits
        "9" * 5000,  # beyond int()'s digit limit: said as a size, not CPython's advice
        "0x" + "f" * 3000,
    ],
)
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


# Kerberos: one family ---------------------------------------------------------------

KERBEROS = [
    (sspi_import.KdcInvalidRequestError, 0x80090340, "SEC_E_KDC_INVALID_REQUEST"),
    (sspi_import.KdcUnableToReferError, 0x80090341, "SEC_E_KDC_UNABLE_TO_REFER"),
    (sspi_import.KdcUnknownEtypeError, 0x80090342, "SEC_E_KDC_UNKNOWN_ETYPE"),
    (sspi_import.NoKerberosKeyError, 0x80090348, "SEC_E_NO_KERB_KEY"),
    (sspi_import.TimeSkewError, 0x80090324, "SEC_E_TIME_SKEW"),
]
TICKETS = [
    "SEC_E_NO_TGT_REPLY",
    "SEC_E_TOO_MANY_PRINCIPALS",
    "SEC_E_NO_PA_DATA",
    "SEC_E_UNSUPPORTED_PREAUTH",
    "SEC_E_STRONG_CRYPTO_NOT_SUPPORTED",
    "SEC_E_DELEGATION_REQUIRED",
    "SEC_E_DELEGATION_POLICY",
    "SEC_E_CROSSREALM_DELEGATION_FAILURE",
    "SEC_E_NO_S4U_PROT_SUPPORT",
    "SEC_E_MUST_BE_KDC",
    "SEC_E_MULTIPLE_ACCOUNTS",
]


@pytest.mark.parametrize(("cls", "status", "symbol"), KERBEROS, ids=[k[2] for k in KERBEROS])
def test_kerberos_statuses_have_their_class_in_one_family(
    cls: type[sspi_import.SspiError], status: int, symbol: str
) -> None:
    err = sspi_import.error_from_status(status, "InitializeSecurityContextW")
    assert type(err) is cls
    assert isinstance(err, sspi_import.KerberosError)
    assert isinstance(err, sspi_import.SspiError)
    assert err.symbol == symbol
    assert getattr(sspi_import, cls.__name__) is cls
    assert cls.__name__ in sspi_import.__all__
    assert cls.__doc__
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is cls
    assert str(copy) == str(err)


@pytest.mark.parametrize("symbol", TICKETS)
def test_ticket_statuses_raise_ticket_error_naming_the_status(symbol: str) -> None:
    info = sspi_import.status_info(symbol)
    assert info is not None
    err = sspi_import.error_from_status(info.status, "InitializeSecurityContextW")
    assert type(err) is sspi_import.TicketError
    assert isinstance(err, sspi_import.KerberosError)
    assert err.symbol == symbol
    assert info.advice, f"{symbol} should say what to check"
    assert info.advice in str(err)


def test_kerberos_family_is_exported_and_is_no_status_of_its_own() -> None:
    assert "KerberosError" in sspi_import.__all__
    assert sspi_import.KerberosError.symbols == ()
    assert sspi_import.KerberosError not in errors._CLASSES.values()
    # the failures other packages report too stay outside the family
    for status in (0x80090311, 0x8009030D, 0x8009030C, 0x80090303, 0x80090322):
        assert not isinstance(sspi_import.error_from_status(status), sspi_import.KerberosError)


@pytest.mark.parametrize(
    ("symbol", "words"),
    [
        ("SEC_E_KDC_INVALID_REQUEST", ("password", "clock")),
        ("SEC_E_KDC_UNABLE_TO_REFER", ("SPN", "realm")),
        ("SEC_E_KDC_UNKNOWN_ETYPE", ("encryption type",)),
        ("SEC_E_NO_KERB_KEY", ("password", "keytab")),
        ("SEC_E_TIME_SKEW", ("clock",)),
        ("SEC_E_NO_AUTHENTICATING_AUTHORITY", ("KDC", "reachable")),
    ],
)
def test_kerberos_advice_names_what_to_check(symbol: str, words: tuple[str, ...]) -> None:
    text = sspi_import.explain(symbol, "InitializeSecurityContextW")
    for word in words:
        assert word.lower() in text.lower()


def test_every_error_class_declares_its_own_symbols() -> None:
    # A subclass that inherited its parent's symbols would take over the parent's codes.
    classes = [errors.SspiError]
    while classes:
        cls = classes.pop()
        assert "symbols" in vars(cls), f"{cls.__name__} must declare symbols (maybe ())"
        classes.extend(cls.__subclasses__())
    for status, cls in errors._CLASSES.items():
        assert status in {errors._BY_SYMBOL[s].status for s in cls.symbols}


# Advice that fits the call that failed ------------------------------------------------

# The three statuses whose general advice is about exported blobs and export/import, and
# the calls where a Kerberos (or any handshake) failure meets them.
BY_CALL = sorted(errors._CALL_ADVICE)  # every (status, call) with advice of its own


@pytest.mark.parametrize(("symbol", "function"), BY_CALL)
def test_advice_fits_the_call_not_export(symbol: str, function: str) -> None:
    info = sspi_import.status_info(symbol)
    assert info is not None
    err = sspi_import.error_from_status(info.status, function)
    text = str(err)
    assert errors._CALL_ADVICE[(symbol, function)] in text
    assert not info.advice or info.advice not in text  # not the export/import advice
    for word in ("ExportSecurityContext", "ImportSecurityContextW", "blob", "DELETE_OLD"):
        assert word not in text
    assert sspi_import.explain(symbol, function).endswith(errors._CALL_ADVICE[(symbol, function)])
    assert str(pickle.loads(pickle.dumps(err))) == text


@pytest.mark.parametrize("symbol", sorted({s for s, _ in BY_CALL}))
def test_export_and_import_keep_the_general_advice(symbol: str) -> None:
    info = sspi_import.status_info(symbol)
    assert info is not None
    for function in ("ImportSecurityContextW", "ExportSecurityContext", None):
        assert str(sspi_import.error_from_status(info.status, function)).endswith(info.advice)
    assert sspi_import.explain(symbol).endswith(info.advice)
    assert sspi_import.explain(symbol, "NoSuchFunction").endswith(info.advice)


def test_every_call_advice_names_a_status_and_a_declared_function() -> None:
    from sspi_import._raw.functions import PROTOTYPES

    for (symbol, function), advice in errors._CALL_ADVICE.items():
        info = sspi_import.status_info(symbol)
        assert info is not None
        assert info.symbol == symbol  # the primary name: the one error messages look up
        assert function in PROTOTYPES
        assert advice.endswith(".")
        assert advice != info.advice


@pytest.mark.parametrize("bad", [5, b"InitializeSecurityContextW", ["x"]])
def test_explain_refuses_a_function_that_is_no_name(bad: object) -> None:
    with pytest.raises(TypeError, match="function must be a str"):
        sspi_import.explain("SEC_E_INVALID_TOKEN", bad)  # type: ignore[arg-type]


def test_digits_of_other_scripts_are_no_status_code() -> None:
    """int() reads them; a status code is written in ASCII. They read as an unknown code
    (status_info) and, in explain, as a hex code nobody wrote."""
    for text in ("\u0661\u0662\u0663", "\uff11\uff12\uff13"):
        with pytest.raises(ValueError, match="give a number"):
            sspi_import.status_info(text)
        with pytest.raises(ValueError, match="give a number"):
            sspi_import.explain(text)
    with pytest.raises(ValueError, match="not a 32-bit status code"):
        sspi_import.status_info("9" * 5000)
