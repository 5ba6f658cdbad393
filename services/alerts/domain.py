"""The bank's signal rules (docs/RULES.md, Signals) as pure values and functions.

Nothing here touches a database, the bus or HTTP: each rule takes plain values and says whether a
signal is due and with what evidence. Money is ``Decimal``; days are business dates in the bank's
time zone, worked out by the caller.
"""

from __future__ import annotations

import calendar
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Collection, Sequence

from shared.banks import is_other_bank
from shared.contracts.types import AUM_PRODUCT_TYPES
from shared.money import format_money
from shared.settings.signals import SIGNAL_TYPES  # named once, with the settings that configure them
from shared.tiers import TierLadder

NEAR_UPGRADE = "near_upgrade"
VIP_OUTFLOW = "vip_outflow"
TIER_UPGRADED = "tier_upgraded"
TIER_DOWNGRADED = "tier_downgraded"
DOWNGRADE_WATCH = "downgrade_watch"
MATURITY_DUE = "maturity_due"
BIRTHDAY = "birthday"
CARD_EXPIRY = "card_expiry"

ROLLING_TYPES = (NEAR_UPGRADE, VIP_OUTFLOW)
"""Suppressed per customer for a number of days after each one raised (the others are keyed by
their fact: tier event, product and threshold, card, birthday year)."""

OPEN, ACKNOWLEDGED, DONE, EXPIRED = "open", "acknowledged", "done", "expired"
STATUSES = (OPEN, ACKNOWLEDGED, DONE, EXPIRED)
ACTIVE = (OPEN, ACKNOWLEDGED)
"""A signal someone still has to act on: it follows the customer's RM and may expire."""


