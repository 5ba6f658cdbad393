"""Pricing's handlers (price each tiered posting once; keep free-use counters, points and the
customer's tier, risk preference and offset choice) and the queries and commands of the views."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.contracts.cloudevents import Event
from shared.contracts.events import CustomerV1, FeeAssessedV1, PostingTieredV1, TierChangedV1
from shared.contracts.types import KNOWN_TX_TYPES
from shared.money import ZERO
from shared.runtime.errors import is_retryable
from shared.runtime.unit_of_work import UnitOfWork
from shared.settings import Settings
from shared.settings.pricing import PricingSettings
from services.pricing import metrics
from services.pricing.domain import (
    Eligibility,
    FeeTotals,
    PricedFee,
    PricingContext,
    PricingEngine,
    Repricer,
    Step,
    StoredPosting,
    Transaction,
    Usage,
    business_day,
    contribution_score,
    expires_at,
    is_expired,
    month_key,
    points_earned,
    product_eligibility,
    start_of_day,
    take_oldest_first,
    window_start,
)
from services.pricing.metrics import after_commit
from services.pricing.models import (
    PricingCustomer,
    PricingExpiryRun,
    PricingFee,
    PricingPointsLedger,
    PricingPointsLot,
    PricingRedemption,
    PricingUsage,
)

log = logging.getLogger(__name__)

AUTO_OFFSET_RULE = "points.offset"
REDEEM_RULE = "points.redeem"
EXPIRY_RULE = "points.expiry"


@dataclass(frozen=True)
class Rules:
    """The pricing settings of one process, with what is derived from them once."""

    pricing: PricingSettings
    engine: PricingEngine
    zone: ZoneInfo
    tier_ranks: dict[str, int]

    @property
    def lowest_tier(self) -> str:
        return min(self.tier_ranks, key=self.tier_ranks.get)

    @property
    def expiry_years(self) -> int:
        return self.pricing.points.expiry_calendar_years


_RULES: dict[int, tuple[Settings, Rules]] = {}


def rules_of(settings: Settings) -> Rules:
    """The pricing rules of these settings, built once per settings object."""
    cached = _RULES.get(id(settings))
    if cached is None or cached[0] is not settings:
        ranks = {t.id: i for i, t in enumerate(settings.tiers)}
        rules = Rules(settings.pricing, PricingEngine(settings.pricing, KNOWN_TX_TYPES),
                      settings.zone, ranks)
        cached = (settings, rules)
        _RULES[id(settings)] = cached
    return cached[1]


def unknown_tier_ids(settings: Settings) -> set[str]:
    """Tier ids the pricing settings name that are not tiers of the bank."""
    return settings.pricing.tier_ids_named() - {t.id for t in settings.tiers}


# --- handlers -------------------------------------------------------------------------------


async def on_posting_tiered(event: Event, uow: UnitOfWork) -> None:
    """Price a posting with the tier tiering passed on with it, once per ``posting_id``.

    The tier is the one in force right after the posting in the customer's ordered stream (see
    the package docstring); the month's free-use counter, the contribution score and the points
    are this service's own state, read and written in the same transaction as the fee.
    """
    tiered: PostingTieredV1 = event.data
    p = tiered.posting
    session = uow.session
    await session.flush()  # earlier events of the batch must be visible to the queries below
    if await session.scalar(select(PricingFee.id).where(PricingFee.posting_id == p.posting_id)):
        after_commit(uow, metrics.DUPLICATE_POSTINGS.inc)
        return
    rules = rules_of(uow.settings)
    customer = await _customer(uow, p.customer_id)
    _note_tier(customer, tiered.tier, event.time)
    customer.aum, customer.average_aum_12m = tiered.aum, tiered.average_aum_12m
    day = business_day(p.posted_at, rules.zone)
    month = month_key(day)
    book = PointsBook(uow, customer, rules)
    await book.expire_due(day)

    tx = Transaction.of(p)
    fee = rules.engine.schedule.match(tx) if tx.tx_type in KNOWN_TX_TYPES else None
    usage = await _usage(session, p.customer_id, month, fee.id) if fee else None
    fees_paid = await fees_paid_in_window(session, p.customer_id, month, rules) if fee else ZERO
    score = contribution_score(tiered.average_aum_12m, fees_paid, rules.pricing.contribution)
    spendable, points_rule = spendable_points(customer)
    priced = rules.engine.price(tx, PricingContext(
        tiered.tier, {fee.id: Usage(usage.uses, usage.free_uses)} if usage else {}, score, spendable,
        points_rule))

    if priced.points_used:
        await book.spend(priced.points_used, points_rule, p.posting_id, p.posted_at)
        if points_rule == REDEEM_RULE:
            customer.redeem_allowance -= priced.points_used
    earned, earn_rule = points_earned(tx, rules.pricing.points.earn)
    if earned:
        await book.earn(earned, day.year, earn_rule, p.posting_id, p.posted_at)
        priced = priced.with_steps(Step(earn_rule, "earn", ZERO, f"{earned} points earned on {tx.amount}",
                                        points=earned))
    if usage is not None:
        usage.uses += 1
        usage.free_uses += int(priced.free_use)
        usage.charged += priced.charged
        usage.paid += priced.net

    session.add(PricingFee(
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
    ))
    uow.emit(FeeAssessedV1(
        posting_id=p.posting_id, customer_id=p.customer_id, fee_id=priced.fee_id, tier=tiered.tier,
        base=priced.base, waived=priced.waived, discount=priced.discount,
        points_used=priced.points_used, net=priced.net, rules=priced.rules, posted_at=p.posted_at,
        points_earned=earned, points_balance=customer.points_balance,
    ), stable_id=f"fee:{p.posting_id}")
    after_commit(uow, lambda: _count(priced, tiered.tier, earned, earn_rule, points_rule))


async def on_tier_changed(event: Event, uow: UnitOfWork) -> None:
    """Keep the customer's tier now, for quotes and products (postings carry their own)."""
    data: TierChangedV1 = event.data
    customer = await _customer(uow, data.customer_id)
    _note_tier(customer, data.to, event.time)


