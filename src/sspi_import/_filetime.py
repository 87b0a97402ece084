"""SSPI ``TimeStamp`` values (FILETIME ticks: 100 ns since 1601) as ``datetime``."""

from __future__ import annotations

import datetime

__all__ = ["NEVER", "filetime_to_datetime"]

_EPOCH_1601 = datetime.datetime(1601, 1, 1, tzinfo=datetime.timezone.utc)
NEVER = datetime.datetime.max.replace(tzinfo=datetime.timezone.utc)
"""What a 'never expires' time stamp becomes (``0x7FFFFFFFFFFFFFFF`` and anything else
past year 9999, such as Kerberos' ``0x7FFFFF36D5969FFF``)."""
_MAX_TICKS = (NEVER - _EPOCH_1601) // datetime.timedelta(microseconds=1) * 10


def filetime_to_datetime(ticks: int) -> datetime.datetime | None:
    """An aware UTC ``datetime`` from FILETIME ticks (100 ns since 1601).

    ``None`` for 0 or less (the provider reported no time: sspi-rs does this), and
    ``NEVER`` (``datetime.max`` in UTC) for values past what ``datetime`` can hold.
    """
    if ticks <= 0:
        return None
    if ticks >= _MAX_TICKS:
        return NEVER
    return _EPOCH_1601 + datetime.timedelta(microseconds=ticks // 10)
