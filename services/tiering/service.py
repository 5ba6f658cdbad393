"""Tiering's handlers: apply balances to AUM, keep the month's running sum, move tiers, and pass
every fact on, with what it changed, to the one ordered stream the other services read.

The handlers work on the batch's plain values (``tx.state``, :mod:`services.tiering.state`);
nothing touches the database until the batch commits.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.calendar import business_day
from shared.contracts import topics
from shared.contracts.cloudevents import Event
from shared.contracts.events import (
    AccountFact,
    AccountV1,
    AumV1,
    BalanceV1,
    CustomerFact,
    CustomerV1,
    PostingFact,
    PostingV1,
    TierChange,
    TierChangedV1,
    TieringChangeV1,
    built,
)
from shared.contracts.types import AUM_PRODUCT_TYPES
from shared.metrics import EVENTS_UNKNOWN_REFERENCE
from shared.money import ZERO, from_cents, to_cents
from shared.runtime.errors import Rejected
from shared.runtime.transaction import BatchTransaction
from services.tiering import metrics
from services.tiering.domain import (
    AccountPosition,
    DailyAum,
    SeqRanges,
    TierDecision,
    TierPolicy,
    TierState,
    apply_posting,
    apply_snapshot,
    roll_to,
)
from services.tiering.models import TieringCustomer, TieringDailyAum, TieringTierHistory
from services.tiering.state import Account, Customer, TieringState

SERVICE = "tiering"
HISTORY = TieringTierHistory.__table__


def policy_of(settings) -> TierPolicy:
    """The live tier policy (on the settings' one tier ladder)."""
    return TierPolicy(settings.tier_ladder)


# --- handlers -------------------------------------------------------------------------------


async def on_posting(event: Event, tx: BatchTransaction) -> None:
    """Apply a posting's ``balance_after`` (the highest ``account_seq`` sets the balance), then
    pass the posting on with the tier, watch and AUM right after it. A posting the account has
    applied before (sent again, perhaps under another ``ce_id``) changes nothing and is passed
    on to no one; one older than the account's newest (a lower ``account_seq``) moves no balance
    but is passed on, marked stale, since it happened and is priced."""
    p: PostingV1 = event.data
    state: TieringState = tx.state
    account = _account(tx, event, p.account_id, p.customer_id, p.product_type)
    customer = _customer(tx, event, p.customer_id, business_day(p.posted_at, tx.settings.zone))
    if p.account_seq in account.seen:
        tx.after_commit(metrics.RESENT_POSTINGS.inc)
        return
    account.seen = account.seen.with_seq(p.account_seq)
    state.changed_account(account)
    stale = p.account_seq <= account.position.seq
    if stale:
        tx.after_commit(metrics.STALE_EVENTS.labels("posting").inc)
    aum_before = customer.aum
    changes = _apply_position(tx, account, customer, apply_posting(account.position, p.account_seq,
                                                                   p.balance_after, p.posted_at), p.posted_at)
    _pass_on(tx, customer, "posting", p.posted_at, aum_before, changes, stale=stale,
             posting=built(PostingFact, **p.__dict__), stable_id=f"posting:{p.posting_id}")


async def on_balance(event: Event, tx: BatchTransaction) -> None:
    """Apply a balance or market-value snapshot unless a newer one is already applied."""
    b: BalanceV1 = event.data
    account = _account(tx, event, b.account_id, b.customer_id, b.product_type)
    customer = _customer(tx, event, b.customer_id, business_day(b.as_of, tx.settings.zone))
    after = apply_snapshot(account.position, b.balance, b.as_of)
    if after == account.position:
        tx.after_commit(metrics.STALE_EVENTS.labels("balance").inc)
        return
    tx.state.changed_account(account)
    aum_before = customer.aum
    changes = _apply_position(tx, account, customer, after, b.as_of)
    if customer.aum != aum_before or changes:
        _pass_on(tx, customer, "balance", b.as_of, aum_before, changes)


async def on_account(event: Event, tx: BatchTransaction) -> None:
    """Register an account's owner, product type and status (its balance comes from postings and
    snapshots) and pass the record on: alerts keeps maturities and card expiries from it."""
    a: AccountV1 = event.data
    account = _account(tx, event, a.account_id, a.customer_id, a.product_type, counted=False)
    customer = _customer(tx, event, a.customer_id, business_day(event.time, tx.settings.zone), counted=False)
    account.status = a.status
    tx.state.changed_account(account)
    _pass_on(tx, customer, "account", event.time, customer.aum, [], account=built(AccountFact, **a.__dict__))


async def on_customer(event: Event, tx: BatchTransaction) -> None:
    """Keep household membership (which household aggregation needs) and pass core banking's
    record on: pricing, alerts and assignment take the master data they use from it, in the
    customer's order. An older record than the one applied changes nothing."""
    data: CustomerV1 = event.data
    if data.source != "core":
        return
    state: TieringState = tx.state
    at = data.updated_at
    customer = _customer(tx, event, data.customer_id, business_day(at, tx.settings.zone), counted=False)
    if customer.master_at is not None and at < customer.master_at:
        tx.after_commit(metrics.STALE_EVENTS.labels("customer").inc)
        return
    customer.master_at = at
    state.changed_customer(customer)
    changes: list[TierChange] = []
    if customer.household_id != data.household_id:
        if customer.household_id:
            state.add_to_household(customer.household_id, -customer.aum)
            state.members.get(customer.household_id, set()).discard(customer.customer_id)
        customer.household_id = data.household_id
        if data.household_id:
            state.add_to_household(data.household_id, customer.aum)
            state.members.setdefault(data.household_id, set()).add(customer.customer_id)
            changes = _upgrade_if_due(tx, customer, at, placement=False)
    fact = built(CustomerFact, **data.__dict__)
    _pass_on(tx, customer, "customer", at, customer.aum, changes, customer=fact)


# --- the steps the handlers share ----------------------------------------------------------


def _account(tx: BatchTransaction, event: Event, account_id: str, customer_id: str, product_type: str,
             *, counted: bool = True) -> Account:
    """The account's row; a new one on first sight (counted as a reference to an account Strata
    had never seen, when a posting or snapshot is the first to name it). An account keeps its
    owner and product type: a record that says otherwise is refused."""
    state: TieringState = tx.state
    account = state.accounts.get(account_id)
    if account is None:
        account = Account(account_id, customer_id, product_type, "open", AccountPosition(), ZERO, SeqRanges())
        state.accounts[account_id] = account
        state.changed_account(account)
        if counted:
            tx.after_commit(EVENTS_UNKNOWN_REFERENCE.labels(SERVICE, event.topic).inc)
        return account
    if account.customer_id != customer_id:
        raise Rejected(f"account {account_id} belongs to customer {account.customer_id}, not {customer_id}")
    if account.product_type != product_type:
        raise Rejected(f"account {account_id} is a {account.product_type}, not a {product_type}")
    return account


def _customer(tx: BatchTransaction, event: Event, customer_id: str, day: date, *,
              counted: bool = True) -> Customer:
    state: TieringState = tx.state
    customer = state.customers.get(customer_id)
    if customer is None:
        customer = Customer(customer_id, None, ZERO, ZERO, {}, policy_of(tx.settings).lowest.id, False, 0,
                            None, day, ZERO, ZERO, ZERO, None, None, None)
        state.customers[customer_id] = customer
        state.changed_customer(customer)
        tx.after_commit(metrics.CUSTOMERS_CREATED.inc)
        if counted:
            tx.after_commit(EVENTS_UNKNOWN_REFERENCE.labels(SERVICE, event.topic).inc)
    return customer


def _roll(tx: BatchTransaction, customer: Customer, day: date) -> None:
    """Bring the customer's running sum of daily AUM to ``day``, keeping the months that ended."""
    rolled, completed = roll_to(DailyAum(customer.mtd_day, customer.mtd_sum, customer.aum), day)
    if rolled.day == customer.mtd_day:
        return
    for month, total in completed:
        tx.state.months[(customer.customer_id, f"{month:%Y-%m}")] = total
    customer.mtd_day, customer.mtd_sum, customer.day_high = rolled.day, rolled.sum_before, customer.aum
    tx.state.changed_customer(customer)
    tx.state.remember_day(customer)


def _apply_position(tx: BatchTransaction, account: Account, customer: Customer,
                    after: AccountPosition, at: datetime) -> list[TierChange]:
    """Move the account to ``after``, and the customer's AUM (or liabilities) by the change in
    the balance in force; returns the tier decisions that caused, emitting their events and the
    AUM event."""
    state: TieringState = tx.state
    delta = after.balance - account.balance
    account.position, account.balance = after, after.balance
    _roll(tx, customer, business_day(at, tx.settings.zone))  # the day has come, moved or not
    if delta == 0:
        return []
    customer.holdings[account.product_type] = customer.holdings.get(account.product_type, 0) + to_cents(delta)
    state.changed_customer(customer)
    if account.product_type not in AUM_PRODUCT_TYPES:
        customer.liabilities += delta
        return []
    if customer.placed_at is None:
        customer.placed_at = at
    placement = customer.placed_at == at
    customer.aum += delta
    customer.day_high = max(customer.day_high, customer.aum)
    customer.updated_at = at if customer.updated_at is None else max(at, customer.updated_at)
    state.remember_day(customer)
    if customer.household_id:
        state.add_to_household(customer.household_id, delta)
    changes = _upgrade_if_due(tx, customer, at, placement=placement)
    _emit_aum(tx, customer, at, placement, {account.account_id: account.balance})
    return changes


def _upgrade_if_due(tx: BatchTransaction, customer: Customer, at: datetime, *,
                    placement: bool) -> list[TierChange]:
    """Upgrade the customer (or, with household aggregation, every member) whose AUM reached a
    higher tier; returns the customer's own decisions (another member's go to their stream)."""
    state: TieringState = tx.state
    policy = policy_of(tx.settings)
    household_id = customer.household_id if tx.settings.tiering.household_aggregation else None
    if household_id is None:
        decided = _decide(tx, customer, policy.on_aum(_state(customer), customer.aum, placement=placement),
                          at, customer.aum)
        return [decided] if decided is not None else []
    basis = state.households.get(household_id, ZERO)
    own: list[TierChange] = []
    for member_id in sorted(state.members.get(household_id, {customer.customer_id})):
        member = state.customers.get(member_id)
        if member is None:
            continue
        decided = _decide(tx, member, policy.on_aum(_state(member), basis, placement=placement and member is customer),
                          at, basis)
        if decided is None:
            continue
        if member is customer:
            own.append(decided)
        else:
            _pass_on(tx, member, "household", at, member.aum, [decided])
    return own


def _state(customer: Customer) -> TierState:
    return TierState(customer.tier, customer.watch, customer.months_below)


def _decide(tx: BatchTransaction, customer: Customer, decision: TierDecision, at: datetime,
            basis: Decimal) -> TierChange | None:
    """Apply a tier decision: the customer's new state, a history row and a
    ``strata.tier_changed.v1``; returns the decision as the ordered stream carries it."""
    if decision.change is None:
        return None
    customer.tier, customer.watch = decision.state.tier, decision.state.watch
    customer.months_below = decision.state.months_below
    if decision.change in ("upgrade", "downgrade", "initial_placement"):
        customer.tier_since = at
    tx.state.changed_customer(customer)
    tx.append(HISTORY, {"customer_id": customer.customer_id, "from_tier": decision.from_tier,
                        "to_tier": decision.state.tier, "change": decision.change,
                        "watch": decision.state.watch, "reason": decision.reason, "basis": basis,
                        "effective_at": at})
    tx.emit(built(TierChangedV1, 
        customer_id=customer.customer_id, from_=decision.from_tier, to=decision.state.tier,
        reason=decision.reason, effective_at=at, change=decision.change, watch=decision.state.watch,
        aum=customer.aum, basis=basis, months_below=decision.state.months_below,
    ), key=f"tier:{customer.customer_id}:{decision.change}:{decision.state.tier}")
    tx.after_commit(metrics.TIER_CHANGES.labels(decision.change, decision.state.tier).inc)
    return built(TierChange, 
        from_=decision.from_tier, to=decision.state.tier, change=decision.change, reason=decision.reason,
        effective_at=at, watch=decision.state.watch, months_below=decision.state.months_below, basis=basis)


def _emit_aum(tx: BatchTransaction, customer: Customer, at: datetime, placement: bool,
              balances: dict[str, Decimal]) -> None:
    """``strata.aum``: the customer's AUM as of the newest fact applied, moved by the fact of
    ``at`` (which a late fact makes earlier than that)."""
    by_type, liabilities = {}, {}
    for product_type, cents in sorted(customer.holdings.items()):
        (by_type if product_type in AUM_PRODUCT_TYPES else liabilities)[product_type] = from_cents(cents)
    tx.emit(built(AumV1, 
        customer_id=customer.customer_id, aum=customer.aum,
        mtd_average_daily_aum=_mtd(customer).month_to_date_average(), by_product_type=by_type,
        liabilities=liabilities, business_date=customer.mtd_day, as_of=customer.updated_at,
        tier=customer.tier, placement=placement, balances=balances, changed_at=at,
    ), key=f"aum:{customer.customer_id}")


def _mtd(customer: Customer) -> DailyAum:
    return DailyAum(customer.mtd_day, customer.mtd_sum, customer.aum)


def _pass_on(tx: BatchTransaction, who: Customer, fact: str, at: datetime, aum_before: Decimal,
             changes: list[TierChange], *, stale: bool = False, stable_id: str | None = None, **facts) -> None:
    """Put the fact, with the customer's tier, watch and AUM right after it and the decisions it
    caused, on ``strata.tiering.changes``: one record per fact, in the order applied, keyed by
    customer, so whoever reads the topic reads each customer's facts in one order."""
    tx.emit(built(TieringChangeV1, 
        customer_id=who.customer_id, fact=fact, at=at, tier=who.tier, watch=who.watch,
        months_below=who.months_below, aum=who.aum, aum_before=aum_before,
        average_aum_12m=who.average_aum_12m, business_date=who.mtd_day,
        placement=who.placed_at is not None and who.placed_at == at and fact in ("posting", "balance"),
        stale=stale, tier_changes=changes, posting=facts.get("posting"), customer=facts.get("customer"),
        account=facts.get("account"),
    ), topic=topics.TIERING_CHANGES, key=f"change:{who.customer_id}", stable_id=stable_id)


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


async def daily_aum(session: AsyncSession, customer_id: str, first: date, last: date) -> list[dict]:
    """The customer's end-of-day AUM and the day's high for each business day with activity
    from ``first`` to ``last`` (a day without a row kept the AUM of the day before)."""
    rows = (await session.execute(
        select(TieringDailyAum).where(TieringDailyAum.customer_id == customer_id,
                                      TieringDailyAum.day >= first, TieringDailyAum.day <= last)
        .order_by(TieringDailyAum.day)
    )).scalars()
    return [{"date": r.day, "aum": r.aum, "high": r.high} for r in rows]