async def on_customer(event: Event, uow: UnitOfWork) -> None:
    """Keep the customer's choice of automatic points offset and risk preference (core banking
    records only; an older record never overwrites a newer one)."""
    data: CustomerV1 = event.data
    if data.source != "core":
        return
    customer = await _customer(uow, data.customer_id)
    if customer.master_updated_at is not None and data.updated_at < customer.master_updated_at:
        return
    customer.auto_points_offset = data.auto_points_offset
    customer.risk_level = data.risk_level
    customer.master_updated_at = data.updated_at


def _count(priced: PricedFee, tier: str, earned: int, earn_rule: str | None, points_rule: str) -> None:
    metrics.POSTINGS_PRICED.labels(tier).inc()
    if any(s.rule == "unknown_tx_type" for s in priced.steps):
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


# --- the steps the handlers share ----------------------------------------------------------


async def _customer(uow: UnitOfWork, customer_id: str, *, create: bool = True) -> PricingCustomer | None:
    """The customer's row, locked for this transaction (PostgreSQL ``FOR UPDATE``) so that the
    consumer, a redemption request and the expiry job never overwrite each other's points."""
    session = uow.session
    locked: set[str] = session.sync_session.info.setdefault("pricing_locked", set())
    if customer_id in locked:
        return await session.get(PricingCustomer, customer_id)
    customer = await session.get(PricingCustomer, customer_id, with_for_update=True)
    if customer is None:
        if not create:
            return None
        customer = PricingCustomer(
            customer_id=customer_id, tier=None, tier_as_of=None, aum=ZERO, average_aum_12m=ZERO,
            risk_level=None, auto_points_offset=False, master_updated_at=None, points_balance=0,
            points_oldest_year=None, redeem_allowance=0,
        )
        session.add(customer)
    locked.add(customer_id)
    return customer


def _note_tier(customer: PricingCustomer, tier: str, decided_at: datetime) -> None:
    """Tiering decides a customer's tiers one after another, so the latest decision is the tier
    now, whichever of its topics brought it first."""
    if customer.tier_as_of is None or decided_at >= customer.tier_as_of:
        customer.tier, customer.tier_as_of = tier, decided_at


