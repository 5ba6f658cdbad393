"""Pricing's handlers (price each tiered posting once; keep the customer's tier now, offset
choice and risk preference) and the commands of the API (redemption requests, points expiry)."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timezone

from sqlalchemy import select

from shared.contracts.cloudevents import Event
from shared.contracts.events import CustomerFact, FeeAssessedV1, TieringChangeV1
from shared.contracts.types import KNOWN_TX_TYPES
from shared.db import insert_for
from shared.money import ZERO
from shared.runtime.errors import is_retryable
from shared.runtime.unit_of_work import UnitOfWork
from services.pricing import metrics
from services.pricing.domain import (
    UNKNOWN_TX_TYPE_RULE,
    PricedFee,
    PricingContext,
    Step,
    Transaction,
    business_day,
    contribution_score,
    month_key,
    points_earned,
)
from services.pricing.metrics import after_commit
from services.pricing.models import (
    PricingCustomer,
    PricingExpiryRun,
    PricingFee,
    PricingPointsLot,
    PricingRedemption,
)
from services.pricing.rules import rules_of
from services.pricing.state import (
    MonthlyUsage,
    PointsBook,
    already_priced,
    customer_for_update,
    mark_priced,
)

log = logging.getLogger(__name__)

AUTO_OFFSET_RULE = "points.offset"
REDEEM_RULE = "points.redeem"


# --- handlers -------------------------------------------------------------------------------


async def on_tiering_change(event: Event, uow: UnitOfWork) -> None:
    """One fact of a customer as tiering applied it, in the customer's order: core banking's
    customer record (the offset choice and risk preference), a posting to price with the tier
    right after it, or tier decisions (the tier now, for quotes and products)."""
    change: TieringChangeV1 = event.data
    if change.customer is not None:
        await on_customer(change.customer, uow)
    if change.posting is not None:
        await on_posting_tiered(event, uow)
    elif change.tier_changes:
        customer = await customer_for_update(uow, change.customer_id)
        _note_tier(customer, change.tier, event.time)


async def on_posting_tiered(event: Event, uow: UnitOfWork) -> None:
    """Price a posting with the tier tiering passed on with it, once per ``posting_id``.

    The tier is the one in force right after the posting in the customer's ordered stream (see
    the package docstring); the month's free-use counter, the contribution score and the points
    are this service's own state, read and written in the same transaction as the fee.
    """
    tiered: TieringChangeV1 = event.data
    p = tiered.posting
    if await already_priced(uow, p.posting_id):
        after_commit(uow, metrics.DUPLICATE_POSTINGS.inc)
        return
    rules = rules_of(uow.settings)
    customer = await customer_for_update(uow, p.customer_id)
    _note_tier(customer, tiered.tier, event.time)
    customer.aum, customer.average_aum_12m = tiered.aum, tiered.average_aum_12m
    day = business_day(p.posted_at, rules.zone)
    month = month_key(day)
    book = PointsBook(uow, customer, rules)
    await book.expire_due(day)

    tx = Transaction.of(p)
    fee = rules.engine.schedule.match(tx) if tx.tx_type in KNOWN_TX_TYPES else None
    usage = MonthlyUsage(uow, p.customer_id, rules)
    fees_paid = await usage.fees_paid_before(month) if fee else ZERO
    score = contribution_score(tiered.average_aum_12m, fees_paid, rules.pricing.contribution)
    spendable, points_rule = spendable_points(customer)
    counters = {fee.id: await usage.usage(month, fee.id)} if fee else {}
    priced = rules.engine.price(tx, PricingContext(tiered.tier, counters, score, spendable, points_rule))

    if priced.points_used:
        await book.spend(priced.points_used, points_rule, p.posting_id, p.posted_at)
        if points_rule == REDEEM_RULE:
            customer.redeem_allowance -= priced.points_used
    earned, earn_rule = points_earned(tx, rules.pricing.points.earn)
    if earned:
        await book.earn(earned, day.year, earn_rule, p.posting_id, p.posted_at)
        priced = priced.with_steps(Step(earn_rule, "earn", ZERO, f"{earned} points earned on {tx.amount}",
                                        points=earned))
    if fee is not None:
        row = await usage.of(month, fee.id)
        row.uses += 1
        row.free_uses += int(priced.free_use)
        row.charged += priced.charged
        row.paid += priced.net

    uow.insert_later(PricingFee.__table__, dict(
        posting_id=p.posting_id, customer_id=p.customer_id, account_id=p.account_id,
        tx_type=p.tx_type, product_type=p.product_type, direction=p.direction, channel=p.channel,
        counterparty_bank=p.counterparty_bank, cross_region=p.cross_region, amount=p.amount,
        posted_at=p.posted_at, month=month, tier=tiered.tier, fee_id=priced.fee_id,
        use_number=priced.use_number, base=priced.base, waived=priced.waived,
        discount=priced.discount, points_used=priced.points_used, points_value=priced.points_value,
        net=priced.net, points_earned=earned, points_balance=customer.points_balance,
        rules=json.dumps(priced.rules), breakdown=json.dumps([s.as_dict() for s in priced.steps]),
        average_aum_12m=tiered.average_aum_12m, fees_paid=fees_paid, contribution_score=score,
        priced_at=datetime.now(timezone.utc),
    ))  # read back by no one in this transaction: a posting is marked priced in the batch
    mark_priced(uow, p.posting_id)
    uow.emit(FeeAssessedV1(
        posting_id=p.posting_id, customer_id=p.customer_id, fee_id=priced.fee_id, tier=tiered.tier,
        base=priced.base, waived=priced.waived, discount=priced.discount,
        points_used=priced.points_used, net=priced.net, rules=priced.rules, posted_at=p.posted_at,
        points_earned=earned, points_balance=customer.points_balance,
    ), stable_id=f"fee:{p.posting_id}")
    after_commit(uow, lambda: _count(priced, tiered.tier, earned, earn_rule, points_rule))


async def on_customer(data: CustomerFact, uow: UnitOfWork) -> None:
    """Keep the customer's choice of automatic points offset and risk preference (core banking
    records only, as tiering passes them on; an older record never overwrites a newer one)."""
    customer = await customer_for_update(uow, data.customer_id)
    if customer.master_updated_at is not None and data.updated_at < customer.master_updated_at:
        return
    customer.auto_points_offset = data.auto_points_offset
    customer.risk_level = data.risk_level
    customer.master_updated_at = data.updated_at


def _note_tier(customer: PricingCustomer, tier: str, decided_at: datetime) -> None:
    """Tiering decides a customer's tiers one after another, so the latest decision is the tier
    now, whichever of its topics brought it first."""
    if customer.tier_as_of is None or decided_at >= customer.tier_as_of:
        customer.tier, customer.tier_as_of = tier, decided_at


def spendable_points(customer: PricingCustomer) -> tuple[int, str]:
    """Points that may pay the next fee: all of them for a customer who opted in to automatic
    offset, else what they asked to redeem."""
    if customer.auto_points_offset:
        return customer.points_balance, AUTO_OFFSET_RULE
    return min(customer.points_balance, customer.redeem_allowance), REDEEM_RULE


def _count(priced: PricedFee, tier: str, earned: int, earn_rule: str | None, points_rule: str) -> None:
    metrics.POSTINGS_PRICED.labels(tier).inc()
    if priced.rules[0] == UNKNOWN_TX_TYPE_RULE:
        metrics.UNKNOWN_TX_TYPES.inc()
    if priced.fee_id is not None:
        if priced.charged > 0:
            metrics.FEES_CHARGED.labels(priced.fee_id, tier).inc()
            metrics.FEES_CHARGED_CNY.labels(priced.fee_id, tier).inc(float(priced.charged))
        given_up = priced.waived + priced.discount
        if given_up > 0:
            metrics.FEES_WAIVED.labels(priced.fee_id, tier).inc()
            metrics.FEES_WAIVED_CNY.labels(priced.fee_id, tier).inc(float(given_up))
    if priced.points_used:
        metrics.POINTS_SPENT.labels(points_rule).inc(priced.points_used)
    if earned:
        metrics.POINTS_EARNED.labels(earn_rule).inc(earned)


# --- commands of the API --------------------------------------------------------------------


class NotFound(Exception):
    """The customer is unknown to pricing."""


class Refused(Exception):
    """A request that cannot be honoured now (the reason is the message)."""


async def request_redemption(uow: UnitOfWork, customer_id: str, points: int, request_id: str,
                             requested_by: str, now: datetime) -> dict:
    """Ask that the customer's next fees be paid with up to ``points`` points.

    A fee, once assessed, has been reported to core banking for collection; pricing never
    reopens it. A redemption therefore works forward, as a one-off instruction: the next fees
    the customer incurs are offset from these points (``points.redeem`` in their rules) until
    the points asked for are used, each spend written to the ledger with its posting. A customer
    who opted in to automatic offset has every fee offset anyway. Idempotent by ``request_id``.
    """
    customer = await customer_for_update(uow, customer_id, create=False)
    earlier = await uow.session.get(PricingRedemption, request_id)
    if earlier is not None:
        if earlier.customer_id != customer_id:
            raise Refused(f"request {request_id} was made for another customer")
        return _redemption_view(customer, earlier, repeated=True)
    if customer is None:
        raise NotFound(customer_id)
    rules = rules_of(uow.settings)
    await PointsBook(uow, customer, rules).expire_due(business_day(now, rules.zone))
    free = customer.points_balance - customer.redeem_allowance
    if points > free:
        raise Refused(f"the customer has {customer.points_balance} points, {customer.redeem_allowance} "
                      f"already set aside for the next fees: at most {max(free, 0)} more can be")
    customer.redeem_allowance += points
    row = PricingRedemption(request_id=request_id, customer_id=customer_id, points=points,
                            requested_by=requested_by, requested_at=now)
    uow.session.add(row)
    return _redemption_view(customer, row, repeated=False)


def _redemption_view(customer: PricingCustomer, row: PricingRedemption, *, repeated: bool) -> dict:
    return {"request_id": row.request_id, "customer_id": row.customer_id, "points": row.points,
            "requested_at": row.requested_at, "redeem_allowance": customer.redeem_allowance,
            "points_balance": customer.points_balance, "repeated": repeated}


async def expire_points(runtime, on: date, chunk: int = 500) -> dict:
    """The daily expiry: every lot whose last valid year ended before ``on`` loses what is left
    of it, one ledger row per lot. Idempotent: an expired lot has nothing left to expire, so a
    second run for the same date (or an earlier one) changes nothing.

    Customers are swept in chunks, each its own transaction (retried after a deadlock with the
    consumer), so a bank-wide run never holds every customer's lock at once.
    """
    settings = runtime.settings
    rules = rules_of(settings)
    last_expired_year = on.year - rules.expiry_years
    async with runtime.db.sessions() as session:
        ids = list((await session.execute(
            select(PricingPointsLot.customer_id).distinct()
            .where(PricingPointsLot.year <= last_expired_year,
                   PricingPointsLot.earned - PricingPointsLot.spent - PricingPointsLot.expired > 0)
            .order_by(PricingPointsLot.customer_id)
        )).scalars())
    customers = points = 0
    for start in range(0, len(ids), chunk):
        part = ids[start:start + chunk]
        while True:
            try:
                done_customers = done_points = 0
                async with runtime.unit_of_work("pricing", f"points-expiry:{on}") as uow:
                    for customer_id in part:
                        customer = await customer_for_update(uow, customer_id, create=False)
                        if customer is None:
                            continue
                        n = await PointsBook(uow, customer, rules).expire_due(on, check_all=True)
                        if n:
                            done_customers += 1
                            done_points += n
                break
            except Exception as exc:
                if not is_retryable(exc):
                    raise
                log.warning("points expiry chunk retried", extra={"error": str(exc)[:200]})
        customers += done_customers
        points += done_points
    now = datetime.now(timezone.utc)
    async with runtime.db.transaction() as session:
        await session.execute(insert_for(session)(PricingExpiryRun).values(
            business_date=on, first_run_at=now, last_run_at=now, customers=0, points=0,
        ).on_conflict_do_nothing())
        run = await session.get(PricingExpiryRun, on, with_for_update=True)
        run.last_run_at = now
        run.customers += customers
        run.points += points
        first_run_at = run.first_run_at
    return {"date": on, "customers": customers, "points_expired": points,
            "expired_years_through": last_expired_year, "first_run_at": first_run_at}
