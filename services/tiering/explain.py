"""Why a customer is in their tier, in words (zh-CN or en) and figures: the decision that placed
them there (an upgrade the moment their AUM reached a floor, their first placement, a month-end
downgrade) or the lowest tier's plain fact, the watch a month-end close put them on and what
ends it, the gap to the next tier, and with household aggregation the members counted.

What would happen at the next closes is worked out with the policy's own rule
(``TierPolicy.on_month_end``) on the month so far, never a copy of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.calendar import business_day, month_key
from shared.explanations import Language, amount, says, tier_label
from shared.money import ZERO
from services.tiering.domain import DailyAum, TierPolicy, TierState
from services.tiering.models import TieringCustomer, TieringHousehold, TieringTierHistory

PLACING = ("upgrade", "initial_placement", "downgrade")


@dataclass(frozen=True)
class Decision:
    """A row of the customer's tier history."""

    change: str
    from_tier: str
    to_tier: str
    basis: Decimal
    effective_at: datetime
    reason: str


@dataclass(frozen=True)
class Standing:
    """What the explanation is worked out from."""

    customer_id: str
    tier: str
    watch: bool
    months_below: int
    aum: Decimal
    month_to_date_average: Decimal
    business_date: object
    history: Sequence[Decision]
    household_id: str | None = None
    household_aum: Decimal | None = None
    """Set with household aggregation: the household's AUM, the basis of the customer's tier."""
    members: Sequence[tuple[str, Decimal]] = ()


def explain(s: Standing, policy: TierPolicy, names: dict[str, str], zone, lang: Language) -> dict:
    """The explanation of ``s`` under ``policy``: sentences in ``lang`` and the figures."""
    t = lambda tier_id: tier_label(tier_id, names, lang)  # noqa: E731
    tier = policy.ladder.step(s.tier)
    basis_now = s.household_aum if s.household_aum is not None else s.aum
    placed = next((d for d in reversed(s.history) if d.change in PLACING and d.to_tier == s.tier), None)
    watched = next((d for d in reversed(s.history) if d.change == "watch"), None) if s.watch else None
    sentences = []
    placement = None
    if placed is not None:
        placement = _placement(placed, policy, t, zone, lang)
        sentences.append(placement.pop("sentence"))
        rule = placed.change
    elif tier.rank == 0:
        rule = "lowest_tier"
        above = policy.next_above(tier.id)
        sentences.append(says(lang, "{tier}: AUM {aum} is below the {next} floor {floor}.",
                              "{tier}：资产 {aum} 低于{next}门槛 {floor}。", tier=t(tier.id), aum=amount(basis_now),
                              next=t(above.id) if above else "—", floor=amount(above.floor if above else None)))
    else:
        rule = "no_decision_recorded"
        sentences.append(says(lang, "{tier}: no decision placing the customer in it is recorded.",
                              "{tier}：没有记录到定级的决定。", tier=t(tier.id)))
    watch = _watch(s, watched, policy, t, zone, lang) if s.watch else None
    if watch is not None:
        rule = "watch"
        sentences.append(watch.pop("sentence"))
    next_tier = _next_tier(tier.id, basis_now, policy, t, lang)
    sentences.append(next_tier.pop("sentence"))
    household = None
    if s.household_aum is not None:
        household = {"household_id": s.household_id, "aum": s.household_aum, "aggregation": True,
                     "members": [{"customer_id": c, "aum": a} for c, a in s.members]}
        sentences.append(says(lang, "Tiered on household {h}'s combined AUM {aum} (household aggregation): {members}.",
                              "按家庭 {h} 的合并资产 {aum} 定级（家庭合并）：{members}。", h=s.household_id,
                              aum=amount(s.household_aum),
                              members=("、" if lang == "zh-CN" else ", ").join(f"{c} {amount(a)}" for c, a in s.members)))
    return {"customer_id": s.customer_id, "lang": lang, "tier": s.tier, "watch": s.watch,
            "months_below": s.months_below, "rule": rule, "summary": sentences[0], "sentences": sentences,
            "aum": s.aum, "basis": basis_now, "floor": tier.floor, "placement": placement, "watch_detail": watch,
            "next_tier": next_tier, "household": household}


def _placement(d: Decision, policy: TierPolicy, t, zone, lang: Language) -> dict:
    at = d.effective_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    figures = {"change": d.change, "from": d.from_tier, "to": d.to_tier, "at": d.effective_at, "basis": d.basis}
    if d.change == "downgrade":
        left = policy.ladder.step(d.from_tier)
        month = _closed_month(d.effective_at, zone)
        figures.update(compared="month_average", floor=left.floor, month=month,
                       months_below=left.downgrade_after_months)
        figures["sentence"] = says(
            lang, "Lowered to {to} at the close of {month}: {n} consecutive months below the {left} floor {floor}; "
                  "the month's average daily AUM {basis} matches {to}.",
            "{month} 月末评估降为{to}：连续 {n} 个月低于{left}门槛 {floor}，当月日均资产 {basis} 对应{to}。",
            to=t(d.to_tier), month=month, n=left.downgrade_after_months, left=t(left.id), floor=amount(left.floor),
            basis=amount(d.basis))
        return figures
    floor = policy.ladder.step(d.to_tier).floor
    figures.update(compared="aum", floor=floor)
    if d.change == "initial_placement":
        figures["sentence"] = says(
            lang, "Placed in {to} at the first placement ({at}): AUM {basis} reached the {to} floor {floor}.",
            "首次定级（{at}）：资产 {basis} 达到{to}门槛 {floor}，定为{to}。",
            to=t(d.to_tier), at=at, basis=amount(d.basis), floor=amount(floor))
    else:
        figures["sentence"] = says(
            lang, "Upgraded from {frm} to {to} at {at}, the moment AUM {basis} reached the {to} floor {floor}.",
            "{at} 资产 {basis} 达到{to}门槛 {floor}，即时由{frm}升为{to}（快升）。",
            frm=t(d.from_tier), to=t(d.to_tier), at=at, basis=amount(d.basis), floor=amount(floor))
    return figures