# --- findings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """A signal a rule says is due: its type, the key that makes it one business fact (the same
    key never raises twice), the numbers behind it, and the day after which it is moot."""

    signal_type: str
    key: tuple[str, ...]
    evidence: dict[str, Any]
    customer_id: str
    subject: str
    occurs_on: date | None = None
    threshold: int = 0
    expires_on: date | None = None
    suppress_until: date | None = None
    """For the rolling windows (``near_upgrade``, ``vip_outflow``): the first day the type may
    be raised again for the customer."""
    window: str = ""
    """Which of the type's windows suppresses it: ``near_upgrade`` has one per target tier
    (near gold, then near platinum, is two signals); ``vip_outflow`` one for the customer ("")."""

    @property
    def id(self) -> str:
        return signal_id(self.key)


SIGNAL_NAMESPACE = uuid.UUID("0b7f3c2e-5a41-4d0e-9c1d-6a9e2f4b7a10")


def signal_id(key: Sequence[str]) -> str:
    """The signal's id, derived from its business key: a redelivery, a replay or a second
    daily scan of the same fact arrives at the same id, which the store holds once."""
    return str(uuid.uuid5(SIGNAL_NAMESPACE, "\x1f".join(key)))


def _money(value: Decimal) -> str:
    return format_money(value)


# --- suppression windows --------------------------------------------------------------------


def suppressed(until: date | None, day: date) -> bool:
    """Inside a suppression window that runs up to (not including) ``until``.

    >>> suppressed(date(2026, 12, 1), date(2026, 11, 30)), suppressed(date(2026, 12, 1), date(2026, 12, 1))
    (True, False)
    """
    return until is not None and day < until


def window_end(day: date, days: int) -> date:
    """The first business day a signal raised on ``day`` may be raised again."""
    return day + timedelta(days=days)


def _rolling(signal_type: str, customer_id: str, day: date, suppress_days: int,
             evidence: dict[str, Any], window: str = "") -> Finding:
    """A signal suppressed per customer (and ``window``) for ``suppress_days``: once raised on
    ``day`` it is not raised again before the window ends, and it is moot (expires) when a new
    one may come."""
    until = window_end(day, suppress_days)
    key = (signal_type, customer_id, day.isoformat()) + ((window,) if window else ())
    return Finding(signal_type, key, evidence, customer_id, customer_id, day, 0, until - timedelta(days=1),
                   until, window)


# --- near upgrade ---------------------------------------------------------------------------


def near_upgrade(ladder: TierLadder, tier: str, aum: Decimal, ratio: Decimal, *,
                 customer_id: str, day: date, suppress_days: int) -> Finding | None:
    """AUM at least ``ratio`` of the next tier's floor and still below it (临界升级): with the
    defaults, a mass customer from 45,000.00 (90 % of the gold floor) to 49,999.99."""
    upper = ladder.next_above(tier)
    if upper is None:
        return None
    threshold = upper.floor * ratio
    if not (threshold <= aum < upper.floor):
        return None
    evidence = {
        "aum": _money(aum), "tier": tier, "next_tier": upper.id, "next_floor": _money(upper.floor),
        "ratio": str(ratio), "threshold": _money(threshold), "gap": _money(upper.floor - aum),
    }
    return _rolling(NEAR_UPGRADE, customer_id, day, suppress_days, evidence, window=upper.id)


# --- the 30-day AUM high --------------------------------------------------------------------


@dataclass(frozen=True)
class AumHighs:
    """The highest AUM of each recent business day, kept as a monotonic deque: days increase and
    amounts strictly decrease from the front, so the front is the window's high. A day whose
    high is at or below a later day's can never be the high again and is dropped, so at most
    ``window_days`` entries remain and each event costs O(1) amortised, with no history read.

    >>> AumHighs().observe(date(2026, 11, 1), Decimal(500)).observe(date(2026, 11, 2), Decimal(300)).high
    (datetime.date(2026, 11, 1), Decimal('500'))
    """

    entries: tuple[tuple[date, Decimal], ...] = ()

    def observe(self, day: date, amount: Decimal) -> AumHighs:
        if self.entries and day < self.entries[-1][0]:
            day = self.entries[-1][0]  # past days are closed: a late amount counts on the newest
        entries = list(self.entries)
        while entries and entries[-1][1] <= amount:
            entries.pop()
        if entries and entries[-1][0] == day:
            return self  # a higher amount earlier the same day is already the day's high
        entries.append((day, amount))
        return AumHighs(tuple(entries))

    def since(self, first_day: date) -> AumHighs:
        """Forget the days before ``first_day``."""
        kept = tuple(e for e in self.entries if e[0] >= first_day)
        return self if len(kept) == len(self.entries) else AumHighs(kept)

    @property
    def high(self) -> tuple[date, Decimal] | None:
        return self.entries[0] if self.entries else None

    def encode(self) -> str:
        """``20261101:50000000,20261105:42000000`` (day, cents): compact, one short column."""
        return ",".join(f"{d:%Y%m%d}:{int(a * 100)}" for d, a in self.entries)

    @classmethod
    def decode(cls, text: str | None) -> AumHighs:
        if not text:
            return cls()
        entries = []
        for item in text.split(","):
            day, cents = item.split(":")
            entries.append((date(int(day[:4]), int(day[4:6]), int(day[6:])),
                            (Decimal(int(cents)) / 100).quantize(Decimal("0.01"))))
        return cls(tuple(entries))


def window_start(day: date, window_days: int) -> date:
    """The first business day of a window of ``window_days`` days ending with ``day``."""
    return day - timedelta(days=window_days - 1)


def track_high(highs: AumHighs, day: date, before: Decimal, after: Decimal,
               window_days: int) -> AumHighs:
    """Bring the deque to ``day``: the AUM held since the last event (``before``) was in force
    on every day up to this one, so it counts for ``day`` too, then the new AUM (``after``)."""
    return highs.observe(day, before).observe(day, after).since(window_start(day, window_days))


def vip_drop(ladder: TierLadder, tier: str, aum: Decimal, highs: AumHighs, *, min_tier: str,
             drop_ratio: Decimal, window_days: int, customer_id: str, day: date,
             suppress_days: int) -> Finding | None:
    """A VIP's AUM at or below ``drop_ratio`` of its highest value in the window (AUM流失):
    with the defaults, a platinum customer whose 30-day high is 500,000.00 at 400,000.00."""
    if not ladder.at_least(tier, min_tier) or highs.high is None:
        return None
    high_on, high = highs.high
    threshold = high * drop_ratio
    if high <= 0 or aum > threshold:
        return None
    evidence = {
        "trigger": "aum_drop", "tier": tier, "aum": _money(aum), "high": _money(high),
        "high_on": high_on.isoformat(), "window_days": window_days, "drop_ratio": str(drop_ratio),
        "threshold": _money(threshold), "drop": _money(high - aum),
    }
    return _rolling(VIP_OUTFLOW, customer_id, day, suppress_days, evidence)


def is_large_interbank_outflow(direction: str, counterparty_bank: str | None, amount: Decimal,
                               product_type: str, large_outflow: Decimal,
                               own_bank_codes: Collection[str] = ()) -> bool:
    """One debit from an asset account to another bank (``shared.banks.is_other_bank``: a
    counterparty bank that is not one of ``own_bank_codes``) of at least ``large_outflow``; a
    transfer within the bank moves no AUM out of it.

    >>> is_large_interbank_outflow("debit", "OTHER", Decimal("100000.00"), "demand_deposit", Decimal("100000.00"))
    True
    """
    return (direction == "debit" and is_other_bank(counterparty_bank, own_bank_codes)
            and product_type in AUM_PRODUCT_TYPES and amount >= large_outflow)


def vip_large_outflow(ladder: TierLadder, tier: str, *, min_tier: str, large_outflow: Decimal,
                      customer_id: str, day: date, suppress_days: int, posting: dict[str, Any]
                      ) -> Finding | None:
    """The second trigger of ``vip_outflow``: a VIP's single large outflow to another bank."""
    if not ladder.at_least(tier, min_tier):
        return None
    evidence = {"trigger": "large_outflow", "tier": tier, "threshold": _money(large_outflow), **posting}
    return _rolling(VIP_OUTFLOW, customer_id, day, suppress_days, evidence)


