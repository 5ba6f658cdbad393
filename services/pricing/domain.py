"""The bank's pricing rules as pure values and functions: the fee schedule, tier benefits, free
uses, the contribution discount, points (earn, offset, expiry) and product eligibility.

Nothing here touches a database, the bus or HTTP: every rule can be called with plain values.

>>> engine = PricingEngine(settings.pricing, KNOWN_TX_TYPES)
>>> engine.price(Transaction("atm_withdrawal", Decimal("300.00"), "atm", "OTHER"),
...              PricingContext("gold", usage={"atm_interbank": Usage(uses=3, free=3)})).net
Decimal('4.00')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Callable, Iterable, Literal, Mapping, Sequence
from zoneinfo import ZoneInfo

from shared.banks import is_other_bank
from shared.calendar import (  # noqa: F401 - the pricing rules' calendar
    business_day,
    month_key,
    months_between,
    start_of_day,
    window_start,
)
from shared.money import CENT, ZERO, round_money
from shared.settings.pricing import (
    Benefit,
    ContributionSettings,
    FeeRule,
    PointsEarnRule,
    PricingSettings,
    Product,
)

# --- the posting as pricing sees it ---------------------------------------------------------


@dataclass(frozen=True)
class Transaction:
    """What pricing needs of a posting (or of a transaction described for a quote)."""

    tx_type: str
    amount: Decimal
    channel: str
    counterparty_bank: str | None = None
    cross_region: bool = False
    product_type: str = "demand_deposit"
    direction: Literal["debit", "credit"] = "debit"

    @classmethod
    def of(cls, posting) -> Transaction:
        """From a ``PostingV1`` (or anything with its fields)."""
        return cls(posting.tx_type, posting.amount, posting.channel, posting.counterparty_bank,
                   posting.cross_region, posting.product_type, posting.direction)


# --- the fee schedule -----------------------------------------------------------------------


class FeeSchedule:
    """The base fees: which fee a transaction incurs, and how much before any benefit."""

    def __init__(self, fees: Sequence[FeeRule], own_bank_codes: Iterable[str] = ()) -> None:
        self.fees = list(fees)
        self.by_id = {f.id: f for f in self.fees}
        self.own_bank_codes = frozenset(own_bank_codes)

    def match(self, tx: Transaction) -> FeeRule | None:
        """The first fee of the schedule whose conditions the transaction meets.

        >>> schedule.match(Transaction("atm_withdrawal", Decimal("100.00"), "atm", "OTHER")).id
        'atm_interbank'
        """
        other = is_other_bank(tx.counterparty_bank, self.own_bank_codes)
        for fee in self.fees:
            m = fee.match
            if tx.tx_type not in m.tx_types:
                continue
            if m.channels is not None and tx.channel not in m.channels:
                continue
            if (m.counterparty == "own" and other) or (m.counterparty == "other" and not other):
                continue
            if m.cross_region is not None and tx.cross_region != m.cross_region:
                continue
            return fee
        return None


def base_fee(fee: FeeRule, amount: Decimal) -> tuple[Decimal, Literal["minimum", "maximum"] | None]:
    """The fee before benefits, and which bound (if any) set it. A percentage is rounded half
    up to the cent, then held between the minimum and maximum.

    >>> base_fee(cross_region, Decimal("100.00"))   # 0.5 % is 0.50, below the minimum
    (Decimal('2.00'), 'minimum')
    """
    if fee.kind == "fixed":
        return fee.amount, None
    value = round_money(amount * fee.rate)
    if fee.minimum is not None and value < fee.minimum:
        return fee.minimum, "minimum"
    if fee.maximum is not None and value > fee.maximum:
        return fee.maximum, "maximum"
    return value, None


# --- the priced result ----------------------------------------------------------------------

Effect = Literal["base", "waived", "discount", "points", "earn", "none"]


@dataclass(frozen=True)
class Step:
    """One rule that applied: its id, what it did, by how much, and why in words."""

    rule: str
    effect: Effect
    amount: Decimal
    note: str
    points: int = 0

    def as_dict(self) -> dict:
        out = {"rule": self.rule, "effect": self.effect, "amount": format(self.amount, "f"),
               "note": self.note}
        if self.points:
            out["points"] = self.points
        return out


@dataclass(frozen=True)
class PricedFee:
    """A transaction's price: ``base - waived - discount - points_value = net``, with every
    rule that applied in order (a fee of zero still says which rule made it zero)."""

    fee_id: str | None
    base: Decimal
    waived: Decimal
    discount: Decimal
    points_used: int
    points_value: Decimal
    net: Decimal
    steps: tuple[Step, ...]
    use_number: int | None = None
    """Which use of this fee in the calendar month this is (1 = the first)."""
    free_use: bool = False
    """Whether a free-use benefit paid it (and so counts against the month's free uses)."""

    @property
    def rules(self) -> list[str]:
        return [s.rule for s in self.steps]

    @property
    def charged(self) -> Decimal:
        """What the customer owes after waivers and discounts, whether paid in cash or points."""
        return self.base - self.waived - self.discount

    def with_steps(self, *extra: Step) -> PricedFee:
        return PricedFee(self.fee_id, self.base, self.waived, self.discount, self.points_used,
                         self.points_value, self.net, self.steps + extra, self.use_number,
                         self.free_use)


def _zero(step: Step) -> PricedFee:
    return PricedFee(None, ZERO, ZERO, ZERO, 0, ZERO, ZERO, (step,))


@dataclass(frozen=True)
class Usage:
    """A fee's uses earlier in the calendar month, and how many of them were free uses.

    A tier's free uses are counted against the free uses already given that month, not against
    all uses: a customer who paid for two withdrawals as mass and then reached gold still has
    gold's three free ones; one who had three free as gold and reaches platinum has seven more.
    """

    uses: int = 0
    free: int = 0


@dataclass(frozen=True)
class PricingContext:
    """What the engine needs to know of the customer at the posting.

    ``tier``: the tier in force at the posting; ``usage``: each fee's :class:`Usage` earlier
    in the posting's calendar month; ``contribution_score``: see :func:`contribution_score`;
    ``spendable_points``: points that may pay this fee (0 unless the customer opted in to
    automatic offset or asked to redeem), spent under ``points_rule``.
    """

    tier: str
    usage: Mapping[str, Usage] = field(default_factory=dict)
    contribution_score: Decimal = ZERO
    spendable_points: int = 0
    points_rule: str = "points.offset"


# --- the rule engine ------------------------------------------------------------------------

CONTRIBUTION_RULE = "contribution.discount"
UNKNOWN_TX_TYPE_RULE = "unknown_tx_type"
NO_FEE_RULE = "no_fee"


class PricingEngine:
    """Prices one transaction: base fee, then the tier's benefits in their order, then the
    contribution discount on what is left, then points on what is left.

    >>> engine.price(Transaction("sms_monthly", Decimal("2.00"), "batch"), PricingContext("gold")).rules
    ['fee.sms_monthly', 'gold.sms_monthly.half']
    """

    def __init__(self, pricing: PricingSettings, known_tx_types: Iterable[str]) -> None:
        self.schedule = FeeSchedule(pricing.fees, pricing.own_bank_codes)
        self.benefits = {tier: list(items) for tier, items in pricing.benefits.items()}
        self.contribution = pricing.contribution
        self.points_per_yuan = pricing.points.points_per_yuan
        self.known_tx_types = frozenset(known_tx_types)

    def benefits_for(self, tier: str, fee: FeeRule) -> list[Benefit]:
        """The tier's benefits that concern ``fee``, in the order they apply."""
        return [b for b in self.benefits.get(tier, [])
                if b.fee == fee.id or (b.fee == "*" and (fee.domestic or not b.domestic_only))]

    def match(self, tx: Transaction) -> FeeRule | None:
        """The fee the transaction incurs (None: none, or a tx_type the contract does not list)."""
        return self.schedule.match(tx) if tx.tx_type in self.known_tx_types else None

    def price(self, tx: Transaction, ctx: PricingContext) -> PricedFee:
        return self.price_fee(tx, self.match(tx), ctx)

    def price_fee(self, tx: Transaction, fee: FeeRule | None, ctx: PricingContext) -> PricedFee:
        """:meth:`price` with the fee already matched (``match(tx)``): a caller that needs the
        fee first (to read its uses of the month) matches the schedule once, not twice."""
        if tx.tx_type not in self.known_tx_types:
            return _zero(Step(UNKNOWN_TX_TYPE_RULE, "none", ZERO,
                              f"tx_type {tx.tx_type} is not one the contract lists: priced at zero"))
        if fee is None:
            return _zero(Step(NO_FEE_RULE, "none", ZERO,
                              f"no fee of the schedule applies to {tx.tx_type} via {tx.channel}"))
        base, bound = base_fee(fee, tx.amount)
        steps = [Step(f"fee.{fee.id}", "base", base, _describe(fee))]
        if bound:
            limit = fee.minimum if bound == "minimum" else fee.maximum
            steps.append(Step(f"fee.{fee.id}.{bound}", "base", base,
                              f"{_percent(fee.rate * 100)}% of {tx.amount} held at the {bound} {limit}"))
        usage = ctx.usage.get(fee.id, Usage())
        left, waived, discount, free_use = base, ZERO, ZERO, False
        for benefit in self.benefits_for(ctx.tier, fee):
            if left == 0:
                break
            step = benefit_step(benefit, left, usage)
            if step is None:
                continue
            free_use = free_use or benefit.kind == "free_uses"
            steps.append(step)
            left -= step.amount
            if step.effect == "waived":
                waived += step.amount
            else:
                discount += step.amount
        step = contribution_step(self.contribution, left, ctx.contribution_score)
        if step is not None:
            steps.append(step)
            left -= step.amount
            discount += step.amount
        used, value = points_offset(left, ctx.spendable_points, self.points_per_yuan)
        if used:
            steps.append(Step(ctx.points_rule, "points", value,
                              f"{used} points offset {value} at {self.points_per_yuan} points per 1.00",
                              points=used))
        return PricedFee(fee.id, base, waived, discount, used, value, left - value, tuple(steps),
                         usage.uses + 1, free_use)


def _describe(fee: FeeRule) -> str:
    per = {"transaction": "", "month": " per month", "quarter": " per quarter", "year": " per year"}
    if fee.kind == "fixed":
        return f"{fee.name}: {fee.amount}{per[fee.period]}"
    bounds = "".join([f", min {fee.minimum}" if fee.minimum is not None else "",
                      f", max {fee.maximum}" if fee.maximum is not None else ""])
    return f"{fee.name}: {_percent(fee.rate * 100)}% of the amount{bounds}"


def _percent(value: Decimal) -> str:
    """``Decimal('0.500')`` -> ``'0.5'``"""
    return format(value.normalize(), "f")


def benefit_step(benefit: Benefit, left: Decimal, usage: Usage) -> Step | None:
    """What one tier benefit takes off ``left`` (None if it does not apply to this use).

    >>> benefit_step(gold_free3, Decimal("4.00"), Usage(uses=2, free=2)).amount
    Decimal('4.00')
    >>> benefit_step(gold_free3, Decimal("4.00"), Usage(uses=3, free=3)) is None
    True
    """
    if benefit.kind == "free_uses":
        if usage.free >= benefit.count:
            return None
        return Step(benefit.id, "waived", left,
                    f"free use {usage.free + 1} of {benefit.count} this month")
    amount = round_money(left * benefit.share)
    if amount == 0:
        return None
    if benefit.kind == "waive":
        note = "waived" if benefit.share == 1 else f"{_percent(benefit.share * 100)}% waived"
        return Step(benefit.id, "waived", amount, note)
    return Step(benefit.id, "discount", amount, f"{_percent(benefit.percent)}% off")


def contribution_score(average_aum_12m: Decimal, fees_paid: Decimal,
                       rules: ContributionSettings) -> Decimal:
    """What the bank earned from the customer, estimated: by default 1 % of the average AUM of
    the last 12 months plus the fees paid in them.

    >>> contribution_score(Decimal("1500000.00"), Decimal("120.00"), ContributionSettings())
    Decimal('15120.00')
    """
    return round_money(rules.aum_weight * average_aum_12m + rules.fee_weight * fees_paid)


def contribution_step(rules: ContributionSettings, left: Decimal, score: Decimal) -> Step | None:
    """The contribution discount: a score at or above the threshold takes ``discount_percent``
    off what the tier benefits left."""
    if left <= 0 or rules.discount_percent == 0 or score < rules.threshold:
        return None
    amount = round_money(left * rules.discount_percent / 100)
    if amount == 0:
        return None
    return Step(CONTRIBUTION_RULE, "discount", amount,
                f"contribution score {score} >= {rules.threshold}: {_percent(rules.discount_percent)}% off")


# --- points ---------------------------------------------------------------------------------


def points_offset(left: Decimal, spendable: int, points_per_yuan: int) -> tuple[int, Decimal]:
    """Points spent on a fee of ``left`` and the amount they pay: as much as the points cover,
    never more than the fee, and never a point for less than a cent.

    >>> points_offset(Decimal("4.00"), 150, 100)   # a fee left partly paid
    (150, Decimal('1.50'))
    """
    if left <= 0 or spendable <= 0:
        return 0, ZERO
    needed = math.ceil(left * points_per_yuan)
    if spendable >= needed:
        return needed, left
    value = (Decimal(spendable) / points_per_yuan).quantize(CENT, rounding=ROUND_DOWN)
    if value == 0:
        return 0, ZERO
    return math.ceil(value * points_per_yuan), value


def points_earned(tx: Transaction, rules: Sequence[PointsEarnRule]) -> tuple[int, str | None]:
    """Points a posting earns under the first earn rule it meets, and that rule's id.

    >>> points_earned(Transaction("fund_purchase", Decimal("10050.00"), "mobile", product_type="demand_deposit",
    ...                           direction="debit"), settings.pricing.points.earn)  # the purchase's debit leg
    (100, 'points.wealth')
    """
    for rule in rules:
        if tx.tx_type not in rule.tx_types:
            continue
        if rule.product_types is not None and tx.product_type not in rule.product_types:
            continue
        if rule.direction is not None and tx.direction != rule.direction:
            continue
        if tx.amount < rule.minimum_amount:
            return 0, None
        earned = int(tx.amount // rule.per_amount) * rule.points
        return (earned, rule.id) if earned else (0, None)
    return 0, None


def last_valid_year(earned_year: int, expiry_calendar_years: int) -> int:
    """Points expire at the end of the second calendar year: the year they are earned is the
    first, so points earned in 2026 are valid through 31 December 2027 (Asia/Shanghai) and
    expire at its end.

    >>> last_valid_year(2026, 2)
    2027
    """
    return earned_year + expiry_calendar_years - 1


def expires_at(earned_year: int, expiry_calendar_years: int, zone: ZoneInfo) -> datetime:
    """The instant the points of ``earned_year`` expire: midnight starting 1 January after
    their last valid year, in the bank's zone."""
    return datetime(last_valid_year(earned_year, expiry_calendar_years) + 1, 1, 1, tzinfo=zone)


def is_expired(earned_year: int, on: date, expiry_calendar_years: int) -> bool:
    """Whether points earned in ``earned_year`` have expired by business date ``on``.

    >>> is_expired(2026, date(2027, 12, 31), 2), is_expired(2026, date(2028, 1, 1), 2)
    (False, True)
    """
    return on.year > last_valid_year(earned_year, expiry_calendar_years)


def take_oldest_first(lots: Mapping[int, int], points: int) -> dict[int, int]:
    """Which lots (earn year -> points left) pay ``points``: the oldest first, so what a
    customer spends is what would expire soonest.

    >>> take_oldest_first({2027: 300, 2026: 100}, 150)
    {2026: 100, 2027: 50}
    """
    taken: dict[int, int] = {}
    for year in sorted(lots):
        if points <= 0:
            break
        take = min(points, lots[year])
        if take > 0:
            taken[year] = take
            points -= take
    if points > 0:
        raise ValueError("not enough points in the lots")
    return taken


# --- an upgrade decided late ---------------------------------------------------------------


@dataclass(slots=True)
class MonthUsage:
    """A customer's uses of one fee in one calendar month, of them the free uses, and what
    they were charged (after waivers and discounts) and paid (after points)."""

    uses: int = 0
    free_uses: int = 0
    charged: Decimal = ZERO
    paid: Decimal = ZERO


@dataclass(frozen=True)
class ChargedPosting:
    """A priced posting as it stands (its fee, or its latest correction): what an upgrade
    decided late may re-price."""

    posting_id: str
    posted_at: datetime
    tx: Transaction
    fee_id: str | None
    tier: str
    charged: Decimal
    net: Decimal
    points_used: int
    points_rule: str
    free_use: bool
    contribution_score: Decimal


@dataclass(frozen=True)
class Correction:
    """A posting's fee re-priced in the customer's favour: as it stood, and as it is now."""

    before: ChargedPosting
    after: PricedFee


def reprice_after_upgrade(engine: PricingEngine, postings: Sequence[ChargedPosting], tier: str,
                          since: datetime, rank: Callable[[str], int]
                          ) -> tuple[list[Correction], dict[str, MonthUsage]]:
    """Re-price one customer's postings of one calendar month after an upgrade to ``tier``
    effective at ``since`` that was decided after some of them were priced.

    The month's free uses are counted again in the order of ``posted_at``: each posting after
    ``since`` priced at a lower tier is priced again at ``tier`` with the uses before it, and
    corrected only if that costs the customer less (a fee sent for collection is never raised);
    the others stand as they were charged, free uses included. Points that paid a fee pay at
    most its new price. Returns the corrections, in ``posted_at`` order, and each fee's month
    as recounted (what the month's counters must now say).
    """
    counted: dict[str, MonthUsage] = {}
    corrections: list[Correction] = []
    for p in sorted(postings, key=lambda p: p.posted_at):  # stable: one instant keeps its order
        if p.fee_id is None:
            continue
        month = counted.setdefault(p.fee_id, MonthUsage())
        free_use, charged, paid = p.free_use, p.charged, p.net
        fee = engine.schedule.by_id.get(p.fee_id)
        if fee is not None and p.posted_at > since and rank(p.tier) < rank(tier):
            priced = engine.price_fee(p.tx, fee, PricingContext(
                tier, {fee.id: Usage(month.uses, month.free_uses)}, p.contribution_score, p.points_used,
                p.points_rule))
            if priced.charged < p.charged:
                corrections.append(Correction(p, priced))
                free_use, charged, paid = priced.free_use, priced.charged, priced.net
        month.uses += 1
        month.free_uses += int(free_use)
        month.charged += charged
        month.paid += paid
    return corrections, counted


# --- what-if --------------------------------------------------------------------------------


@dataclass
class FeeTotals:
    """Fee income and what was given up, for one group of priced postings."""

    count: int = 0
    charged_count: int = 0
    base: Decimal = ZERO
    waived: Decimal = ZERO
    discount: Decimal = ZERO

    @property
    def income(self) -> Decimal:
        return self.base - self.waived - self.discount

    def add(self, base: Decimal, waived: Decimal, discount: Decimal) -> None:
        self.count += 1
        self.base += base
        self.waived += waived
        self.discount += discount
        if base - waived - discount > 0:
            self.charged_count += 1

    @classmethod
    def of(cls, groups: Iterable["FeeTotals"]) -> "FeeTotals":
        """The totals of several groups together."""
        total = cls()
        for g in groups:
            total.count += g.count
            total.charged_count += g.charged_count
            total.base += g.base
            total.waived += g.waived
            total.discount += g.discount
        return total

    def as_dict(self) -> dict:
        return {"count": self.count, "charged_count": self.charged_count, "base": self.base,
                "waived": self.waived, "discount": self.discount, "income": self.income}


@dataclass(frozen=True)
class StoredPosting:
    """A priced posting as stored, with what it was priced on: enough to price it again."""

    customer_id: str
    month: str
    tier: str
    tx: Transaction
    average_aum_12m: Decimal
    fees_paid: Decimal


class Repricer:
    """Prices stored postings again under other rules, counting free uses afresh.

    Feed each customer's postings in the order they were first priced (a month's earlier
    postings must come first, from the month's first day). The contribution score is rebuilt
    from the stored inputs with the new weights; points are left out, as they are a way of
    paying, not a price.
    """

    def __init__(self, engine: PricingEngine, contribution: ContributionSettings) -> None:
        self.engine = engine
        self.contribution = contribution
        self._customer: str | None = None
        self._usage: dict[tuple[str, str], Usage] = {}

    def price(self, posting: StoredPosting) -> PricedFee:
        if posting.customer_id != self._customer:
            self._customer = posting.customer_id
            self._usage.clear()
        usage = {fee: u for (month, fee), u in self._usage.items() if month == posting.month}
        score = contribution_score(posting.average_aum_12m, posting.fees_paid, self.contribution)
        priced = self.engine.price(posting.tx, PricingContext(posting.tier, usage, score))
        if priced.fee_id is not None:
            key = (posting.month, priced.fee_id)
            before = self._usage.get(key, Usage())
            self._usage[key] = Usage(before.uses + 1, before.free + priced.free_use)
        return priced


# --- products by tier -----------------------------------------------------------------------

RISK_LEVELS = ("C1", "C2", "C3", "C4", "C5")


@dataclass(frozen=True)
class Eligibility:
    code: str
    name: str
    eligible: bool
    priority: bool
    reasons: tuple[str, ...]


def product_eligibility(product: Product, tier: str, risk_level: str | None, on: date,
                        tier_ranks: Mapping[str, int]) -> Eligibility:
    """Whether a customer of ``tier`` and ``risk_level`` may buy ``product`` on ``on``, and
    whether they buy it in its priority window; every reason it is refused.

    >>> product_eligibility(hot, "gold", "C3", date(2026, 12, 1), ranks).reasons
    ('priority purchase for diamond, private until 2026-12-31',)
    """
    reasons: list[str] = []
    rank = tier_ranks.get(tier, -1)
    if product.min_tier not in tier_ranks:
        reasons.append(f"tier {product.min_tier} is not one of the bank's tiers")
    elif rank < tier_ranks[product.min_tier]:
        reasons.append(f"needs tier {product.min_tier} or above")
    top = max(tier_ranks, key=tier_ranks.get) if tier_ranks else None
    if product.private_only and tier != top:
        reasons.append(f"{top} customers only")
    if product.min_risk_level is not None:
        if risk_level not in RISK_LEVELS:
            reasons.append("risk preference not assessed")
        elif RISK_LEVELS.index(risk_level) < RISK_LEVELS.index(product.min_risk_level):
            reasons.append(f"needs risk preference {product.min_risk_level} or above")
    if product.available_from is not None and on < product.available_from:
        reasons.append(f"on sale from {product.available_from.isoformat()}")
    priority = False
    if product.priority_until is not None and on <= product.priority_until:
        if tier in product.priority_tiers:
            priority = True
        else:
            reasons.append(f"priority purchase for {', '.join(product.priority_tiers)} until "
                           f"{product.priority_until.isoformat()}")
    return Eligibility(product.code, product.name, not reasons, priority and not reasons,
                       tuple(reasons))
