"""Why a priced posting cost what it did, in words (zh-CN or en): every fee already names the
rules that applied (``pricing_fees.breakdown``); this says, rule by rule, why each of the
customer's tier benefits, the contribution discount and the points offset applied or did not
(free uses left this month, the tier at the posting, the contribution score against its
threshold, what was left to pay)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.explanations import Language, amount, says, tier_label
from shared.money import ZERO
from shared.settings.pricing import Benefit, ContributionSettings
from services.pricing.domain import CONTRIBUTION_RULE, NO_FEE_RULE, UNKNOWN_TX_TYPE_RULE, PricingEngine
from services.pricing.models import PricingFee


@dataclass(frozen=True)
class PricedPosting:
    """A row of ``pricing_fees`` as the explanation reads it."""

    posting_id: str
    customer_id: str
    tx_type: str
    channel: str
    amount: Decimal
    tier: str
    fee_id: str | None
    use_number: int | None
    base: Decimal
    waived: Decimal
    discount: Decimal
    points_used: int
    points_value: Decimal
    net: Decimal
    points_balance: int
    average_aum_12m: Decimal
    fees_paid: Decimal
    contribution_score: Decimal
    steps: Sequence[dict]

    @classmethod
    def of(cls, row: PricingFee) -> PricedPosting:
        return cls(row.posting_id, row.customer_id, row.tx_type, row.channel, row.amount, row.tier, row.fee_id,
                   row.use_number, row.base, row.waived, row.discount, row.points_used, row.points_value, row.net,
                   row.points_balance, row.average_aum_12m, row.fees_paid, row.contribution_score,
                   json.loads(row.breakdown))


def explain(p: PricedPosting, free_before: int, engine: PricingEngine, contribution: ContributionSettings,
            points_per_yuan: int, tier_names: dict[str, str], lang: Language) -> dict:
    """Each rule that could have changed this posting's price, applied or not, and why."""
    t = lambda tier_id: tier_label(tier_id, tier_names, lang)  # noqa: E731
    applied = {s["rule"]: s for s in p.steps}
    items = [{"rule": "tier", "applied": True, "effect": "none", "amount": ZERO,
              "why": says(lang, "Priced as {tier}: the customer's tier right after the posting.",
                          "按{tier}定价：入账后客户所在的层级。", tier=t(p.tier))}]
    fee = engine.schedule.by_id.get(p.fee_id) if p.fee_id else None
    items.extend(_base(p, lang))
    left = p.base
    if fee is not None:
        for benefit in engine.benefits_for(p.tier, fee):
            item, left = _benefit(benefit, applied.get(benefit.id), left, free_before, p, t, lang)
            items.append(item)
        known = {b.id for b in engine.benefits_for(p.tier, fee)}
        for step in p.steps:  # benefits no longer configured still explain the price they made
            if step["effect"] in ("waived", "discount") and step["rule"] not in known | {CONTRIBUTION_RULE}:
                left -= Decimal(step["amount"])
                items.append({"rule": step["rule"], "applied": True, "effect": step["effect"],
                              "amount": Decimal(step["amount"]), "why": step["note"]})
    if p.fee_id is not None:
        item, left = _contribution(applied.get(CONTRIBUTION_RULE), left, p, contribution, lang)
        items.append(item)
        items.append(_points(p, left, points_per_yuan, lang))
    for step in p.steps:
        if step["effect"] == "earn":
            items.append({"rule": step["rule"], "applied": True, "effect": "earn", "amount": ZERO,
                          "why": says(lang, "{n} points earned on {amount}.", "本笔交易 {amount} 获得 {n} 积分。",
                                      n=step.get("points", 0), amount=amount(p.amount))})
    summary = says(lang, "Fee {base} − waived {waived} − discount {discount} − points {points} = {net}, priced as {tier}.",
                   "费用 {base} − 减免 {waived} − 折扣 {discount} − 积分抵扣 {points} = 实收 {net}，按{tier}定价。",
                   base=amount(p.base), waived=amount(p.waived), discount=amount(p.discount),
                   points=amount(p.points_value), net=amount(p.net), tier=t(p.tier))
    return {"posting_id": p.posting_id, "customer_id": p.customer_id, "lang": lang, "fee_id": p.fee_id,
            "tier": p.tier, "base": p.base, "waived": p.waived, "discount": p.discount,
            "points_value": p.points_value, "net": p.net, "summary": summary, "rules": items,
            "figures": {"use_number": p.use_number, "free_uses_before": free_before,
                        "contribution_score": p.contribution_score, "contribution_threshold": contribution.threshold,
                        "average_aum_12m": p.average_aum_12m, "fees_paid": p.fees_paid,
                        "points_used": p.points_used, "points_balance_after": p.points_balance}}


