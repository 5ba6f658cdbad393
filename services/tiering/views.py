"""Tiering's HTTP routes."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal, current_principal, require_roles
from shared.contracts.types import Amount, BankDate, Identifier, Money
from shared.explanations import Language
from shared.contracts import topics
from shared.dry_run import DryRun, PreviewItem, preview_limit_field
from shared.http import business_clock, db_session, problems
from shared.problems import Problem
from shared.access import ensure_customer_visible
from services.tiering import close, explain, service, simulation, simulation_job
from services.tiering.models import TieringSimulation
from shared.calendar import days_in_month, months_between, parse_month

router = APIRouter(tags=["tiering"])


class TierHistoryItem(BaseModel):
    from_: str = Field(serialization_alias="from")
    to: str
    change: str
    watch: bool
    reason: str
    basis: Money
    effective_at: datetime


class TierView(BaseModel):
    customer_id: str
    tier: str
    watch: bool
    months_below: int
    aum: Money
    liabilities: Money
    mtd_average_daily_aum: Money
    business_date: date
    household_id: str | None
    average_aum_12m: Money
    tier_since: datetime | None
    history: list[TierHistoryItem]


class MonthEndCloseRequest(BaseModel):
    month: str = Field(examples=["2026-11"])
    dry_run: bool = Field(default=False, description="answer what the close would do and change nothing")
    preview_limit: int = preview_limit_field()

    @field_validator("month")
    @classmethod
    def _month(cls, value: str) -> str:
        if not re.fullmatch(r"(19|20|21)\d\d-(0[1-9]|1[0-2])", value):
            raise ValueError("month must be YYYY-MM")
        return value


class MonthEndCloseResult(BaseModel):
    month: str
    customers: int
    watch: int
    watch_cleared: int
    downgrades: int
    already_closed: bool
    dry_run: bool = False
    preview: list[PreviewItem] = Field(
        default_factory=list,
        description="with dry_run: the first customers the close would put on watch or downgrade")


@router.get("/v1/customers/{customer_id}/tier", response_model=TierView, response_model_by_alias=True,
            responses=problems(404))
async def get_tier(customer_id: str, request: Request,
                   principal: Principal = Depends(current_principal),
                   session: AsyncSession = Depends(db_session)):
    """Current tier, watch state, AUM, month-to-date average daily AUM and tier history."""
    await ensure_customer_visible(request, principal, customer_id)
    view = await service.tier_view(session, customer_id)
    if view is None:
        raise Problem(404, "Customer not found", f"Tiering has no customer {customer_id}.")
    view["history"] = [TierHistoryItem(from_=h.pop("from"), **h) for h in view["history"]]
    return TierView(**view)


class TierPlacement(BaseModel):
    change: str = Field(description="upgrade, initial_placement or downgrade")
    from_: str = Field(serialization_alias="from")
    to: str
    at: datetime
    compared: str = Field(description="aum (an upgrade or first placement) or month_average (a downgrade)")
    basis: Money = Field(description="the AUM (or the month's average daily AUM) compared")
    floor: Money = Field(description="the floor it was compared with")
    month: str | None = None
    months_below: int | None = None


class TierWatch(BaseModel):
    since_close_of: str | None
    month_average: Money | None
    floor: Money
    months_below: int
    downgrade_after_months: int
    months_left: int = Field(description="months below the floor still to come before a downgrade")
    downgrade_to: str | None = Field(description="the tier the last of them lowers to, on this month so far")
    month_to_date_average: Money | None
    ends_when: str


class NextTier(BaseModel):
    tier: str | None
    floor: Money | None
    gap: Money | None = Field(description="AUM still to come to reach the next tier's floor")


class HouseholdMember(BaseModel):
    customer_id: str
    aum: Money


class HouseholdCounted(BaseModel):
    household_id: str
    aum: Money
    aggregation: bool
    members: list[HouseholdMember]


class TierExplanation(BaseModel):
    customer_id: str
    lang: Language
    tier: str
    watch: bool
    months_below: int
    rule: str = Field(description="upgrade, initial_placement, downgrade, watch, lowest_tier or no_decision_recorded")
    summary: str
    sentences: list[str]
    aum: Money
    basis: Money = Field(description="what the tier stands on: the AUM, or the household's with aggregation")
    floor: Money
    placement: TierPlacement | None
    watch_detail: TierWatch | None
    next_tier: NextTier
    household: HouseholdCounted | None


@router.get("/v1/customers/{customer_id}/tier/explain", response_model=TierExplanation,
            response_model_by_alias=True, responses=problems(404))
async def get_tier_explanation(customer_id: str, request: Request, lang: Language = "en",
                               principal: Principal = Depends(current_principal),
                               session: AsyncSession = Depends(db_session)):
    """Why the customer is in their tier: the rule that placed them (an upgrade the moment AUM
    reached the floor, the first placement, a month-end downgrade; the lowest tier otherwise),
    the AUM and floor it compared, the watch a month-end close put them on (months below so far,
    what ends it, the months left before a downgrade and to which tier), the gap to the next
    tier and, with household aggregation, the members counted. Sentences in ``lang``."""
    await ensure_customer_visible(request, principal, customer_id)
    settings = request.app.state.settings
    standing = await explain.standing(session, settings, customer_id)
    if standing is None:
        raise Problem(404, "Customer not found", f"Tiering has no customer {customer_id}.")
    body = explain.explain(standing, service.policy_of(settings), {t.id: t.name for t in settings.tiers},
                           settings.zone, lang)
    if body["placement"] is not None:
        body["placement"]["from_"] = body["placement"].pop("from")
    return TierExplanation(**body)


@router.post("/v1/admin/month-end-close", response_model=MonthEndCloseResult, response_model_by_alias=True,
             responses=problems(409))
async def month_end_close(body: MonthEndCloseRequest, request: Request,
                          principal: Principal = Depends(require_roles("admin"))):
    """Close a month: average daily AUM per customer, watch flags and downgrades. Idempotent:
    closing a closed month again changes nothing and returns the first close's summary.

    Only a month that has ended on the business clock (``GET /v1/clock``) can be closed, and
    months close in order: otherwise 409. With ``dry_run`` the close is decided exactly as it
    would be, then undone: the same counts and a preview of the first customers it would put
    on watch or downgrade, with nothing written or emitted."""
    first = parse_month(body.month)
    last = first.replace(day=days_in_month(first))
    today = business_clock(request).today()
    if today <= last:
        raise Problem(409, "Month has not ended",
                      f"{body.month} ends on {last.isoformat()} and today is {today.isoformat()} on the "
                      f"business clock: close it from {(last + timedelta(days=1)).isoformat()}.")
    runtime = request.app.state.runtime
    cause = f"month-end:{body.month}"
    try:
        if body.dry_run:
            async with DryRun.of(runtime) as dry:
                async with dry.transaction("tiering", cause=cause) as tx:
                    summary = await close.close_month(tx, body.month)
                changes = [c for c in dry.on(topics.TIERS) if c["change"] in ("watch", "downgrade")]
            preview = [PreviewItem(customer_id=c["customer_id"], change=c["change"], from_=c["from"], to=c["to"],
                                   reason=c["reason"]) for c in changes[:body.preview_limit]]
            return MonthEndCloseResult(**summary.as_dict(), dry_run=True, preview=preview)
        async with runtime.transaction("tiering", cause=cause) as tx:
            summary = await close.close_month(tx, body.month)
    except close.CloseRefused as exc:
        raise Problem(409, "Month cannot be closed now", str(exc)) from exc
    return MonthEndCloseResult(**summary.as_dict())


class DailyAumItem(BaseModel):
    date: date
    aum: Money = Field(description="the AUM at the end of the business day")
    high: Money = Field(description="the highest AUM of the day")


class DailyAumPage(BaseModel):
    customer_id: str
    floors: dict[str, Money] = Field(description="each tier's floor, to draw against the AUM")
    items: list[DailyAumItem] = Field(description=(
        "business days with activity, oldest first; a day without an item kept the AUM of the day before"))


@router.get("/v1/customers/{customer_id}/aum/daily", response_model=DailyAumPage, responses=problems(404, 422))
async def get_daily_aum(customer_id: str, request: Request, from_: BankDate | None = Query(None, alias="from"),
                        to: BankDate | None = None, principal: Principal = Depends(current_principal),
                        session: AsyncSession = Depends(db_session)):
    """The customer's AUM at the end of each business day and the day's high, from ``from``
    (default: 90 days before ``to``) to ``to`` (default: the latest day known), at most 400 days."""
    await ensure_customer_visible(request, principal, customer_id)
    view = await service.tier_view(session, customer_id)
    if view is None:
        raise Problem(404, "Customer not found", f"Tiering has no customer {customer_id}.")
    last = to or view["business_date"]
    first = from_ or last - timedelta(days=90)
    if first > last or (last - first).days > 400:
        raise Problem(422, "Invalid range", "from must be on or before to, at most 400 days apart.")
    floors = request.app.state.settings.tier_ladder.floors()
    return DailyAumPage(customer_id=customer_id, floors=floors,
                        items=[DailyAumItem(**i) for i in await service.daily_aum(session, customer_id, first, last)])


# --- tier-policy simulation -------------------------------------------------------------------

MONTH = r"^(19|20|21)\d\d-(0[1-9]|1[0-2])$"


class CandidateTier(BaseModel):
    """What the candidate changes of one tier; what it leaves out stays as today."""

    model_config = ConfigDict(extra="forbid")

    id: str
    floor: Amount | None = None
    downgrade_after_months: int | None = Field(default=None, description="1 to 24")


class TierSimulationRequest(BaseModel):
    """A candidate tier policy and the past whole months to replay it over."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    from_: str = Field(alias="from", pattern=MONTH, examples=["2026-10"], description="first month, YYYY-MM")
    to: str = Field(pattern=MONTH, examples=["2026-10"], description="last month, YYYY-MM")
    tiers: list[CandidateTier] = Field(default_factory=list, examples=[[{"id": "gold", "floor": "40000.00"}]])
    household_aggregation: bool | None = Field(default=None, description="null: as today")