async def _usage(session: AsyncSession, customer_id: str, month: str, fee_id: str) -> PricingUsage:
    usage = await session.get(PricingUsage, (customer_id, month, fee_id))
    if usage is None:
        usage = PricingUsage(customer_id=customer_id, month=month, fee_id=fee_id, uses=0,
                             free_uses=0, charged=ZERO, paid=ZERO)
        session.add(usage)
    return usage


async def fees_paid_in_window(session: AsyncSession, customer_id: str, month: str, rules: Rules) -> Decimal:
    """Fees the customer paid (in cash, after points) in ``month`` and the months before it
    that make up the contribution window."""
    start = window_start(month, rules.pricing.contribution.window_months)
    total = await session.scalar(
        select(func.sum(PricingUsage.paid)).where(
            PricingUsage.customer_id == customer_id, PricingUsage.month >= start,
            PricingUsage.month <= month)
    )
    return total if total is not None else ZERO


def spendable_points(customer: PricingCustomer) -> tuple[int, str]:
    """Points that may pay the next fee: all of them for a customer who opted in to automatic
    offset, else what they asked to redeem."""
    if customer.auto_points_offset:
        return customer.points_balance, AUTO_OFFSET_RULE
    return min(customer.points_balance, customer.redeem_allowance), REDEEM_RULE


class PointsBook:
    """A customer's points within one transaction: lots by earn year, each change written to
    the ledger with its cause, and the balance kept equal to the lots' sum."""

    def __init__(self, uow: UnitOfWork, customer: PricingCustomer, rules: Rules) -> None:
        self.uow = uow
        self.customer = customer
        self.rules = rules
        self._lots: dict[int, PricingPointsLot] | None = None

    async def lots(self) -> dict[int, PricingPointsLot]:
        if self._lots is None:
            rows = (await self.uow.session.execute(
                select(PricingPointsLot).where(PricingPointsLot.customer_id == self.customer.customer_id)
            )).scalars().all()
            self._lots = {lot.year: lot for lot in rows}
        return self._lots

    async def expire_due(self, on: date, *, check_all: bool = False) -> int:
        """Expire every lot whose last valid year ended before ``on``; returns the points."""
        oldest = self.customer.points_oldest_year
        if not check_all and (oldest is None or not is_expired(oldest, on, self.rules.expiry_years)):
            return 0
        total = 0
        for year, lot in sorted((await self.lots()).items()):
            if lot.remaining > 0 and is_expired(year, on, self.rules.expiry_years):
                points = lot.remaining
                lot.expired += points
                total += points
                self._write("expire", -points, year, EXPIRY_RULE, None,
                            expires_at(year, self.rules.expiry_years, self.rules.zone),
                            f"points earned in {year} expired at the end of "
                            f"{year + self.rules.expiry_years - 1}")
        self._refresh_oldest()
        if total:
            after_commit(self.uow, lambda: metrics.POINTS_EXPIRED.inc(total))
        return total

    async def spend(self, points: int, rule: str, posting_id: str, at: datetime) -> None:
        lots = await self.lots()
        taken = take_oldest_first({y: lot.remaining for y, lot in lots.items()}, points)
        for year, n in taken.items():
            lots[year].spent += n
            self._write("spend", -n, year, rule, posting_id, at, f"{n} points of {year} paid a fee")
        self._refresh_oldest()

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
        self._refresh_oldest()

    def _write(self, kind: str, points: int, year: int, rule: str, posting_id: str | None,
               at: datetime, note: str) -> None:
        self.customer.points_balance += points
        self.uow.session.add(PricingPointsLedger(
            customer_id=self.customer.customer_id, kind=kind, points=points,
            balance_after=self.customer.points_balance, lot_year=year, rule=rule,
            posting_id=posting_id, at=at, recorded_at=datetime.now(timezone.utc), note=note,
        ))

    def _refresh_oldest(self) -> None:
        years = [y for y, lot in (self._lots or {}).items() if lot.remaining > 0]
        self.customer.points_oldest_year = min(years) if years else None


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
    session = uow.session
    earlier = await session.get(PricingRedemption, request_id)
    if earlier is not None:
        if earlier.customer_id != customer_id:
            raise Refused(f"request {request_id} was made for another customer")
        customer = await _customer(uow, customer_id, create=False)
        return _redemption_view(customer, earlier, repeated=True)
    customer = await _customer(uow, customer_id, create=False)
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
    session.add(row)
    return _redemption_view(customer, row, repeated=False)


