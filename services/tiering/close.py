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
from shared.db import read_rows, write_rows
from shared.money import ZERO
from shared.runtime.transaction import BatchTransaction
from services.tiering import metrics
from services.tiering.domain import DailyAum, TierPolicy, average, month_total
from services.tiering.models import TieringMonthClose
from services.tiering.service import _decide, _pass_on, _state, policy_of
from services.tiering.state import CUSTOMERS, HOUSEHOLDS, MONTHS, TieringState, _customer_of, customer_row

CHUNK = 5_000
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
            select(CUSTOMERS).where(CUSTOMERS.c.customer_id > after if after is not None else True)
            .order_by(CUSTOMERS.c.customer_id).limit(CHUNK)))
        if not rows:
            break
        after = rows[-1].customer_id
        latest = max(r.mtd_day for r in rows)
        reached = latest if reached is None else max(reached, latest)
        await _close_chunk(tx, policy, first, [_customer_of(r) for r in rows],
                           {r.customer_id: r.recent_averages for r in rows}, households, counts)
    summary = CloseSummary(month, counts["customers"], counts["watch"], counts["watch_cleared"],
                           counts["downgrade"])
    tx.session.add(TieringMonthClose(month=month, closed_at=datetime.now(timezone.utc),
                                     summary=json.dumps(summary.as_dict()), history_through=reached))
    tx.after_commit(metrics.MONTH_CLOSES.inc)
    return summary


async def _close_chunk(tx: BatchTransaction, policy: TierPolicy, first: date, customers, recent_of,
                       households, counts) -> None:
    month = month_key(first)
    days = days_in_month(first)
    effective_at = start_of_day(next_month(first), tx.settings.zone)
    stored = {r.customer_id: r.total for r in await read_rows(
        tx.session, MONTHS, "customer_id", [c.customer_id for c in customers if c.mtd_day >= next_month(first)],
        where=MONTHS.c.month == month)}
    state = TieringState()
    tx.state = state
    months, rows = [], []
    oldest = window_start(month, TWELVE_MONTHS)
    for customer in customers:
        total = month_total(DailyAum(customer.mtd_day, customer.mtd_sum, customer.aum), first,
                            stored.get(customer.customer_id))
        if total is None:
            continue
        counts["customers"] += 1
        month_average = average(total, days)
        months.append({"customer_id": customer.customer_id, "month": month, "total": total,
                       "average": month_average})
        recent = {m: v for m, v in json.loads(recent_of[customer.customer_id] or "{}").items() if m >= oldest}
        recent[month] = str(month_average)
        customer.average_aum_12m = average(sum((Decimal(v) for v in recent.values()), ZERO), len(recent))
        basis, basis_now = month_average, customer.aum
        if customer.household_id and customer.household_id in households:
            basis, basis_now = households[customer.household_id]
        state.customers[customer.customer_id] = customer
        tx.for_event(f"month-end:{month}:{customer.customer_id}")
        decision = policy.on_month_end(_state(customer), basis, basis_now, month)
        changed = _decide(tx, customer, decision, effective_at, basis)
        if changed is not None:
            counts[decision.change] += 1
            _pass_on(tx, customer, "month_end", effective_at, customer.aum, [changed])
        row = customer_row(customer)
        row["recent_averages"] = json.dumps(dict(sorted(recent.items())))
        rows.append(row)
    await write_rows(tx.session, MONTHS, months, key=("customer_id", "month"))
    await write_rows(tx.session, CUSTOMERS, rows, key=("customer_id",))
    state.dirty_customers.clear()
    await tx.write_pending()


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
