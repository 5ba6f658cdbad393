"""Pricing's HTTP routes: a customer's fees and points, quotes, the what-if, redemption
requests, products by tier and the daily points expiry."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from shared.access import ensure_customer_visible
from shared.explanations import Language
from shared.auth import Principal, current_principal, require_roles
from shared.contracts.types import (
    KNOWN_TX_TYPES,
    BankDate,
    Identifier,
    Money,
    NonNegativeAmount,
    PositiveAmount,
    ProductType,
    Timestamp,
    TxType,
)
from shared.http import business_clock, db_session, problems
from shared.paging import decode_cursor, encode_cursor
from shared.problems import Problem
from shared.settings.pricing import Benefit, ContributionSettings, FeeMatch, FeeRule, PricingSettings
from services.pricing import explain, queries, service
from services.pricing.domain import PricingEngine, Transaction

router = APIRouter(tags=["pricing"])

SERVICE = "pricing"


# --- shapes ---------------------------------------------------------------------------------


class Step(BaseModel):
    rule: str
    effect: str
    amount: Money
    note: str
    points: int = 0


class Fee(BaseModel):
    """A priced posting (or a quote): the contract's fee fields, then how it came about."""

    posting_id: str | None
    fee_id: str | None
    base: Money
    waived: Money
    discount: Money
    points_used: int
    net: Money
    rules: list[str]
    tier: str
    use_number: int | None = Field(description="which use of this fee in the calendar month (1 = first)")
    points_value: Money
    points_earned: int
    contribution_score: Money
    breakdown: list[Step]


class PricedPosting(Fee):
    tx_type: str
    amount: Money
    posted_at: datetime
    points_balance: int
    aum: Money | None = Field(description="the customer's AUM right after the posting (null: not recorded)")


class LedgerEntry(BaseModel):
    id: int
    kind: Literal["earn", "spend", "expire", "refund"] = Field(
        description="refund: points given back when the fee they paid was corrected")
    points: int
    balance_after: int
    lot_year: int
    rule: str
    posting_id: str | None
    at: datetime
    note: str


class Adjustment(BaseModel):
    """A correction of an assessed fee in the customer's favour (the fee itself is never
    rewritten): an upgrade took effect before the posting but was decided after it was priced."""

    adjustment_id: str
    posting_id: str
    fee_id: str
    posted_at: datetime
    tier_before: str
    tier_after: str
    net_before: Money
    net_after: Money
    difference: Money = Field(description="net_after - net_before: negative, refunded")
    points_returned: int
    reason: str
    rules: list[str] = Field(description="the rules that price the posting now, in order")
    breakdown: list[Step]
    effective_at: datetime = Field(description="when the upgrade took effect")
    recorded_at: datetime


class FeesPage(BaseModel):
    customer_id: str
    items: list[PricedPosting]
    next: str | None
    points_balance: int
    auto_points_offset: bool
    redeem_allowance: int
    points_ledger: list[LedgerEntry] = Field(description="the latest ledger entries, newest first")
    adjustments: list[Adjustment] = Field(description="the latest corrections of the customer's fees, newest first")


class PointsLot(BaseModel):
    year: int
    earned: int
    spent: int
    expired: int
    remaining: int
    expires_at: datetime


class PointsPage(BaseModel):
    customer_id: str
    points_balance: int
    auto_points_offset: bool
    redeem_allowance: int
    lots: list[PointsLot]
    items: list[LedgerEntry]
    next: str | None


class LedgerPage(BaseModel):
    customer_id: str
    points_balance: int
    items: list[LedgerEntry]
    next: str | None


class QuoteRequest(BaseModel):
    customer_id: Identifier
    tx_type: TxType
    amount: PositiveAmount
    channel: Identifier
    counterparty_bank: Identifier | None = None
    cross_region: bool = False
    product_type: ProductType = "demand_deposit"
    direction: Literal["debit", "credit"] = "debit"
    at: Timestamp | None = Field(default=None, description="price as of this moment (default: now on the business clock)")


class Quote(Fee):
    customer_id: str
    at: datetime


class FeeChange(BaseModel):
    """A fee of the configured schedule, changed: ``id`` names it, the fields given replace
    the configured ones and the others stay (a whole fee rule works too)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str | None = None
    kind: Literal["fixed", "percent"] | None = None
    amount: NonNegativeAmount | None = None
    rate: Decimal | None = Field(default=None, ge=0, le=1)
    minimum: NonNegativeAmount | None = None
    maximum: NonNegativeAmount | None = None
    period: Literal["transaction", "month", "quarter", "year"] | None = None
    domestic: bool | None = None
    match: FeeMatch | None = None


class ContributionChange(BaseModel):
    """The contribution discount's fields to change; the others stay as configured."""

    model_config = ConfigDict(extra="forbid")

    aum_weight: Decimal | None = Field(default=None, ge=0)
    fee_weight: Decimal | None = Field(default=None, ge=0)
    threshold: NonNegativeAmount | None = None
    discount_percent: Decimal | None = Field(default=None, ge=0, le=100)
    window_months: int | None = Field(default=None, ge=1, le=120)