def _base(p: PricedPosting, lang: Language) -> list[dict]:
    out = []
    for step in p.steps:
        if step["effect"] != "base" and step["rule"] not in (NO_FEE_RULE, UNKNOWN_TX_TYPE_RULE):
            continue
        if step["rule"] == NO_FEE_RULE:
            why = says(lang, "No fee of the schedule applies to {tx} via {channel}.",
                       "收费标准中没有适用于 {channel} 渠道 {tx} 的收费项目。", tx=p.tx_type, channel=p.channel)
        elif step["rule"] == UNKNOWN_TX_TYPE_RULE:
            why = says(lang, "{tx} is not a transaction type the contract lists: priced at zero.",
                       "{tx} 不是接口约定的交易类型：按零收费。", tx=p.tx_type)
        elif step["rule"].endswith((".minimum", ".maximum")):
            why = step["note"]
        else:
            why = says(lang, "The schedule's fee for {tx} via {channel}: {note}.",
                       "{channel} 渠道 {tx} 适用的收费项目：{note}。", tx=p.tx_type, channel=p.channel, note=step["note"])
        out.append({"rule": step["rule"], "applied": True, "effect": step["effect"],
                    "amount": Decimal(step["amount"]), "why": why})
    return out


def _benefit(benefit: Benefit, step: dict | None, left: Decimal, free_before: int, p: PricedPosting, t,
             lang: Language) -> tuple[dict, Decimal]:
    tier = t(p.tier)
    if step is not None:
        taken = Decimal(step["amount"])
        if benefit.kind == "free_uses":
            why = says(lang, "Free use {k} of {n} this month for {tier}: {before} given before this posting.",
                       "{tier}本月第 {k} 次免费（共 {n} 次）：此前已用 {before} 次。",
                       k=free_before + 1, n=benefit.count, tier=tier, before=free_before)
        elif benefit.kind == "waive":
            why = says(lang, "{tier} waives {p}% of what was left: {amount}.", "{tier}减免剩余费用的 {p}%：{amount}。",
                       tier=tier, p=_percent(benefit.share * 100), amount=amount(taken))
        else:
            why = says(lang, "{tier} takes {p}% off what was left: {amount}.", "{tier}对剩余费用打折 {p}%：{amount}。",
                       tier=tier, p=_percent(benefit.percent), amount=amount(taken))
        return {"rule": benefit.id, "applied": True, "effect": step["effect"], "amount": taken, "why": why}, left - taken
    if left <= 0:
        why = says(lang, "Nothing was left to pay when this {tier} benefit came.", "轮到这项{tier}权益时已无需付费。",
                   tier=tier)
    elif benefit.kind == "free_uses" and free_before >= benefit.count:
        why = says(lang, "All {n} free uses of this month for {tier} were given before this posting.",
                   "本月{tier}的 {n} 次免费已在此前用完。", n=benefit.count, tier=tier)
    else:
        why = says(lang, "Its share of what was left rounds to 0.00.", "按比例计算的减免不足 0.01。")
    return {"rule": benefit.id, "applied": False, "effect": "none", "amount": ZERO, "why": why}, left


