"""The bank's calendar: business dates and midnights in the bank's zone (``settings.zone``,
Asia/Shanghai by default). One definition for every service, so a posting at 17:00 UTC on
30 November falls on 1 December for tiering, pricing and alerts alike."""

from __future__ import annotations

import calendar
from datetime import date, datetime, time
from zoneinfo import ZoneInfo


def business_day(at: datetime, zone: ZoneInfo) -> date:
    """The bank's date of an instant.

    >>> from datetime import timezone
    >>> business_day(datetime(2026, 11, 30, 17, 0, tzinfo=timezone.utc), ZoneInfo("Asia/Shanghai"))
    datetime.date(2026, 12, 1)
    """
    return at.astimezone(zone).date()


def bank_time(at: datetime, zone: ZoneInfo) -> str:
    """An instant as Strata writes it in every answer: RFC 3339 with the bank's offset.

    >>> from datetime import timezone
    >>> bank_time(datetime(2026, 11, 28, 2, 15, 2, tzinfo=timezone.utc), ZoneInfo("Asia/Shanghai"))
    '2026-11-28T10:15:02+08:00'
    """
    return at.astimezone(zone).isoformat()


def start_of_day(day: date, zone: ZoneInfo) -> datetime:
    """Midnight at the start of ``day`` in the bank's zone."""
    return datetime.combine(day, time(0), zone)


# --- months ---------------------------------------------------------------------------------
# A month is named by its key, ``2026-11``, or held as the date of its first day.


def month_key(day: date) -> str:
    """``2026-11`` for any day of November 2026.

    >>> month_key(date(2026, 11, 28))
    '2026-11'
    """
    return f"{day.year:04d}-{day.month:02d}"


def parse_month(key: str) -> date:
    """The first day of the month ``key`` names.

    >>> parse_month("2026-11")
    datetime.date(2026, 11, 1)
    """
    year, month = key.split("-")
    return date(int(year), int(month), 1)


def month_of(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def days_in_month(month: date) -> int:
    """The days of ``month``'s month (any day of it will do), leap Februaries counted; read from
    a table (a month-end close and a simulation ask it per customer).

    >>> days_in_month(date(2028, 2, 10)), days_in_month(date(2026, 2, 1)), days_in_month(date(2026, 12, 31))
    (29, 28, 31)
    """
    if month.month == 2 and calendar.isleap(month.year):
        return 29
    return _DAYS_IN_MONTH[month.month - 1]


def last_day_of_month(month: date) -> date:
    return month.replace(day=days_in_month(month))


def window_start(month: str, months: int) -> str:
    """The first month of the ``months`` calendar months that end with ``month``.

    >>> window_start("2026-11", 12)
    '2025-12'
    """
    index = _index(month) - (months - 1)
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def months_between(first: str, last: str) -> list[str]:
    """Every month key from ``first`` to ``last``, both included.

    >>> months_between("2025-11", "2026-02")
    ['2025-11', '2025-12', '2026-01', '2026-02']
    """
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(_index(first), _index(last) + 1)]


def _index(month: str) -> int:
    year, mon = (int(x) for x in month.split("-"))
    return year * 12 + mon - 1
