"""The bank's rules for balances, AUM and tiers, as pure values and functions.

Nothing here touches a database, the bus or HTTP: every rule can be called with plain values.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal, Sequence

from shared.calendar import days_in_month, month_of, next_month
from shared.money import CENT, ZERO
from shared.tiers import Tier, TierLadder

# --- balances -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountPosition:
    """What is known of one account, from the two kinds of fact core banking sends about it.

    Postings order among themselves by ``account_seq``: ``seq`` is the highest applied and
    ``posting_balance`` its ``balance_after``, whatever the postings' clocks say (core banking's
    clocks and batch jobs do not keep time order within a day). ``posted_at`` is the latest
    ``posted_at`` of the postings applied: the time the account's postings have reached.
    Snapshots order among themselves by ``as_of``: ``snapshot_balance`` is the newest one's.

    A snapshot and the postings order against each other by time: a snapshot taken at ``as_of``
    includes every posting posted up to and including that moment. So the balance in force is
    the newest snapshot's when its ``as_of`` is at or after ``posted_at``, else the highest
    posting's. The result depends only on which facts have arrived, never on their order.
    """

    seq: int = 0
    posting_balance: Decimal = ZERO
    posted_at: datetime | None = None
    snapshot_balance: Decimal = ZERO
    snapshot_at: datetime | None = None

    @property
    def balance(self) -> Decimal:
        if self.snapshot_at is not None and (self.posted_at is None or self.snapshot_at >= self.posted_at):
            return self.snapshot_balance
        return self.posting_balance


def apply_posting(pos: AccountPosition, seq: int, balance_after: Decimal,
                  posted_at: datetime) -> AccountPosition:
    """A posting with a higher ``account_seq`` than any applied sets the postings' balance, even
    when its ``posted_at`` is earlier than theirs; a lower or equal one is stale and changes
    nothing. Whether it moves the balance in force depends on the snapshot (see
    :class:`AccountPosition`).

    >>> from datetime import timezone
    >>> at = datetime(2026, 11, 10, 9, 0, tzinfo=timezone.utc)
    >>> pos = apply_posting(AccountPosition(), 7, Decimal("5.00"), at)
    >>> apply_posting(pos, 8, Decimal("1.00"), at.replace(hour=8)).balance  # higher seq, earlier clock
    Decimal('1.00')
    >>> apply_posting(pos, 6, Decimal("9.00"), at.replace(hour=10)).balance  # lower seq: stale
    Decimal('5.00')
    """
    if seq <= pos.seq:
        return pos
    reached = posted_at if pos.posted_at is None else max(pos.posted_at, posted_at)
    return replace(pos, seq=seq, posting_balance=balance_after, posted_at=reached)


def apply_snapshot(pos: AccountPosition, balance: Decimal, as_of: datetime) -> AccountPosition:
    """A snapshot newer than the newest applied replaces it; an older or equal one is stale.

    >>> from datetime import timezone
    >>> at = datetime(2026, 11, 10, 9, 0, tzinfo=timezone.utc)
    >>> pos = apply_posting(AccountPosition(), 3, Decimal("10.00"), at)
    >>> apply_snapshot(pos, Decimal("800.00"), at.replace(hour=15)).balance  # taken after the posting
    Decimal('800.00')
    >>> apply_snapshot(pos, Decimal("800.00"), at.replace(hour=8)).balance   # before it: the posting stands
    Decimal('10.00')
    """
    if pos.snapshot_at is not None and as_of <= pos.snapshot_at:
        return pos
    return replace(pos, snapshot_balance=balance, snapshot_at=as_of)


class SeqRanges:
    """The ``account_seq`` values of the postings an account has applied, as ranges: a posting
    whose seq is among them has been applied before (core banking sent it again, perhaps under
    another ``ce_id``) and changes nothing; one below the highest but not among them is a
    posting that arrived late, new to the account. ``account_seq`` increases by one per posting,
    so the ranges stay one or two long.

    >>> seen = SeqRanges.parse("1-5,8")
    >>> (3 in seen, 6 in seen, str(seen.with_seq(6).with_seq(7)))
    (True, False, '1-8')
    """

    __slots__ = ("ranges",)

    def __init__(self, ranges: tuple[tuple[int, int], ...] = ()) -> None:
        self.ranges = ranges

    @classmethod
    def parse(cls, text: str | None) -> "SeqRanges":
        out = []
        for part in filter(None, (text or "").split(",")):
            low, _, high = part.partition("-")
            out.append((int(low), int(high or low)))
        return cls(tuple(out))

    def __contains__(self, seq: int) -> bool:
        return any(low <= seq <= high for low, high in self.ranges)

    def with_seq(self, seq: int) -> "SeqRanges":
        merged: list[list[int]] = []
        for low, high in sorted([*self.ranges, (seq, seq)]):
            if merged and low <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], high)
            else:
                merged.append([low, high])
        return SeqRanges(tuple((low, high) for low, high in merged))

    def __str__(self) -> str:
        return ",".join(f"{low}" if low == high else f"{low}-{high}" for low, high in self.ranges)


# --- the month's average daily AUM ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DailyAum:
    """The running sum behind a month's average daily AUM.

    ``day`` is the latest business day with activity; ``sum_before`` sums the end-of-day AUM of
    the month's days before ``day``; ``aum`` is the AUM now (it becomes ``day``'s end-of-day
    value when the day ends). Moving to a later day adds the days in between at ``aum``, so the
    state is updated in O(1) per event and a month-end close needs no replay.
    """

    day: date
    sum_before: Decimal = ZERO
    aum: Decimal = ZERO

    @property
    def month(self) -> date:
        return month_of(self.day)

    def month_total(self) -> Decimal:
        """The month's sum of end-of-day AUM if nothing changes before the month ends."""
        remaining = days_in_month(self.day) - self.day.day + 1
        return self.sum_before + self.aum * remaining

    def month_to_date_average(self) -> Decimal:
        """Average of the month's days so far, today counted at the current AUM."""
        return average(self.sum_before + self.aum, self.day.day)


