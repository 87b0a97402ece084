"""Typed SSPI errors: one ``SspiError`` tree keyed by status code, and ``explain``.

Status codes are unsigned 32-bit everywhere in the public API (``0x80090306``, as the
headers and search engines write them); ``.winerror`` carries the signed value that
Windows' own ``OSError`` uses. Every failing call raises through ``error_from_status``,
so the class and attributes never depend on which function failed; the advice in the
message does where a status means something else for another call (``_CALL_ADVICE``:
``SEC_E_INVALID_TOKEN`` is a corrupt blob for ``ImportSecurityContextW`` but a bad peer
token for ``InitializeSecurityContextW``).

Kerberos, KDC and ticket statuses share one base, ``KerberosError``.

``check`` and ``check_win32`` are also where every call is logged (``_log``): one
``DEBUG`` record per SSPI or kernel32 call on the ``"sspi_import"`` logger (see
docs/debugging.md). Every other exception and warning class of the library is here too:
``SspiUnavailableError`` (no library), ``UnencryptedMessageError`` (``unwrap``),
``CleanupWarning`` (an operation completed, its cleanup failed) and
``InheritedHandleError`` (an owner used in a fork child).
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple, TypeVar

from . import _log
from ._raw.functions import PROTOTYPES
from ._raw.status_codes import ALIASES, STATUS_CODES

__all__ = [
    "CHECKS",
    "STATUS_FUNCTIONS",
    "BadBindingsError",
    "BufferTooSmallError",
    "CannotPackError",
    "CleanupWarning",
    "ContextExpiredError",
    "DecryptFailureError",
    "IncompleteMessageError",
    "InheritedHandleError",
    "InsufficientMemoryError",
    "InternalError",
    "InvalidHandleError",
    "InvalidParameterError",
    "InvalidTokenError",
    "KdcInvalidRequestError",
    "KdcUnableToReferError",
    "KdcUnknownEtypeError",
    "KerberosError",
    "LogonDeniedError",
    "MessageAlteredError",
    "NoAuthenticatingAuthorityError",
    "NoCredentialsError",
    "NoKerberosKeyError",
    "NotOwnerError",
    "OutOfSequenceError",
    "PackageNotFoundError",
    "SspiError",
    "SspiUnavailableError",
    "StatusInfo",
    "TargetUnknownError",
    "TicketError",
    "TimeSkewError",
    "UnencryptedMessageError",
    "UnknownCredentialsError",
    "UnsupportedFunctionError",
    "WrongPrincipalError",
    "check",
    "check_win32",
    "error_from_status",
    "explain",
    "report_cleanup",
    "status_info",
]


class StatusInfo(NamedTuple):
    """What the headers say about one status code."""

    symbol: str
    """The primary name in winerror.h, e.g. ``"SEC_E_NOT_OWNER"``."""
    status: int
    """The code as unsigned 32-bit, e.g. ``0x80090306``."""
    meaning: str
    """One sentence: what the code means."""
    advice: str
    """What to try, or ``""`` where there is nothing specific to say."""
    aliases: tuple[str, ...]
    """Other names winerror.h defines for the same code."""

    @property
    def winerror(self) -> int:
        """The code as signed 32-bit, as Windows' ``OSError.winerror`` and pywin32 show it."""
        return _signed(self.status)


def _signed(status: int) -> int:
    return status - 0x1_0000_0000 if status & 0x8000_0000 else status


def _build_tables() -> tuple[dict[int, StatusInfo], dict[str, StatusInfo]]:
    by_status: dict[int, StatusInfo] = {}
    by_symbol: dict[str, StatusInfo] = {}
    for symbol, value, meaning, advice in STATUS_CODES:
        if symbol in ALIASES:
            continue
        names = tuple(a for a, target in ALIASES.items() if target == symbol)
        info = StatusInfo(symbol, value, meaning, advice, names)
        by_status.setdefault(value, info)
        by_symbol[symbol] = info
    for alias, target in ALIASES.items():
        by_symbol[alias] = by_symbol[target]
    return by_status, by_symbol


_BY_STATUS, _BY_SYMBOL = _build_tables()


def _unsigned(code: int) -> int:
    if isinstance(code, bool) or not isinstance(code, int):
        raise TypeError(f"a status code is an int, not {type(code).__name__}")
    if not -0x8000_0000 <= code <= 0xFFFF_FFFF:
        raise ValueError(f"{code} is not a 32-bit status code (signed or unsigned)")
    return code & 0xFFFF_FFFF