# --- tier changes ---------------------------------------------------------------------------

_TIER_SIGNALS = {"upgrade": TIER_UPGRADED, "downgrade": TIER_DOWNGRADED, "watch": DOWNGRADE_WATCH}
def tier_signal(change: str, *, customer_id: str, from_tier: str, to_tier: str,
                effective_at: datetime, evidence: dict[str, Any]) -> Finding | None:
    """Every upgrade, downgrade and watch is a signal, each tier event its own; clearing a
    watch is not a signal (it only closes the open watch)."""
    signal_type = _TIER_SIGNALS.get(change)
    if signal_type is None:
        return None
    key = (signal_type, customer_id, effective_at.isoformat(), from_tier, to_tier)
    return Finding(signal_type, key, evidence, customer_id, customer_id, None)


def closed_by_tier_change(signal_type: str, evidence: dict[str, Any], raised_at: datetime, *, change: str,
                          from_tier: str, to_tier: str, effective_at: datetime, day: date,
                          ladder: TierLadder) -> str | None:
    """Why a tier decision closes an active signal, or None if the signal stays true.

    A near-upgrade closes once the customer reaches the tier it was near (or one above it), and
    when a downgrade takes them further from it; a downgrade watch is replaced by any later
    tier decision. Only what was raised before the decision: a replayed decision must not close
    the signal it raised itself (a near-upgrade of the very instant the tier is reached closes).

    >>> from shared.settings import Settings
    >>> closed_by_tier_change("near_upgrade", {"next_tier": "gold"}, datetime(2026, 11, 2), change="upgrade",
    ...     from_tier="mass", to_tier="gold", effective_at=datetime(2026, 11, 6), day=date(2026, 11, 6),
    ...     ladder=Settings().tier_ladder)
    'reached gold on 2026-11-06'
    """
    if signal_type == NEAR_UPGRADE:
        target = evidence.get("next_tier")
        if (change in ("upgrade", "initial_placement") and raised_at <= effective_at and target is not None
                and ladder.knows(target) and ladder.at_least(to_tier, target)):
            return f"reached {to_tier} on {day}" + ("" if to_tier == target else f", above {target}")
        if change == "downgrade" and raised_at < effective_at:
            return f"downgraded from {from_tier} to {to_tier} on {day}"
        return None
    if signal_type == DOWNGRADE_WATCH and raised_at < effective_at:
        return {"upgrade": f"upgraded to {to_tier} on {day}", "downgrade": f"downgraded to {to_tier} on {day}",
                "watch": f"replaced by the watch of {day}", "watch_cleared": f"the watch was cleared on {day}",
                }.get(change)
    return None


