"""Tiering's handlers: apply balances to AUM, keep the month's running sum, move tiers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.contracts import topics
from shared.calendar import business_day
from shared.contracts.cloudevents import Event
from shared.contracts.events import (
    AccountV1,
    AumV1,
    BalanceV1,
    CustomerV1,
    PostingTieredV1,
    PostingV1,
    TierChangedV1,
)
from shared.contracts.types import AUM_PRODUCT_TYPES
from shared.db import insert_for
from shared.metrics import after_commit
from shared.money import ZERO, from_cents, to_cents
from shared.runtime.errors import Rejected
from shared.runtime.unit_of_work import UnitOfWork
from shared.settings import Settings
from services.tiering import metrics
from services.tiering.domain import (
    AccountPosition,
    DailyAum,
    TierDecision,
    TierPolicy,
    TierState,
    apply_posting,
    apply_snapshot,
    days_in_month,
    month_key,
    next_month,
    parse_month,
    roll_to,
)
from services.tiering.models import (
    TieringAccount,
    TieringCustomer,
    TieringHousehold,
    TieringMonthClose,
    TieringMonthlyAum,
    TieringTierHistory,
)


_POLICIES: dict[int, tuple[Settings, TierPolicy]] = {}


def policy_of(settings: Settings) -> TierPolicy:
    """The tier policy of these settings, built once per settings object."""
    cached = _POLICIES.get(id(settings))
    if cached is None or cached[0] is not settings:
        cached = (settings, TierPolicy.from_rules(settings.tiers))
        _POLICIES[id(settings)] = cached
    return cached[1]


# --- handlers -------------------------------------------------------------------------------


async def on_account(event: Event, uow: UnitOfWork) -> None:
    """Register an account's owner and product type; its balance comes from postings and
    snapshots."""
    data: AccountV1 = event.data
    account = await _account_for(uow, data.account_id, data.customer_id, data.product_type)
    account.status = data.status


async def on_customer(event: Event, uow: UnitOfWork) -> None:
    """Keep household membership, which the household aggregation needs."""
    data: CustomerV1 = event.data
    if data.source != "core":
        return
    at = data.updated_at
    customer = await _customer(uow, data.customer_id, business_day(at, uow.settings.zone))
    if customer.household_id == data.household_id:
        return
    if customer.household_id:
        old = await _household(uow.session, customer.household_id)
        old.aum -= customer.aum
    customer.household_id = data.household_id
    if data.household_id:
        new = await _household(uow.session, data.household_id)
        new.aum += customer.aum
        await uow.session.flush()
        to_alerts(uow, await _upgrade_if_due(uow, customer, at))


async def on_posting(event: Event, uow: UnitOfWork) -> None:
    """Apply a posting's ``balance_after`` (if it is the newest for its account), then pass the
    posting on to pricing with the tier in force right after it.

    Alerts gets the tiered posting first, then the tier changes and the AUM event it caused: a
    large outflow and the AUM drop it causes are read in that order, and the customer's
    ``vip_outflow`` tells of the posting (the drop, of the same day, is suppressed by it)."""
    p: PostingV1 = event.data
    account = await _account_for(uow, p.account_id, p.customer_id, p.product_type)
    customer = await _customer(uow, p.customer_id, business_day(p.posted_at, uow.settings.zone))
    before = _position(account)
    after = apply_posting(before, p.account_seq, p.balance_after, p.posted_at)
    if after == before:
        metrics.STALE_EVENTS.labels("posting").inc()
    changes = await _apply_position(uow, account, customer, after, p.posted_at)
    tiered = uow.emit(
        PostingTieredV1(posting=p, tier=customer.tier, aum=customer.aum,
                        average_aum_12m=customer.average_aum_12m),
        stable_id=f"posting:{p.posting_id}",
    )
    to_alerts(uow, [tiered, *changes])


async def on_balance(event: Event, uow: UnitOfWork) -> None:
    """Apply a balance or market-value snapshot unless a newer one is already applied."""
    b: BalanceV1 = event.data
    account = await _account_for(uow, b.account_id, b.customer_id, b.product_type)
    customer = await _customer(uow, b.customer_id, business_day(b.as_of, uow.settings.zone))
    before = _position(account)
    after = apply_snapshot(before, b.balance, b.as_of)
    if after == before:
        metrics.STALE_EVENTS.labels("balance").inc()
    to_alerts(uow, await _apply_position(uow, account, customer, after, b.as_of))


def to_alerts(uow: UnitOfWork, events: list[Event]) -> None:
    """Pass tiering's public events of one change on to ``strata.tiering.changes`` in the order
    given: alerts reads that one topic, so it judges a customer's tiered postings, tier changes
    and AUM in the order tiering made them, which no reading of three topics can promise
    (Kafka orders a partition, never across topics). Each keeps its public event's data and
    time, under an id derived from the public event's (stable itself), so a re-run or a
    replay emits the same ids and alerts drops them as duplicates.

    The order, within what one event caused: the tiered posting, then the tier changes (the
    customer's and, with household aggregation, the other members', each to its own
    customer's stream), then the AUM event. A month-end close emits its tier changes as it
    decides them."""
    for public in events:
        uow.emit(public.data, topic=topics.TIERING_CHANGES, stable_id=f"changes:{public.id}",
                 time=public.time)


# --- the steps the handlers share ----------------------------------------------------------


async def prefetch(events: list[Event], uow: UnitOfWork) -> None:
    """Load every account and customer a batch touches in two queries; the handlers then find
    them (or their absence) in ``uow.batch`` instead of querying one event at a time."""
    account_ids, customer_ids = set(), set()
    for event in events:
        data = event.data
        customer_ids.add(data.customer_id)
        if hasattr(data, "account_id"):
            account_ids.add(data.account_id)
    accounts = uow.batch.setdefault(TieringAccount, {})
    customers = uow.batch.setdefault(TieringCustomer, {})
    for model, ids, cache, key in ((TieringAccount, account_ids, accounts, TieringAccount.account_id),
                                   (TieringCustomer, customer_ids, customers, TieringCustomer.customer_id)):
        ids = sorted(ids)
        for start in range(0, len(ids), 1000):
            chunk = ids[start:start + 1000]
            rows = (await uow.session.execute(select(model).where(key.in_(chunk)))).scalars()
            found = {getattr(r, key.key): r for r in rows}
            for i in chunk:
                cache[i] = found.get(i)


async def _cached(uow: UnitOfWork, model, key: str):
    cache = uow.batch.setdefault(model, {})
    if key not in cache:
        cache[key] = await uow.session.get(model, key)
    return cache[key]


def _position(account: TieringAccount) -> AccountPosition:
    return AccountPosition(account.balance, account.seq, account.balance_at)


async def _account_for(uow: UnitOfWork, account_id: str, customer_id: str,
                       product_type: str) -> TieringAccount:
    account = await _cached(uow, TieringAccount, account_id)
    if account is None:
        account = TieringAccount(account_id=account_id, customer_id=customer_id,
                                 product_type=product_type, status="open", balance=ZERO, seq=0,
                                 balance_at=None)
        uow.session.add(account)
        uow.batch[TieringAccount][account_id] = account
        return account
    if account.customer_id != customer_id:
        raise Rejected(f"account {account_id} belongs to customer {account.customer_id}, not {customer_id}")
    if account.product_type != product_type:
        raise Rejected(f"account {account_id} is a {account.product_type}, not a {product_type}")
    return account


async def _customer(uow: UnitOfWork, customer_id: str, day: date) -> TieringCustomer:
    customer = await _cached(uow, TieringCustomer, customer_id)
    if customer is None:
        customer = TieringCustomer(
            customer_id=customer_id, household_id=None, aum=ZERO, liabilities=ZERO, holdings={},
            tier=policy_of(uow.settings).lowest.id, watch=False, months_below=0, tier_since=None,
            mtd_day=day, mtd_month=month_key(day), mtd_dom=day.day, mtd_sum=ZERO,
            average_aum_12m=ZERO,
        )
        uow.session.add(customer)
        uow.batch[TieringCustomer][customer_id] = customer
        metrics.CUSTOMERS_CREATED.inc()
    return customer


async def _household(session: AsyncSession, household_id: str) -> TieringHousehold:
    """The household's row, locked to the end of the transaction. Its members' postings sit in
    different partitions, which two instances of tiering apply at once, and its AUM moves by
    read-add-write: without the lock one instance's change overwrites the other's."""
    household = await session.get(TieringHousehold, household_id, with_for_update=True)
    if household is None:
        await session.execute(insert_for(session)(TieringHousehold).values(
            household_id=household_id, aum=ZERO).on_conflict_do_nothing())
        household = await session.get(TieringHousehold, household_id, with_for_update=True)
    return household


async def _roll(uow: UnitOfWork, customer: TieringCustomer, day: date) -> None:
    """Bring the customer's running sum of daily AUM to ``day``, storing months that ended."""
    state = DailyAum(customer.mtd_day, customer.mtd_sum, customer.aum)
    rolled, completed = roll_to(state, day)
    if rolled is state:
        return
    for month, total in completed:
        stmt = insert_for(uow.session)(TieringMonthlyAum).values(
            customer_id=customer.customer_id, month=month_key(month), total=total, average=None
        ).on_conflict_do_nothing()
        await uow.session.execute(stmt)
    customer.mtd_day = rolled.day
    customer.mtd_month = month_key(rolled.day)
    customer.mtd_dom = rolled.day.day
    customer.mtd_sum = rolled.sum_before


async def _apply_position(uow: UnitOfWork, account: TieringAccount, customer: TieringCustomer,
                          after: AccountPosition, at: datetime) -> list[Event]:
    """Move the account's balance and the customer's AUM; returns the events emitted (tier
    changes, then the AUM event), for :func:`to_alerts`."""
    delta = after.balance - account.balance
    account.balance, account.seq, account.balance_at = after.balance, after.seq, after.balance_at
    if delta == 0:
        return []
    await _roll(uow, customer, business_day(at, uow.settings.zone))
    holdings = dict(customer.holdings or {})
    holdings[account.product_type] = holdings.get(account.product_type, 0) + to_cents(delta)
    customer.holdings = holdings
    if account.product_type not in AUM_PRODUCT_TYPES:
        customer.liabilities += delta
        return []
    customer.aum += delta
    # the newest time applied to the customer: one account's snapshot may be older than
    # another's posting, and readers keep the latest AUM by this time
    customer.updated_at = max(at, customer.updated_at) if customer.updated_at else at
    if customer.household_id:
        household = await _household(uow.session, customer.household_id)
        household.aum += delta
    changes = await _upgrade_if_due(uow, customer, at)
    return [*changes, _emit_aum(uow, customer, customer.updated_at)]


async def _upgrade_if_due(uow: UnitOfWork, customer: TieringCustomer, at: datetime) -> list[Event]:
    """Upgrade the customer (or, with household aggregation, every member) whose AUM reached a
    higher tier; returns the tier events emitted."""
    policy = policy_of(uow.settings)
    household_id = customer.household_id if uow.settings.tiering.household_aggregation else None
    if household_id is None:
        changed = await _decide(uow, customer, policy.on_aum(_state(customer), customer.aum), at, customer.aum)
        return [changed] if changed is not None else []
    household = await _household(uow.session, household_id)
    await uow.session.flush()  # the members' query must see this batch's changes
    members = (await uow.session.execute(
        select(TieringCustomer).where(TieringCustomer.household_id == household_id)
        .order_by(TieringCustomer.customer_id)
    )).scalars().all()
    changes = []
    for member in members:
        decision = policy.on_aum(_state(member), household.aum)
        changed = await _decide(uow, member, decision, at, household.aum)
        if changed is not None:
            changes.append(changed)
    return changes


def _state(customer: TieringCustomer) -> TierState:
    return TierState(customer.tier, customer.watch, customer.months_below)


async def _decide(uow: UnitOfWork, customer: TieringCustomer, decision: TierDecision,
                  at: datetime, basis: Decimal) -> Event | None:
    """Apply a tier decision: new state, a history row and a ``strata.tier_changed.v1`` (which
    is returned)."""
    if decision.change is None:
        return None
    customer.tier = decision.state.tier
    customer.watch = decision.state.watch
    customer.months_below = decision.state.months_below
    if decision.change in ("upgrade", "downgrade"):
        customer.tier_since = at
    uow.session.add(TieringTierHistory(
        customer_id=customer.customer_id, from_tier=decision.from_tier, to_tier=decision.state.tier,
        change=decision.change, watch=decision.state.watch, reason=decision.reason, basis=basis,
        effective_at=at,
    ))
    event = uow.emit(TierChangedV1(
        customer_id=customer.customer_id, from_=decision.from_tier, to=decision.state.tier,
        reason=decision.reason, effective_at=at, change=decision.change, watch=decision.state.watch,
        aum=customer.aum, basis=basis,
    ), key=f"tier:{customer.customer_id}:{decision.change}")
    after_commit(uow.session, metrics.TIER_CHANGES.labels(decision.change, decision.state.tier).inc)
    return event


def _emit_aum(uow: UnitOfWork, customer: TieringCustomer, at: datetime) -> Event:
    by_type, liabilities = {}, {}
    for product_type, cents in sorted((customer.holdings or {}).items()):
        amount = from_cents(cents)
        (by_type if product_type in AUM_PRODUCT_TYPES else liabilities)[product_type] = amount
    state = DailyAum(customer.mtd_day, customer.mtd_sum, customer.aum)
    return uow.emit(AumV1(
        customer_id=customer.customer_id, aum=customer.aum,
        mtd_average_daily_aum=state.month_to_date_average(), by_product_type=by_type,
        liabilities=liabilities, business_date=customer.mtd_day, as_of=at, tier=customer.tier,
    ), key=f"aum:{customer.customer_id}")


# --- month-end close ------------------------------------------------------------------------


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


async def close_month(uow: UnitOfWork, month: str) -> CloseSummary:
    """Close ``month``: each customer's average daily AUM, then watch and downgrades.

    Idempotent: a month closed before returns its summary and changes nothing. Months close in
    order, since a downgrade counts consecutive month-ends.
    """
    session = uow.session
    done = await session.get(TieringMonthClose, month)
    if done is not None:
        return CloseSummary(**{**json.loads(done.summary), "already_closed": True})
    last = await session.scalar(select(func.max(TieringMonthClose.month)))
    if last is not None and month != month_key(next_month(parse_month(last))):
        raise CloseRefused(f"the last closed month is {last}; close {month_key(next_month(parse_month(last)))} next")
    first = parse_month(month)
    days = days_in_month(first)
    await _store_month_totals(session, month, days)
    summary = await _decide_month_end(uow, month, first, days)
    await _refresh_twelve_month_average(session, first)
    session.add(TieringMonthClose(month=month, closed_at=datetime.now(timezone.utc),
                                  summary=json.dumps(summary.as_dict())))
    after_commit(session, metrics.MONTH_CLOSES.inc)
    return summary


async def _store_month_totals(session: AsyncSession, month: str, days: int) -> None:
    """Every customer's sum of end-of-day AUM for the month, then its average (half up)."""
    await session.execute(text(
        "INSERT INTO tiering_monthly_aum (customer_id, month, total, average) "
        "SELECT c.customer_id, CAST(:month AS VARCHAR(7)), "
        "  CASE WHEN c.mtd_month = :month THEN c.mtd_sum + c.aum * (:days - c.mtd_dom + 1) "
        "       ELSE c.aum * :days END, NULL "
        "FROM tiering_customers c "
        "WHERE c.mtd_month <= :month AND NOT EXISTS ("
        "  SELECT 1 FROM tiering_monthly_aum m WHERE m.customer_id = c.customer_id AND m.month = :month)"
    ), {"month": month, "days": days})
    await session.execute(text(
        "UPDATE tiering_monthly_aum SET average = (total * 2 + :days) / (2 * :days) "
        "WHERE month = :month AND average IS NULL"
    ), {"month": month, "days": days})


async def _decide_month_end(uow: UnitOfWork, month: str, first: date, days: int) -> CloseSummary:
    session, settings = uow.session, uow.settings
    policy = policy_of(settings)
    floors = " ".join(f"WHEN :tier{i} THEN :floor{i}" for i, _ in enumerate(policy.tiers))
    params: dict = {"month": month}
    for i, tier in enumerate(policy.tiers):
        params[f"tier{i}"], params[f"floor{i}"] = tier.id, int(tier.floor * 100)
    household = settings.tiering.household_aggregation
    basis = "COALESCE(h.average, m.average)" if household else "m.average"
    basis_now = "COALESCE(hh.aum, c.aum)" if household else "c.aum"
    joins = (
        "LEFT JOIN (SELECT c2.household_id, CAST(SUM(m2.average) AS BIGINT) AS average FROM tiering_customers c2 "
        "  JOIN tiering_monthly_aum m2 ON m2.customer_id = c2.customer_id AND m2.month = :month "
        "  WHERE c2.household_id IS NOT NULL GROUP BY c2.household_id) h ON h.household_id = c.household_id "
        "LEFT JOIN tiering_households hh ON hh.household_id = c.household_id "
        if household else ""
    )
    rows = (await session.execute(text(
        f"SELECT c.customer_id, {basis} AS basis, {basis_now} AS basis_now "
        f"FROM tiering_customers c JOIN tiering_monthly_aum m "
        f"  ON m.customer_id = c.customer_id AND m.month = :month {joins}"
        f"WHERE c.watch OR c.months_below > 0 OR {basis} < CASE c.tier {floors} ELSE 0 END "
        f"ORDER BY c.customer_id"
    ), params)).all()
    effective_at = datetime.combine(next_month(first), time(0), settings.zone)
    counts = {"watch": 0, "watch_cleared": 0, "downgrade": 0}
    for start in range(0, len(rows), 1000):
        chunk = rows[start:start + 1000]
        loaded = (await session.execute(select(TieringCustomer).where(
            TieringCustomer.customer_id.in_([r[0] for r in chunk])))).scalars()
        customers = {c.customer_id: c for c in loaded}
        for customer_id, basis_cents, now_cents in chunk:
            customer = customers[customer_id]
            decision = policy.on_month_end(_state(customer), from_cents(basis_cents),
                                           from_cents(now_cents), month)
            uow.cause = f"month-end:{month}:{customer_id}"
            changed = await _decide(uow, customer, decision, effective_at, from_cents(basis_cents))
            if changed is not None:
                to_alerts(uow, [changed])
            if decision.change:
                counts[decision.change] += 1
        await session.flush()
    total = await session.scalar(select(func.count()).select_from(TieringMonthlyAum)
                                 .where(TieringMonthlyAum.month == month))
    return CloseSummary(month, total or 0, counts["watch"], counts["watch_cleared"], counts["downgrade"])


async def _refresh_twelve_month_average(session: AsyncSession, first: date) -> None:
    """The average of the last twelve closed months' averages, which pricing's contribution
    score uses."""
    start = first
    for _ in range(11):
        start = date(start.year - (start.month == 1), (start.month - 2) % 12 + 1, 1)
    await session.execute(text(
        "UPDATE tiering_customers SET average_aum_12m = COALESCE(("
        "  SELECT (CAST(SUM(m.average) AS BIGINT) * 2 + COUNT(*)) / (2 * COUNT(*)) FROM tiering_monthly_aum m "
        "  WHERE m.customer_id = tiering_customers.customer_id AND m.average IS NOT NULL "
        "    AND m.month >= :start AND m.month <= :end), 0)"
    ), {"start": month_key(start), "end": month_key(first)})


# --- reads ----------------------------------------------------------------------------------


async def tier_view(session: AsyncSession, customer_id: str) -> dict | None:
    customer = await session.get(TieringCustomer, customer_id)
    if customer is None:
        return None
    history = (await session.execute(
        select(TieringTierHistory).where(TieringTierHistory.customer_id == customer_id)
        .order_by(TieringTierHistory.id)
    )).scalars().all()
    state = DailyAum(customer.mtd_day, customer.mtd_sum, customer.aum)
    return {
        "customer_id": customer.customer_id,
        "tier": customer.tier,
        "watch": customer.watch,
        "months_below": customer.months_below,
        "aum": customer.aum,
        "liabilities": customer.liabilities,
        "mtd_average_daily_aum": state.month_to_date_average(),
        "business_date": customer.mtd_day,
        "household_id": customer.household_id,
        "average_aum_12m": customer.average_aum_12m,
        "tier_since": customer.tier_since,
        "history": [
            {"from": h.from_tier, "to": h.to_tier, "change": h.change, "watch": h.watch,
             "reason": h.reason, "basis": h.basis, "effective_at": h.effective_at}
            for h in history
        ],
    }
