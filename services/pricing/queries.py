"""The reads behind pricing's views: a customer's fees and points, quotes, the what-if and
products by tier. Nothing here writes."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.contracts.types import KNOWN_TX_TYPES
from shared.money import ZERO
from shared.runtime.transaction import BatchTransaction
from shared.settings import Settings
from shared.settings.pricing import PricingSettings
from services.pricing.domain import (
    Eligibility,
    FeeTotals,
    PricingEngine,
    Repricer,
    Step,
    StoredPosting,
    Transaction,
    business_day,
    expires_at,
    points_earned,
    product_eligibility,
    start_of_day,
)
from services.pricing.models import (
    PricingCustomer,
    PricingFee,
    PricingFeeAdjustment,
    PricingPointsLedger,
    PricingPointsLot,
)
from services.pricing.rules import Rules
from services.pricing.service import assess
from services.pricing.state import PointsBook, PricingState


def fee_view(row: PricingFee) -> dict:
    return {
        "posting_id": row.posting_id, "fee_id": row.fee_id, "base": row.base, "waived": row.waived,
        "discount": row.discount, "points_used": row.points_used, "net": row.net,
        "rules": json.loads(row.rules), "tier": row.tier, "tx_type": row.tx_type,
        "amount": row.amount, "posted_at": row.posted_at, "use_number": row.use_number,
        "points_value": row.points_value, "points_earned": row.points_earned,
        "points_balance": row.points_balance, "contribution_score": row.contribution_score,
        "aum": row.aum, "breakdown": json.loads(row.breakdown),
    }


def adjustment_view(row: PricingFeeAdjustment) -> dict:
    return {"adjustment_id": row.adjustment_id, "posting_id": row.posting_id, "fee_id": row.fee_id,
            "posted_at": row.posted_at, "tier_before": row.tier_before, "tier_after": row.tier_after,
            "net_before": row.net_before, "net_after": row.net_after, "difference": row.difference,
            "points_returned": row.points_returned, "reason": row.reason, "rules": json.loads(row.rules),
            "breakdown": json.loads(row.breakdown), "effective_at": row.effective_at,
            "recorded_at": row.recorded_at}


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
    adjustments = (await session.execute(
        select(PricingFeeAdjustment).where(PricingFeeAdjustment.customer_id == customer_id)
        .order_by(PricingFeeAdjustment.id.desc()).limit(ledger_limit)
    )).scalars().all()
    return {
        "customer_id": customer_id,
        "items": [fee_view(r) for r in rows[:limit]],
        "next_id": rows[limit - 1].id if len(rows) > limit else None,
        "points_balance": customer.points_balance,
        "auto_points_offset": customer.auto_points_offset,
        "redeem_allowance": customer.redeem_allowance,
        "points_ledger": [ledger_view(r) for r in ledger],
        "adjustments": [adjustment_view(r) for r in adjustments],
    }


async def points_view(session: AsyncSession, settings: Settings, customer_id: str, limit: int,
                      before_id: int | None) -> dict | None:
    """Balance, lots by earn year with their expiry, and the ledger newest first."""
    customer = await session.get(PricingCustomer, customer_id)
    if customer is None:
        return None
    rules = Rules.of(settings)
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


async def quote(tx: BatchTransaction, customer_id: str, t: Transaction, at: datetime) -> dict | None:
    """What ``t`` would cost the customer at ``at`` (now): their tier now, this month's uses,
    their contribution score and points, priced by the very function that prices a posting
    (``service.assess``). Changes nothing. None for a customer pricing does not know."""
    day = business_day(at, tx.settings.zone)
    state = tx.state = await PricingState.for_customer(tx, customer_id, day, lock=False)
    customer = state.customers[customer_id]
    if customer is None:
        return None
    rules = state.rules
    tier = customer.tier or rules.lowest_tier
    a = assess(state, PointsBook(tx, customer), t, tier, day, customer.average_aum_12m)
    priced = a.priced
    earned, earn_rule = points_earned(t, rules.pricing.points.earn)
    if earned:
        priced = priced.with_steps(Step(earn_rule, "earn", ZERO, f"{earned} points earned on {t.amount}",
                                        points=earned))
    return {
        "posting_id": None, "customer_id": customer_id, "fee_id": priced.fee_id, "base": priced.base,
        "waived": priced.waived, "discount": priced.discount, "points_used": priced.points_used,
        "net": priced.net, "rules": priced.rules, "tier": tier, "at": at,
        "use_number": priced.use_number, "points_value": priced.points_value,
        "points_earned": earned, "contribution_score": a.score,
        "breakdown": [s.as_dict() for s in priced.steps],
    }


class UnknownInProposal(ValueError):
    """A proposal names fees or tiers that are not configured."""


def apply_proposal(pricing: PricingSettings, tiers: list[str], *, fees: list[dict] | None = None,
                   benefits: dict[str, list[dict]] | None = None,
                   contribution: dict | None = None) -> PricingSettings:
    """The configured pricing with a what-if's changes, and nothing else changed: each fee in
    ``fees`` (by id) takes the fields given over its configured ones; each tier named in
    ``benefits`` gets exactly the benefits given, every other tier keeps its own; the
    ``contribution`` fields given replace the configured ones. A fee id or tier id that is not
    configured is refused, naming each; the result is validated as settings are."""
    merged = pricing.model_dump()
    unknown = []
    if fees:
        by_id = {f["id"]: f for f in merged["fees"]}
        unknown += [f"fee {f['id']}" for f in fees if f["id"] not in by_id]
        for change in fees:
            if change["id"] in by_id:
                by_id[change["id"]].update(change)
        merged["fees"] = [by_id[f["id"]] for f in merged["fees"]]
    if benefits:
        unknown += [f"tier {t}" for t in sorted(benefits) if t not in tiers]
        merged["benefits"] = {**merged["benefits"], **benefits}
    if unknown:
        raise UnknownInProposal(f"the proposal names what is not configured: {', '.join(unknown)}")
    if contribution:
        merged["contribution"].update(contribution)
    return PricingSettings.model_validate(merged)


async def simulate(session: AsyncSession, settings: Settings, proposal: PricingSettings,
                   first: date, last: date) -> dict:
    """Price the stored postings of ``first``..``last`` (business dates) again under
    ``proposal`` and compare with what they were charged: fee income, waivers and discounts by
    tier and fee, old against new. Changes nothing.

    The postings of the first month before ``first`` are priced too (not reported), so free
    uses are counted from the 1st. Contribution scores are rebuilt from what each posting was
    priced on; points are a way of paying, so income is counted before them.
    """
    rules = Rules.of(settings)
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
    total_old, total_new = FeeTotals.of(old.values()), FeeTotals.of(new.values())
    return {"from": first, "to": last, "postings": reported, "items": items,
            "totals": {"old": total_old.as_dict(), "new": total_new.as_dict(),
                       "change": _change(total_old, total_new)}}


def _change(o: FeeTotals, n: FeeTotals) -> dict:
    return {"income": n.income - o.income, "waived": n.waived - o.waived,
            "discount": n.discount - o.discount}



async def eligible_products(session: AsyncSession, settings: Settings, customer_id: str,
                            on: date) -> dict | None:
    """The catalogue as this customer sees it on ``on``: what they may buy (with priority
    purchase where it applies) and why the rest is refused."""
    customer = await session.get(PricingCustomer, customer_id)
    if customer is None:
        return None
    rules = Rules.of(settings)
    tier = customer.tier or rules.lowest_tier
    checks: list[Eligibility] = [product_eligibility(p, tier, customer.risk_level, on, rules.tier_ranks)
                                 for p in rules.pricing.products]
    return {
        "customer_id": customer_id, "tier": tier, "risk_level": customer.risk_level, "date": on,
        "items": [{"code": e.code, "name": e.name, "priority": e.priority} for e in checks if e.eligible],
        "ineligible": [{"code": e.code, "name": e.name, "reasons": list(e.reasons)}
                       for e in checks if not e.eligible],
    }