def roll_to(state: DailyAum, business_day: date) -> tuple[DailyAum, list[tuple[date, Decimal]]]:
    """Move the running sum to ``business_day``; returns the new state and the totals of every
    month that ended on the way (a month with no activity counts its AUM for every day).

    An event dated before ``state.day`` (late) counts on ``state.day``: past days are closed.
    """
    day = state.day
    if business_day <= day:
        return state, []
    if business_day.month == day.month and business_day.year == day.year:
        gap = (business_day - day).days
        return DailyAum(business_day, state.sum_before + state.aum * gap, state.aum), []
    completed = [(state.month, state.month_total())]
    month = next_month(state.month)
    while month < month_of(business_day):
        completed.append((month, state.aum * days_in_month(month)))
        month = next_month(month)
    elapsed = business_day.day - 1
    return DailyAum(business_day, state.aum * elapsed, state.aum), completed


def month_total(daily: DailyAum, first: date, stored: Decimal | None) -> Decimal | None:
    """The month's sum of end-of-day AUM for a customer whose running sum is ``daily``: the
    running sum's own total if it is in the month, the AUM held all month if it stopped before,
    the total kept when it rolled past (``stored``), nothing if it started after."""
    day = daily.day
    if day.month == first.month and day.year == first.year:
        return daily.month_total()
    if day < first:
        return daily.aum * days_in_month(first)
    return stored


def average(total: Decimal, days: int) -> Decimal:
    """``total / days`` rounded half up to the cent.

    >>> average(Decimal("100.00"), 3)
    Decimal('33.33')
    """
    return (total / days).quantize(CENT, rounding=ROUND_HALF_UP)


# --- tiers ----------------------------------------------------------------------------------

Change = Literal["upgrade", "downgrade", "watch", "watch_cleared", "initial_placement"]


@dataclass(frozen=True)
class TierState:
    tier: str
    watch: bool = False
    months_below: int = 0


