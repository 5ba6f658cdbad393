"""Pricing's rows as one transaction sees them: each customer, their monthly usage and their
points lots, loaded once (for a whole batch in a few queries by :func:`prefetch`), the
customers locked, and kept in ``uow.batch`` for the handlers of the batch.

Locking: every writer (the consumer, a redemption request, the expiry job) takes the customer's
row ``FOR UPDATE`` before it reads their usage or points, so none overwrites another's change.
A batch locks its customers in id order in one query, which keeps two writers from waiting on
each other in a cycle.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Iterable

from sqlalchemy import select

from shared.contracts.cloudevents import Event
from shared.contracts.events import TieringChangeV1
from shared.money import ZERO
from shared.runtime.unit_of_work import UnitOfWork
from services.pricing import metrics
from services.pricing.domain import (
    Usage,
    business_day,
    expires_at,
    is_expired,
    month_key,
    months_between,
    take_oldest_first,
    window_start,
)
from services.pricing.metrics import after_commit
from services.pricing.models import (
    PricingCustomer,
    PricingFee,
    PricingPointsLedger,
    PricingPointsLot,
    PricingUsage,
)
from services.pricing.rules import Rules, rules_of

EXPIRY_RULE = "points.expiry"
_CHUNK = 1000


@dataclass
class Scratch:
    """What this transaction has loaded; ``None`` in ``customers`` means "known not to exist"."""

    customers: dict[str, PricingCustomer | None] = field(default_factory=dict)
    priced: set[str] = field(default_factory=set)
    checked: set[str] = field(default_factory=set)
    usage: dict[str, dict[tuple[str, str], PricingUsage]] = field(default_factory=dict)
    usage_months: dict[str, set[str]] = field(default_factory=dict)
    lots: dict[str, dict[int, PricingPointsLot]] = field(default_factory=dict)


def scratch(uow: UnitOfWork) -> Scratch:
    return uow.batch.setdefault("pricing", Scratch())


def _chunks(ids: Iterable[str]) -> Iterable[list[str]]:
    ids = sorted(set(ids))
    for start in range(0, len(ids), _CHUNK):
        yield ids[start:start + _CHUNK]


async def prefetch(events: list[Event], uow: UnitOfWork) -> None:
    """Lock and load everything a batch touches in a few queries: its customers, which of its
    postings were priced before, and the usage and points lots of the customers with postings
    (usage over every contribution window the batch needs)."""
    s, session = scratch(uow), uow.session
    customer_ids, postings = set(), []
    for event in events:
        data = event.data
        if isinstance(data, TieringChangeV1) and data.posting is not None:
            postings.append(data.posting)
            customer_ids.add(data.posting.customer_id)
        elif getattr(data, "customer_id", None):
            customer_ids.add(data.customer_id)
    for chunk in _chunks(customer_ids):
        rows = (await session.execute(
            select(PricingCustomer).where(PricingCustomer.customer_id.in_(chunk))
            .order_by(PricingCustomer.customer_id).with_for_update()
        )).scalars()
        found = {r.customer_id: r for r in rows}
        for customer_id in chunk:
            s.customers[customer_id] = found.get(customer_id)
    if not postings:
        return
    for chunk in _chunks(p.posting_id for p in postings):
        s.priced.update((await session.execute(
            select(PricingFee.posting_id).where(PricingFee.posting_id.in_(chunk)))).scalars())
        s.checked.update(chunk)
    rules = rules_of(uow.settings)
    months = sorted(month_key(business_day(p.posted_at, rules.zone)) for p in postings)
    first, last = window_start(months[0], rules.pricing.contribution.window_months), months[-1]
    with_postings = {p.customer_id for p in postings}
    window = month_set(first, last)
    for chunk in _chunks(with_postings):
        rows = (await session.execute(
            select(PricingUsage).where(PricingUsage.customer_id.in_(chunk),
                                       PricingUsage.month >= first, PricingUsage.month <= last)
        )).scalars()
        for customer_id in chunk:
            s.usage.setdefault(customer_id, {})
            s.usage_months.setdefault(customer_id, set()).update(window)
        for r in rows:
            s.usage[r.customer_id].setdefault((r.month, r.fee_id), r)
        lots = (await session.execute(
            select(PricingPointsLot).where(PricingPointsLot.customer_id.in_(chunk)))).scalars()
        for customer_id in chunk:
            s.lots.setdefault(customer_id, {})
        for lot in lots:
            s.lots[lot.customer_id].setdefault(lot.year, lot)


async def customer_for_update(uow: UnitOfWork, customer_id: str, *,
                              create: bool = True) -> PricingCustomer | None:
    """The customer's row, locked for this transaction; a new one if pricing has none yet."""
    s = scratch(uow)
    if customer_id not in s.customers:
        s.customers[customer_id] = await uow.session.get(PricingCustomer, customer_id,
                                                         with_for_update=True)
    customer = s.customers[customer_id]
    if customer is None and create:
        customer = PricingCustomer(
            customer_id=customer_id, tier=None, tier_as_of=None, aum=ZERO, average_aum_12m=ZERO,
            risk_level=None, auto_points_offset=False, master_updated_at=None, points_balance=0,
            points_oldest_year=None, redeem_allowance=0,
        )
        uow.session.add(customer)
        s.customers[customer_id] = customer
    return customer


async def already_priced(uow: UnitOfWork, posting_id: str) -> bool:
    s = scratch(uow)
    if posting_id not in s.checked:
        found = await uow.session.scalar(select(PricingFee.id).where(PricingFee.posting_id == posting_id))
        s.checked.add(posting_id)
        if found is not None:
            s.priced.add(posting_id)
    return posting_id in s.priced