def _lookup(code: int | str) -> tuple[int, StatusInfo | None]:
    if isinstance(code, str):
        text = code.strip()
        if re.fullmatch(r"SEC_[EI]_\w+", text, re.IGNORECASE):
            info = _BY_SYMBOL.get(text.upper())
            if info is None:
                raise ValueError(f"{text!r} is not a SEC_E_/SEC_I_ name in winerror.h")
            return info.status, info
        # ASCII digits only (\d and int() take any script's), and no more than a 32-bit
        # code can have: int() of thousands of digits fails with CPython's own advice.
        if re.fullmatch(r"[+-]?[0-9]{1,20}", text):
            code = int(text, 10)  # int(x, 0) would refuse a leading zero
        elif re.fullmatch(r"[+-]?0[xX][0-9a-fA-F]{1,16}", text):
            code = int(text, 16)
        elif re.fullmatch(r"[+-]?(?:[0-9]+|0[xX][0-9a-fA-F]+)", text):
            shown = text if len(text) <= 24 else text[:24] + "..."
            raise ValueError(f"{shown} is not a 32-bit status code (signed or unsigned)")
        else:
            raise ValueError(
                f"{code!r} is not a status code: give a number (0x80090306, -2146893050) "
                "or a name (SEC_E_NOT_OWNER)"
            )
    unsigned = _unsigned(code)
    return unsigned, _BY_STATUS.get(unsigned)


def status_info(code: int | str) -> StatusInfo | None:
    """Look a status code up: an int of either sign, or a string in any usual form.

    Strings may be hex (``"0x80090306"``), decimal (``"-2146893050"``) or the symbol
    (``"SEC_E_NOT_OWNER"``, any case). Returns ``None`` for a well-formed code that is
    not in winerror.h; raises ``ValueError`` for a string that is no code at all or a
    number outside 32 bits, and ``TypeError`` for anything but ``int`` and ``str``.
    """
    return _lookup(code)[1]


def explain(code: int | str, function: str | None = None) -> str:
    """Say what a status code means, and what to try.

    >>> explain(-2146893050)  # doctest: +ELLIPSIS
    'SEC_E_NOT_OWNER (0x80090306, -2146893050): ...'

    Accepts the forms ``status_info`` accepts. ``function`` (``"InitializeSecurityContextW"``)
    picks the advice for a failure of that call where it differs from the status's
    general advice, as the ``SspiError`` of that call carries it; without it, the general
    advice. An unknown but well-formed code gives a sentence that says so; a string that
    is no code raises ``ValueError``.
    """
    if function is not None and not isinstance(function, str):
        raise TypeError(f"function must be a str or None, not {type(function).__name__}")
    value, info = _lookup(code)
    if info is None:
        hint = ""
        meant = _hex_reading(code) if isinstance(code, str) else None
        if meant is not None:
            hint = f" Did you mean 0x{meant.status:08X} ({meant.symbol})?"
        return (
            f"0x{value:08X} ({_signed(value)}): not an SSPI status code in winerror.h; "
            f"it may be a Win32 error or an NTSTATUS from the provider.{hint}"
        )
    text = f"{info.symbol} (0x{info.status:08X}, {info.winerror}): {info.meaning}"
    advice = _advice(info, function)
    return f"{text} {advice}" if advice else text


_DECIMAL = re.compile(r"\s*\+?[0-9]{1,8}\s*")
"""Digits only, at most 8: a number that could be a hex code written without ``0x``."""


def _hex_reading(text: str) -> StatusInfo | None:
    """The known code that digits read as hex are (``"80090306"``), for a hint; else ``None``.

    For input that reads as a decimal number but was most likely a hex code copied
    without its ``0x``: ``explain`` and the command line's ``explain`` suggest it.
    """
    if not _DECIMAL.fullmatch(text):
        return None
    return _lookup("0x" + text.strip().lstrip("+"))[1]


def _advice(info: StatusInfo, function: str | None) -> str:
    if function is not None:
        specific = _CALL_ADVICE.get((info.symbol, function))
        if specific is not None:
            return specific
    return info.advice


_HANDSHAKE = ("InitializeSecurityContextW", "AcceptSecurityContext")
_MESSAGES = ("EncryptMessage", "DecryptMessage")
_SIGNATURES = ("MakeSignature", "VerifySignature")

