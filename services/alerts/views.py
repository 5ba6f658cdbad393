"""Alerts' HTTP routes: the signals an RM or branch works, what they do with them, and the
daily scan the bank's scheduler calls."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal, current_principal, require_roles
from shared.contracts.types import BankDate
from shared.contracts import topics
from shared.dry_run import DryRun, PreviewItem, preview_limit_field
from shared.http import business_clock, db_session, problems
from shared.paging import Page, decode_cursor, encode_cursor
from shared.problems import Problem
from shared.runtime.errors import is_retryable
from services.alerts import scan, service
from services.alerts.domain import SIGNAL_TYPES, STATUSES, TransitionRefused
from services.alerts.models import AlertsSignal

router = APIRouter(tags=["alerts"])

BusinessDate = BankDate  # 1900-2199: a date at the ends of the calendar overflows the day arithmetic
SignalType = Literal[SIGNAL_TYPES]  # type: ignore[valid-type]
Status = Literal[STATUSES]  # type: ignore[valid-type]


class SignalView(BaseModel):
    id: str
    signal_type: str
    customer_id: str
    rm_id: str | None
    branch_id: str | None
    status: str
    raised_at: datetime
    evidence: dict[str, Any]
    expires_on: date | None
    status_at: datetime
    acted_by: str | None
    version: int
    closed_reason: str | None = Field(default=None, description="why Strata closed (expired) it itself")
    priority: int = Field(description="1 (most urgent) to 5, from the type and the customer's tier")
    customer_name: str | None = None
    snoozed_until: date | None = Field(default=None, description="acknowledged and put aside until this date")


class SnoozeRequest(BaseModel):
    until: BankDate = Field(examples=["2026-12-05"], description="a business date after today")


class DailyScanRequest(BaseModel):
    date: BusinessDate | None = Field(default=None, examples=["2026-11-28"],
                                      description="the business date to scan; today on the business clock if empty")
    dry_run: bool = Field(default=False, description="answer what the scan would do and change nothing")
    preview_limit: int = preview_limit_field()


class DailyScanResult(BaseModel):
    date: BusinessDate
    raised: dict[str, int]
    expired: int
    runs: int
    dry_run: bool = False
    preview: list[PreviewItem] = Field(default_factory=list,
                                       description="with dry_run: the first signals the scan would raise")


def _scope(principal: Principal, rm_id: str | None, branch_id: str | None) -> tuple[str | None, str | None]:
    """Narrow the filters to what the caller may see; asking for another RM's or branch's
    signals is refused rather than silently emptied."""
    if principal.role == "rm":
        if rm_id is not None and rm_id != principal.rm_id:
            raise Problem(403, "Forbidden", "An RM sees only the signals routed to them.")
        return principal.rm_id, branch_id
    if principal.role == "branch_manager":
        if branch_id is not None and branch_id != principal.branch_id:
            raise Problem(403, "Forbidden", "A branch manager sees only the branch's signals.")
        return rm_id, principal.branch_id
    return rm_id, branch_id


def _day_start(day: date, request: Request) -> datetime:
    return datetime.combine(day, time(0), request.app.state.settings.zone)


@router.get("/v1/signals", response_model=Page[SignalView])
async def list_signals(
    request: Request,
    rm_id: str | None = Query(None, description="Signals routed to this RM."),
    branch_id: str | None = Query(None, description="Signals of this branch."),
    unassigned: bool = Query(False, description="Only the branch queue: signals with no RM."),
    signal_type: list[SignalType] | None = Query(None, description="One or more signal types."),  # type: ignore[valid-type]
    type_: list[SignalType] | None = Query(None, alias="type", description="Same as signal_type."),  # type: ignore[valid-type]
    status: list[Status] | None = Query(None, description="One or more statuses."),  # type: ignore[valid-type]
    customer_id: str | None = Query(None),
    raised_from: BusinessDate | None = Query(None, alias="from", description="Raised on or after this business date."),
    raised_to: BusinessDate | None = Query(None, alias="to", description="Raised on or before this business date."),
    awake: bool = Query(False, description="Leave out the signals snoozed beyond today (business clock)."),
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None),
    principal: Principal = Depends(current_principal),
    session: AsyncSession = Depends(db_session),
):
    """Signals, newest first, filtered by RM, branch, type, status, customer and the business
    dates they were raised on. An RM sees only their own, a branch manager only the branch's."""
    rm_id, branch_id = _scope(principal, rm_id, branch_id)
    position = decode_cursor(cursor)
    after = None
    if position is not None:
        try:
            raised = datetime.fromisoformat(position["t"])
            if raised.tzinfo is None or not 1900 <= raised.year <= 2199:  # a forged cursor
                raise ValueError(position["t"])
            after = (raised, str(position["i"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise Problem(422, "Invalid cursor", "The cursor is not one this API returned.") from exc
    query = service.SignalQuery(
        rm_id=rm_id, branch_id=branch_id, unassigned=unassigned,
        signal_types=tuple(signal_type or ()) + tuple(type_ or ()), statuses=tuple(status or ()), customer_id=customer_id,
        raised_from=_day_start(raised_from, request) if raised_from else None,
        raised_before=_day_start(raised_to + timedelta(days=1), request) if raised_to else None,
        awake_on=business_clock(request).today() if awake else None,
    )
    rows = await service.list_signals(session, query, limit + 1, after)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor({"t": rows[-1].raised_at.isoformat(), "i": rows[-1].id}) if more else None
    return Page[SignalView](items=[SignalView(**service.signal_view(r)) for r in rows], next=next_cursor)


class SignalCounts(BaseModel):
    open: int
    acknowledged: int


class SignalSummary(SignalCounts):
    by_type: dict[str, SignalCounts]


@router.get("/v1/signals/summary", response_model=SignalSummary)
async def signals_summary(
    rm_id: str | None = Query(None, description="Signals routed to this RM."),
    branch_id: str | None = Query(None, description="Signals of this branch."),
    principal: Principal = Depends(current_principal),
    session: AsyncSession = Depends(db_session),
):
    """How many signals are open and acknowledged, by type, within what the caller may see (an
    RM their own, a branch manager the branch's), for a dashboard's counts."""
    rm_id, branch_id = _scope(principal, rm_id, branch_id)
    S = AlertsSignal
    stmt = (select(S.signal_type, S.status, func.count())
            .where(S.status.in_(("open", "acknowledged"))).group_by(S.signal_type, S.status))
    if rm_id is not None:
        stmt = stmt.where(S.rm_id == rm_id)
    if branch_id is not None:
        stmt = stmt.where(S.branch_id == branch_id)
    by_type = {t: {"open": 0, "acknowledged": 0} for t in SIGNAL_TYPES}
    for signal_type, status, count in await session.execute(stmt):
        by_type.setdefault(signal_type, {"open": 0, "acknowledged": 0})[status] = count
    return SignalSummary(by_type=by_type, open=sum(v["open"] for v in by_type.values()),
                         acknowledged=sum(v["acknowledged"] for v in by_type.values()))


@router.get("/v1/signals/{signal_id}", response_model=SignalView, responses=problems(404))
async def get_signal(signal_id: str, principal: Principal = Depends(current_principal),
                     session: AsyncSession = Depends(db_session)):
    """One signal, if the caller may see it."""
    signal = await service.get_signal(session, signal_id)
    if signal is None:
        raise Problem(404, "Signal not found", f"There is no signal {signal_id}.")
    if not service.may_see(principal, signal):
        raise Problem(403, "Forbidden", f"Signal {signal_id} is not routed to you.")
    return SignalView(**service.signal_view(signal))


async def _act(request: Request, principal: Principal, signal_id: str, action: str) -> SignalView:
    runtime = request.app.state.runtime
    try:
        async with runtime.transaction("alerts", cause=f"signal:{signal_id}:{action}") as tx:
            signal = await service.act_on(tx, principal, signal_id, action)
            view = service.signal_view(signal)
    except service.SignalNotFound as exc:
        raise Problem(404, "Signal not found", f"There is no signal {signal_id}.") from exc
    except service.NotYours as exc:
        raise Problem(403, "Forbidden", f"Signal {signal_id} is not routed to you.") from exc
    except TransitionRefused as exc:
        raise Problem(409, "Signal cannot change so", str(exc)) from exc
    return SignalView(**view)


@router.post("/v1/signals/{signal_id}/ack", response_model=SignalView, responses=problems(404, 409))
async def acknowledge_signal(signal_id: str, request: Request,
                             principal: Principal = Depends(current_principal)):
    """The RM has seen the signal and is on it (open -> acknowledged; again: no change)."""
    return await _act(request, principal, signal_id, "ack")


@router.post("/v1/signals/{signal_id}/done", response_model=SignalView, responses=problems(404, 409))
async def close_signal(signal_id: str, request: Request,
                       principal: Principal = Depends(current_principal)):
    """The RM has acted on the signal (open or acknowledged -> done; again: no change)."""
    return await _act(request, principal, signal_id, "done")


@router.post("/v1/signals/{signal_id}/snooze", response_model=SignalView, responses=problems(404, 409, 422))
async def snooze_signal(signal_id: str, body: SnoozeRequest, request: Request,
                        principal: Principal = Depends(current_principal)):
    """The RM is on it, later: the signal is acknowledged and left out of
    ``GET /v1/signals?awake=true`` until ``until`` (a business date after today)."""
    today = business_clock(request).today()
    runtime = request.app.state.runtime
    try:
        async with runtime.transaction("alerts", cause=f"signal:{signal_id}:snooze") as tx:
            view = service.signal_view(await service.snooze(tx, principal, signal_id, body.until, today))
    except service.SnoozeRefused as exc:
        raise Problem(422, "Snooze date not after today", str(exc)) from exc
    except service.SignalNotFound as exc:
        raise Problem(404, "Signal not found", f"There is no signal {signal_id}.") from exc
    except service.NotYours as exc:
        raise Problem(403, "Forbidden", f"Signal {signal_id} is not routed to you.") from exc
    except TransitionRefused as exc:
        raise Problem(409, "Signal cannot change so", str(exc)) from exc
    return SignalView(**view)


@router.post("/v1/admin/daily-scan", response_model=DailyScanResult, response_model_by_alias=True,
             responses=problems(409))
async def daily_scan(body: DailyScanRequest, request: Request,
                     principal: Principal = Depends(require_roles("admin"))):
    """Raise the date-based signals of a business date (maturities, birthdays, card expiries)
    and expire the signals whose day has passed. Idempotent: running a date again raises
    nothing twice; the answer counts what this run raised.

    A date after today on the business clock (``GET /v1/clock``) is refused (409). With
    ``dry_run`` the scan runs exactly as it would, then is undone: the same counts and a preview
    of the first signals it would raise, with nothing written or emitted."""
    today = business_clock(request).today()
    day = body.date or today
    if day > today:
        raise Problem(409, "Date not reached",
                      f"{day.isoformat()} is after today, {today.isoformat()} on the business clock: "
                      f"scan it on that day.")
    runtime = request.app.state.runtime
    try:
        if body.dry_run:
            async with DryRun.of(runtime) as dry:
                summary = await scan.daily_scan(dry, day)
                raised = [s for s in dry.on(topics.SIGNALS) if s["status"] == "open"]
            preview = [PreviewItem(customer_id=s["customer_id"], change=s["signal_type"], to=s["rm_id"],
                                   reason=scan.reason_of(s["signal_type"], s["evidence"]),
                                   evidence=s["evidence"]) for s in raised[:body.preview_limit]]
            return DailyScanResult(**summary.as_dict(), dry_run=True, preview=preview)
        summary = await scan.daily_scan(runtime, day)
    except Exception as exc:
        if is_retryable(exc):
            raise Problem(503, "Database unavailable",
                          "The scan stopped part-way; run it again (it is idempotent).") from exc
        raise
    return DailyScanResult(**summary.as_dict())