class SimulateRequest(BaseModel):
    """A proposal and the business dates whose postings to price again. The proposal changes
    only what it names: the fees in ``fees`` (by id, the fields given), the tiers in
    ``benefits`` (each named tier gets exactly the benefits given), the ``contribution``
    fields given. Every other fee, tier and setting is priced as configured."""

    model_config = ConfigDict(populate_by_name=True)

    from_: BankDate = Field(alias="from")
    to: BankDate
    fees: list[FeeChange] | None = Field(default=None, description="fees to change, by id")
    benefits: dict[str, list[Benefit]] | None = Field(
        default=None, description="tier id -> the tier's benefits under the proposal, in the order they apply")
    contribution: ContributionChange | None = None

    @model_validator(mode="after")
    def _range(self) -> SimulateRequest:
        if self.to < self.from_:
            raise ValueError("to is before from")
        return self


class Totals(BaseModel):
    count: int = Field(description="postings that incurred the fee")
    charged_count: int = Field(description="of them, postings left with something to pay")
    base: Money
    waived: Money
    discount: Money
    income: Money = Field(description="base - waived - discount, whether paid in cash or points")


class Change(BaseModel):
    income: Money
    waived: Money
    discount: Money


class SimulateItem(BaseModel):
    tier: str
    fee_id: str
    old: Totals
    new: Totals
    change: Change


class SimulateTotals(BaseModel):
    old: Totals
    new: Totals
    change: Change


class ProposalChanged(BaseModel):
    fees: list[str] = Field(description="the fees the proposal changed")
    tiers: list[str] = Field(description="the tiers whose benefits the proposal set")
    contribution: bool = Field(description="whether the contribution discount changed")


class SimulateResult(BaseModel):
    from_: date = Field(serialization_alias="from")
    to: date
    postings: int
    items: list[SimulateItem]
    totals: SimulateTotals
    schedule: list[FeeRule] = Field(description="the fee schedule the postings were priced with again")
    benefits: dict[str, list[Benefit]] = Field(description="every tier's benefits priced with (empty: none)")
    contribution: ContributionSettings = Field(description="the contribution discount priced with")
    changed: ProposalChanged


class RedeemRequest(BaseModel):
    points: int = Field(ge=1, description="points to spend on the customer's next fees")
    request_id: Identifier | None = Field(default=None, description="idempotency key of the request")


class RedeemResult(BaseModel):
    request_id: str
    customer_id: str
    points: int
    requested_at: datetime
    redeem_allowance: int
    points_balance: int
    repeated: bool


class ExpiryRequest(BaseModel):
    date: BankDate


class ExpiryResult(BaseModel):
    date: date
    customers: int
    points_expired: int
    expired_years_through: int
    first_run_at: datetime


class Product(BaseModel):
    code: str
    name: str
    priority: bool


class RefusedProduct(BaseModel):
    code: str
    name: str
    reasons: list[str]


class EligibleProducts(BaseModel):
    customer_id: str
    tier: str
    risk_level: str | None
    date: date
    items: list[Product]
    ineligible: list[RefusedProduct]


# --- routes ---------------------------------------------------------------------------------


def _before(cursor: str | None) -> int | None:
    position = decode_cursor(cursor)
    if position is None:
        return None
    value = position.get("id")
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**62:  # a forged cursor
        raise Problem(422, "Invalid cursor", "The cursor is not one this API returned.")
    return position["id"]


@router.get("/v1/customers/{customer_id}/fees", response_model=FeesPage, responses=problems(404))
async def get_fees(customer_id: str, request: Request, limit: int = Query(50, ge=1, le=500),
                   cursor: str | None = None, principal: Principal = Depends(current_principal),
                   session: AsyncSession = Depends(db_session)):
    """The customer's priced postings, newest first, each with the rules that applied in order;
    the points balance and the latest points ledger entries."""
    await ensure_customer_visible(request, principal, customer_id, service=SERVICE)
    view = await queries.fees_view(session, customer_id, limit, _before(cursor))
    if view is None:
        raise Problem(404, "Customer not found", f"Pricing has no customer {customer_id}.")
    next_id = view.pop("next_id")
    return FeesPage(**view, next=encode_cursor({"id": next_id}) if next_id else None)