def _watch(s: Standing, watched: Decision | None, policy: TierPolicy, t, zone, lang: Language) -> dict:
    """The watch: the month that started it, the months counted, what ends it, and what the
    closes still to come would do if every month stayed as this one so far."""
    tier = policy.ladder.step(s.tier)
    left = max(tier.downgrade_after_months - s.months_below, 0)
    so_far = s.month_to_date_average if s.household_aum is None else None
    basis_now = s.household_aum if s.household_aum is not None else s.aum
    # the last close that can still keep the tier, decided on this month so far
    last_chance = policy.on_month_end(TierState(tier.id, True, tier.downgrade_after_months - 1),
                                      so_far if so_far is not None else basis_now, basis_now, "next")
    downgrade_to = last_chance.state.tier if last_chance.change == "downgrade" else None
    month = _closed_month(watched.effective_at, zone) if watched else None
    figures = {"since_close_of": month, "month_average": watched.basis if watched else None, "floor": tier.floor,
               "months_below": s.months_below, "downgrade_after_months": tier.downgrade_after_months,
               "months_left": left, "downgrade_to": downgrade_to, "month_to_date_average": so_far,
               "ends_when": "a month whose average daily AUM is at or above the floor"}
    ends = says(lang, "A month whose average daily AUM is at or above {floor} ends the watch",
                "任一月日均资产达到或超过 {floor} 即解除观察", floor=amount(tier.floor))
    if downgrade_to is not None:
        then = says(lang, "; {n} more month(s) below lower the tier to {to}",
                    "；若再有 {n} 个月低于门槛，将降为{to}", n=left, to=t(downgrade_to))
    else:
        then = says(lang, "; more months below would not lower the tier while the AUM now ({aum}) still reaches it",
                    "；当前资产（{aum}）仍达到门槛，再有月份低于门槛也不会降级", aum=amount(basis_now))
    so = "" if so_far is None else says(lang, " (this month so far: {avg})", "（本月至今日均 {avg}）",
                                         avg=amount(so_far))
    start = says(lang, "On watch since the close of {month}: the month's average daily AUM {avg} was below the "
                       "{tier} floor {floor} ({n} of {k} months). ",
                 "自 {month} 月末评估起处于观察期：当月日均资产 {avg} 低于{tier}门槛 {floor}（已 {n} 个月，满 {k} 个月降级）。",
                 month=month or "—", avg=amount(watched.basis if watched else None), tier=t(tier.id),
                 floor=amount(tier.floor), n=s.months_below, k=tier.downgrade_after_months)
    figures["sentence"] = start + ends + then + so + ("。" if lang == "zh-CN" else ".")
    return figures


def _next_tier(tier_id: str, basis: Decimal, policy: TierPolicy, t, lang: Language) -> dict:
    above = policy.next_above(tier_id)
    if above is None:
        return {"tier": None, "floor": None, "gap": None,
                "sentence": says(lang, "{tier} is the top tier.", "{tier}已是最高层级。", tier=t(tier_id))}
    gap = max(above.floor - basis, ZERO)
    return {"tier": above.id, "floor": above.floor, "gap": gap,
            "sentence": says(lang, "{gap} more AUM reaches {next} (floor {floor}).",
                             "距{next}门槛 {floor} 还差 {gap}。", gap=amount(gap), next=t(above.id),
                             floor=amount(above.floor))}


def _closed_month(effective_at: datetime, zone) -> str:
    """A close's decisions take effect at the start of the next month: the month it closed."""
    return month_key(business_day(effective_at - timedelta(seconds=1), zone))


# --- reading ------------------------------------------------------------------------------


async def standing(session: AsyncSession, settings, customer_id: str) -> Standing | None:
    customer = await session.get(TieringCustomer, customer_id)
    if customer is None:
        return None
    history = [Decision(h.change, h.from_tier, h.to_tier, h.basis, h.effective_at, h.reason)
               for h in (await session.execute(select(TieringTierHistory)
                                               .where(TieringTierHistory.customer_id == customer_id)
                                               .order_by(TieringTierHistory.id))).scalars()]
    mtd = DailyAum(customer.mtd_day, customer.mtd_sum, customer.aum).month_to_date_average()
    household_aum, members = None, ()
    if settings.tiering.household_aggregation and customer.household_id:
        row = await session.get(TieringHousehold, customer.household_id)
        household_aum = row.aum if row is not None else customer.aum
        members = [(m.customer_id, m.aum) for m in (await session.execute(
            select(TieringCustomer).where(TieringCustomer.household_id == customer.household_id)
            .order_by(TieringCustomer.customer_id))).scalars()]
    return Standing(customer_id, customer.tier, customer.watch, customer.months_below, customer.aum, mtd,
                    customer.mtd_day, history, customer.household_id, household_aum, members)
