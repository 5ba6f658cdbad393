"""Replaying past months of tiering's daily AUM history under a tier policy, with the live
path's own rules: the running sum of end-of-day AUM (:class:`DailyAum`, :func:`roll_to`,
:func:`month_total`, :func:`average`), fast up the moment AUM reaches a floor
(:meth:`TierPolicy.on_aum`) and slow down at month-end closes (:meth:`TierPolicy.on_month_end`).

The history is what tiering keeps per customer and business day with activity: the AUM at the
end of the day and the day's highest (a day without a row kept the AUM of the day before).
A customer's history is first reduced, whatever the policy, to a :class:`Path`: per month-end
close, the highest AUM reached since the close before, the month's average daily AUM, the AUM
at the month's end and when it was closed. A policy then decides the path in a few steps per
month: the upgrades of a stretch of days are decided on its highest AUM, since fast up goes
straight to the tier the highest AUM reaches and no rule lowers a tier between closes.

Amounts on the way through the running sum are integer cents, as tiering keeps them (the sums
stay exact and cost a tenth of Decimal's); what a rule decides on is the two-place Decimal.

Nothing here touches a database: every function takes and returns plain values.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Sequence

from shared.calendar import days_in_month, month_key
from shared.money import ZERO, from_cents
from services.tiering.domain import DailyAum, TierPolicy, TierState, average, month_total, roll_to

Day = tuple[date, int, int]
"""A business day with activity: the day, its end-of-day AUM and its highest AUM, in cents."""


@dataclass(frozen=True, slots=True)
class Close:
    """A month-end close as the replay applies it: after the history up to ``through``.

    A close runs once the month has ended, and the live close decides on the customer as they
    stand when it runs: the next month's facts it had applied by then count (a tier reached on
    the 1st is the tier whose floor the month is held against, the AUM now is the AUM then).
    ``through`` is where tiering's history stood when the month was closed, recorded by the
    close; a month not closed yet is closed at its last day."""

    first: date
    through: date
    last: date = field(init=False)
    """The month's last day."""
    days: int = field(init=False)
    month: str = field(init=False)

    def __post_init__(self) -> None:
        days = days_in_month(self.first)
        object.__setattr__(self, "days", days)
        object.__setattr__(self, "last", self.first.replace(day=days))
        object.__setattr__(self, "month", month_key(self.first))


@dataclass(slots=True)
class History:
    """One customer's history for the replay."""

    customer_id: str
    household_id: str | None
    opening: int | None
    """The AUM (cents) at the end of the day before the period (None: not a customer of the
    bank yet, so the days before their first count at zero, as the live running sum counts them)."""
    days: list[Day]
    """The days with activity from the period's first day to the last close's ``through``."""


@dataclass(slots=True)
class Stretch:
    """The history between two closes, and the close that ends it."""

    high: Decimal | None
    """The highest AUM of the stretch's days (None: no activity)."""
    average: Decimal | None
    """The closed month's average daily AUM (None: not a customer by the month's end)."""
    month_end_aum: Decimal
    close_aum: Decimal
    """The AUM when the month was closed (the AUM "now" of the close)."""


@dataclass(slots=True)
class Path:
    """A history reduced to what any policy decides on."""

    opening: Decimal | None
    """The AUM at the end of the day before the period (None: not a customer yet)."""
    stretches: list[Stretch]
    days: list[Day] = field(default_factory=list)
    opening_cents: int | None = None


def path_of(history: History, closes: Sequence[Close]) -> Path:
    """Reduce a customer's history to its stretches, one per close.

    >>> c = Close(date(2026, 10, 1), date(2026, 10, 31))
    >>> p = path_of(History("C1", None, 10000, [(date(2026, 10, 11), 40000, 45000)]), [c])
    >>> p.stretches[0].average, p.stretches[0].high   # 10 days at 100.00, 21 at 400.00
    (Decimal('303.23'), Decimal('450.00'))
    """
    days = history.days
    opening = history.opening
    daily = DailyAum(closes[0].first, 0, opening) if opening is not None else None
    completed: dict[date, int] = {}
    stretches = []
    aum = opening if opening is not None else 0
    i, n = 0, len(days)
    for close in closes:
        high = None
        month_end_aum = None
        through, last = close.through, close.last
        while i < n:
            day, eod, day_high = days[i]
            if day > through:
                break
            if month_end_aum is None and day > last:
                month_end_aum = aum
            if daily is None:
                daily = DailyAum(day, 0, 0)
            daily, ended = roll_to(daily, day)
            for month, total in ended:
                completed[month] = total
            daily = DailyAum(daily.day, daily.sum_before, eod)
            aum = eod
            if high is None or day_high > high:
                high = day_high
            i += 1
        if month_end_aum is None:
            month_end_aum = aum
        total = month_total(daily, close.first, completed.get(close.first)) if daily is not None else None
        stretches.append(Stretch(None if high is None else from_cents(high),
                                 None if total is None else average(from_cents(total), close.days),
                                 from_cents(month_end_aum), from_cents(aum)))
    return Path(None if opening is None else from_cents(opening), stretches, days, opening)