class RuleExplained(BaseModel):
    rule: str
    applied: bool
    effect: str
    amount: Money
    why: str


class FeeFigures(BaseModel):
    use_number: int | None
    free_uses_before: int = Field(description="free uses of this fee given earlier in the posting's month")
    contribution_score: Money
    contribution_threshold: Money = Field(description="the threshold configured now")
    average_aum_12m: Money
    fees_paid: Money
    points_used: int
    points_balance_after: int


class FeeExplanation(BaseModel):
    posting_id: str
    customer_id: str
    lang: Language
    fee_id: str | None
    tier: str
    base: Money
    waived: Money
    discount: Money
    points_value: Money
    net: Money
    summary: str
    rules: list[RuleExplained] = Field(description="each rule that could change the price, in the order they "
                                                   "apply, whether it applied and why")
    figures: FeeFigures


@router.get("/v1/customers/{customer_id}/fees/{posting_id}/explain", response_model=FeeExplanation,
            responses=problems(404))
async def get_fee_explanation(customer_id: str, posting_id: str, request: Request, lang: Language = "en",
                              principal: Principal = Depends(current_principal),
                              session: AsyncSession = Depends(db_session)):
    """Why a priced posting cost what it did, in ``lang``: the fee the schedule matched, and for
    each of the tier's benefits, the contribution discount and the points offset whether it
    applied and why (free uses left this month, the tier at the posting, the contribution score
    against its threshold, what was left to pay)."""
    await ensure_customer_visible(request, principal, customer_id, service=SERVICE)
    settings = request.app.state.settings
    engine = PricingEngine(settings.pricing, KNOWN_TX_TYPES)
    row = await explain.priced_posting(session, customer_id, posting_id)
    if row is None:
        raise Problem(404, "Posting not found", f"Pricing has no posting {posting_id} of customer {customer_id}.")
    before = await explain.free_uses_before(session, row, engine)
    return FeeExplanation(**explain.explain(explain.PricedPosting.of(row), before, engine, settings.pricing.contribution,
                                            settings.pricing.points.points_per_yuan,
                                            {t.id: t.name for t in settings.tiers}, lang))


@router.get("/v1/customers/{customer_id}/points", response_model=PointsPage, responses=problems(404))
async def get_points(customer_id: str, request: Request, limit: int = Query(50, ge=1, le=500),
                     cursor: str | None = None, principal: Principal = Depends(current_principal),
                     session: AsyncSession = Depends(db_session)):
    """Points balance, what is left of each year's points and when it expires, and the ledger
    (every earn, spend and expiry with its cause), newest first."""
    await ensure_customer_visible(request, principal, customer_id, service=SERVICE)
    view = await queries.points_view(session, request.app.state.settings, customer_id, limit,
                                     _before(cursor))
    if view is None:
        raise Problem(404, "Customer not found", f"Pricing has no customer {customer_id}.")
    next_id = view.pop("next_id")
    return PointsPage(**view, next=encode_cursor({"id": next_id}) if next_id else None)


@router.get("/v1/customers/{customer_id}/points/ledger", response_model=LedgerPage, responses=problems(404))
async def get_points_ledger(customer_id: str, request: Request, limit: int = Query(50, ge=1, le=500),
                            cursor: str | None = None, principal: Principal = Depends(current_principal),
                            session: AsyncSession = Depends(db_session)):
    """The points ledger alone: every earn, spend and expiry with its cause, newest first."""
    await ensure_customer_visible(request, principal, customer_id, service=SERVICE)
    view = await queries.points_view(session, request.app.state.settings, customer_id, limit,
                                     _before(cursor))
    if view is None:
        raise Problem(404, "Customer not found", f"Pricing has no customer {customer_id}.")
    next_id = view["next_id"]
    return LedgerPage(customer_id=customer_id, points_balance=view["points_balance"], items=view["items"],
                      next=encode_cursor({"id": next_id}) if next_id else None)


@router.post("/v1/customers/{customer_id}/points/redeem", response_model=RedeemResult,
             responses=problems(404, 409))
async def redeem_points(customer_id: str, body: RedeemRequest, request: Request,
                        principal: Principal = Depends(require_roles("rm", "branch_manager", "admin"))):
    """Spend points on request: the customer's next fees are paid from these points (rule
    ``points.redeem``) until they are used. An assessed fee is never reopened, so a redemption
    works forward, like an opt-in for a number of points. Idempotent by ``request_id``."""
    await ensure_customer_visible(request, principal, customer_id, service=SERVICE)
    runtime = request.app.state.runtime
    request_id = body.request_id or str(uuid.uuid4())
    now = datetime.now(timezone.utc)
    try:
        async with runtime.transaction(SERVICE, cause=f"redeem:{request_id}") as tx:
            result = await service.request_redemption(tx, customer_id, body.points, request_id,
                                                      principal.subject, now)
    except service.NotFound as exc:
        raise Problem(404, "Customer not found", f"Pricing has no customer {customer_id}.") from exc
    except service.Refused as exc:
        raise Problem(409, "Redemption refused", str(exc)) from exc
    return RedeemResult(**result)


