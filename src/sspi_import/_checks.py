"""The argument checks every public call makes before any DLL call, in one vocabulary.

Each returns the value it accepted (as a plain ``int``/``bool``) or raises ``TypeError``
for the wrong kind of value and ``ValueError`` for a value out of range, naming the
argument (``what``). ``bool`` is never taken for an integer (``True == 1`` would pass
``isinstance(x, int)``), nor an integer for a ``bool``.
"""

from __future__ import annotations

__all__ = ["ULONG_MAX", "boolean", "integer", "size", "ulong"]

ULONG_MAX = 0xFFFF_FFFF


def integer(value: object, what: str) -> int:
    """``value`` as an ``int`` (``IntEnum``/``IntFlag`` members included, ``bool`` not)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    return int(value)


def ulong(value: object, what: str) -> int:
    """``value`` as an unsigned 32-bit ``int`` (a ``ULONG`` of the C API)."""
    number = integer(value, what)
    if not 0 <= number <= ULONG_MAX:
        raise ValueError(f"{what} must be a 32-bit value, 0 to 0x{ULONG_MAX:X}, not {number}")
    return number


def size(value: object, what: str, limit: int = ULONG_MAX) -> int:
    """``value`` as a length in bytes: an ``int`` from 0 to ``limit``."""
    number = integer(value, what)
    if number < 0:
        raise ValueError(f"{what} cannot be negative, not {number}")
    if number > limit:
        raise ValueError(f"{what} must be at most {limit} bytes, not {number}")
    return number


def boolean(value: object, what: str) -> bool:
    """``value`` as a ``bool``: only ``True`` or ``False`` (not ``"yes"``, not ``1``)."""
    if type(value) is not bool:
        raise TypeError(f"{what} must be True or False, not {type(value).__name__}")
    return value
