"""The names tests give to fault injection: simulated functions and failure statuses.

Shared by ``FakeSspi.fail`` and ``FaultInjector.fail``, so both refuse the same
mistakes, before any call: a function the library never calls, a status that is no
32-bit failure code (``fail(name, 5)``), a ``times`` that is not a positive int.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from .._raw.functions import PROTOTYPES, PROVIDER_EXTRAS
from ..errors import _signed as signed
from ..errors import status_info

__all__ = [
    "KERNEL32",
    "SIMULATED",
    "SspiFunction",
    "check_function",
    "check_times",
    "failure_status",
    "queue_failure",
    "signed",
]

SspiFunction = Literal[
    "AcceptSecurityContext",
    "AcquireCredentialsHandleW",
    "CloseHandle",
    "CompleteAuthToken",
    "DecryptMessage",
    "DeleteSecurityContext",
    "DuplicateHandle",
    "EncryptMessage",
    "EnumerateSecurityPackagesW",
    "ExportSecurityContext",
    "FreeContextBuffer",
    "FreeCredentialsHandle",
    "GetCurrentProcess",
    "ImpersonateSecurityContext",
    "ImportSecurityContextW",
    "InitializeSecurityContextW",
    "MakeSignature",
    "OpenProcess",
    "QueryContextAttributesW",
    "QuerySecurityContextToken",
    "RevertSecurityContext",
    "SetCredentialsAttributesW",
    "VerifySignature",
]
"""Every SSPI (and kernel32) symbol the library calls (bare bindings share their symbol's
name); not sspi-rs's own ``RustSspiSetupLogger``, which nothing simulates."""

SIMULATED: tuple[str, ...] = tuple(
    name
    for name, proto in PROTOTYPES.items()
    if name == proto.symbol and name not in PROVIDER_EXTRAS
)
"""The same names, from the prototype table (a test holds the two equal)."""

KERNEL32 = frozenset(name for name in SIMULATED if PROTOTYPES[name].kernel32)
"""The kernel32 calls: they fail with ``FALSE``/``NULL``, not with a status."""

_KNOWN = frozenset(get_args(SspiFunction))


def check_function(function: object, owner: str) -> str:
    """``function`` if it names a symbol the library calls; ``TypeError``/``ValueError``."""
    if not isinstance(function, str):
        raise TypeError(f"the function name must be a str, not {type(function).__name__}")
    if function not in _KNOWN or function not in SIMULATED:
        raise ValueError(
            f"{function!r} is not an SSPI function {owner} simulates; "
            f"known: {', '.join(sorted(_KNOWN & set(SIMULATED)))}"
        )
    return function


def failure_status(status: object) -> int:
    """The signed ``SECURITY_STATUS`` of a failure given as a code or a ``SEC_E_`` name.

    ``status`` is an ``int`` (signed or unsigned 32-bit) or a string ``status_info``
    reads (``"SEC_E_NOT_OWNER"``, ``"0x80090306"``). It must be a failure (severity bit
    set): a success or informational code such as ``0``, ``5`` or
    ``SEC_I_CONTINUE_NEEDED`` would tell the caller that outputs were written when
    nothing was. An unknown but well-formed failure code is accepted.
    """
    if isinstance(status, bool) or not isinstance(status, (int, str)):
        raise TypeError(
            "status must be an int or a SEC_E_* name such as 'SEC_E_NOT_OWNER', "
            f"not {type(status).__name__}"
        )
    if isinstance(status, int) and not -0x8000_0000 <= status <= 0xFFFF_FFFF:
        raise ValueError(f"status {status} is not a 32-bit value")
    try:
        info = status_info(status)
    except ValueError as exc:
        raise ValueError(f"unknown status {status!r}: {exc}") from None
    value = info.status if info is not None else status_info_value(status)
    if not value & 0x8000_0000:
        raise ValueError(
            f"status {status!r} (0x{value:08X}) is not a failure: inject a SEC_E_* code "
            "(severity bit set, 0x8xxxxxxx)"
        )
    return signed(value)


def status_info_value(status: int | str) -> int:
    """The unsigned value of a well-formed status that is not in winerror.h."""
    if isinstance(status, int):
        return status & 0xFFFF_FFFF
    text = status.strip()
    base = 16 if text.lower().lstrip("+-").startswith("0x") else 10
    return int(text, base) & 0xFFFF_FFFF


def check_times(times: object) -> int:
    """``times`` if it is a positive int; ``ValueError`` otherwise."""
    if isinstance(times, bool) or not isinstance(times, int) or times < 1:
        raise ValueError(f"times must be a positive int, not {times!r}")
    return times


def queue_failure(
    failures: dict[str, list[int]],
    lock: Any,
    function: object,
    status: object,
    times: object,
    owner: str,
) -> None:
    """Check a ``fail(function, status, times)`` call, then queue its statuses under ``lock``.

    The one implementation of ``FakeSspi.fail`` and ``FaultInjector.fail``.
    """
    name = check_function(function, owner)
    if name == "GetCurrentProcess":
        raise ValueError("GetCurrentProcess cannot fail")
    value = failure_status(status)
    count = check_times(times)
    with lock:
        failures.setdefault(name, []).extend([value] * count)