# (symbol, function) -> advice, where a failure of that call means something other than
# the status's general advice says (which is about the export/import calls for the codes
# below). Measured provider behaviour is named as that provider's, never as Windows'.
_CALL_ADVICE: dict[tuple[str, str], str] = {
    **dict.fromkeys(
        (("SEC_E_INVALID_TOKEN", f) for f in _HANDSHAKE),
        "The peer's handshake token is malformed, truncated or not for this package: pass "
        "the bytes the peer sent exactly (decoded from base64 or the HTTP header, never "
        "re-encoded), to a context of the same package and in the same handshake. The "
        "provider may also refuse input it does not handle: sspi-rs's Kerberos initiator "
        "refuses the server's reply when channel bindings were given, and a reply whose "
        "sequence number encodes in fewer than 4 bytes (MIT servers send one about once "
        "in 128 handshakes: a new handshake succeeds).",
    ),
    **dict.fromkeys(
        (("SEC_E_INVALID_TOKEN", f) for f in (*_MESSAGES, *_SIGNATURES)),
        "The message or signature is not one this context's package made, or is in "
        "another layout: open a GSS-API wrap message (token || data) with unwrap(), a "
        "WinRM frame with decrypt(), separate token and data with unwrap_iov(); check "
        "that both sides use the same context and package.",
    ),
    ("SEC_E_INVALID_HANDLE", "InitializeSecurityContextW"): (
        "The credentials or context handle is not valid for this call: the credentials "
        "were closed, or were acquired for another direction (an initiator needs "
        "outbound credentials)."
    ),
    ("SEC_E_INVALID_HANDLE", "AcceptSecurityContext"): (
        "The credentials or context handle is not valid for this call: the credentials "
        "were closed, were acquired as outbound (an acceptor needs inbound ones), or the "
        "provider cannot accept with this package (sspi-rs cannot be a Kerberos "
        "acceptor: its credentials are always a client's)."
    ),
    ("SEC_E_INVALID_HANDLE", "QueryContextAttributesW"): (
        "The context handle is not valid: it was deleted or closed, or the handshake "
        "has not created it yet (call step() first); handles are per-process."
    ),
    ("SEC_E_INVALID_HANDLE", "ImpersonateSecurityContext"): (
        "The context handle is not valid for impersonation: it was deleted or closed, "
        "or it is not an established server-side context of this process."
    ),
    **dict.fromkeys(
        (("SEC_E_UNSUPPORTED_FUNCTION", f) for f in _HANDSHAKE),
        "The package or provider does not support this handshake request: a flag, an "
        "input buffer, or this role with this package; ask for fewer flags, or use "
        "another package or provider.",
    ),
    **dict.fromkeys(
        (("SEC_E_UNSUPPORTED_FUNCTION", f) for f in _MESSAGES),
        "The package cannot protect messages this way with this context: the quality of "
        "protection asked for (sign-only) or the buffer layout is not one it supports; use "
        "the default protection and the layouts of docs/guides/message-layouts.md.",
    ),
    ("SEC_E_UNSUPPORTED_FUNCTION", "QueryContextAttributesW"): (
        "The package does not answer this attribute for this context (providers differ: "
        "sspi-rs reports no context's lifespan, NTLM or Kerberos); use what the handshake "
        "returned (SecurityContext.expiry, .flags) or query another attribute."
    ),
    ("SEC_E_UNSUPPORTED_FUNCTION", "ImpersonateSecurityContext"): (
        "The provider cannot impersonate with this context (sspi-rs and Wine have no "
        "Windows access tokens); impersonation needs Windows SSPI and a server context."
    ),
    **dict.fromkeys(
        (("SEC_E_UNSUPPORTED_FUNCTION", f) for f in _SIGNATURES),
        "The package or provider cannot sign or verify with this context (sspi-rs "
        "implements neither MakeSignature nor VerifySignature); protect messages with "
        "wrap()/encrypt() instead, or use Windows SSPI.",
    ),
    ("SEC_E_UNKNOWN_CREDENTIALS", "InitializeSecurityContextW"): (
        "The package could not use the credentials for this target: check the user name "
        "and domain (Kerberos: user and REALM, or user@REALM) and that the target name "
        "is a service the KDC knows (an SPN such as HTTP/host.example.com); sspi-rs "
        "reports an unknown user or an unknown SPN this way, and takes no @REALM after "
        "the SPN (it asks the KDC for a host named 'host@REALM')."
    ),
    ("SEC_E_INVALID_PARAMETER", "InitializeSecurityContextW"): (
        "A parameter was refused; for Kerberos (and Negotiate choosing it) that is most "
        "often the target name. A Kerberos target is the service's SPN, service/host: "
        "HTTP/web.example.com (Windows also takes service/host@REALM). sspi-rs takes "
        "exactly service/host: not the GSS-API form HTTP@web.example.com, not a user "
        "principal, not @REALM, not none. Otherwise check the request flags and the "
        "input buffers."
    ),
    ("SEC_E_INVALID_PARAMETER", "AcquireCredentialsHandleW"): (
        "A parameter was refused: the package name, the usage (inbound, outbound) or the "
        "identity. sspi-rs has no logged-on user to default to: pass an explicit "
        "Identity(user, domain, password), as in loopback('NTLM', identity) or "
        "Credentials.acquire('NTLM', 'outbound', identity). On Windows, check the "
        "package name (the command sspi-import packages lists them) and the identity's fields."
    ),
    ("SEC_E_SECPKG_NOT_FOUND", "AcquireCredentialsHandleW"): (
        "The provider has no security package of that name: check its spelling (sspi-rs "
        "takes names in their exact case: NTLM, Kerberos, Negotiate). The command "
        "sspi-import packages lists the provider's packages."
    ),
    **dict.fromkeys(
        (("SEC_E_INVALID_HANDLE", f) for f in ("DeleteSecurityContext", "FreeCredentialsHandle")),
        "The provider does not know this handle (any more): it was freed already by "
        "another owner of the same handle (one adopted from pywin32 or as a raw pair "
        "while its first owner kept it and freed it), or it belongs to another process or "
        "library.",
    ),
    ("SEC_E_INTERNAL_ERROR", "AcceptSecurityContext"): (
        "The package failed without a more specific code. sspi-rs's Negotiate acceptor "
        "fails this way (docs/guides/real-peers.md): accept with NTLM on sspi-rs. On "
        "Windows, make sure the LSA (lsass.exe) is reachable from this process; the "
        "System event log may name the underlying cause."
    ),
    ("SEC_E_UNSUPPORTED_FUNCTION", "QuerySecurityContextToken"): (
        "The provider cannot hand out an access token for this context (sspi-rs and Wine "
        "have no Windows access tokens); client_token() needs Windows SSPI and a server "
        "context."
    ),
    ("SEC_E_INVALID_HANDLE", "QuerySecurityContextToken"): (
        "The context handle is not valid for this call: it was deleted or closed, or it "
        "is not an established server-side context of this process."
    ),
    ("SEC_E_NO_IMPERSONATION", "ImpersonateSecurityContext"): (
        "This context cannot impersonate: only an established server-side context holds "
        "a client to impersonate (an imported one only if its export's token was passed "
        "to the import); impersonate with the acceptor's context, not the initiator's."
    ),
    ("SEC_E_NO_IMPERSONATION", "QuerySecurityContextToken"): (
        "This context holds no client token: only an established server-side context has "
        "one (an imported one only if its export's token was passed to the import); ask "
        "the acceptor's context, not the initiator's."
    ),
    ("SEC_E_UNSUPPORTED_FUNCTION", "SetCredentialsAttributesW"): (
        "The provider or package does not take this credentials attribute: a KDC proxy "
        "needs Kerberos or Negotiate credentials of a provider that implements it "
        "(Windows; sspi-rs takes a KDC URL there)."
    ),
    ("SEC_E_NO_CREDENTIALS", "QueryContextAttributesW"): (
        "The package has no names or credentials to report for this context (sspi-rs "
        "answers this when asked a Kerberos initiator's user name); ask the peer, or "
        "keep the name the credentials were acquired with."
    ),
    ("SEC_E_INTERNAL_ERROR", "InitializeSecurityContextW"): (
        "The package failed without a more specific code. With Negotiate this can hide a "
        "Kerberos failure: sspi-rs offers only NTLM when Kerberos fails (an unknown SPN, "
        "an unreachable KDC) and reports this when the server refuses NTLM. Retry with "
        "the Kerberos package, or packages=['kerberos', '!ntlm'], to see the Kerberos "
        "error; on Windows, also make sure the LSA is reachable from this process."
    ),
}
"""Advice for a status from one call, where it differs from the status's general advice.

Keyed by ``(symbol, function)``: ``("SEC_E_INVALID_TOKEN", "InitializeSecurityContextW")``.
``SspiError`` messages and ``explain(code, function)`` read it; docs/gen_errors.py prints it.
"""


