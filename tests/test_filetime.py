"""``_filetime``: FILETIME ticks as aware UTC, read as UTC or as local wall-clock time."""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Iterator

import pytest

from sspi_import import _filetime
from sspi_import._filetime import NEVER, filetime_to_datetime, local_wall_to_utc

UTC = datetime.timezone.utc
Y2000 = 125911584000000000  # 2000-01-01 00:00 in FILETIME ticks
JULY_2024 = (
    (datetime.datetime(2024, 7, 7) - datetime.datetime(1601, 1, 1))
    // datetime.timedelta(microseconds=1)
    * 10
)  # 2024-07-07 00:00 (summer in the north)


@pytest.fixture
def tokyo() -> Iterator[None]:
    """This process in UTC+9 (no daylight saving), restored after."""
    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset() is POSIX only; the Windows lane tests time zones with tzutil")
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    try:
        if time.timezone != -9 * 3600:
            pytest.skip("this machine has no Asia/Tokyo zone data")
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


def test_utc_reading_is_the_default() -> None:
    assert _filetime.TIMESTAMPS_ARE_LOCAL is False  # the Windows lane's test decides
    assert filetime_to_datetime(Y2000) == datetime.datetime(2000, 1, 1, tzinfo=UTC)


def test_local_reading_subtracts_the_local_offset(tokyo: None) -> None:
    # 00:00 on the wall clock in Tokyo is 15:00 UTC the day before.
    got = filetime_to_datetime(Y2000, local=True)
    assert got == datetime.datetime(1999, 12, 31, 15, 0, tzinfo=UTC)
    assert got is not None
    assert got.tzinfo is UTC
    assert filetime_to_datetime(Y2000, local=False) == datetime.datetime(2000, 1, 1, tzinfo=UTC)


def test_the_switch_applies_to_every_default_reading(
    tokyo: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_filetime, "TIMESTAMPS_ARE_LOCAL", True)
    assert filetime_to_datetime(JULY_2024) == datetime.datetime(2024, 7, 6, 15, tzinfo=UTC)
    assert filetime_to_datetime(JULY_2024, local=False) == datetime.datetime(2024, 7, 7, tzinfo=UTC)


def test_daylight_saving_is_the_one_of_the_date() -> None:
    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset() is POSIX only")
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Berlin"
    time.tzset()
    try:
        if time.timezone != -3600:
            pytest.skip("this machine has no Europe/Berlin zone data")
        winter = filetime_to_datetime(Y2000, local=True)
        summer = filetime_to_datetime(JULY_2024, local=True)
        assert winter == datetime.datetime(1999, 12, 31, 23, tzinfo=UTC)  # CET, +1
        assert summer == datetime.datetime(2024, 7, 6, 22, tzinfo=UTC)  # CEST, +2
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


def test_no_time_and_never_are_the_same_either_way(tokyo: None) -> None:
    for local in (False, True):
        assert filetime_to_datetime(0, local=local) is None
        assert filetime_to_datetime(-1, local=local) is None
        assert filetime_to_datetime(0x7FFF_FFFF_FFFF_FFFF, local=local) is NEVER
        assert filetime_to_datetime(0x7FFF_FF36_D596_9FFF, local=local) is NEVER


def test_local_conversion_of_extreme_dates_does_not_raise(tokyo: None) -> None:
    first = filetime_to_datetime(1, local=True)  # 1601: before what mktime handles on Windows
    assert first is not None
    assert first.tzinfo is UTC
    assert first < datetime.datetime(1601, 1, 1, 1, tzinfo=UTC)
    assert local_wall_to_utc(datetime.datetime(9999, 12, 30)).tzinfo is UTC


def test_local_wall_to_utc_refuses_an_aware_time() -> None:
    with pytest.raises(ValueError, match="naive"):
        local_wall_to_utc(datetime.datetime(2000, 1, 1, tzinfo=UTC))
