"""Tiering's HTTP routes."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal, current_principal, require_roles
from shared.contracts.types import BankDate, Money
from shared.contracts import topics
from shared.dry_run import DryRun, PreviewItem, preview_limit_field
from shared.http import business_clock, db_session, problems
from shared.problems import Problem
from shared.access import ensure_customer_visible
from services.tiering import close, service
from shared.calendar import days_in_month, parse_month

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