@dataclass(frozen=True)
class TierDecision:
    """The outcome of a rule: the new state, and the change to announce (if any) with why."""

    state: TierState
    change: Change | None = None
    reason: str = ""
    from_tier: str | None = None


class TierPolicy:
    """Fast up, slow down (快升缓降), on a tier ladder: the live policy of the settings, or a
    candidate one an analyst simulates.

    >>> policy = TierPolicy(TierLadder([Tier("mass", Decimal(0)), Tier("gold", Decimal(50000)),
    ...                                 Tier("platinum", Decimal(200000))]))
    >>> policy.on_aum(TierState("mass"), Decimal("250000.00")).state.tier
    'platinum'
    """

    def __init__(self, ladder: TierLadder) -> None:
        self.ladder = ladder
        self.tiers = ladder.tiers
        self.by_id = ladder.by_id

    @classmethod
    def from_rules(cls, rules: Sequence) -> TierPolicy:
        return cls(TierLadder.from_rules(rules))

    @property
    def lowest(self) -> Tier:
        return self.ladder.lowest

    def tier_for(self, amount: Decimal) -> Tier:
        """The highest tier whose floor ``amount`` reaches."""
        return self.ladder.tier_for(amount)

    def rank(self, tier_id: str) -> int:
        return self.ladder.rank(tier_id)

    def next_above(self, tier_id: str) -> Tier | None:
        return self.ladder.next_above(tier_id)

    def on_aum(self, state: TierState, basis: Decimal, *, placement: bool = False) -> TierDecision:
        """Upgrade the moment the basis (AUM, or household AUM) reaches a higher floor, possibly
        across several tiers at once. Never downgrades: that waits for month-end closes.

        ``placement``: the AUM is part of the customer's first placement (the first AUM Strata
        sees of them, at go-live or in a backfill): the tier it reaches is where the customer
        starts (``initial_placement``), not an upgrade they earned."""
        target = self.tier_for(basis)
        if target.rank <= self.rank(state.tier):
            return TierDecision(state)
        if placement:
            reason = f"initial placement: AUM {basis} reaches the {target.id} floor {target.floor}"
            return TierDecision(TierState(target.id), "initial_placement", reason, state.tier)
        reason = f"AUM {basis} reached the {target.id} floor {target.floor}"
        return TierDecision(TierState(target.id), "upgrade", reason, state.tier)

    def on_month_end(self, state: TierState, month_average: Decimal, basis_now: Decimal,
                     month: str) -> TierDecision:
        """At a month-end close: a month below the tier's floor puts the customer on watch; the
        tier's number of consecutive months below downgrades to the tier that month's average
        matches (never below what the current AUM qualifies for, which the upgrade rule would
        restore at once); a month at or above the floor clears the count."""
        tier = self.by_id[state.tier]
        if month_average >= tier.floor:
            if state.watch or state.months_below:
                reason = f"{month} average daily AUM {month_average} is at or above the {tier.id} floor {tier.floor}"
                return TierDecision(TierState(tier.id), "watch_cleared", reason, tier.id)
            return TierDecision(state)
        months_below = state.months_below + 1
        if months_below < tier.downgrade_after_months:
            reason = (f"{month} average daily AUM {month_average} is below the {tier.id} floor "
                      f"{tier.floor} ({months_below} of {tier.downgrade_after_months} months)")
            return TierDecision(TierState(tier.id, True, months_below), "watch", reason, tier.id)
        by_average = self.tier_for(month_average)
        by_now = self.tier_for(basis_now)
        target = by_average if by_average.rank >= by_now.rank else by_now
        if target.rank >= tier.rank:
            reason = (f"{months_below} months below the {tier.id} floor, but current AUM {basis_now} "
                      f"still qualifies for {tier.id}")
            return TierDecision(TierState(tier.id), "watch_cleared", reason, tier.id)
        reason = (f"{months_below} consecutive months below the {tier.id} floor {tier.floor}; "
                  f"{month} average daily AUM {month_average} matches {target.id}")
        return TierDecision(TierState(target.id), "downgrade", reason, tier.id)