def _redemption_view(customer: PricingCustomer, row: PricingRedemption, *, repeated: bool) -> dict:
    return {"request_id": row.request_id, "customer_id": row.customer_id, "points": row.points,
            "requested_at": row.requested_at, "redeem_allowance": customer.redeem_allowance,
            "points_balance": customer.points_balance, "repeated": repeated}


async def expire_points(runtime, on: date, chunk: int = 500) -> dict:
    """The daily expiry: every lot whose last valid year ended before ``on`` loses what is left
    of it, one ledger row per lot. Idempotent: an expired lot has nothing left to expire, so a
    second run for the same date (or an earlier one) changes nothing.

    Customers are swept in chunks, each its own transaction (a deadlock with the consumer is
    retried), so a bank-wide run never holds every customer's lock at once.
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
                async with runtime.db.transaction() as session:
                    uow = UnitOfWork(session, "pricing", settings, cause=f"points-expiry:{on}")
                    done_customers = done_points = 0
                    for customer_id in part:
                        customer = await _customer(uow, customer_id, create=False)
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
        run = await session.get(PricingExpiryRun, on, with_for_update=True)
        if run is None:
            run = PricingExpiryRun(business_date=on, first_run_at=now, last_run_at=now, customers=0, points=0)
            session.add(run)
        run.last_run_at = now
        run.customers += customers
        run.points += points
        first_run_at = run.first_run_at
    return {"date": on, "customers": customers, "points_expired": points,
            "expired_years_through": last_expired_year, "first_run_at": first_run_at}


# --- queries --------------------------------------------------------------------------------


def fee_view(row: PricingFee) -> dict:
    return {
        "posting_id": row.posting_id, "fee_id": row.fee_id, "base": row.base, "waived": row.waived,
        "discount": row.discount, "points_used": row.points_used, "net": row.net,
        "rules": json.loads(row.rules), "tier": row.tier, "tx_type": row.tx_type,
        "amount": row.amount, "posted_at": row.posted_at, "use_number": row.use_number,
        "points_value": row.points_value, "points_earned": row.points_earned,
        "points_balance": row.points_balance, "contribution_score": row.contribution_score,
        "breakdown": json.loads(row.breakdown),
    }


def ledger_view(row: PricingPointsLedger) -> dict:
    return {"id": row.id, "kind": row.kind, "points": row.points, "balance_after": row.balance_after,
            "lot_year": row.lot_year, "rule": row.rule, "posting_id": row.posting_id, "at": row.at,
            "note": row.note}


async def fees_view(session: AsyncSession, customer_id: str, limit: int, before_id: int | None,
                    ledger_limit: int = 20) -> dict | None:
    """The customer's priced postings, newest first, with the points balance and latest ledger."""
    customer = await session.get(PricingCustomer, customer_id)
    if customer is None:
        return None
    q = select(PricingFee).where(PricingFee.customer_id == customer_id)
    if before_id is not None:
        q = q.where(PricingFee.id < before_id)
    rows = (await session.execute(q.order_by(PricingFee.id.desc()).limit(limit + 1))).scalars().all()
    ledger = (await session.execute(
        select(PricingPointsLedger).where(PricingPointsLedger.customer_id == customer_id)
        .order_by(PricingPointsLedger.id.desc()).limit(ledger_limit)
    )).scalars().all()
    return {
        "customer_id": customer_id,
        "items": [fee_view(r) for r in rows[:limit]],
        "next_id": rows[limit - 1].id if len(rows) > limit else None,
        "points_balance": customer.points_balance,
        "auto_points_offset": customer.auto_points_offset,
        "redeem_allowance": customer.redeem_allowance,
        "points_ledger": [ledger_view(r) for r in ledger],
    }