class SspiError(OSError):
    """An SSPI call failed. Base of every error this library raises for a status code.

    Attributes: ``status`` (unsigned 32-bit), ``winerror`` (the same code signed, as
    Windows' ``OSError`` shows it), ``symbol`` (``"SEC_E_NOT_OWNER"``, or ``None`` for a
    code winerror.h does not define) and ``function`` (the SSPI call that failed).
    Catch a subclass for one condition, or ``SspiError`` for all of them.
    """

    symbols: ClassVar[tuple[str, ...]] = ()
    status: int
    symbol: str | None
    function: str | None
    detail: str | None
    winerror: int
    # Declared as OSError declares them, so type checkers need not infer them from the
    # assignments below (pyright --verifytypes calls an inferred override ambiguous).
    errno: int | None
    strerror: str | None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for symbol in cls.symbols:
            _CLASSES[_BY_SYMBOL[symbol].status] = cls

    def __init__(self, status: int, function: str | None = None, detail: str | None = None):
        status = _unsigned(status)
        info = _BY_STATUS.get(status)
        self.status = status
        self.symbol = info.symbol if info else None
        self.function = function
        self.detail = detail
        where = f"{function} failed" if function else "SSPI call failed"
        if info is None:
            text = f"{where} with unknown status 0x{status:08X} ({_signed(status)})"
        else:
            text = f"{where} with {info.symbol} (0x{status:08X}): {info.meaning}"
            advice = _advice(info, function)
            if advice:
                text = f"{text} {advice}"
        if detail:
            text = f"{text} ({detail})"
        super().__init__(text)
        # OSError on Windows declares winerror as a member; set it after __init__. An SSPI
        # status has no C errno: errno is None on every OS (not Windows' EINVAL guess for
        # codes it cannot map), and strerror is the message, as for OSError(errno, text).
        self.winerror = _signed(status)
        self.errno = None
        self.strerror = text

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[Any, ...]:
        # Crosses process boundaries (multiprocessing): rebuild from the inputs.
        return (type(self), (self.status, self.function, self.detail))