class TierSimulationView(BaseModel):
    id: str
    state: Literal["queued", "running", "done", "failed", "interrupted"]
    percent: float = Field(description="customers replayed, of those the simulation started with")
    customers_total: int
    customers_done: int
    requested_by: str
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    request: dict
    error: str | None
    result: dict | None = Field(description="the answer, once done (also as CSV: ?format=csv)")


@router.post("/v1/tiering/simulate", status_code=202, response_model=TierSimulationView,
             responses=problems(422))
async def post_tier_simulation(body: TierSimulationRequest, request: Request,
                               principal: Principal = Depends(require_roles("analyst", "admin"))):
    """Simulate a candidate tier policy over past whole months: every customer's end-of-day AUM
    history and the months' closes are replayed under today's policy and the candidate with
    the live path's rules, as a background job. The answer (``GET /v1/tiering/simulations/{id}``):
    the migration matrix at the end and month by month, customers, AUM, watch and downgrades
    per tier and month under both, the RMs the books need, and the period's fees priced again
    with the simulated tiers. Changes nothing live and emits nothing.

    A candidate that is not a policy (unknown tier, floors not increasing, the lowest tier's
    floor not 0, downgrade months out of 1..24) is refused (422) naming the rule; so is a period
    that is not of whole months ended on the business clock, or longer than 24 months."""
    settings = request.app.state.settings
    try:
        candidate = simulation.candidate_policy(settings, [t.model_dump(exclude_none=True) for t in body.tiers],
                                                body.household_aggregation)
    except simulation.PolicyRefused as exc:
        raise Problem(422, "Not a valid tier policy", str(exc)) from exc
    months = months_between(body.from_, body.to)
    if not months:
        raise Problem(422, "Invalid period", f"to ({body.to}) is before from ({body.from_}).")
    if len(months) > simulation.MAX_MONTHS:
        raise Problem(422, "Invalid period", f"at most {simulation.MAX_MONTHS} months; {len(months)} asked.")
    last = parse_month(body.to)
    last = last.replace(day=days_in_month(last))
    today = business_clock(request).today()
    if last >= today:
        raise Problem(422, "Invalid period", f"the period must be of whole months that have ended: {body.to} "
                                             f"ends on {last.isoformat()} and today is {today.isoformat()}.")
    simulation_id = await simulation_job.submit(request.app.state.runtime, principal.subject, candidate,
                                                body.from_, body.to)
    async with request.app.state.runtime.db.sessions() as session:
        row = await session.get(TieringSimulation, simulation_id)
    return JSONResponse(TierSimulationView(**simulation_job.view(row)).model_dump(mode="json"), status_code=202,
                        headers={"Location": f"/v1/tiering/simulations/{simulation_id}"})