async def points_view(session: AsyncSession, settings: Settings, customer_id: str, limit: int,
                      before_id: int | None) -> dict | None:
    """Balance, lots by earn year with their expiry, and the ledger newest first."""
    customer = await session.get(PricingCustomer, customer_id)
    if customer is None:
        return None
    rules = rules_of(settings)
    lots = (await session.execute(
        select(PricingPointsLot).where(PricingPointsLot.customer_id == customer_id)
        .order_by(PricingPointsLot.year)
    )).scalars().all()
    q = select(PricingPointsLedger).where(PricingPointsLedger.customer_id == customer_id)
    if before_id is not None:
        q = q.where(PricingPointsLedger.id < before_id)
    rows = (await session.execute(q.order_by(PricingPointsLedger.id.desc()).limit(limit + 1))).scalars().all()
    return {
        "customer_id": customer_id,
        "points_balance": customer.points_balance,
        "auto_points_offset": customer.auto_points_offset,
        "redeem_allowance": customer.redeem_allowance,
        "lots": [{"year": lot.year, "earned": lot.earned, "spent": lot.spent, "expired": lot.expired,
                  "remaining": lot.remaining,
                  "expires_at": expires_at(lot.year, rules.expiry_years, rules.zone)} for lot in lots],
        "items": [ledger_view(r) for r in rows[:limit]],
        "next_id": rows[limit - 1].id if len(rows) > limit else None,
    }


async def quote(session: AsyncSession, settings: Settings, customer_id: str, tx: Transaction,
                at: datetime) -> dict:
    """What ``tx`` would cost the customer at ``at`` (now): their tier now, this month's uses,
    their contribution score and points, exactly as a posting would be priced. Reads only."""
    rules = rules_of(settings)
    customer = await session.get(PricingCustomer, customer_id)
    day = business_day(at, rules.zone)
    month = month_key(day)
    tier = customer.tier if customer is not None and customer.tier else rules.lowest_tier
    fee = rules.engine.schedule.match(tx) if tx.tx_type in KNOWN_TX_TYPES else None
    uses, fees_paid = {}, ZERO
    if fee is not None:
        usage = await session.get(PricingUsage, (customer_id, month, fee.id))
        uses = {fee.id: Usage(usage.uses, usage.free_uses)} if usage is not None else {}
        fees_paid = await fees_paid_in_window(session, customer_id, month, rules)
    average = customer.average_aum_12m if customer is not None else ZERO
    score = contribution_score(average, fees_paid, rules.pricing.contribution)
    spendable, points_rule = 0, AUTO_OFFSET_RULE
    if customer is not None and customer.points_balance > 0:
        lots = (await session.execute(
            select(PricingPointsLot).where(PricingPointsLot.customer_id == customer_id)
        )).scalars().all()
        expired = sum(lot.remaining for lot in lots if is_expired(lot.year, day, rules.expiry_years))
        balance = customer.points_balance - expired
        spendable, points_rule = spendable_points(customer)
        spendable = min(spendable, balance)
    priced = rules.engine.price(tx, PricingContext(tier, uses, score, spendable, points_rule))
    earned, earn_rule = points_earned(tx, rules.pricing.points.earn)
    if earned:
        priced = priced.with_steps(Step(earn_rule, "earn", ZERO, f"{earned} points earned on {tx.amount}",
                                        points=earned))
    return {
        "posting_id": None, "customer_id": customer_id, "fee_id": priced.fee_id, "base": priced.base,
        "waived": priced.waived, "discount": priced.discount, "points_used": priced.points_used,
        "net": priced.net, "rules": priced.rules, "tier": tier, "at": at,
        "use_number": priced.use_number, "points_value": priced.points_value,
        "points_earned": earned, "contribution_score": score,
        "breakdown": [s.as_dict() for s in priced.steps],
    }