_CLASSES: dict[int, type[SspiError]] = {}


class SspiUnavailableError(OSError):
    """No SSPI library is loaded, or the loaded one lacks the function called.

    The message says how to provide one: ``secur32.dll`` on Windows, or any
    SSPI-compatible library through ``SSPI_IMPORT_LIBRARY`` or ``use_library``.
    """


def error_from_status(status: int, function: str | None = None) -> SspiError:
    """Return (not raise) the typed error for ``status``, in either sign.

    A code with its own class gets it (``NotOwnerError`` for ``0x80090306``); any other
    code, known or not, gets ``SspiError`` itself, whose message carries the hex code.
    """
    unsigned = _unsigned(status)
    return _CLASSES.get(unsigned, SspiError)(unsigned, function)


_DEBUG = _log.DEBUG
_T = TypeVar("_T")


def check(status: int, function: str) -> int:
    """Return ``status`` if it is a success code; raise its typed ``SspiError`` if not.

    The one place a ``SECURITY_STATUS`` becomes an exception (through ``CHECKS``, by the
    call helpers of ``_handle`` and ``library``, never after a lock is taken). Success
    codes (``SEC_E_OK``, ``SEC_I_*``) are returned for the caller to act on. When the
    ``"sspi_import"`` logger records ``DEBUG``, each status is logged first (function,
    handle kind, status symbol); the test is one dict read (``_log.levels``).

    The one shortcut: a call helper may return ``SEC_E_OK`` (0) of a function in
    ``STATUS_FUNCTIONS`` without calling this when ``_log.levels.get(DEBUG, True)`` is
    false, since this would then do nothing but return it. ``_handle``'s helpers and
    ``library.call`` do (a Python call costs about as much as the rest of a status
    check); nothing else does.
    """
    if _log.levels.get(_DEBUG, True):  # DEBUG, or not known: ask (_log)
        _note(status, function)
    if status < 0:
        raise error_from_status(status, function)
    return status


def watch_logging() -> None:
    """Attach to the ``sspi_import`` logger (importing ``logging``): when a library loads.

    From then on ``check`` tells "no DEBUG" with one dict read. Until then (no library
    loaded, so no call made but ``check``'s own tests), it asks ``_log`` each time.
    """
    _log.attach(import_logging=True)


def _note(status: int, function: str) -> None:
    """The slow path of ``check``: attach if ``logging`` is there, then log at DEBUG."""
    if _log.attach() is None:
        return  # logging not imported: no handler can exist
    unsigned = status & 0xFFFF_FFFF
    info = _BY_STATUS.get(unsigned)
    _log.record(unsigned, None if info is None else info.symbol, function)