@router.get("/v1/tiering/simulations/{simulation_id}", response_model=TierSimulationView,
            responses={**problems(404, 409), 200: {"content": {"text/csv": {}}}})
async def get_tier_simulation(simulation_id: str, format: Literal["json", "csv"] = "json",
                              principal: Principal = Depends(require_roles("analyst", "admin")),
                              session: AsyncSession = Depends(db_session)):
    """A simulation's state and percent done, then its answer; ``?format=csv`` gives the answer
    as one long table (section, month, policy, tier, to_tier, measure, value)."""
    row = await _simulation(session, simulation_id)
    shown = simulation_job.view(row)
    if format == "csv":
        if shown["state"] != "done":
            raise Problem(409, "Simulation not done", f"Simulation {simulation_id} is {shown['state']} "
                                                      f"({shown['percent']}%): its CSV comes once it is done.")
        return Response(simulation.answer_csv(shown["result"]), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="tier-simulation-{simulation_id}.csv"'})
    return TierSimulationView(**shown)


class SimulatedCustomer(BaseModel):
    customer_id: str
    today_tier: str
    today_watch: bool
    today_months_below: int
    candidate_tier: str
    candidate_watch: bool
    candidate_months_below: int
    aum: Money


class SimulatedCustomersPage(BaseModel):
    items: list[SimulatedCustomer]
    next: str | None = Field(description="pass as ``after`` for the next page")


CUSTOMER_COLUMNS = tuple(SimulatedCustomer.model_fields)


@router.get("/v1/tiering/simulations/{simulation_id}/customers", response_model=SimulatedCustomersPage,
            responses={**problems(404), 200: {"content": {"text/csv": {}}}})
async def get_tier_simulation_customers(simulation_id: str, request: Request, after: Identifier | None = None,
                                        limit: int = Query(500, ge=1, le=5000),
                                        format: Literal["json", "csv"] = "json",
                                        principal: Principal = Depends(require_roles("analyst", "admin")),
                                        session: AsyncSession = Depends(db_session)):
    """Each customer's tier, watch and months below at the end of the period under today's
    policy and the candidate, in customer order; ``?format=csv`` gives them all."""
    await _simulation(session, simulation_id)
    if format == "csv":
        await session.close()  # the stream reads page by page in its own sessions
        return StreamingResponse(_customers_csv(request, simulation_id), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition":
                                          f'attachment; filename="tier-simulation-{simulation_id}-customers.csv"'})
    rows = await simulation_job.outcomes_page(session, simulation_id, after, limit + 1)
    items = [SimulatedCustomer(**{c: getattr(r, c) for c in CUSTOMER_COLUMNS}) for r in rows[:limit]]
    return SimulatedCustomersPage(items=items, next=items[-1].customer_id if len(rows) > limit else None)


async def _customers_csv(request: Request, simulation_id: str):
    yield ",".join(CUSTOMER_COLUMNS) + "\n"
    after = None
    while True:
        async with request.app.state.runtime.db.sessions() as session:
            rows = await simulation_job.outcomes_page(session, simulation_id, after, 5000)
        if not rows:
            return
        after = rows[-1].customer_id
        yield "".join(",".join(_csv_cell(getattr(r, c)) for c in CUSTOMER_COLUMNS) + "\n" for r in rows)


def _csv_cell(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


async def _simulation(session: AsyncSession, simulation_id: str) -> TieringSimulation:
    row = await session.get(TieringSimulation, simulation_id)
    if row is None:
        raise Problem(404, "Simulation not found", f"Tiering has no simulation {simulation_id}.")
    return row