@router.post("/v1/pricing/quote", response_model=Quote, responses=problems(404))
async def post_quote(body: QuoteRequest, request: Request,
                     principal: Principal = Depends(current_principal)):
    """What the described transaction would cost this customer now (their tier now, this
    month's uses, contribution and points), with the rules in order. Changes nothing."""
    await ensure_customer_visible(request, principal, body.customer_id, service=SERVICE)
    tx = Transaction(body.tx_type, body.amount, body.channel, body.counterparty_bank,
                     body.cross_region, body.product_type, body.direction)
    at = body.at or business_clock(request).now()
    async with request.app.state.runtime.transaction(SERVICE, cause="quote") as btx:
        quoted = await queries.quote(btx, body.customer_id, tx, at)
    if quoted is None:
        raise Problem(404, "Customer not found", f"Pricing has no customer {body.customer_id}.")
    return Quote(**quoted)


@router.post("/v1/pricing/simulate", response_model=SimulateResult, response_model_by_alias=True,
             responses=problems(422))
async def post_simulate(body: SimulateRequest, request: Request,
                        principal: Principal = Depends(require_roles("analyst", "admin")),
                        session: AsyncSession = Depends(db_session)):
    """What-if: price the stored postings of the date range again under the proposal, and
    compare fee income, waivers and discounts by tier and fee, old against new. The proposal
    changes only the fees, tiers and contribution fields it names; a fee or tier id that is not
    configured is refused (422, naming it). The answer says what it priced with (the schedule,
    every tier's benefits, the contribution discount) and what the proposal changed. Changes
    nothing."""
    settings = request.app.state.settings
    fees = [f.model_dump(exclude_unset=True) for f in body.fees or []]
    benefits = {tier: [b.model_dump() for b in given] for tier, given in (body.benefits or {}).items()}
    contribution = body.contribution.model_dump(exclude_unset=True) if body.contribution else {}
    try:
        proposal = queries.apply_proposal(settings.pricing, [t.id for t in settings.tiers], fees=fees,
                                          benefits=benefits, contribution=contribution)
    except queries.UnknownInProposal as exc:
        raise Problem(422, "Invalid proposal", str(exc)) from exc
    except ValidationError as exc:
        raise Problem(422, "Invalid proposal", "; ".join(e["msg"] for e in exc.errors()[:5])) from exc
    result = await queries.simulate(session, settings, proposal, body.from_, body.to)
    result["from_"] = result.pop("from")
    return SimulateResult(
        **result, schedule=proposal.fees, contribution=proposal.contribution,
        benefits={t.id: proposal.benefits.get(t.id, []) for t in settings.tiers},
        changed=ProposalChanged(fees=[f["id"] for f in fees], tiers=sorted(benefits),
                                contribution=bool(contribution)))


@router.get("/v1/pricing/schedule", response_model=PricingSettings)
async def get_schedule(request: Request, principal: Principal = Depends(current_principal)):
    """The fee schedule, tier benefits, contribution discount, points rules and products in force."""
    return request.app.state.settings.pricing


@router.get("/v1/customers/{customer_id}/eligible-products", response_model=EligibleProducts,
            responses=problems(404))
async def get_eligible_products(customer_id: str, request: Request, on: BankDate | None = None,
                                principal: Principal = Depends(current_principal),
                                session: AsyncSession = Depends(db_session)):
    """The products this customer may buy today (``on``: another business date), with priority
    purchase where their tier has it, and why each other product is refused."""
    await ensure_customer_visible(request, principal, customer_id, service=SERVICE)
    view = await queries.eligible_products(session, request.app.state.settings, customer_id,
                                           on or business_clock(request).today())
    if view is None:
        raise Problem(404, "Customer not found", f"Pricing has no customer {customer_id}.")
    return EligibleProducts(**view)


@router.post("/v1/pricing/points-expiry", response_model=ExpiryResult)
async def post_points_expiry(body: ExpiryRequest, request: Request,
                             principal: Principal = Depends(require_roles("admin"))):
    """The daily job: expire the points whose last valid year ended before ``date`` (points
    earned in year Y expire at the end of Y+1). Idempotent: run again, it expires nothing more."""
    result = await service.expire_points(request.app.state.runtime, body.date)
    return ExpiryResult(**result)