def check_win32(result: int | None, function: str) -> int:
    """Return a kernel32 ``BOOL``/``HANDLE`` result; raise ``OSError`` when it is 0/NULL.

    The error carries the thread's last error as ``winerror`` (Windows' own
    ``OSError`` subclass for it, as ``ctypes.WinError`` makes), read right after the call
    through ctypes' saved copy (the prototypes are declared with ``use_last_error``).
    Logged like ``check``: the function, its handle kind and success or the error
    code, never the handle value.
    """
    logging_on = _log.levels.get(_DEBUG, True)
    if logging_on and _log.attach() is None:
        logging_on = False  # logging not imported: no handler can exist
    if result:
        if logging_on:
            _log.record_win32(function, True, 0)
        return result
    get_last_error = getattr(ctypes, "get_last_error", None)
    code = get_last_error() if get_last_error is not None else 0
    if logging_on:
        _log.record_win32(function, False, code)
    win_error = getattr(ctypes, "WinError", None)
    if win_error is not None and code:
        error: OSError = win_error(code)
        error.strerror = f"{function} failed: {error.strerror}"
        raise error
    raise OSError(None, f"{function} failed (Windows error {code})", None, code or None)


def _unchecked(result: int, function: str) -> int:
    return result


CHECKS: dict[str, Callable[[Any, str], int]] = {
    proto.name: {"status": check, "win32": check_win32, "none": _unchecked}[proto.result]
    for proto in PROTOTYPES.values()
}
"""How each declared function's result is checked, as the prototype table says: the
status path every call takes (``library.Api.call`` and the owners' call helpers)."""

STATUS_FUNCTIONS: frozenset[str] = frozenset(
    proto.name for proto in PROTOTYPES.values() if proto.result == "status"
)
"""The functions whose result is a ``SECURITY_STATUS``: for them 0 is ``SEC_E_OK``, which
``check``'s one shortcut returns without the call (never for a kernel32 ``BOOL``, where
0 is the failure)."""


class InsufficientMemoryError(SspiError):
    """``SEC_E_INSUFFICIENT_MEMORY``: not enough memory for the request."""

    symbols: ClassVar[tuple[str, ...]] = ("SEC_E_INSUFFICIENT_MEMORY",)


class InvalidHandleError(SspiError):
    """``SEC_E_INVALID_HANDLE``: the handle was deleted, or never valid in this process."""

    symbols: ClassVar[tuple[str, ...]] = ("SEC_E_INVALID_HANDLE",)


class UnsupportedFunctionError(SspiError):
    """``SEC_E_UNSUPPORTED_FUNCTION``: the package or provider does not implement the call."""

    symbols: ClassVar[tuple[str, ...]] = ("SEC_E_UNSUPPORTED_FUNCTION",)


class TargetUnknownError(SspiError):
    """``SEC_E_TARGET_UNKNOWN``: the target name is unknown or unreachable."""

    symbols: ClassVar[tuple[str, ...]] = ("SEC_E_TARGET_UNKNOWN",)


class InternalError(SspiError):
    """``SEC_E_INTERNAL_ERROR``: an error that maps to no SSPI code (often: LSA unreachable)."""

    symbols: ClassVar[tuple[str, ...]] = ("SEC_E_INTERNAL_ERROR",)


class PackageNotFoundError(SspiError):
    """``SEC_E_SECPKG_NOT_FOUND``: no security package by that name."""

    symbols: ClassVar[tuple[str, ...]] = ("SEC_E_SECPKG_NOT_FOUND",)


class NotOwnerError(SspiError):
    """``SEC_E_NOT_OWNER``: the caller does not own the credentials it needs."""

    symbols: ClassVar[tuple[str, ...]] = ("SEC_E_NOT_OWNER",)


class InvalidTokenError(SspiError):
    """``SEC_E_INVALID_TOKEN``: the token or packed context is malformed or foreign."""

    symbols: ClassVar[tuple[str, ...]] = ("SEC_E_INVALID_TOKEN",)


class CannotPackError(SspiError):
    """``SEC_E_CANNOT_PACK``: the package cannot serialize this context."""

    symbols: ClassVar[tuple[str, ...]] = ("SEC_E_CANNOT_PACK",)


class LogonDeniedError(SspiError):
    """``SEC_E_LOGON_DENIED``: the logon failed (bad user name or password)."""

    symbols: ClassVar[tuple[str, ...]] = ("SEC_E_LOGON_DENIED",)