def mark_priced(uow: UnitOfWork, posting_id: str) -> None:
    s = scratch(uow)
    s.checked.add(posting_id)
    s.priced.add(posting_id)


@functools.lru_cache(maxsize=256)
def month_set(first: str, last: str) -> frozenset[str]:
    """:func:`months_between` as a set, computed once per window (every posting asks)."""
    return frozenset(months_between(first, last))


class MonthlyUsage:
    """A customer's usage rows over the months a posting needs: its month's counter of the fee,
    and the fees paid in the contribution window."""

    def __init__(self, uow: UnitOfWork, customer_id: str, rules: Rules) -> None:
        self.uow = uow
        self.customer_id = customer_id
        self.rules = rules

    async def _rows(self, first: str, last: str) -> dict[tuple[str, str], PricingUsage]:
        s = scratch(self.uow)
        cache = s.usage.setdefault(self.customer_id, {})
        loaded = s.usage_months.setdefault(self.customer_id, set())
        wanted = month_set(first, last)
        if not wanted <= loaded:
            rows = (await self.uow.session.execute(
                select(PricingUsage).where(PricingUsage.customer_id == self.customer_id,
                                           PricingUsage.month >= first, PricingUsage.month <= last)
            )).scalars()
            for r in rows:
                cache.setdefault((r.month, r.fee_id), r)
            loaded |= wanted
        return cache

    async def fees_paid_before(self, month: str) -> Decimal:
        """Fees paid (in cash, after points) in ``month`` and the months before it that make up
        the contribution window."""
        first = window_start(month, self.rules.pricing.contribution.window_months)
        rows = await self._rows(first, month)
        return sum((r.paid for (m, _), r in rows.items() if first <= m <= month), ZERO)

    async def of(self, month: str, fee_id: str) -> PricingUsage:
        rows = await self._rows(month, month)
        row = rows.get((month, fee_id))
        if row is None:
            row = PricingUsage(customer_id=self.customer_id, month=month, fee_id=fee_id, uses=0,
                               free_uses=0, charged=ZERO, paid=ZERO)
            self.uow.session.add(row)
            rows[(month, fee_id)] = row
        return row

    async def usage(self, month: str, fee_id: str) -> Usage:
        row = (await self._rows(month, month)).get((month, fee_id))
        return Usage(row.uses, row.free_uses) if row is not None else Usage()


class PointsBook:
    """A customer's points within one transaction: lots by earn year, each change written to
    the ledger with its cause, and the balance kept equal to what the lots have left."""

    def __init__(self, uow: UnitOfWork, customer: PricingCustomer, rules: Rules) -> None:
        self.uow = uow
        self.customer = customer
        self.rules = rules

    async def lots(self) -> dict[int, PricingPointsLot]:
        s = scratch(self.uow)
        customer_id = self.customer.customer_id
        if customer_id not in s.lots:
            rows = (await self.uow.session.execute(
                select(PricingPointsLot).where(PricingPointsLot.customer_id == customer_id)
            )).scalars()
            s.lots[customer_id] = {lot.year: lot for lot in rows}
        return s.lots[customer_id]

    async def expire_due(self, on: date, *, check_all: bool = False) -> int:
        """Expire every lot whose last valid year ended before ``on``; returns the points.
        Without ``check_all`` it looks only if the oldest lot with points left is due."""
        years = self.rules.expiry_years
        oldest = self.customer.points_oldest_year
        if not check_all and (oldest is None or not is_expired(oldest, on, years)):
            return 0
        total = 0
        for year, lot in sorted((await self.lots()).items()):
            if lot.remaining > 0 and is_expired(year, on, years):
                points = lot.remaining
                lot.expired += points
                total += points
                self._write("expire", -points, year, EXPIRY_RULE, None,
                            expires_at(year, years, self.rules.zone),
                            f"points earned in {year} expired at the end of {year + years - 1}")
        await self._refresh_oldest()
        if total:
            # Points set aside for the next fees cannot outlive the points themselves.
            self.customer.redeem_allowance = min(self.customer.redeem_allowance, self.customer.points_balance)
            after_commit(self.uow, lambda: metrics.POINTS_EXPIRED.inc(total))
        return total

    async def spend(self, points: int, rule: str, posting_id: str, at: datetime) -> None:
        """Spend ``points`` on a fee, oldest lots first."""
        lots = await self.lots()
        for year, n in take_oldest_first({y: lot.remaining for y, lot in lots.items()}, points).items():
            lots[year].spent += n
            self._write("spend", -n, year, rule, posting_id, at, f"{n} points of {year} paid a fee")
        await self._refresh_oldest()

    async def earn(self, points: int, year: int, rule: str, posting_id: str, at: datetime) -> None:
        lots = await self.lots()
        lot = lots.get(year)
        if lot is None:
            lot = PricingPointsLot(customer_id=self.customer.customer_id, year=year, earned=0,
                                   spent=0, expired=0)
            self.uow.session.add(lot)
            lots[year] = lot
        lot.earned += points
        self._write("earn", points, year, rule, posting_id, at,
                    f"valid until the end of {year + self.rules.expiry_years - 1}")
        await self._refresh_oldest()

    def _write(self, kind: str, points: int, year: int, rule: str, posting_id: str | None,
               at: datetime, note: str) -> None:
        self.customer.points_balance += points
        self.uow.insert_later(PricingPointsLedger.__table__, dict(
            customer_id=self.customer.customer_id, kind=kind, points=points,
            balance_after=self.customer.points_balance, lot_year=year, rule=rule,
            posting_id=posting_id, at=at, recorded_at=datetime.now(timezone.utc), note=note,
        ))

    async def _refresh_oldest(self) -> None:
        years = [y for y, lot in (await self.lots()).items() if lot.remaining > 0]
        self.customer.points_oldest_year = min(years) if years else None