def household_path(members: Sequence[Path], closes: Sequence[Close]) -> Path:
    """The household's path for household aggregation, from its members' paths: its AUM is the
    members' AUM summed and its month's average the members' averages summed, as the live close
    sums them.

    A household's highest AUM of a day is not kept, only each member's: the day's is taken as
    the household's AUM at the start of the day plus the largest rise of one member to their
    own highest (exact when one member's money moves in a day), and at least its end-of-day AUM.
    """
    known = [m.opening_cents for m in members if m.opening_cents is not None]
    opening = sum(known) if known else None
    now = [m.opening_cents or 0 for m in members]
    by_day: dict[date, list[tuple[int, int, int]]] = {}
    for index, member in enumerate(members):
        for day, aum, high in member.days:
            by_day.setdefault(day, []).append((index, aum, high))
    days: list[Day] = []
    for day in sorted(by_day):
        at_start = sum(now)
        rise = 0
        for index, aum, high in by_day[day]:
            rise = max(rise, high - now[index])
            now[index] = aum
        at_end = sum(now)
        days.append((day, at_end, max(at_end, at_start + rise)))
    stretches = []
    i = 0
    for k, close in enumerate(closes):
        high = None
        while i < len(days) and days[i][0] <= close.through:
            high = days[i][2] if high is None else max(high, days[i][2])
            i += 1
        averages = [m.stretches[k].average for m in members if m.stretches[k].average is not None]
        stretches.append(Stretch(None if high is None else from_cents(high), sum(averages, ZERO) if averages else None,
                                 sum((m.stretches[k].month_end_aum for m in members), ZERO),
                                 sum((m.stretches[k].close_aum for m in members), ZERO)))
    return Path(None if opening is None else from_cents(opening), stretches, days, opening)


# --- deciding a path under a policy ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MonthOutcome:
    """A customer's month under one policy: where the close left them and how they got there."""

    state: TierState
    change: str | None
    """What the close decided: ``watch``, ``watch_cleared``, ``downgrade`` or nothing."""
    upgraded: bool
    """Whether the tier rose during the stretch (first placements not counted)."""
    placed: bool
    """Whether the customer's first placement was in the stretch."""


def decide(own: Path, basis: Path, policy: TierPolicy, closes: Sequence[Close]) -> list[MonthOutcome | None]:
    """The customer's months under ``policy``: upgrades on ``basis`` (their own path, or their
    household's with household aggregation), a close for each month they were a customer by
    its end (their own average known). None for a month before they were a customer.

    Each customer starts the period at the lowest tier and is placed on their AUM at its start
    (the opening), as at a first placement: today's policy and the candidate start alike."""
    state = TierState(policy.lowest.id)
    placed = own.opening is not None
    if placed and basis.opening is not None:
        state = policy.on_aum(state, basis.opening, placement=True).state
    outcomes: list[MonthOutcome | None] = []
    for k, close in enumerate(closes):
        mine, theirs = own.stretches[k], basis.stretches[k]
        placing = rose = False
        if theirs.high is not None:
            decision = policy.on_aum(state, theirs.high, placement=not placed and mine.high is not None)
            if decision.change is not None:
                placing, rose = decision.change == "initial_placement", decision.change == "upgrade"
                state = decision.state
        placed = placed or mine.high is not None
        if mine.average is None:
            outcomes.append(None)
            continue
        decision = policy.on_month_end(state, theirs.average, theirs.close_aum, close.month)
        state = decision.state
        outcomes.append(MonthOutcome(state, decision.change, rose, placing))
    return outcomes


class DayTiers:
    """A customer's tier in force on each day of the period under one policy: at the start of
    a day, and right after a posting whose AUM after it is known (fast up within the day).

    >>> from shared.tiers import Tier, TierLadder
    >>> policy = TierPolicy(TierLadder([Tier("mass", Decimal(0)), Tier("gold", Decimal(50000))]))
    >>> c = Close(date(2026, 10, 1), date(2026, 10, 31))
    >>> p = path_of(History("C1", None, 0, [(date(2026, 10, 5), 6000000, 6000000)]), [c])
    >>> tiers = DayTiers(p, p, policy, [c])
    >>> tiers.at(date(2026, 10, 5)), tiers.at(date(2026, 10, 6))
    ('mass', 'gold')
    >>> tiers.after(date(2026, 10, 5), Decimal("55000.00"))
    'gold'
    """

    def __init__(self, own: Path, basis: Path, policy: TierPolicy, closes: Sequence[Close]) -> None:
        self.policy = policy
        state = TierState(policy.lowest.id)
        if own.opening is not None and basis.opening is not None:
            state = policy.on_aum(state, basis.opening, placement=True).state
        self._days: list[date] = [date.min]
        self._states: list[TierState] = [state]
        i, days = 0, basis.days
        for k, close in enumerate(closes):
            while i < len(days) and days[i][0] <= close.through:
                day, _aum, high = days[i]
                self._mark(day, state)
                state = policy.on_aum(state, from_cents(high)).state
                self._mark(day + timedelta(days=1), state)
                i += 1
            if own.stretches[k].average is not None:
                theirs = basis.stretches[k]
                state = policy.on_month_end(state, theirs.average, theirs.close_aum, close.month).state
                self._mark(close.through + timedelta(days=1), state)
        self._high: tuple[date, Decimal] | None = None

    def _mark(self, day: date, state: TierState) -> None:
        if self._days[-1] == day:
            self._states[-1] = state
        elif self._states[-1] != state:
            self._days.append(day)
            self._states.append(state)

    def state_at(self, day: date) -> TierState:
        """The state in force at the start of ``day``."""
        return self._states[bisect_right(self._days, day) - 1]

    def at(self, day: date) -> str:
        return self.state_at(day).tier

    def after(self, day: date, aum: Decimal) -> str:
        """The tier right after a posting of ``day`` that left the AUM at ``aum``, the day's
        postings given in order: the tier at the start of the day, raised to the one the
        highest AUM after the day's postings so far reaches."""
        if self._high is None or self._high[0] != day or aum > self._high[1]:
            self._high = (day, aum)
        return self.policy.on_aum(self.state_at(day), self._high[1]).state.tier