def _contribution(step: dict | None, left: Decimal, p: PricedPosting, rules: ContributionSettings,
                  lang: Language) -> tuple[dict, Decimal]:
    score, threshold = amount(p.contribution_score), amount(rules.threshold)
    basis = says(lang, " (score: {w}% of the 12-month average AUM {avg} plus {f}× the fees paid {paid})",
                 "（贡献度 = 近 12 个月日均资产 {avg} 的 {w}% + 已付费用 {paid} 的 {f} 倍）",
                 w=_percent(rules.aum_weight * 100), avg=amount(p.average_aum_12m), f=_percent(rules.fee_weight),
                 paid=amount(p.fees_paid))
    if step is not None:
        taken = Decimal(step["amount"])
        why = says(lang, "Contribution score {score} reaches the threshold {threshold}: {d}% off what was left, {amount}",
                   "贡献度 {score} 达到门槛 {threshold}：剩余费用再减 {d}%，即 {amount}",
                   score=score, threshold=threshold, d=_percent(rules.discount_percent), amount=amount(taken))
        return {"rule": CONTRIBUTION_RULE, "applied": True, "effect": "discount", "amount": taken,
                "why": why + basis + ("。" if lang == "zh-CN" else ".")}, left - taken
    if left <= 0:
        why = says(lang, "Nothing was left to pay after the tier's benefits", "层级权益后已无需付费")
    elif rules.discount_percent == 0:
        why = says(lang, "The contribution discount is off (0%)", "贡献度折扣未启用（0%）")
    elif p.contribution_score < rules.threshold:
        why = says(lang, "Contribution score {score} is below the threshold {threshold}",
                   "贡献度 {score} 低于门槛 {threshold}", score=score, threshold=threshold)
    else:
        why = says(lang, "Contribution score {score} reaches the threshold {threshold}, but the discount rounds to 0.00",
                   "贡献度 {score} 达到门槛 {threshold}，但折扣不足 0.01", score=score, threshold=threshold)
    return {"rule": CONTRIBUTION_RULE, "applied": False, "effect": "none", "amount": ZERO,
            "why": why + basis + ("。" if lang == "zh-CN" else ".")}, left


def _points(p: PricedPosting, left: Decimal, points_per_yuan: int, lang: Language) -> dict:
    step = next((s for s in p.steps if s["effect"] == "points"), None)
    if step is not None:
        how = says(lang, "automatic offset", "自动抵扣") if step["rule"] == "points.offset" else \
            says(lang, "the customer's redemption request", "客户的积分兑换申请")
        return {"rule": step["rule"], "applied": True, "effect": "points", "amount": Decimal(step["amount"]),
                "why": says(lang, "{n} points paid {amount} ({how}, {rate} points per 1.00).",
                            "{n} 积分抵扣 {amount}（{how}，每 1.00 元 {rate} 积分）。",
                            n=p.points_used, amount=amount(Decimal(step["amount"])), how=how, rate=points_per_yuan)}
    if left <= 0:
        why = says(lang, "Nothing was left to pay with points.", "已无需付费，未使用积分。")
    else:
        why = says(lang, "No points paid it: points pay a fee only with automatic offset or a redemption request, "
                         "and none covered it (points after the posting: {balance}).",
                   "未使用积分：积分仅在开通自动抵扣或提出兑换申请时抵扣费用，本笔无可用积分（入账后积分余额 {balance}）。",
                   balance=p.points_balance)
    return {"rule": "points.offset", "applied": False, "effect": "none", "amount": ZERO, "why": why}


def _percent(value: Decimal) -> str:
    """``Decimal('50.00')`` -> ``'50'``"""
    return format(value.normalize(), "f")


# --- reading ------------------------------------------------------------------------------


async def priced_posting(session: AsyncSession, customer_id: str, posting_id: str) -> PricingFee | None:
    row = (await session.execute(select(PricingFee).where(PricingFee.posting_id == posting_id,
                                                          PricingFee.customer_id == customer_id))).scalar_one_or_none()
    return row


async def free_uses_before(session: AsyncSession, row: PricingFee, engine: PricingEngine) -> int:
    """The free uses of the posting's fee its customer was given earlier in its month."""
    if row.fee_id is None:
        return 0
    free_ids = {b.id for items in engine.benefits.values() for b in items if b.kind == "free_uses"}
    earlier = (await session.execute(select(PricingFee.breakdown).where(
        PricingFee.customer_id == row.customer_id, PricingFee.month == row.month, PricingFee.fee_id == row.fee_id,
        PricingFee.id < row.id))).scalars()
    return sum(1 for breakdown in earlier if any(s["rule"] in free_ids for s in json.loads(breakdown)))
