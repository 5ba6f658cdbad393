"""The bank's calendar: business dates and midnights in the bank's zone (``settings.zone``,
Asia/Shanghai by default). One definition for every service, so a posting at 17:00 UTC on
30 November falls on 1 December for tiering, pricing and alerts alike."""

from __future__ import annotations

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
