"""What tiering should conclude from the feed: each customer's tier under the bank's policy
(fast up on every AUM change, slow down at month-end closes), worked out by the simulator
itself from the AUM path it produced. Tests compare it with what the services did.

It reuses tiering's pure policy (:class:`services.tiering.domain.TierPolicy`); the running sum
of end-of-day AUM is kept the way tiering keeps it, in integer cents.
"""

from __future__ import annotations

import calendar
from array import array
from datetime import date

from services.tiering.domain import TierPolicy, TierState
from shared.money import from_cents
from shared.settings import Settings


class ExpectedTiers:
    """Observes every AUM change of the feed (``feed.observer = ExpectedTiers(...)``)."""

    def __init__(self, customers: int, settings: Settings) -> None:
        self.policy = TierPolicy.from_rules(settings.tiers)
        self.ids = [t.id for t in self.policy.tiers]
        self.rank = array("b", [0] * customers)
        self.watch = array("b", [0] * customers)
        self.months_below = array("b", [0] * customers)
        self.aum = array("q", [0] * customers)
        self.day = array("l", [0] * customers)
        """The latest business day with activity (ordinal); 0 before the first."""
        self.sum_before = array("q", [0] * customers)
        """End-of-day AUM summed over the month's days before ``day``."""
        self.months: dict[str, array] = {}
        self.changes = {"upgrade": 0, "downgrade": 0, "watch": 0, "watch_cleared": 0}

    def on_aum(self, customer: int, aum: int, day: date) -> None:
        self._roll(customer, day.toordinal())
        self.aum[customer] = aum
        state = self.state(customer)
        decision = self.policy.on_aum(state, from_cents(aum))
        self._apply(customer, decision)

    def state(self, customer: int) -> TierState:
        return TierState(self.ids[self.rank[customer]], bool(self.watch[customer]), self.months_below[customer])

    def tier(self, customer: int) -> str:
        return self.ids[self.rank[customer]]

    def close_month(self, month: str) -> None:
        """A month-end close: the month's average daily AUM per customer, then watch and
        downgrades, as tiering's close does."""
        year, mon = map(int, month.split("-"))
        days = calendar.monthrange(year, mon)[1]
        first = date(year, mon, 1).toordinal()
        for c in range(len(self.rank)):
            if not self.day[c] or self.day[c] >= first + days:
                continue  # never seen, or already rolled past the month (its total is stored)
            total = self._month_total(c, first, days)
            average = (total * 2 + days) // (2 * days)
            decision = self.policy.on_month_end(self.state(c), from_cents(average),
                                                from_cents(self.aum[c]), month)
            self._apply(c, decision)
        for c, total in self.months.pop(month, {}).items():
            average = (total * 2 + days) // (2 * days)
            decision = self.policy.on_month_end(self.state(c), from_cents(average),
                                                from_cents(self.aum[c]), month)
            self._apply(c, decision)

    def _month_total(self, c: int, first: int, days: int) -> int:
        if self.day[c] < first:
            return self.aum[c] * days
        day_of_month = self.day[c] - first + 1
        return self.sum_before[c] + self.aum[c] * (days - day_of_month + 1)

    def _roll(self, c: int, ordinal: int) -> None:
        if self.day[c] == 0:
            self.day[c] = ordinal
            return
        if ordinal <= self.day[c]:
            return
        old, new = date.fromordinal(self.day[c]), date.fromordinal(ordinal)
        if (old.year, old.month) == (new.year, new.month):
            self.sum_before[c] += self.aum[c] * (ordinal - self.day[c])
        else:
            month = f"{old.year:04d}-{old.month:02d}"
            days = calendar.monthrange(old.year, old.month)[1]
            total = self.sum_before[c] + self.aum[c] * (days - old.day + 1)
            self.months.setdefault(month, {})[c] = total
            year, mon = old.year + (old.month == 12), old.month % 12 + 1
            while (year, mon) < (new.year, new.month):  # months without activity
                days = calendar.monthrange(year, mon)[1]
                self.months.setdefault(f"{year:04d}-{mon:02d}", {})[c] = self.aum[c] * days
                year, mon = year + (mon == 12), mon % 12 + 1
            self.sum_before[c] = self.aum[c] * (new.day - 1)
        self.day[c] = ordinal

    def _apply(self, c: int, decision) -> None:
        if decision.change is None:
            return
        self.rank[c] = self.ids.index(decision.state.tier)
        self.watch[c] = decision.state.watch
        self.months_below[c] = decision.state.months_below
        self.changes[decision.change] += 1

    def by_tier(self) -> dict[str, int]:
        counts = {t: 0 for t in self.ids}
        for r in self.rank:
            counts[self.ids[r]] += 1
        return counts
