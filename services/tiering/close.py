"""The month-end close: every customer's average daily AUM for the month, then watch and
downgrades, worked out with the same domain rules the live path keeps the running sums with
(``DailyAum``, ``TierPolicy.on_month_end``, ``average``), never a second copy of them in SQL.

The customers are read in key order a chunk at a time, decided in Python and written back a
chunk at a time, all in the close's one transaction: memory stays flat however many customers
the bank has, and a close that fails leaves nothing behind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal

from sqlalchemy import func, select

from shared.calendar import days_in_month, month_key, next_month, parse_month, start_of_day, window_start
from shared.db import read_rows, update_rows, write_rows
from shared.money import ZERO
from shared.runtime.transaction import BatchTransaction
from services.tiering import metrics
from services.tiering.domain import DailyAum, TierPolicy, TierState, average, month_total
from services.tiering.models import TieringMonthClose
from services.tiering.service import _decide, _pass_on, policy_of
from services.tiering.state import CUSTOMERS, HOUSEHOLDS, MONTHS, Customer, TieringState

CHUNK = 10_000
TWELVE_MONTHS = 12


@dataclass(frozen=True)
class CloseSummary:
    month: str
    customers: int
    watch: int
    watch_cleared: int
    downgrades: int
    already_closed: bool = False

    def as_dict(self) -> dict:
        return {"month": self.month, "customers": self.customers, "watch": self.watch,
                "watch_cleared": self.watch_cleared, "downgrades": self.downgrades,
                "already_closed": self.already_closed}


class CloseRefused(Exception):
    """A month that may not be closed now (out of order)."""


async def close_month(tx: BatchTransaction, month: str) -> CloseSummary:
    """Close ``month``: each customer's average daily AUM, then watch and downgrades.

    Idempotent: a month closed before returns its summary and changes nothing. Months close in
    order, since a downgrade counts consecutive month-ends.
    """
    session = tx.session
    done = await session.get(TieringMonthClose, month)
    if done is not None:
        return CloseSummary(**{**json.loads(done.summary), "already_closed": True})
    last = await session.scalar(select(func.max(TieringMonthClose.month)))
    if last is not None and month != month_key(next_month(parse_month(last))):
        raise CloseRefused(f"the last closed month is {last}; close {month_key(next_month(parse_month(last)))} next")
    first = parse_month(month)
    policy = policy_of(tx.settings)
    counts = {"customers": 0, "watch": 0, "watch_cleared": 0, "downgrade": 0}
    households: dict[str, tuple[Decimal, Decimal]] = {}
    if tx.settings.tiering.household_aggregation:
        households = await _household_averages(tx, first)
    after, reached = None, None
    while True:
        rows = list(await session.execute(
            select(*_CLOSE_COLUMNS).where(CUSTOMERS.c.customer_id > after if after is not None else True)
            .order_by(CUSTOMERS.c.customer_id).limit(CHUNK)))
        if not rows:
            break
        after = rows[-1].customer_id
        latest = max(r.mtd_day for r in rows)
        reached = latest if reached is None else max(reached, latest)
        await _close_chunk(tx, policy, first, rows, households, counts)
    summary = CloseSummary(month, counts["customers"], counts["watch"], counts["watch_cleared"],
                           counts["downgrade"])
    tx.session.add(TieringMonthClose(month=month, closed_at=datetime.now(timezone.utc),
                                     summary=json.dumps(summary.as_dict()), history_through=reached))
    tx.after_commit(metrics.MONTH_CLOSES.inc)
    return summary


_CLOSE_COLUMNS = tuple(CUSTOMERS.c[name] for name in (
    "customer_id", "household_id", "aum", "tier", "watch", "months_below", "tier_since", "mtd_day", "mtd_sum",
    "average_aum_12m", "placed_at", "recent_averages"))
"""What a close reads of each customer: not their holdings, nor anything it does not decide on."""


async def _close_chunk(tx: BatchTransaction, policy: TierPolicy, first: date, rows, households, counts) -> None:
    """One chunk of customers: the month's total and average of each, the twelve months'
    average, the month-end decision; written back a statement per table."""
    month = month_key(first)
    days = days_in_month(first)
    following = next_month(first)
    effective_at = start_of_day(following, tx.settings.zone)
    stored = {r.customer_id: r.total for r in await read_rows(
        tx.session, MONTHS, "customer_id", [r.customer_id for r in rows if r.mtd_day >= following],
        where=MONTHS.c.month == month)}
    state = TieringState()
    tx.state = state
    months, averages, decided = [], [], []
    oldest = window_start(month, TWELVE_MONTHS)
    for r in rows:
        total = month_total(DailyAum(r.mtd_day, r.mtd_sum, r.aum), first, stored.get(r.customer_id))
        if total is None:
            continue
        counts["customers"] += 1
        month_average = average(total, days)
        months.append({"customer_id": r.customer_id, "month": month, "total": total, "average": month_average})
        recent = RecentAverages.parse(r.recent_averages).with_month(month, month_average, oldest)
        average_12m = recent.average()
        averages.append({"customer_id": r.customer_id, "average_aum_12m": average_12m,
                         "recent_averages": str(recent)})
        basis, basis_now = month_average, r.aum
        if r.household_id and r.household_id in households:
            basis, basis_now = households[r.household_id]
        decision = policy.on_month_end(TierState(r.tier, r.watch, r.months_below), basis, basis_now, month)
        if decision.change is None:
            continue
        customer = Customer(r.customer_id, r.household_id, r.aum, ZERO, {}, r.tier, r.watch, r.months_below,
                            r.tier_since, r.mtd_day, r.mtd_sum, ZERO, average_12m, None, r.placed_at, None)
        tx.for_event(f"month-end:{month}:{r.customer_id}")
        changed = _decide(tx, customer, decision, effective_at, basis)
        counts[decision.change] += 1
        _pass_on(tx, customer, "month_end", effective_at, customer.aum, [changed])
        decided.append({"customer_id": customer.customer_id, "tier": customer.tier, "watch": customer.watch,
                        "months_below": customer.months_below, "tier_since": customer.tier_since})
    await write_rows(tx.session, MONTHS, months, key=("customer_id", "month"))
    await update_rows(tx.session, CUSTOMERS, averages, key=("customer_id",))
    await update_rows(tx.session, CUSTOMERS, decided, key=("customer_id",))
    state.dirty_customers.clear()
    await tx.write_pending()


class RecentAverages:
    """A customer's average daily AUM of each of the last twelve closed months, kept on their
    row as ``2026-10:1234.56,2026-11:987.00`` (``average_aum_12m`` is their average)."""

    __slots__ = ("months",)

    def __init__(self, months: dict[str, Decimal]) -> None:
        self.months = months

    @classmethod
    def parse(cls, text: str | None) -> "RecentAverages":
        months = {}
        for part in filter(None, (text or "").split(",")):
            key, _, value = part.partition(":")
            months[key] = Decimal(value)
        return cls(months)

    def with_month(self, month: str, value: Decimal, oldest: str) -> "RecentAverages":
        kept = {m: v for m, v in self.months.items() if oldest <= m < month}
        kept[month] = value
        return RecentAverages(kept)

    def average(self) -> Decimal:
        return average(sum(self.months.values(), ZERO), len(self.months))

    def __str__(self) -> str:
        return ",".join(f"{m}:{v}" for m, v in sorted(self.months.items()))


async def _household_averages(tx: BatchTransaction, first: date) -> dict[str, tuple[Decimal, Decimal]]:
    """With household aggregation, each household's month average (its members' averages
    summed) and its AUM now, worked out before the customers are decided."""
    sums: dict[str, Decimal] = {}
    month = month_key(first)
    days = days_in_month(first)
    after = None
    while True:
        rows = list(await tx.session.execute(
            select(CUSTOMERS).where(CUSTOMERS.c.household_id.is_not(None),
                                    CUSTOMERS.c.customer_id > after if after is not None else True)
            .order_by(CUSTOMERS.c.customer_id).limit(CHUNK)))
        if not rows:
            break
        after = rows[-1].customer_id
        stored = {r.customer_id: r.total for r in await read_rows(
            tx.session, MONTHS, "customer_id", [r.customer_id for r in rows], where=MONTHS.c.month == month)}
        for r in rows:
            total = month_total(DailyAum(r.mtd_day, r.mtd_sum, r.aum), first, stored.get(r.customer_id))
            if total is not None:
                sums[r.household_id] = sums.get(r.household_id, ZERO) + average(total, days)
    now = {r.household_id: r.aum for r in await read_rows(tx.session, HOUSEHOLDS, "household_id", sums)}
    return {h: (total, now.get(h, ZERO)) for h, total in sums.items()}