class UnknownCredentialsError(SspiError):
    """``SEC_E_UNKNOWN_CREDENTIALS``: the package did not recognize the credentials."""

    symbols: ClassVar[tuple[str, ...]] = ("SEC_E_UNKNOWN_CREDENTIALS",)


class NoCredentialsError(SspiError):
    """``SEC_E_NO_CREDENTIALS``: no credentials are available in the package."""

    symbols: ClassVar[tuple[str, ...]] = ("SEC_E_NO_CREDENTIALS",)


class MessageAlteredError(SspiError):
    """``SEC_E_MESSAGE_ALTERED``: the message or signature was tampered with."""

    symbols: ClassVar[tuple[str, ...]] = ("SEC_E_MESSAGE_ALTERED",)


class OutOfSequenceError(SspiError):
    """``SEC_E_OUT_OF_SEQUENCE``: a message arrived out of order (replayed or dropped)."""

    symbols: ClassVar[tuple[str, ...]] = ("SEC_E_OUT_OF_SEQUENCE",)


class NoAuthenticatingAuthorityError(SspiError):
    """``SEC_E_NO_AUTHENTICATING_AUTHORITY``: no domain controller or KDC could be reached."""

    symbols: ClassVar[tuple[str, ...]] = ("SEC_E_NO_AUTHENTICATING_AUTHORITY",)


class ContextExpiredError(SspiError):
    """``SEC_E_CONTEXT_EXPIRED``: the context has expired and can no longer be used."""

    symbols: ClassVar[tuple[str, ...]] = ("SEC_E_CONTEXT_EXPIRED",)


class IncompleteMessageError(SspiError):
    """``SEC_E_INCOMPLETE_MESSAGE``: only part of a message was supplied; read more."""

    symbols: ClassVar[tuple[str, ...]] = ("SEC_E_INCOMPLETE_MESSAGE",)


class BufferTooSmallError(SspiError):
    """``SEC_E_BUFFER_TOO_SMALL``: a supplied buffer was too small."""

    symbols: ClassVar[tuple[str, ...]] = ("SEC_E_BUFFER_TOO_SMALL",)


class WrongPrincipalError(SspiError):
    """``SEC_E_WRONG_PRINCIPAL``: the target principal name is not the expected one."""

    symbols: ClassVar[tuple[str, ...]] = ("SEC_E_WRONG_PRINCIPAL",)


class DecryptFailureError(SspiError):
    """``SEC_E_DECRYPT_FAILURE``: the message could not be decrypted."""

    symbols: ClassVar[tuple[str, ...]] = ("SEC_E_DECRYPT_FAILURE",)


class InvalidParameterError(SspiError):
    """``SEC_E_INVALID_PARAMETER``: a parameter passed to the call was invalid."""

    symbols: ClassVar[tuple[str, ...]] = ("SEC_E_INVALID_PARAMETER",)


class BadBindingsError(SspiError):
    """``SEC_E_BAD_BINDINGS``: the peer's channel bindings differ from this side's.

    Both sides must pass the same ``ChannelBindings`` (over TLS, the
    ``tls-server-end-point`` of the certificate the client saw); a TLS-terminating proxy
    between them changes what the client binds to.
    """

    symbols: ClassVar[tuple[str, ...]] = ("SEC_E_BAD_BINDINGS",)


# Kerberos: the KDC, keys, tickets ---------------------------------------------------


class KerberosError(SspiError):
    """A Kerberos, KDC or ticket status: the base of the family; catch it for all of them.

    Its subclasses are the statuses the Kerberos package reports when the KDC refuses a
    request, keys or encryption types do not match, clocks differ or a ticket cannot be
    issued or used. The advice in each message says what to check: the password, the
    clock, the SPN, the realm, the KDC's reachability. Failures that other packages
    report too keep their own classes outside this family:
    ``NoAuthenticatingAuthorityError`` (no KDC reachable), ``UnknownCredentialsError``,
    ``LogonDeniedError``, ``TargetUnknownError`` and ``WrongPrincipalError``.
    """

    symbols: ClassVar[tuple[str, ...]] = ()


class KdcInvalidRequestError(KerberosError):
    """``SEC_E_KDC_INVALID_REQUEST``: the KDC refused the request.

    sspi-rs reports a wrong password (failed pre-authentication) this way; Windows
    reports that as ``LogonDeniedError``. Check the password, the account, the clocks,
    and the KDC's log.
    """

    symbols: ClassVar[tuple[str, ...]] = ("SEC_E_KDC_INVALID_REQUEST",)


