"""SSPI ``TimeStamp`` values (FILETIME ticks: 100 ns since 1601) as ``datetime``.

Which clock a ``TimeStamp`` is on is the package's choice, and Microsoft's pages do not
say it the same way twice. The ``AcquireCredentialsHandle`` pages say the package
*must* return ``ptsExpiry`` in local time ("The structure value received depends on the
security package, which must specify the value in local time"); the
``InitializeSecurityContext``/``AcceptSecurityContext`` pages and the
``SecPkgContext_Lifespan`` remarks only *recommend* it ("It is recommended that the
security package always return these values in local time"). Wine's Kerberos converts
to local time; pywin32, sspilib and alexbrainman/sspi read the values as UTC, and .NET
ignores them. So the documents point to local time, and every library that reads the
values reads UTC, and nothing here can measure which Windows really returns: the
reading is ONE switch, ``TIMESTAMPS_ARE_LOCAL``, that the Windows lane decides:
``tests/test_windows_handoff.py`` (``test_timestamps_follow_the_time_zone_switch``)
measures the packages' time stamps in UTC and in Tokyo and fails, naming this switch,
if it is set the wrong way (and if credentials and contexts disagree, which one switch
could not express). On the GitHub runners, which run in UTC, both readings agree.
"""

from __future__ import annotations

import datetime

__all__ = ["NEVER", "TIMESTAMPS_ARE_LOCAL", "filetime_to_datetime", "local_wall_to_utc"]

TIMESTAMPS_ARE_LOCAL = False
"""``True``: SSPI time stamps are local wall-clock time and are converted to UTC.

``False`` (today): they are read as UTC, as pywin32 and sspilib read them, and as the
simulated provider writes them; in spite of the ``AcquireCredentialsHandle`` pages'
"must" (see the module docstring), because no measurement says Windows follows it and
a wrong ``True`` would shift every reading on a machine outside UTC by its offset. The
first run of the Windows lane's time-zone test settles it; flip it here if that test
says so (and make ``FakeSspi`` write local time with it).
"""

_UTC = datetime.timezone.utc
_EPOCH_1601 = datetime.datetime(1601, 1, 1)  # naive: the ticks' own clock, UTC or local
NEVER = datetime.datetime.max.replace(tzinfo=_UTC)
"""What a 'never expires' time stamp becomes (``0x7FFFFFFFFFFFFFFF`` and anything else
past year 9999, such as Kerberos' ``0x7FFFFF36D5969FFF``)."""
_MAX_TICKS = (datetime.datetime.max - _EPOCH_1601) // datetime.timedelta(microseconds=1) * 10
_DAY = datetime.timedelta(days=1)


def local_wall_to_utc(wall: datetime.datetime) -> datetime.datetime:
    """An aware UTC ``datetime`` for the naive local wall-clock time ``wall``.

    Uses this process's time zone (``datetime.astimezone``, which asks the C runtime).
    Where the C runtime cannot convert (before 1970 or far in the future on Windows),
    the current UTC offset is used instead. A wall time too close to
    ``datetime.min``/``max`` to shift stays as it is, read as UTC.
    """
    if wall.tzinfo is not None:
        raise ValueError("local_wall_to_utc() takes a naive datetime")
    try:
        return wall.astimezone(_UTC)
    except (OverflowError, OSError, ValueError):
        offset = datetime.datetime.now().astimezone().utcoffset() or datetime.timedelta()
        try:
            return (wall - offset).replace(tzinfo=_UTC)
        except OverflowError:
            return wall.replace(tzinfo=_UTC)


def filetime_to_datetime(ticks: int, *, local: bool | None = None) -> datetime.datetime | None:
    """An aware UTC ``datetime`` from FILETIME ticks (100 ns since 1601).

    ``None`` for 0 or less (the provider reported no time: sspi-rs does this), and
    ``NEVER`` (``datetime.max`` in UTC) for values past what ``datetime`` can hold.
    ``local`` says whether the ticks count local wall-clock time (converted to UTC
    with ``local_wall_to_utc``) or UTC; ``None`` means ``TIMESTAMPS_ARE_LOCAL``.
    """
    if ticks <= 0:
        return None
    if ticks >= _MAX_TICKS:
        return NEVER
    wall = _EPOCH_1601 + datetime.timedelta(microseconds=ticks // 10)
    if TIMESTAMPS_ARE_LOCAL if local is None else local:
        if wall >= datetime.datetime.max - _DAY:  # within a day of the end: 'never'
            return NEVER
        return local_wall_to_utc(wall)
    return wall.replace(tzinfo=_UTC)
