"""What the views read: the customer 360 and the branch report, both from profile's own read
model (indexed reads, no calls to other services)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import case, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.money import ZERO, format_money
from shared.settings import Settings
from services.profile.domain import Identity, age_on, combined_aum, identity_for, month_bounds, start_of_day
from services.profile.models import (
    BALANCE_COLUMNS,
    ProfileAccount,
    ProfileAttribute,
    ProfileCustomer,
    ProfileCustomerFlow,
    ProfileFeePosting,
    ProfileSignal,
    ProfileTierChange,
)

C = ProfileCustomer
A = ProfileAccount
F = ProfileCustomerFlow
DEPOSIT_TYPES = ("demand_deposit", "time_deposit")


# --- customer 360 ---------------------------------------------------------------------------


async def customer_360(session: AsyncSession, settings: Settings, customer_id: str, today: date, *,
                       unmasked: bool) -> dict[str, Any] | None:
    """Profile, holdings, AUM, tier, RM, open signals and points of one customer; identity
    numbers and phones masked unless ``unmasked`` (an unmasked role that stated its purpose)."""
    customer = await session.get(ProfileCustomer, customer_id)
    if customer is None:
        return None
    accounts = (await session.execute(
        select(ProfileAccount).where(A.customer_id == customer_id, A.event_at.is_not(None))
        .order_by(A.account_id)
    )).scalars().all()
    signals = (await session.execute(
        select(ProfileSignal).where(ProfileSignal.customer_id == customer_id, ProfileSignal.status == "open")
        .order_by(ProfileSignal.raised_at, ProfileSignal.id)
    )).scalars().all()
    month_start, _ = month_bounds(today)
    fees_mtd = await session.scalar(
        select(func.sum(ProfileFeePosting.net)).where(
            ProfileFeePosting.customer_id == customer_id,
            ProfileFeePosting.posted_at >= start_of_day(month_start, settings.zone))
    )
    identity = Identity(customer.id_number, customer.phone)
    if not unmasked:
        identity = identity_for("", (), identity)
    holdings = [_holding(a, settings.profile.products) for a in accounts]
    return {
        "customer_id": customer.customer_id,
        "profile": {
            "name": customer.name,
            "id_number": identity.id_number,
            "phone": identity.phone,
            "birth_date": customer.birth_date,
            "age": age_on(customer.birth_date, today) if customer.birth_date else None,
            "gender": customer.gender,
            "home_branch_id": customer.home_branch_id,
            "household": await _household(session, customer),
            "risk_level": customer.risk_level,
            "tags": json.loads(customer.tags),
            "auto_points_offset": customer.auto_points_offset,
            "attributes": await _attributes(session, customer_id),
            "updated_at": customer.master_updated_at,
        },
        "holdings": holdings,
        "loans": [h for h in holdings if h["product_type"] == "loan"],
        "credit_cards": [h for h in holdings if h["product_type"] == "credit_card"],
        "aum": customer.aum,
        "mtd_average_daily_aum": customer.mtd_average_daily_aum,
        "aum_by_product_type": json.loads(customer.aum_by_product_type),
        "liabilities": json.loads(customer.liabilities),
        "aum_as_of": customer.aum_as_of,
        "business_date": customer.aum_business_date,
        "tier": customer.tier,
        "watch": customer.watch,
        "tier_effective_at": customer.tier_effective_at,
        "rm": {"primary": customer.primary_rm, "backup": customer.backup_rm},
        "open_signals": [_signal(s) for s in signals],
        "points_balance": customer.points_balance,
        "fees": {"charged_total": customer.fees_charged, "charged_mtd": fees_mtd or ZERO,
                 "priced_postings": customer.fees_priced},
        "last_contact": customer.last_contact_at,
    }


def _holding(a: ProfileAccount, products: dict[str, str]) -> dict[str, Any]:
    return {"account_id": a.account_id, "product_type": a.product_type, "product_code": a.product_code,
            "product_name": products.get(a.product_code), "branch_id": a.branch_id, "status": a.status,
            "balance": a.balance, "opened_on": a.opened_on, "maturity_date": a.maturity_date,
            "card_expiry": a.card_expiry}


def _signal(s: ProfileSignal) -> dict[str, Any]:
    return {"id": s.id, "signal_type": s.signal_type, "customer_id": s.customer_id, "rm_id": s.rm_id,
            "branch_id": s.branch_id, "status": s.status, "raised_at": s.raised_at,
            "evidence": json.loads(s.evidence)}


async def _household(session: AsyncSession, customer: ProfileCustomer) -> dict[str, Any] | None:
    if not customer.household_id:
        return None
    members = (await session.execute(
        select(C.customer_id, C.name, C.household_role, C.aum)
        .where(C.household_id == customer.household_id).order_by(C.customer_id)
    )).all()
    return {
        "household_id": customer.household_id,
        "role": customer.household_role,
        "members": [{"customer_id": m.customer_id, "name": m.name, "role": m.household_role, "aum": m.aum}
                    for m in members],
        "combined_aum": combined_aum(m.aum for m in members),
    }


async def _attributes(session: AsyncSession, customer_id: str) -> dict[str, dict[str, Any]]:
    """``{source: {name: {"value", "updated_at"}}}``: the latest value from each source."""
    rows = (await session.execute(
        select(ProfileAttribute).where(ProfileAttribute.customer_id == customer_id)
        .order_by(ProfileAttribute.source, ProfileAttribute.name)
    )).scalars()
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        found.setdefault(row.source, {})[row.name] = {"value": json.loads(row.value),
                                                      "updated_at": row.updated_at}
    return found


# --- branch report --------------------------------------------------------------------------


async def branch_known(session: AsyncSession, branch_id: str) -> bool:
    """Whether any customer has this home branch or any account is kept at it."""
    home = await session.scalar(select(C.customer_id).where(C.home_branch_id == branch_id).limit(1))
    return home is not None or await session.scalar(
        select(A.account_id).where(A.branch_id == branch_id).limit(1)) is not None


async def branch_report(session: AsyncSession, settings: Settings, branch_id: str, day: date) -> dict[str, Any]:
    """The branch's figures for its own customers (home branch: at the top level, as the
    contract names them) and, under ``account_holders``, for the customers holding an account
    that is not closed at the branch.

    Members are the customers of the moment the report is asked: whoever has the branch as
    home branch, or holds a non-closed account there, now. Inflow and outflow are summed over
    them, each member's flow of a business day taken on the day's net AUM change
    (:func:`services.profile.domain.flow_of_day`): ``*_today`` for ``day``, ``*_mtd`` from the
    first of ``day``'s month to ``day``. A customer who moved to the branch or opened an account
    there counts for it with their whole month; a past ``day`` gives exact figures of that day
    and month for today's members. Tiers, AUM, deposits and products are the members' current
    ones whatever ``day`` is. Every figure is a function of the read model's final state, never
    of the order its events arrived in: the same events in any order give the same report."""
    home_members = select(C.customer_id).where(C.home_branch_id == branch_id)
    holders = select(A.customer_id).where(A.branch_id == branch_id, A.status != "closed").distinct()
    home = await _view(session, settings, day, home_members, select(A).where(A.customer_id.in_(home_members)))
    account = await _view(session, settings, day, holders, select(A).where(A.branch_id == branch_id))
    first, _ = month_bounds(day)
    return {"branch_id": branch_id, "business_date": day, "month": f"{first:%Y-%m}", **home,
            "account_holders": account}


async def _view(session: AsyncSession, settings: Settings, day: date, members, accounts) -> dict[str, Any]:
    by_tier = {t.id: {"customers": 0, "aum": ZERO} for t in settings.tiers}
    for tier, count, aum in await session.execute(
        select(C.tier, func.count(), func.sum(C.aum)).where(C.customer_id.in_(members)).group_by(C.tier)
    ):
        by_tier[tier] = {"customers": count, "aum": aum or ZERO}
    products = await _products(session, members, accounts)
    deposits = {t: products.get(t, {}).get("balance", ZERO) for t in DEPOSIT_TYPES}
    flows = await _flows(session, members, day)
    return {
        "by_tier": by_tier,
        "customers": sum(v["customers"] for v in by_tier.values()),
        "aum": sum((v["aum"] for v in by_tier.values()), ZERO),
        "deposits": {**deposits, "total": sum(deposits.values(), ZERO)},
        "products": products,
        **flows,
        "tier_changes_mtd": await _tier_changes(session, settings, members, day),
    }


async def _products(session: AsyncSession, members, accounts) -> dict[str, dict[str, Any]]:
    """By product type: the members' balances (from their latest AUM) and the accounts (not
    closed) behind the view, with how many customers hold them."""
    products: dict[str, dict[str, Any]] = {}

    def entry(product_type: str) -> dict[str, Any]:
        return products.setdefault(product_type, {"accounts": 0, "customers": 0, "balance": ZERO,
                                                  "holders_with_balance": 0})

    columns = [getattr(C, column) for column in BALANCE_COLUMNS.values()]
    sums = (await session.execute(
        select(*(func.sum(c) for c in columns), *(func.sum(case((c != 0, 1), else_=0)) for c in columns))
        .where(C.customer_id.in_(members))
    )).one()
    for i, product_type in enumerate(BALANCE_COLUMNS):
        holders = sums[len(columns) + i] or 0
        if holders:
            e = entry(product_type)
            e["balance"], e["holders_with_balance"] = sums[i] or ZERO, holders
    held = accounts.where(A.status != "closed").subquery()
    rows = await session.execute(
        select(held.c.product_type, func.count(), func.count(distinct(held.c.customer_id)))
        .group_by(held.c.product_type)
    )
    for product_type, count, customers in rows:
        e = entry(product_type)
        e["accounts"], e["customers"] = count, customers
    return dict(sorted(products.items()))


async def _flows(session: AsyncSession, members, day: date) -> dict[str, Any]:
    """The members' inflow and outflow of each business day of the month to ``day``, and their
    sums today and month to date, in one pass over their rows of the month: ``max(net, 0)``
    and ``max(-net, 0)`` of each customer-day (``flow_of_day``), summed by the database."""
    first, _ = month_bounds(day)
    gain, loss = F.net > 0, F.net < 0
    rows = (await session.execute(
        select(F.day, func.sum(case((gain, F.net), else_=0)), func.sum(case((loss, -F.net), else_=0)))
        .where(F.customer_id.in_(members), F.day >= first, F.day <= day)
        .group_by(F.day).order_by(F.day)
    )).all()
    by_day = [{"date": d, "inflow": inflow or ZERO, "outflow": outflow or ZERO} for d, inflow, outflow in rows]
    inflow_today, outflow_today = next(((f["inflow"], f["outflow"]) for f in by_day if f["date"] == day),
                                       (ZERO, ZERO))
    inflow_mtd = sum((f["inflow"] for f in by_day), ZERO)
    outflow_mtd = sum((f["outflow"] for f in by_day), ZERO)
    return {"inflow_today": inflow_today, "outflow_today": outflow_today,
            "net_today": inflow_today - outflow_today,
            "inflow_mtd": inflow_mtd, "outflow_mtd": outflow_mtd, "net_mtd": inflow_mtd - outflow_mtd,
            "flows_by_day": by_day}


async def _tier_changes(session: AsyncSession, settings: Settings, members, day: date) -> dict[str, int]:
    first, _ = month_bounds(day)
    rows = await session.execute(
        select(ProfileTierChange.change, func.count()).where(
            ProfileTierChange.customer_id.in_(members),
            ProfileTierChange.change.in_(("upgrade", "downgrade")),
            ProfileTierChange.effective_at >= start_of_day(first, settings.zone),
            ProfileTierChange.effective_at < start_of_day(day + timedelta(days=1), settings.zone),
        ).group_by(ProfileTierChange.change)
    )
    counts = dict(rows.all())
    return {"upgrades": counts.get("upgrade", 0), "downgrades": counts.get("downgrade", 0)}


# --- branches -------------------------------------------------------------------------------


async def branches(session: AsyncSession, branch_id: str | None = None) -> list[dict[str, Any]]:
    """Every home branch with its customers and their AUM (only ``branch_id`` when given)."""
    stmt = (select(C.home_branch_id, func.count(), func.sum(C.aum)).where(C.home_branch_id.is_not(None))
            .group_by(C.home_branch_id).order_by(C.home_branch_id))
    if branch_id is not None:
        stmt = stmt.where(C.home_branch_id == branch_id)
    return [{"branch_id": b, "customers": n, "aum": aum or ZERO} for b, n, aum in await session.execute(stmt)]


def money_strings(value: Any) -> Any:
    """Decimals as the contract's two-place strings, all the way down."""
    if isinstance(value, Decimal):
        return format_money(value)
    if isinstance(value, dict):
        return {k: money_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [money_strings(v) for v in value]
    return value