class KdcUnableToReferError(KerberosError):
    """``SEC_E_KDC_UNABLE_TO_REFER``: the KDC knows no realm that holds the service."""

    symbols: ClassVar[tuple[str, ...]] = ("SEC_E_KDC_UNABLE_TO_REFER",)


class KdcUnknownEtypeError(KerberosError):
    """``SEC_E_KDC_UNKNOWN_ETYPE``: client, KDC and service share no encryption type."""

    symbols: ClassVar[tuple[str, ...]] = ("SEC_E_KDC_UNKNOWN_ETYPE",)


class NoKerberosKeyError(KerberosError):
    """``SEC_E_NO_KERB_KEY``: a key the operation needs (the account's or service's) is missing."""

    symbols: ClassVar[tuple[str, ...]] = ("SEC_E_NO_KERB_KEY",)


class TimeSkewError(KerberosError):
    """``SEC_E_TIME_SKEW``: client and server clocks are too far apart (Kerberos allows 5 min)."""

    symbols: ClassVar[tuple[str, ...]] = ("SEC_E_TIME_SKEW",)


class TicketError(KerberosError):
    """A ticket could not be issued, delegated or used as asked (one class, several statuses).

    ``SEC_E_NO_TGT_REPLY``, ``SEC_E_TOO_MANY_PRINCIPALS``, ``SEC_E_NO_PA_DATA``,
    ``SEC_E_UNSUPPORTED_PREAUTH``, ``SEC_E_STRONG_CRYPTO_NOT_SUPPORTED``,
    ``SEC_E_DELEGATION_REQUIRED``, ``SEC_E_DELEGATION_POLICY``,
    ``SEC_E_CROSSREALM_DELEGATION_FAILURE``, ``SEC_E_NO_S4U_PROT_SUPPORT``,
    ``SEC_E_MUST_BE_KDC`` and ``SEC_E_MULTIPLE_ACCOUNTS``: ``.symbol`` says which.
    """

    symbols: ClassVar[tuple[str, ...]] = (
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
    )


class UnencryptedMessageError(ValueError):
    """``unwrap`` refused a message that was signed but not encrypted.

    The context negotiated confidentiality, yet the provider reported that the message
    was only signed (``DecryptMessage``'s QOP holds ``SECQOP_WRAP_NO_ENCRYPT``). The
    signature was valid: the peer (or whoever holds the session key) sent it in the
    clear. The message counts as received (its sequence number is used; the next one
    still opens), and its plaintext is withheld and wiped. Pass
    ``allow_unencrypted=True`` to accept such messages. ``qop`` is the QOP reported.
    """

    qop: int

    def __init__(self, qop: int) -> None:
        super().__init__(
            f"the message was signed but not encrypted (QOP 0x{qop:08X}), although the "
            "context negotiated confidentiality; pass allow_unencrypted=True to accept it"
        )
        self.qop = qop

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.qop,))


class InheritedHandleError(RuntimeError):
    """An owner made before ``os.fork()`` was used in the child process.

    A forked child shares the parent's provider state for every context, credentials
    handle and token made before the fork: a message protected in both processes
    reuses one keystream (NTLM's RC4), and freeing a handle in one frees it for both
    where the provider state is shared. So in the child such an owner refuses every
    call; ``close()`` there only forgets the handle (the parent still owns it). To use
    a context in a child process, export it and import it there
    (``export_context`` + ``ExportedContext.for_process``), or start the child with
    ``multiprocessing``'s ``spawn`` method and hand it the export.
    """


class CleanupWarning(RuntimeWarning):
    """An operation completed, but freeing something afterwards failed.

    Nothing completed is lost: ``result`` holds what the operation produced (for
    ``export_context``, the ``ExportedContext``). Under ``-W error`` (or pytest's
    ``filterwarnings = error``) this warning is raised as an exception instead; catch
    it and take ``result`` from it. ``errors`` holds the cleanup failures.
    """

    result: Any
    errors: tuple[BaseException, ...]


def report_cleanup(result: _T, errors: list[BaseException], what: str) -> _T:
    """Return ``result`` after warning about the cleanup ``errors`` (if any) of ``what``."""
    if errors:
        import warnings  # only when a cleanup failed: warnings is not needed otherwise

        details = "; ".join(str(e) for e in errors)
        warning = CleanupWarning(f"{what} completed, but cleaning up after it failed: {details}")
        warning.result = result
        warning.errors = tuple(errors)
        warnings.warn(warning, stacklevel=3)
    return result
