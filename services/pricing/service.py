"""Pricing's handlers (price each tiered posting once; keep the customer's tier now, offset
choice and risk preference) and the commands of the API (redemption requests, points expiry).

The handlers work on the batch's plain values (``tx.state``, :mod:`services.pricing.state`);
nothing touches the database until the batch commits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from decimal import Decimal

from sqlalchemy import select, update

from shared.contracts.cloudevents import Event
from shared.calendar import bank_time
from shared.contracts.events import CustomerFact, FeeAdjustedV1, FeeAssessedV1, TierChange, TieringChangeV1
from shared.db import insert_for
from shared.money import ZERO
from shared.runtime.errors import is_retryable
from shared.runtime.transaction import BatchTransaction, derived_event_id
from shared.settings.pricing import FeeRule
from services.pricing import metrics
from services.pricing.domain import (
    UNKNOWN_TX_TYPE_RULE,
    ChargedPosting,
    PricedFee,
    PricingContext,
    Step,
    Transaction,
    business_day,
    contribution_score,
    month_key,
    points_earned,
    reprice_after_upgrade,
)
from services.pricing.models import PricingExpiryRun, PricingPointsLot, PricingRedemption
from services.pricing.rules import Rules
from services.pricing.state import (
    FEES,
    REDEEM_RULE,
    Customer,
    PointsBook,
    PricingState,
)

log = logging.getLogger(__name__)

SERVICE = "pricing"

REDEMPTIONS = PricingRedemption.__table__
EXPIRY_RUNS = PricingExpiryRun.__table__
LOTS = PricingPointsLot.__table__


# --- handlers -------------------------------------------------------------------------------


async def on_tiering_change(event: Event, tx: BatchTransaction) -> None:
    """One fact of a customer as tiering applied it, in the customer's order: core banking's
    customer record (the offset choice and risk preference), a posting to price with the tier
    right after it, or tier decisions (the tier now, for quotes and products)."""
    change: TieringChangeV1 = event.data
    state: PricingState = tx.state
    if change.customer is not None:
        keep_master_data(state.customer(change.customer_id), change.customer)
    if change.posting is not None:
        price_posting(event, tx)
    elif change.tier_changes:
        note_tier(state.customer(change.customer_id), change.tier, event.time)
    for decision in change.tier_changes:
        correct_after_upgrade(event, tx, decision)


def price_posting(event: Event, tx: BatchTransaction) -> None:
    """Price a posting with the tier tiering passed on with it, once per ``posting_id``.

    The tier is the one in force right after the posting in the customer's ordered stream (see
    the package docstring); the month's free-use counter, the contribution score and the points
    are this service's own state, changed in the same transaction as the fee.
    """
    tiered: TieringChangeV1 = event.data
    p = tiered.posting
    state: PricingState = tx.state
    if p.posting_id in state.priced:
        tx.after_commit(metrics.DUPLICATE_POSTINGS.inc)
        return
    state.priced.add(p.posting_id)
    rules = state.rules
    customer = state.customer(p.customer_id)
    note_tier(customer, tiered.tier, event.time)
    customer.aum, customer.average_aum_12m = tiered.aum, tiered.average_aum_12m
    if customer.priced_through is None or p.posted_at > customer.priced_through:
        customer.priced_through = p.posted_at
    day = business_day(p.posted_at, rules.zone)
    book = PointsBook(tx, customer)
    book.expire_due(day)

    t = Transaction.of(p)
    a = assess(state, book, t, tiered.tier, day, tiered.average_aum_12m)
    priced = a.priced
    if priced.points_used:
        book.spend(priced.points_used, a.points_rule, p.posting_id, p.posted_at)
        if a.points_rule == REDEEM_RULE:
            customer.redeem_allowance -= priced.points_used
    earned, earn_rule = points_earned(t, rules.pricing.points.earn)
    if earned:
        book.earn(earned, day.year, earn_rule, p.posting_id, p.posted_at)
        priced = priced.with_steps(Step(earn_rule, "earn", ZERO, f"{earned} points earned on {t.amount}",
                                        points=earned))
    if a.fee is not None:
        state.count_use(p.customer_id, a.month, priced)

    if a.fee is not None and p.customer_id in state.watched:
        state.keep_priced(p.customer_id, a.month, ChargedPosting(
            p.posting_id, p.posted_at, t, priced.fee_id, tiered.tier, priced.charged, priced.net,
            priced.points_used, a.points_rule, priced.free_use, a.score))
    rules_json, breakdown_json = state.as_stored(priced)
    tx.append(FEES, {
        "posting_id": p.posting_id, "customer_id": p.customer_id, "account_id": p.account_id,
        "tx_type": p.tx_type, "product_type": p.product_type, "direction": p.direction,
        "channel": p.channel, "counterparty_bank": p.counterparty_bank, "cross_region": p.cross_region,
        "amount": p.amount, "posted_at": p.posted_at, "month": a.month, "tier": tiered.tier,
        "fee_id": priced.fee_id, "use_number": priced.use_number, "base": priced.base,
        "waived": priced.waived, "discount": priced.discount, "points_used": priced.points_used,
        "points_value": priced.points_value, "net": priced.net, "points_earned": earned,
        "points_balance": customer.points_balance, "rules": rules_json, "breakdown": breakdown_json,
        "average_aum_12m": tiered.average_aum_12m, "fees_paid": a.fees_paid,
        "contribution_score": a.score, "aum": tiered.aum, "priced_at": datetime.now(timezone.utc),
    })
    tx.emit(FeeAssessedV1.model_construct(
        posting_id=p.posting_id, customer_id=p.customer_id, fee_id=priced.fee_id, tier=tiered.tier,
        base=priced.base, waived=priced.waived, discount=priced.discount,
        points_used=priced.points_used, net=priced.net, rules=priced.rules, posted_at=p.posted_at,
        points_earned=earned, points_balance=customer.points_balance,
    ), stable_id=f"fee:{p.posting_id}")
    tx.after_commit(lambda: _count(priced, tiered.tier, earned, earn_rule, a.points_rule))


def correct_after_upgrade(event: Event, tx: BatchTransaction, decision: TierChange) -> None:
    """Correct, in the customer's favour, the fees of postings priced at a lower tier than an
    upgrade that took effect before them in the same calendar month but was decided after they
    were priced (a fact that came too late for tiering's event-time order).

    Each such fee gets one adjustment (a row, and a ``strata.fee_adjusted.v1`` whose id derives
    from the posting and the decision, so the decision applied again corrects nothing twice);
    the assessed fee itself, gone for collection, is never rewritten. The month's free uses are
    counted again in the order of ``posted_at`` (``domain.reprice_after_upgrade``). A downgrade,
    or an upgrade in order, re-prices nothing.
    """
    state: PricingState = tx.state
    rules = state.rules
    customer_id = event.data.customer_id
    if rules.ladder.rank(decision.to) <= rules.ladder.rank(decision.from_):
        return
    month = month_key(business_day(decision.effective_at, rules.zone))
    postings = state.month_postings.get((customer_id, month))
    if not postings:
        return
    corrections, counted = reprice_after_upgrade(rules.engine, postings, decision.to, decision.effective_at,
                                                 rules.ladder.rank)
    if not corrections:
        return
    customer = state.customer(customer_id)
    book = PointsBook(tx, customer)
    now = datetime.now(timezone.utc)
    standing = {}
    for c in corrections:
        before, after = c.before, c.after
        stable = f"fee-adjustment:{before.posting_id}:{decision.to}:{decision.effective_at.isoformat()}"
        returned = (book.give_back(before.posting_id, before.points_used, after.points_used, event.time)
                    if after.points_used < before.points_used else 0)
        difference = after.net - before.net
        reason = _reason(rules, decision, before, difference, returned)
        rules_json, breakdown_json = state.as_stored(after)
        state.adjustments.append({
            "adjustment_id": derived_event_id(SERVICE, stable), "posting_id": before.posting_id,
            "customer_id": customer_id, "month": month, "fee_id": before.fee_id, "posted_at": before.posted_at,
            "tier_before": before.tier, "tier_after": decision.to, "waived": after.waived,
            "discount": after.discount, "points_used": after.points_used, "points_value": after.points_value,
            "net_before": before.net, "net_after": after.net, "difference": difference,
            "points_returned": returned, "reason": reason, "rules": rules_json, "breakdown": breakdown_json,
            "effective_at": decision.effective_at, "recorded_at": now,
        })
        tx.emit(FeeAdjustedV1.model_construct(
            adjustment_id=derived_event_id(SERVICE, stable), posting_id=before.posting_id,
            customer_id=customer_id, fee_id=before.fee_id, tier_before=before.tier, tier_after=decision.to,
            net_before=before.net, net_after=after.net, difference=difference, points_returned=returned,
            reason=reason, rules=after.rules, posted_at=before.posted_at, effective_at=decision.effective_at,
        ), stable_id=stable)
        standing[before.posting_id] = replace(before, tier=decision.to, charged=after.charged, net=after.net,
                                              points_used=after.points_used, free_use=after.free_use)
        tx.after_commit(lambda fee=before.fee_id, tier=decision.to, refund=-difference: _count_adjustment(
            fee, tier, refund))
    state.month_postings[(customer_id, month)] = [standing.get(p.posting_id, p) for p in postings]
    state.set_month(customer_id, month, counted)


def _reason(rules: Rules, decision: TierChange, before: ChargedPosting, difference: Decimal,
            returned: int) -> str:
    what = [f"re-priced at {decision.to}"]
    if difference < 0:
        what.append(f"{-difference} refunded")
    if returned:
        what.append(f"{returned} points given back")
    return (f"the {decision.change} to {decision.to} took effect at {bank_time(decision.effective_at, rules.zone)}, "
            f"before this posting, but was decided after it was priced at {before.tier} "
            f"({decision.reason}): {', '.join(what)}")


def _count_adjustment(fee_id: str, tier: str, refund: Decimal) -> None:
    metrics.FEE_ADJUSTMENTS.labels(fee_id, tier).inc()
    if refund > 0:
        metrics.FEES_REFUNDED_CNY.labels(fee_id, tier).inc(float(refund))


@dataclass(slots=True)
class Assessment:
    """A transaction priced for a customer as their state stands, with what it was priced on."""

    fee: FeeRule | None
    month: str
    fees_paid: Decimal
    score: Decimal
    points_rule: str
    priced: PricedFee


def assess(state: PricingState, book: PointsBook, t: Transaction, tier: str, day: date,
           average_aum_12m: Decimal) -> Assessment:
    """Price ``t`` for the book's customer on business date ``day`` at ``tier``: this month's
    uses of its fee, the contribution score, the points that may pay it. Changes nothing: a
    posting and a quote are priced by this one function."""
    rules = state.rules
    customer_id = book.customer.customer_id
    month = month_key(day)
    fee = rules.engine.match(t)
    fees_paid = state.fees_paid(customer_id, month) if fee is not None else ZERO
    score = contribution_score(average_aum_12m, fees_paid, rules.pricing.contribution)
    spendable, points_rule = book.spendable(day)
    uses = {fee.id: state.uses(customer_id, month, fee.id)} if fee is not None else {}
    priced = rules.engine.price_fee(t, fee, PricingContext(tier, uses, score, spendable, points_rule))
    return Assessment(fee, month, fees_paid, score, points_rule, priced)


def keep_master_data(customer: Customer, data: CustomerFact) -> None:
    """Keep the customer's choice of automatic points offset and risk preference (core banking
    records only, as tiering passes them on; an older record never overwrites a newer one)."""
    if customer.master_updated_at is not None and data.updated_at < customer.master_updated_at:
        return
    customer.auto_points_offset = data.auto_points_offset
    customer.risk_level = data.risk_level
    customer.master_updated_at = data.updated_at


def note_tier(customer: Customer, tier: str, decided_at: datetime) -> None:
    """Tiering decides a customer's tiers one after another, so the latest decision is the tier
    now, whichever of its records brought it first."""
    if customer.tier_as_of is None or decided_at >= customer.tier_as_of:
        customer.tier, customer.tier_as_of = tier, decided_at


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


async def request_redemption(tx: BatchTransaction, customer_id: str, points: int, request_id: str,
                             requested_by: str, now: datetime) -> dict:
    """Ask that the customer's next fees be paid with up to ``points`` points.

    A fee, once assessed, has been reported to core banking for collection; pricing never
    reopens it. A redemption therefore works forward, as a one-off instruction: the next fees
    the customer incurs are offset from these points (``points.redeem`` in their rules) until
    the points asked for are used, each spend written to the ledger with its posting. A customer
    who opted in to automatic offset has every fee offset anyway. Idempotent by ``request_id``.
    """
    state = tx.state = await PricingState.for_customer(tx, customer_id, business_day(now, tx.settings.zone),
                                                        lock=True)
    earlier = (await tx.session.execute(select(REDEMPTIONS).where(REDEMPTIONS.c.request_id == request_id))).first()
    customer = state.customers[customer_id]
    if earlier is not None:
        if earlier.customer_id != customer_id:
            raise Refused(f"request {request_id} was made for another customer")
        return _redemption_view(customer, earlier.points, earlier.requested_at, request_id, repeated=True)
    if customer is None:
        raise NotFound(customer_id)
    PointsBook(tx, customer).expire_due(business_day(now, state.rules.zone))
    free = customer.points_balance - customer.redeem_allowance
    if points > free:
        raise Refused(f"the customer has {customer.points_balance} points, {customer.redeem_allowance} "
                      f"already set aside for the next fees: at most {max(free, 0)} more can be")
    customer = state.customer(customer_id)
    customer.redeem_allowance += points
    tx.append(REDEMPTIONS, {"request_id": request_id, "customer_id": customer_id, "points": points,
                            "requested_by": requested_by, "requested_at": now})
    return _redemption_view(customer, points, now, request_id, repeated=False)


def _redemption_view(customer: Customer, points: int, requested_at: datetime, request_id: str, *,
                     repeated: bool) -> dict:
    return {"request_id": request_id, "customer_id": customer.customer_id, "points": points,
            "requested_at": requested_at, "redeem_allowance": customer.redeem_allowance,
            "points_balance": customer.points_balance, "repeated": repeated}


async def expire_points(runtime, on: date, chunk: int = 500) -> dict:
    """The daily expiry: every lot whose last valid year ended before ``on`` loses what is left
    of it, one ledger row per lot. Idempotent: an expired lot has nothing left to expire, so a
    second run for the same date (or an earlier one) changes nothing.

    Customers are swept in chunks, each its own transaction (retried after a deadlock with the
    consumer), so a bank-wide run never holds every customer's lock at once.
    """
    last_expired_year = on.year - runtime.settings.pricing.points.expiry_calendar_years
    async with runtime.db.sessions() as session:
        ids = list((await session.execute(
            select(LOTS.c.customer_id).distinct()
            .where(LOTS.c.year <= last_expired_year, LOTS.c.earned - LOTS.c.spent - LOTS.c.expired > 0)
            .order_by(LOTS.c.customer_id)
        )).scalars())
    customers = points = 0
    for start in range(0, len(ids), chunk):
        part = ids[start:start + chunk]
        while True:
            try:
                done_customers, done_points = await _expire_chunk(runtime, part, on)
                break
            except Exception as exc:
                if not is_retryable(exc):
                    raise
                log.warning("points expiry chunk retried", extra={"error": str(exc)[:200]})
        customers += done_customers
        points += done_points
    now = datetime.now(timezone.utc)
    async with runtime.transaction("pricing", f"points-expiry-run:{on}") as tx:
        session = tx.session
        await session.execute(insert_for(session)(EXPIRY_RUNS).values(
            business_date=on, first_run_at=now, last_run_at=now, customers=0, points=0,
        ).on_conflict_do_nothing())
        await session.execute(update(EXPIRY_RUNS).where(EXPIRY_RUNS.c.business_date == on).values(
            last_run_at=now, customers=EXPIRY_RUNS.c.customers + customers,
            points=EXPIRY_RUNS.c.points + points))
        first_run_at = await session.scalar(select(EXPIRY_RUNS.c.first_run_at)
                                            .where(EXPIRY_RUNS.c.business_date == on))
    return {"date": on, "customers": customers, "points_expired": points,
            "expired_years_through": last_expired_year, "first_run_at": first_run_at}


async def _expire_chunk(runtime, customer_ids: list[str], on: date) -> tuple[int, int]:
    """Expire what is due of these customers' points in one transaction: (customers, points)."""
    customers = points = 0
    async with runtime.transaction("pricing", f"points-expiry:{on}") as tx:
        state = tx.state = PricingState(Rules.of(tx.settings))
        await state.load_customers(tx, customer_ids, lock=True)
        found = [c for c in customer_ids if state.customers[c] is not None]
        await state.load_lots(tx, found)
        for customer_id in found:
            n = PointsBook(tx, state.customers[customer_id]).expire_due(on, check_all=True)
            if n:
                customers += 1
                points += n
    return customers, points