async def simulate(session: AsyncSession, settings: Settings, proposal: PricingSettings,
                   first: date, last: date) -> dict:
    """Price the stored postings of ``first``..``last`` (business dates) again under
    ``proposal`` and compare with what they were charged: fee income, waivers and discounts by
    tier and fee, old against new. Changes nothing.

    The postings of the first month before ``first`` are priced too (not reported), so free
    uses are counted from the 1st. Contribution scores are rebuilt from what each posting was
    priced on; points are a way of paying, so income is counted before them.
    """
    rules = rules_of(settings)
    repricer = Repricer(PricingEngine(proposal, KNOWN_TX_TYPES), proposal.contribution)
    start = start_of_day(first.replace(day=1), rules.zone)
    end = start_of_day(last + timedelta(days=1), rules.zone)
    f = PricingFee
    result = await session.stream(
        select(f.customer_id, f.month, f.tier, f.tx_type, f.amount, f.channel, f.counterparty_bank,
               f.cross_region, f.product_type, f.direction, f.average_aum_12m, f.fees_paid,
               f.posted_at, f.fee_id, f.base, f.waived, f.discount)
        .where(f.posted_at >= start, f.posted_at < end)
        .order_by(f.customer_id, f.id)
        .execution_options(yield_per=2000)
    )
    old: dict[tuple[str, str], FeeTotals] = {}
    new: dict[tuple[str, str], FeeTotals] = {}
    reported = 0
    async for row in result:
        tx = Transaction(row.tx_type, row.amount, row.channel, row.counterparty_bank,
                         row.cross_region, row.product_type, row.direction)
        priced = repricer.price(StoredPosting(row.customer_id, row.month, row.tier, tx,
                                              row.average_aum_12m, row.fees_paid))
        if business_day(row.posted_at, rules.zone) < first:
            continue  # only warms the month's free-use counters
        reported += 1
        if row.fee_id is not None:
            old.setdefault((row.tier, row.fee_id), FeeTotals()).add(row.base, row.waived, row.discount)
        if priced.fee_id is not None:
            new.setdefault((row.tier, priced.fee_id), FeeTotals()).add(
                priced.base, priced.waived, priced.discount)
    keys = sorted(set(old) | set(new), key=lambda k: (rules.tier_ranks.get(k[0], 99), k[0], k[1]))
    items = []
    for key in keys:
        o, n = old.get(key, FeeTotals()), new.get(key, FeeTotals())
        items.append({"tier": key[0], "fee_id": key[1], "old": o.as_dict(), "new": n.as_dict(),
                      "change": _change(o, n)})
    total_old, total_new = _sum(old.values()), _sum(new.values())
    return {"from": first, "to": last, "postings": reported, "items": items,
            "totals": {"old": total_old.as_dict(), "new": total_new.as_dict(),
                       "change": _change(total_old, total_new)}}


def _change(o: FeeTotals, n: FeeTotals) -> dict:
    return {"income": n.income - o.income, "waived": n.waived - o.waived,
            "discount": n.discount - o.discount}


def _sum(groups) -> FeeTotals:
    total = FeeTotals()
    for g in groups:
        total.count += g.count
        total.charged_count += g.charged_count
        total.base += g.base
        total.waived += g.waived
        total.discount += g.discount
    return total


async def eligible_products(session: AsyncSession, settings: Settings, customer_id: str,
                            on: date) -> dict | None:
    """The catalogue as this customer sees it on ``on``: what they may buy (with priority
    purchase where it applies) and why the rest is refused."""
    customer = await session.get(PricingCustomer, customer_id)
    if customer is None:
        return None
    rules = rules_of(settings)
    tier = customer.tier or rules.lowest_tier
    checks: list[Eligibility] = [product_eligibility(p, tier, customer.risk_level, on, rules.tier_ranks)
                                 for p in rules.pricing.products]
    return {
        "customer_id": customer_id, "tier": tier, "risk_level": customer.risk_level, "date": on,
        "items": [{"code": e.code, "name": e.name, "priority": e.priority} for e in checks if e.eligible],
        "ineligible": [{"code": e.code, "name": e.name, "reasons": list(e.reasons)}
                       for e in checks if not e.eligible],
    }