def no_longer_near(evidence: dict[str, Any], aum: Decimal, ladder: TierLadder, ratio: Decimal) -> str | None:
    """Why a near-upgrade closes when the AUM falls below ``ratio`` of the floor of the tier it
    was near, or None while the customer is still near it.

    >>> from shared.settings import Settings
    >>> no_longer_near({"next_tier": "gold"}, Decimal("44000.00"), Settings().tier_ladder, Decimal("0.90"))
    'AUM 44000.00 fell below 45000.00, 0.90 of the gold floor'
    """
    target = evidence.get("next_tier")
    if target is None or not ladder.knows(target):
        return None
    threshold = ladder.step(target).floor * ratio
    if aum >= threshold:
        return None
    return f"AUM {_money(aum)} fell below {_money(threshold)}, {ratio} of the {target} floor"


def lapses_on(raised_on: date, days: int | None) -> date | None:
    """The last day a signal that lapses unacknowledged is worth acting on: raised on
    ``raised_on`` (its first day) and open ``days`` days (None: never lapses).

    >>> lapses_on(date(2026, 11, 5), 7)
    datetime.date(2026, 11, 11)
    """
    return None if days is None else raised_on + timedelta(days=days - 1)


def expiry_reason(signal_type: str, expires_on: date, *, lapsing: bool) -> str:
    """Why the daily scan expires a signal after ``expires_on``: nobody acknowledged it in
    time (a type that lapses), or its day has passed.

    >>> expiry_reason("vip_outflow", date(2026, 11, 11), lapsing=True)
    'not acknowledged by 2026-11-11'
    """
    if lapsing:
        return f"not acknowledged by {expires_on}"
    return f"its last day, {expires_on}, has passed"


# --- maturities -----------------------------------------------------------------------------


def maturity_bands(days_ahead: Sequence[int]) -> list[tuple[int, int, int]]:
    """``(threshold, first, last)`` days left per threshold, tightest first: with 30 and 7, days
    0-7 fall to the 7-day reminder and 8-30 to the 30-day one.

    >>> maturity_bands([30, 7])
    [(7, 0, 7), (30, 8, 30)]
    """
    bands, first = [], 0
    for threshold in sorted(days_ahead):
        bands.append((threshold, first, threshold))
        first = threshold + 1
    return bands


def maturity_threshold(days_left: int, days_ahead: Sequence[int]) -> int | None:
    """The reminder a product maturing in ``days_left`` days is due for: the tightest threshold
    it is within, so a product first seen 5 days before maturity gets the 7-day reminder only.

    >>> maturity_threshold(30, [30, 7]), maturity_threshold(8, [30, 7]), maturity_threshold(31, [30, 7])
    (30, 30, None)
    """
    for threshold, first, last in maturity_bands(days_ahead):
        if first <= days_left <= last:
            return threshold
    return None


def maturity_due(*, account_id: str, customer_id: str, product_type: str, product_code: str | None,
                 maturity_date: date, day: date, days_ahead: Sequence[int]) -> Finding | None:
    """A time deposit or wealth product maturing within a threshold: one signal per product,
    maturity date and threshold."""
    days_left = (maturity_date - day).days
    threshold = maturity_threshold(days_left, days_ahead)
    if threshold is None:
        return None
    evidence = {"account_id": account_id, "product_type": product_type, "product_code": product_code,
                "maturity_date": maturity_date.isoformat(), "days_ahead": threshold,
                "days_left": days_left}
    key = (MATURITY_DUE, account_id, maturity_date.isoformat(), str(threshold))
    return Finding(MATURITY_DUE, key, evidence, customer_id, account_id, maturity_date, threshold,
                   maturity_date)


# --- birthdays ------------------------------------------------------------------------------


def month_day(day: date) -> int:
    """A birthday as a sortable number, ``MMDD``: 15 July is 715, 29 February 229.

    Stored indexed, so the birthdays of a date window are one or two range scans.
    """
    return day.month * 100 + day.day


_ALL_MONTH_DAYS = [month_day(date(2000, 1, 1) + timedelta(days=i)) for i in range(366)]


