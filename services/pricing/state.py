"""Pricing's rows as one batch sees them: its customers, which of its postings were priced
before, the usage of the months its postings need and the points lots, as plain values loaded
once for every key the batch names (a few set-based reads), changed by the handlers and
written at commit, one statement per table. Fees, ledger entries and redemptions, which nothing
reads back, are appended (``tx.append``).

Locking: every writer of a customer's usage and points (the consumer, a redemption, the expiry
job) reads the customer's row ``FOR UPDATE`` first (PostgreSQL), a batch's rows in id order in
one statement, so none overwrites another's change and two never wait on each other in a
cycle. SQLite lets one transaction write at a time anyway.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Iterable

from sqlalchemy import String, bindparam, cast, func, select
from sqlalchemy.dialects.postgresql import ARRAY

from shared.contracts.events import TieringChangeV1
from shared.db import read_rows, write_rows
from shared.money import ZERO
from shared.runtime.transaction import BatchTransaction
from services.pricing import metrics
from services.pricing.domain import (
    ChargedPosting,
    MonthUsage,
    PricedFee,
    Transaction,
    Usage,
    business_day,
    expires_at,
    is_expired,
    month_key,
    take_oldest_first,
    window_start,
)
from services.pricing.models import (
    PricingCustomer,
    PricingFee,
    PricingFeeAdjustment,
    PricingPointsLedger,
    PricingPointsLot,
    PricingUsage,
)
from services.pricing.rules import Rules

CUSTOMERS = PricingCustomer.__table__
FEES = PricingFee.__table__
USAGE = PricingUsage.__table__
LOTS = PricingPointsLot.__table__
LEDGER = PricingPointsLedger.__table__
ADJUSTMENTS = PricingFeeAdjustment.__table__

EXPIRY_RULE = "points.expiry"
AUTO_OFFSET_RULE = "points.offset"
REDEEM_RULE = "points.redeem"
ADJUSTMENT_RULE = "fee.adjustment"


@dataclass(slots=True)
class Customer:
    customer_id: str
    tier: str | None
    """The tier now (for quotes and products): the latest decision tiering passed on."""
    tier_as_of: datetime | None
    aum: Decimal
    average_aum_12m: Decimal
    risk_level: str | None
    auto_points_offset: bool
    master_updated_at: datetime | None
    points_balance: int
    points_oldest_year: int | None
    redeem_allowance: int
    priced_through: datetime | None
    """The latest ``posted_at`` priced."""


@dataclass(slots=True)
class Lot:
    """The points a customer earned in one calendar year, and what became of them."""

    earned: int = 0
    spent: int = 0
    expired: int = 0

    @property
    def remaining(self) -> int:
        return self.earned - self.spent - self.expired


def _customer_of(r) -> Customer:
    return Customer(r.customer_id, r.tier, r.tier_as_of, r.aum, r.average_aum_12m, r.risk_level,
                    r.auto_points_offset, r.master_updated_at, r.points_balance, r.points_oldest_year,
                    r.redeem_allowance, r.priced_through)


def customer_row(c: Customer) -> dict:
    return {"customer_id": c.customer_id, "tier": c.tier, "tier_as_of": c.tier_as_of, "aum": c.aum,
            "average_aum_12m": c.average_aum_12m, "risk_level": c.risk_level,
            "auto_points_offset": c.auto_points_offset, "master_updated_at": c.master_updated_at,
            "points_balance": c.points_balance, "points_oldest_year": c.points_oldest_year,
            "redeem_allowance": c.redeem_allowance, "priced_through": c.priced_through}


@dataclass
class PricingState:
    """What one batch of pricing's events (or one API call) works on."""

    rules: Rules
    customers: dict[str, Customer | None] = field(default_factory=dict)
    """``None``: known not to exist."""
    priced: set[str] = field(default_factory=set)
    """Posting ids of the batch that were priced before, and those priced by it."""
    usage: dict[str, dict[tuple[str, str], MonthUsage]] = field(default_factory=dict)
    """Customer id -> (month, fee id) -> usage, for the months loaded."""
    lots: dict[str, dict[int, Lot]] = field(default_factory=dict)
    """Customer id -> earn year -> lot."""
    dirty_customers: set[str] = field(default_factory=set)
    dirty_usage: set[tuple[str, str, str]] = field(default_factory=set)
    dirty_lots: set[tuple[str, int]] = field(default_factory=set)
    watched: set[str] = field(default_factory=set)
    """Customers the batch upgrades: their postings priced by the batch are kept as
    ``ChargedPosting`` too, in case an upgrade is effective before them."""
    month_postings: dict[tuple[str, str], list[ChargedPosting]] = field(default_factory=dict)
    """(customer, month) -> its postings as they stand, for the months an upgrade decided late
    re-prices (``services.pricing.service.correct_after_upgrade``)."""
    spends: dict[str, dict[int, int]] = field(default_factory=dict)
    """Posting id -> lot year -> points spent on its fee (for those postings)."""
    adjustments: list[dict] = field(default_factory=list)
    """Corrections of assessed fees, to write."""
    _written: dict[tuple, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    async def load(cls, tx: BatchTransaction, events: list) -> "PricingState":
        """Everything the batch's new events need: their customers (locked), which of their
        postings were priced before, and for the customers with postings the usage of every
        contribution window the postings need and the points lots."""
        state = cls(Rules.of(tx.settings))
        changes = [e.data for e in events if isinstance(e.data, TieringChangeV1)]
        await state.load_customers(tx, {c.customer_id for c in changes}, lock=True)
        postings = [c.posting for c in changes if c.posting is not None]
        if postings:
            rows = await read_rows(tx.session, FEES, "posting_id", {p.posting_id for p in postings},
                                   columns=(FEES.c.posting_id,))
            state.priced.update(r.posting_id for r in rows)
            zone = state.rules.zone
            months = {month_key(business_day(p.posted_at, zone)) for p in postings}
            await state.load_books(tx, {p.customer_id for p in postings}, min(months), max(months))
        await state._load_late_upgrades(tx, changes)
        return state

    @classmethod
    async def for_customer(cls, tx: BatchTransaction, customer_id: str, on: date, *,
                           lock: bool) -> "PricingState":
        """One customer's state as a posting on business date ``on`` would see it (an API call)."""
        state = cls(Rules.of(tx.settings))
        await state.load_customers(tx, [customer_id], lock=lock)
        if state.customers[customer_id] is not None:
            month = month_key(on)
            await state.load_books(tx, [customer_id], month, month)
        return state

    async def load_customers(self, tx: BatchTransaction, ids: Iterable[str], *, lock: bool) -> None:
        ids = set(ids) - set(self.customers)
        for r in await _read_customers(tx.session, ids, lock=lock):
            self.customers[r.customer_id] = _customer_of(r)
        for customer_id in ids:
            self.customers.setdefault(customer_id, None)

    async def load_books(self, tx: BatchTransaction, customer_ids: Iterable[str], first_month: str,
                         last_month: str) -> None:
        """The usage rows of the contribution windows of ``first_month``..``last_month`` and the
        points lots of these customers."""
        ids = set(customer_ids) - set(self.usage)
        if not ids:
            return
        first = window_start(first_month, self.rules.pricing.contribution.window_months)
        for customer_id in ids:
            self.usage[customer_id] = {}
        for r in await read_rows(tx.session, USAGE, "customer_id", ids,
                                 where=(USAGE.c.month >= first) & (USAGE.c.month <= last_month)):
            self.usage[r.customer_id][(r.month, r.fee_id)] = MonthUsage(r.uses, r.free_uses, r.charged, r.paid)
        await self.load_lots(tx, ids)

    async def load_lots(self, tx: BatchTransaction, customer_ids: Iterable[str]) -> None:
        ids = set(customer_ids) - set(self.lots)
        for customer_id in ids:
            self.lots[customer_id] = {}
        for r in await read_rows(tx.session, LOTS, "customer_id", ids):
            self.lots[r.customer_id][r.year] = Lot(r.earned, r.spent, r.expired)

    async def _load_late_upgrades(self, tx: BatchTransaction, changes: list[TieringChangeV1]) -> None:
        """For each upgrade of the batch effective before a posting already priced (stored, or
        earlier in the batch): the postings of the upgrade's month as they stand, the points
        spent on them and the customer's lots. An upgrade in order (the usual case, effective
        at or after every posting priced) reads nothing."""
        rank, zone = self.rules.ladder.rank, self.rules.zone
        latest: dict[str, datetime] = {}
        wanted: set[tuple[str, str]] = set()
        for change in changes:
            customer_id = change.customer_id
            for decision in change.tier_changes:
                if rank(decision.to) <= rank(decision.from_):
                    continue
                self.watched.add(customer_id)
                customer = self.customers.get(customer_id)
                priced = [t for t in (latest.get(customer_id), customer and customer.priced_through) if t]
                if priced and max(priced) > decision.effective_at:
                    wanted.add((customer_id, month_key(business_day(decision.effective_at, zone))))
            if change.posting is not None:
                at = change.posting.posted_at
                latest[customer_id] = max(latest.get(customer_id, at), at)
        if not wanted:
            return
        for key in wanted:
            self.month_postings[key] = []
        ids, months = {c for c, _ in wanted}, {m for _, m in wanted}
        session = tx.session
        fees = sorted((r for r in await read_rows(session, FEES, "customer_id", ids, where=FEES.c.month.in_(months))
                       if (r.customer_id, r.month) in wanted), key=lambda r: r.id)
        latest_correction = {r.posting_id: r for r in sorted(
            await read_rows(session, ADJUSTMENTS, "customer_id", ids, where=ADJUSTMENTS.c.month.in_(months)),
            key=lambda r: r.id)}
        paid_with_points = [r.posting_id for r in fees if r.points_used]
        if paid_with_points:
            for r in await read_rows(session, LEDGER, "customer_id", ids,
                                     where=(LEDGER.c.kind == "spend") & LEDGER.c.posting_id.in_(paid_with_points)):
                by_year = self.spends.setdefault(r.posting_id, {})
                by_year[r.lot_year] = by_year.get(r.lot_year, 0) - r.points
        for r in fees:
            self.month_postings[(r.customer_id, r.month)].append(self._as_stands(r, latest_correction.get(r.posting_id)))
        await self.load_lots(tx, ids)

    def _as_stands(self, fee, correction) -> ChargedPosting:
        """A stored fee as it stands: its latest correction, if it has one."""
        c = correction
        rules = json.loads(c.rules if c is not None else fee.rules)
        waived, discount = (c.waived, c.discount) if c is not None else (fee.waived, fee.discount)
        return ChargedPosting(
            fee.posting_id, fee.posted_at,
            Transaction(fee.tx_type, fee.amount, fee.channel, fee.counterparty_bank, fee.cross_region,
                        fee.product_type, fee.direction),
            fee.fee_id, c.tier_after if c is not None else fee.tier, fee.base - waived - discount,
            c.net_after if c is not None else fee.net, c.points_used if c is not None else fee.points_used,
            REDEEM_RULE if REDEEM_RULE in rules else AUTO_OFFSET_RULE,
            any(rule in self.rules.free_use_benefits for rule in rules), fee.contribution_score)

    def keep_priced(self, customer_id: str, month: str, posting: ChargedPosting) -> None:
        """A posting the batch priced, for a month an upgrade decided late re-prices."""
        postings = self.month_postings.get((customer_id, month))
        if postings is not None:
            postings.append(posting)

    # --- what the handlers read and change --------------------------------------------------

    def customer(self, customer_id: str) -> Customer:
        """The customer's row, to change (a new one if pricing has none yet)."""
        customer = self.customers.get(customer_id)
        if customer is None:
            customer = Customer(customer_id, None, None, ZERO, ZERO, None, False, None, 0, None, 0, None)
            self.customers[customer_id] = customer
            self.usage.setdefault(customer_id, {})
            self.lots.setdefault(customer_id, {})
        self.dirty_customers.add(customer_id)
        return customer

    def uses(self, customer_id: str, month: str, fee_id: str) -> Usage:
        """The fee's uses earlier in the month, and how many were free."""
        row = self.usage[customer_id].get((month, fee_id))
        return Usage(row.uses, row.free_uses) if row is not None else Usage()

    def fees_paid(self, customer_id: str, month: str) -> Decimal:
        """Fees paid (in cash, after points) in ``month`` and the months before it that make up
        the contribution window."""
        first = window_start(month, self.rules.pricing.contribution.window_months)
        return sum((r.paid for (m, _), r in self.usage[customer_id].items() if first <= m <= month), ZERO)

    def count_use(self, customer_id: str, month: str, priced: PricedFee) -> None:
        """Count a priced use of its fee in the month."""
        rows = self.usage[customer_id]
        row = rows.get((month, priced.fee_id))
        if row is None:
            row = rows[(month, priced.fee_id)] = MonthUsage()
        row.uses += 1
        row.free_uses += int(priced.free_use)
        row.charged += priced.charged
        row.paid += priced.net
        self.dirty_usage.add((customer_id, month, priced.fee_id))

    def as_stored(self, priced: PricedFee) -> tuple[str, str]:
        """The priced fee's rules and breakdown as stored (JSON): most postings of a batch share
        their steps with another (the same fee, the same benefit), so each is written once."""
        stored = self._written.get(priced.steps)
        if stored is None:
            stored = self._written[priced.steps] = (json.dumps(priced.rules),
                                                    json.dumps([s.as_dict() for s in priced.steps]))
        return stored

    def set_month(self, customer_id: str, month: str, counted: dict[str, MonthUsage]) -> None:
        """The month's counters of each fee, as counted again."""
        rows = self.usage.setdefault(customer_id, {})
        for fee_id, usage in counted.items():
            rows[(month, fee_id)] = usage
            self.dirty_usage.add((customer_id, month, fee_id))

    # --- commit ---------------------------------------------------------------------------

    async def write(self, tx: BatchTransaction) -> None:
        session = tx.session
        await write_rows(session, CUSTOMERS, [customer_row(self.customers[c]) for c in sorted(self.dirty_customers)],
                         key=("customer_id",))
        usage = []
        for customer_id, month, fee_id in sorted(self.dirty_usage):
            u = self.usage[customer_id][(month, fee_id)]
            usage.append({"customer_id": customer_id, "month": month, "fee_id": fee_id, "uses": u.uses,
                          "free_uses": u.free_uses, "charged": u.charged, "paid": u.paid})
        await write_rows(session, USAGE, usage, key=("customer_id", "month", "fee_id"))
        lots = []
        for customer_id, year in sorted(self.dirty_lots):
            lot = self.lots[customer_id][year]
            lots.append({"customer_id": customer_id, "year": year, "earned": lot.earned, "spent": lot.spent,
                         "expired": lot.expired})
        await write_rows(session, LOTS, lots, key=("customer_id", "year"))
        await write_rows(session, ADJUSTMENTS, self.adjustments, key=("adjustment_id",), update=())
        self.adjustments.clear()
        self.dirty_customers.clear()
        self.dirty_usage.clear()
        self.dirty_lots.clear()


async def _read_customers(session, ids: set[str], *, lock: bool) -> list:
    """The customers' rows; with ``lock``, each locked for the transaction, in id order, in one
    statement (PostgreSQL: the ids as one array joined to the key)."""
    if not ids:
        return []
    if not lock or session.get_bind().dialect.name != "postgresql":
        return await read_rows(session, CUSTOMERS, "customer_id", ids)
    wanted = func.unnest(cast(bindparam("keys", type_=ARRAY(String)), ARRAY(String))) \
        .table_valued("k").render_derived()
    stmt = (select(CUSTOMERS).join(wanted, CUSTOMERS.c.customer_id == wanted.c.k)
            .order_by(CUSTOMERS.c.customer_id).with_for_update(of=CUSTOMERS))
    return list(await session.execute(stmt, {"keys": sorted(ids)}))


class PointsBook:
    """A customer's points in one transaction: lots by earn year, each change written to the
    ledger with its cause, and the balance kept equal to what the lots have left."""

    __slots__ = ("tx", "state", "customer", "lots")

    def __init__(self, tx: BatchTransaction, customer: Customer) -> None:
        self.tx = tx
        self.state: PricingState = tx.state
        self.customer = customer
        self.lots = self.state.lots.setdefault(customer.customer_id, {})

    def spendable(self, on: date) -> tuple[int, str]:
        """Points that may pay a fee on business date ``on``, and the rule they are spent
        under: all of them for a customer who opted in to automatic offset, else what they asked
        to redeem; never points that have expired by then (a quote asks without expiring them)."""
        customer = self.customer
        balance = customer.points_balance - self._expired_by(on)
        if customer.auto_points_offset:
            return balance, AUTO_OFFSET_RULE
        return min(balance, customer.redeem_allowance), REDEEM_RULE

    def _expired_by(self, on: date) -> int:
        years = self.state.rules.expiry_years
        oldest = self.customer.points_oldest_year
        if oldest is None or not is_expired(oldest, on, years):
            return 0
        return sum(lot.remaining for year, lot in self.lots.items() if lot.remaining > 0 and is_expired(year, on, years))

    def expire_due(self, on: date, *, check_all: bool = False) -> int:
        """Expire every lot whose last valid year ended before ``on``; returns the points.
        Without ``check_all`` it looks only if the oldest lot with points left is due."""
        rules = self.state.rules
        years = rules.expiry_years
        oldest = self.customer.points_oldest_year
        if not check_all and (oldest is None or not is_expired(oldest, on, years)):
            return 0
        total = 0
        for year, lot in sorted(self.lots.items()):
            if lot.remaining > 0 and is_expired(year, on, years):
                points = lot.remaining
                lot.expired += points
                total += points
                self._changed(year)
                self._write("expire", -points, year, EXPIRY_RULE, None, expires_at(year, years, rules.zone),
                            f"points earned in {year} expired at the end of {year + years - 1}")
        self._refresh_oldest()
        if total:
            # Points set aside for the next fees cannot outlive the points themselves.
            self.customer.redeem_allowance = min(self.customer.redeem_allowance, self.customer.points_balance)
            self.tx.after_commit(lambda: metrics.POINTS_EXPIRED.inc(total))
        return total

    def spend(self, points: int, rule: str, posting_id: str, at: datetime) -> None:
        """Spend ``points`` on a fee, oldest lots first."""
        taken = take_oldest_first({y: lot.remaining for y, lot in self.lots.items()}, points)
        for year, n in taken.items():
            self.lots[year].spent += n
            self._changed(year)
            self._write("spend", -n, year, rule, posting_id, at, f"{n} points of {year} paid a fee")
        if self.customer.customer_id in self.state.watched:
            self.state.spends[posting_id] = taken
        self._refresh_oldest()

    def give_back(self, posting_id: str, points_before: int, points_after: int, at: datetime) -> int:
        """Return to their lots the points that paid a fee beyond its corrected price: of the
        points spent on it (oldest lots first), those its new price no longer takes."""
        spent = self.state.spends.get(posting_id) or {}
        if sum(spent.values()) < points_before:  # spends not on record: back into the posting's year
            spent = {**spent, at.astimezone(self.state.rules.zone).year: points_before}
        kept = take_oldest_first(spent, points_after)
        returned = 0
        for year, n in sorted(take_oldest_first(spent, points_before).items()):
            back = n - kept.get(year, 0)
            if back <= 0:
                continue
            lot = self.lots.setdefault(year, Lot())
            lot.spent -= back
            returned += back
            self._changed(year)
            self._write("refund", back, year, ADJUSTMENT_RULE, posting_id, at,
                        f"{back} points of {year} given back: the fee they paid was corrected")
        self._refresh_oldest()
        return returned

    def earn(self, points: int, year: int, rule: str, posting_id: str, at: datetime) -> None:
        lot = self.lots.get(year)
        if lot is None:
            lot = self.lots[year] = Lot()
        lot.earned += points
        self._changed(year)
        self._write("earn", points, year, rule, posting_id, at,
                    f"valid until the end of {year + self.state.rules.expiry_years - 1}")
        self._refresh_oldest()

    def _changed(self, year: int) -> None:
        self.state.dirty_lots.add((self.customer.customer_id, year))
        self.state.dirty_customers.add(self.customer.customer_id)

    def _write(self, kind: str, points: int, year: int, rule: str, posting_id: str | None,
               at: datetime, note: str) -> None:
        self.customer.points_balance += points
        self.tx.append(LEDGER, {
            "customer_id": self.customer.customer_id, "kind": kind, "points": points,
            "balance_after": self.customer.points_balance, "lot_year": year, "rule": rule,
            "posting_id": posting_id, "at": at, "recorded_at": datetime.now(timezone.utc), "note": note,
        })

    def _refresh_oldest(self) -> None:
        years = [y for y, lot in self.lots.items() if lot.remaining > 0]
        self.customer.points_oldest_year = min(years) if years else None
