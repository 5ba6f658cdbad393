"""The business clock: what "now" and "today" are for the bank, once per process.

In production it is the wall clock read in the bank's zone. Under the simulated bank
(``strata run``) it is the simulated business time the feed has reached, so "today" in every
answer (a branch report's date, a quote's month, a customer's age) is the day whose postings
the services are reading, not the day the machine happens to be on. Every default date of the
API comes from here (``Runtime.clock``), never from ``datetime.now`` in a view.
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo


class BusinessClock:
    """The wall clock in the bank's zone."""

    simulated = False

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone

    def now(self) -> datetime:
        """The current instant, with the bank's offset (``2026-11-28T10:15:02+08:00``)."""
        return datetime.now(timezone.utc).astimezone(self.zone)

    def today(self) -> date:
        """The bank's business date now."""
        return self.now().date()


class SimulatedClock(BusinessClock):
    """Business time as the simulated bank publishes it: the feed moves it forward as its days
    and hours pass, and it never goes back (a restart resumes at the saved day)."""

    simulated = True

    def __init__(self, zone: ZoneInfo, at: datetime | date) -> None:
        super().__init__(zone)
        self._now = self._instant(at)

    def now(self) -> datetime:
        return self._now

    def advance(self, to: datetime | date) -> None:
        """Move business time to ``to`` (a date means its midnight); an earlier time is ignored."""
        instant = self._instant(to)
        if instant > self._now:
            self._now = instant

    def _instant(self, at: datetime | date) -> datetime:
        if isinstance(at, datetime):
            if at.tzinfo is None:
                raise ValueError("naive datetime: business time needs an offset")
            return at.astimezone(self.zone)
        return datetime.combine(at, time(0), self.zone)