def celebration(birth_date: date, year: int, leap_day: str) -> date:
    """The day a birthday is celebrated in ``year``; a 29 February birthday in a year without
    one falls on ``leap_day`` (``"02-28"`` or ``"03-01"``).

    >>> celebration(date(1992, 2, 29), 2027, "02-28")
    datetime.date(2027, 2, 28)
    """
    if birth_date.month == 2 and birth_date.day == 29 and not calendar.isleap(year):
        month, day = (int(p) for p in leap_day.split("-"))
        return date(year, month, day)
    return birth_date.replace(year=year)


def birthday_month_days(start: date, days_ahead: int, leap_day: str) -> list[tuple[int, int]]:
    """Ranges of ``MMDD`` whose birthdays are celebrated from ``start`` to ``days_ahead`` days
    later (inclusive): the WHERE clause of the daily birthday query. A window across New Year
    gives two ranges; 29 February joins the range of ``leap_day`` in a common year.

    >>> birthday_month_days(date(2026, 12, 28), 7, "02-28")
    [(101, 104), (1228, 1231)]
    """
    wanted: set[int] = set()
    for offset in range(days_ahead + 1):
        day = start + timedelta(days=offset)
        wanted.add(month_day(day))
        if not calendar.isleap(day.year) and f"{day:%m-%d}" == leap_day:
            wanted.add(229)
    ranges: list[tuple[int, int]] = []
    run: list[int] = []
    for md in _ALL_MONTH_DAYS:
        if md in wanted:
            run.append(md)
        elif run:
            ranges.append((run[0], run[-1]))
            run = []
    if run:
        ranges.append((run[0], run[-1]))
    return ranges


def birthday(*, customer_id: str, birth_date: date, tier: str, ladder: TierLadder, min_tier: str,
             day: date, days_ahead: int, leap_day: str) -> Finding | None:
    """A birthday within ``days_ahead`` days (today included) of a customer of ``min_tier`` or
    above (生日提醒): once a year, keyed by the year it is celebrated in."""
    if not ladder.at_least(tier, min_tier):
        return None
    for year in (day.year, day.year + 1):
        on = celebration(birth_date, year, leap_day)
        if day <= on <= day + timedelta(days=days_ahead) and on > birth_date:
            evidence = {"birth_date": birth_date.isoformat(), "celebrated_on": on.isoformat(),
                        "days_left": (on - day).days, "age": year - birth_date.year, "tier": tier}
            return Finding(BIRTHDAY, (BIRTHDAY, customer_id, str(year)), evidence, customer_id,
                           customer_id, on, 0, on)
    return None


# --- cards ----------------------------------------------------------------------------------


def card_expiry(*, account_id: str, customer_id: str, product_code: str | None, expiry: date,
                day: date, days_ahead: int) -> Finding | None:
    """A debit card expiring within ``days_ahead`` days (换卡提醒): once per card, a card being
    its account and expiry date (a renewed card has a new date)."""
    days_left = (expiry - day).days
    if not (0 <= days_left <= days_ahead):
        return None
    evidence = {"account_id": account_id, "product_code": product_code,
                "card_expiry": expiry.isoformat(), "days_left": days_left}
    return Finding(CARD_EXPIRY, (CARD_EXPIRY, account_id, expiry.isoformat()), evidence, customer_id,
                   account_id, expiry, 0, expiry)


# --- what an RM does with a signal ----------------------------------------------------------


class TransitionRefused(Exception):
    """An action the signal's status does not allow (e.g. acknowledging a done signal)."""


_ACTIONS = {
    "ack": ("acknowledged", {OPEN: ACKNOWLEDGED, ACKNOWLEDGED: ACKNOWLEDGED}),
    "done": ("done", {OPEN: DONE, ACKNOWLEDGED: DONE, DONE: DONE}),
}


def transition(status: str, action: str) -> str:
    """The status after ``action`` (``ack`` or ``done``); repeating an action is harmless.

    >>> transition("open", "ack"), transition("acknowledged", "done")
    ('acknowledged', 'done')
    """
    done_as, moves = _ACTIONS[action]
    after = moves.get(status)
    if after is None:
        raise TransitionRefused(f"a signal that is {status} cannot be {done_as}")
    return after

