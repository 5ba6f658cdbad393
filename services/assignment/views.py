"""Assignment's HTTP routes: the RM registry, claims, handovers, worklists, follow-ups and the
audit trail.

Who may see a customer is read from assignment's own table, which is where assignments are
decided: an RM sees the customers they are primary or backup RM of, a branch manager the
customers of their branch, analysts and admins everyone.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal, current_principal, require_roles
from shared.contracts.types import BankDate, Identifier, Money, Timestamp
from shared.http import business_clock, db_session, problems
from shared.paging import decode_cursor, encode_cursor
from shared.contracts.events import ContactLoggedV1
from shared.dry_run import DryRun, PreviewItem, preview_limit_field
from shared.problems import Problem
from services.assignment import service
from services.assignment.models import AssignmentCustomer, AssignmentRm

router = APIRouter(tags=["assignment"])

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- the RM registry ------------------------------------------------------------------------


class RmBody(Strict):
    rm_id: Identifier | None = Field(default=None, description="optional; must match the path")
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    branch_id: Identifier
    level: str = Field(examples=["L2"])
    capacity: int | dict[str, int] | None = Field(
        default=None, description="weighted book (an integer), or customers per tier "
                                  "({\"gold\": 300}); empty for the level's default")
    active: bool = True


class RmView(BaseModel):
    rm_id: str
    name: str
    branch_id: str
    level: str
    capacity: int | dict[str, int]
    capacity_is_default: bool
    active: bool
    customers: int
    book_weight: int
    book_by_tier: dict[str, int]
    backup_customers: int
    updated_at: datetime
    updated_by: str
    picked_up: int | None = Field(default=None, description="waiting customers this change assigned")


class RmPage(BaseModel):
    items: list[RmView]
    next: str | None


@router.put("/v1/rms/{rm_id}", response_model=RmView, response_model_exclude_none=True,
            responses=problems(409))
async def put_rm(rm_id: Identifier, body: RmBody, request: Request,
                 principal: Principal = Depends(require_roles("admin"))):
    """Add or change an RM (name, branch, level ``L1``-``L4``, capacity, active). Deactivating an
    RM, or moving them to another level or branch, while they hold customers is refused (409):
    hand the book over first. Customers waiting at the RM's branch are then assigned."""
    settings = request.app.state.settings
    if body.rm_id is not None and body.rm_id != rm_id:
        raise Problem(422, "Invalid request", f"rm_id {body.rm_id} in the body differs from {rm_id} in the path.")
    if body.level not in settings.assignment.levels:
        raise Problem(422, "Invalid request", f"level must be one of {', '.join(settings.assignment.levels)}.")
    _check_capacity(body.capacity, [t.id for t in settings.tiers])
    runtime = request.app.state.runtime
    cause = f"rm:{rm_id}:{uuid.uuid4().hex}"
    try:
        async with runtime.transaction("assignment", cause=cause) as tx:
            view, picked = await service.put_rm(
                tx, rm_id, name=body.name, branch_id=body.branch_id, level=body.level,
                capacity=body.capacity, active=body.active, actor=_actor(principal, cause))
    except service.RegistryConflict as exc:
        raise Problem(409, "RM still holds customers", str(exc)) from exc
    return RmView(**view, picked_up=picked)


def _check_capacity(capacity: int | dict[str, int] | None, tiers: list[str]) -> None:
    if capacity is None:
        return
    values = capacity.values() if isinstance(capacity, dict) else [capacity]
    if any(v < 0 for v in values):
        raise Problem(422, "Invalid request", "capacity must not be negative.")
    if isinstance(capacity, dict):
        unknown = [t for t in capacity if t not in tiers]
        if unknown:
            raise Problem(422, "Invalid request", f"capacity names unknown tiers: {', '.join(unknown)}.")


@router.get("/v1/rms", response_model=RmPage)
async def get_rms(request: Request, branch_id: str | None = None, level: str | None = None,
                  active: bool | None = None, limit: int | None = Query(default=None, ge=1),
                  cursor: str | None = None, principal: Principal = Depends(current_principal),
                  session: AsyncSession = Depends(db_session)):
    """The RM registry with each RM's book, filterable by branch, level and state. An RM sees
    themselves, a branch manager the branch's RMs."""
    settings = request.app.state.settings
    only = None
    if principal.role == "rm":
        only = principal.rm_id
    elif principal.role == "branch_manager":
        if branch_id is not None and branch_id != principal.branch_id:
            raise Problem(403, "Forbidden", "A branch manager sees the RMs of their own branch.")
        branch_id = principal.branch_id
    items, last = await service.list_rms(
        session, settings, branch_id=branch_id, level=level, active=active, rm_id=only,
        after=_position(cursor, "after", str), limit=_limit(settings, limit))
    return RmPage(items=[RmView(**i) for i in items], next=encode_cursor({"after": last}) if last else None)


@router.get("/v1/rms/{rm_id}", response_model=RmView, response_model_exclude_none=True,
            responses=problems(404))
async def get_rm(rm_id: str, request: Request, principal: Principal = Depends(current_principal),
                 session: AsyncSession = Depends(db_session)):
    """One RM of the registry, with their book."""
    row = await _visible_rm(session, principal, rm_id)
    return RmView(**await service.rm_view(session, request.app.state.settings, row))


# --- handover and claims --------------------------------------------------------------------


class HandoverRequest(Strict):
    reason: Text
    to: list[Identifier] | None = Field(default=None, min_length=1,
                                        description="only these RMs take the book (balanced over them)")
    deactivate: bool = Field(default=False, description="deactivate the RM in the same step")
    dry_run: bool = Field(default=False, description="answer where each customer would go and change nothing")
    preview_limit: int = preview_limit_field()


class HandoverResult(BaseModel):
    moved: int
    backups_replaced: int
    deactivated: bool
    dry_run: bool = False
    preview: list[PreviewItem] = Field(
        default_factory=list,
        description="with dry_run: where the customers would go, one item per role that changes "
                    "(change: primary or backup; from: the leaving RM or the backup replaced; to: the RM "
                    "taking it over), in customer order")


@router.post("/v1/rms/{rm_id}/handover", response_model=HandoverResult, response_model_by_alias=True,
             responses=problems(404, 409))
async def post_handover(rm_id: str, body: HandoverRequest, request: Request,
                        principal: Principal = Depends(require_roles("admin", "branch_manager")),
                        session: AsyncSession = Depends(db_session)):
    """Move an RM's whole book to other RMs in one step, balanced by weighted book over the
    eligible RMs (or over ``to``), with a reason. Refused (409) as a whole if any customer has
    no eligible RM with room. With ``dry_run`` the handover is decided exactly as it would be,
    then undone: the same counts (or the same 409) and where each customer would go, with
    nothing written or emitted."""
    leaving = await _visible_rm(session, principal, rm_id)
    await session.close()
    await _check_targets(request, rm_id, body.to)
    runtime = request.app.state.runtime
    cause = f"handover:{rm_id}:{uuid.uuid4().hex}"
    actor = _actor(principal, cause)
    try:
        if body.dry_run:
            async with DryRun.of(runtime) as dry:
                async with dry.transaction("assignment", cause=cause) as tx:
                    outcome = await service.hand_over(tx, leaving.rm_id, body.reason, body.to, body.deactivate, actor)
            preview = [PreviewItem(customer_id=p.after.customer_id, change=c.role, from_=c.from_rm, to=c.to_rm,
                                   reason=c.reason)
                       for p in outcome.placements for c in p.changes][:body.preview_limit]
            return HandoverResult(**outcome.as_dict(), dry_run=True, preview=preview)
        async with runtime.transaction("assignment", cause=cause) as tx:
            outcome = await service.hand_over(tx, leaving.rm_id, body.reason, body.to, body.deactivate, actor)
    except service.HandoverRefused as exc:
        raise Problem(409, "Handover refused", str(exc), unplaced=exc.unplaced[:100]) from exc
    except service.UnknownRm as exc:
        raise Problem(404, "RM not found", f"No RM {rm_id} in the registry.") from exc
    return HandoverResult(**outcome.as_dict())


async def _check_targets(request: Request, rm_id: str, to: list[str] | None) -> None:
    if not to:
        return
    async with request.app.state.runtime.db.sessions() as session:
        for target in to:
            row = await session.get(AssignmentRm, target)
            if row is None:
                raise Problem(422, "Invalid request", f"RM {target} in 'to' is not in the registry.")
            if target == rm_id:
                raise Problem(422, "Invalid request", f"RM {target} cannot take over their own book.")
            if not row.active:
                raise Problem(422, "Invalid request", f"RM {target} in 'to' is inactive.")


class ClaimRequest(Strict):
    rm_id: Identifier
    customer_id: Identifier
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""


class ClaimAnswer(BaseModel):
    accepted: bool
    reason: str
    code: str = Field(description="accepted, or why not: unknown_customer, not_above_mass, unknown_rm, "
                                  "inactive_rm, already_assigned, level_mismatch, home_branch_unknown, "
                                  "branch_mismatch, over_capacity")
    customer_id: str
    rm_id: str
    primary: str | None = None
    backup: str | None = None


@router.post("/v1/assignments/claims", response_model=ClaimAnswer, responses=problems(403))
async def post_claim(body: ClaimRequest, request: Request,
                     principal: Principal = Depends(require_roles("rm", "branch_manager", "admin")),
                     session: AsyncSession = Depends(db_session)):
    """An RM claims a customer they know (熟悉度认领). Accepted when the RM's level fits the
    customer's tier, they work at the serving branch and have room; the claim outranks balance.
    Otherwise refused, with the reason. An RM or branch manager claiming a customer outside
    their branch (or one that does not exist) gets a 403, like any read outside their book."""
    if principal.role == "rm" and body.rm_id != principal.rm_id:
        raise Problem(403, "Forbidden", "An RM claims customers for themselves only.")
    if principal.role == "branch_manager":
        rm = await session.get(AssignmentRm, body.rm_id)
        if rm is not None and rm.branch_id != principal.branch_id:
            raise Problem(403, "Forbidden", f"RM {body.rm_id} is not in your branch.")
    if not principal.sees_everyone:
        await _claimable(session, principal, body.rm_id, body.customer_id)
    await session.close()
    runtime = request.app.state.runtime
    cause = f"claim:{body.customer_id}:{body.rm_id}:{uuid.uuid4().hex}"
    async with runtime.transaction("assignment", cause=cause) as tx:
        verdict = await service.claim(tx, body.rm_id, body.customer_id, body.reason, _actor(principal, cause))
    after = verdict.placement.after if verdict.placement else None
    return ClaimAnswer(accepted=verdict.accepted, reason=verdict.reason, code=verdict.code,
                       customer_id=body.customer_id, rm_id=body.rm_id,
                       primary=after.primary if after else None, backup=after.backup if after else None)


async def _claimable(session: AsyncSession, principal: Principal, rm_id: str, customer_id: str) -> None:
    """An RM (or their branch manager) may claim only a customer of their branch (home or
    serving): for any other, and for one that does not exist, the answer is the same 403 as
    any read outside one's book, so that a claim's verdict (a tier, an RM, a level) never tells
    them about a customer they may not see."""
    branch = principal.branch_id
    if principal.role == "rm":
        rm = await session.get(AssignmentRm, rm_id)
        branch = rm.branch_id if rm is not None else None
    row = await session.get(AssignmentCustomer, customer_id)
    if row is None or branch is None or branch not in (row.home_branch_id, row.serving_branch):
        raise Problem(403, "Forbidden", f"Customer {customer_id} is not at your branch.")


# --- worklists ------------------------------------------------------------------------------


class WorklistItem(BaseModel):
    customer_id: str
    name: str | None = Field(description="the customer's name in core banking, null until known")
    tier: str
    watch: bool = Field(description="on watch: below the tier's floor at a month-end, tier kept for now")
    months_below: int = Field(description="consecutive closed months below the tier's floor")
    aum: Money
    last_contact: datetime | None
    next_contact: date | None
    open_signals: int
    open_signal_types: list[str] = Field(description="the types of the customer's open signals")
    role: str
    branch_id: str | None = Field(description="the customer's home branch")
    home_branch_id: str | None
    serving_branch: str | None


class WorklistCounts(BaseModel):
    customers: int
    watch: int
    contacts_due_today: int = Field(description="next contact planned for today (business clock)")
    contacts_overdue: int = Field(description="next contact planned before today")
    open_signals: int


class WorklistPage(BaseModel):
    items: list[WorklistItem]
    next: str | None
    counts: WorklistCounts = Field(description="the RM's whole book in the role asked, whatever the filters")


SortKey = Literal["tier", "aum", "next_contact", "last_contact", "open_signals", "customer_id"]
Prefix = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


@router.get("/v1/rms/{rm_id}/worklist", response_model=WorklistPage, responses=problems(404))
async def get_worklist(rm_id: str, request: Request, sort: SortKey = "tier",
                       order: Literal["asc", "desc"] | None = None,
                       role: Literal["primary", "backup", "all"] = "all",
                       tier: list[str] = Query(default=[], description="only these tiers (repeat the parameter)"),
                       watch: bool | None = Query(default=None, description="only customers on watch, or off it"),
                       q: Prefix | None = Query(default=None, description="a prefix of the customer id or name"),
                       limit: int | None = Query(default=None, ge=1), cursor: str | None = None,
                       principal: Principal = Depends(current_principal),
                       session: AsyncSession = Depends(db_session)):
    """The RM's customers (名单制管理) with name, tier, watch, AUM, last contact, next planned
    contact and open signals, and the counts of the whole book. ``sort`` by tier (highest first
    by default), aum, next_contact (soonest first by default), last_contact, open_signals; empty
    values last. ``tier``, ``watch`` and ``q`` narrow the list (not the counts). An RM sees only
    their own."""
    await _visible_rm(session, principal, rm_id)
    settings = request.app.state.settings
    ladder = settings.tier_ladder
    unknown = [t for t in tier if not ladder.knows(t)]
    if unknown:
        raise Problem(422, "Invalid request", f"Unknown tier {unknown[0]!r}: one of {', '.join(ladder.ids)}.")
    if order is None:
        order = "asc" if sort in ("next_contact", "last_contact", "customer_id") else "desc"
    only = service.WorklistFilter(tuple(sorted(set(tier))), watch, q)
    view = {"sort": sort, "order": order, "role": role, "tier": list(only.tiers), "watch": watch, "q": q}
    position = decode_cursor(cursor)
    offset = 0
    if position is not None:
        if {k: position.get(k) for k in view} != view or not _valid(position.get("offset"), int) \
                or position["offset"] < 0:
            raise Problem(422, "Invalid cursor", "The cursor belongs to another sort, order, role or filter.")
        offset = position["offset"]
    size = _limit(settings, limit)
    items, more = await service.worklist(session, rm_id, role=role, sort=sort, descending=order == "desc",
                                         offset=offset, limit=size, only=only)
    counts = await service.worklist_counts(session, rm_id, role=role, today=business_clock(request).today())
    return WorklistPage(items=[WorklistItem(**i) for i in items], counts=WorklistCounts(**counts),
                        next=encode_cursor({**view, "offset": offset + size}) if more else None)


# --- the audit trail ------------------------------------------------------------------------


class ChangeItem(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: int
    customer_id: str
    role: str
    from_: str | None = Field(alias="from", serialization_alias="from")
    to: str | None
    reason: str
    detail: str
    actor: str
    cause: str
    tier: str
    branch_id: str | None
    changed_at: datetime


class ChangePage(BaseModel):
    items: list[ChangeItem]
    next: str | None


class CustomerChangePage(ChangePage):
    customer_id: str
    tier: str
    primary: str | None
    backup: str | None
    standing: str


@router.get("/v1/customers/{customer_id}/assignments", response_model=CustomerChangePage, responses=problems(404),
            response_model_by_alias=True)
async def get_customer_assignments(customer_id: str, request: Request,
                                   limit: int | None = Query(default=None, ge=1), cursor: str | None = None,
                                   principal: Principal = Depends(current_principal),
                                   session: AsyncSession = Depends(db_session)):
    """The customer's primary and backup RM now, and every change (who or what, when, from, to,
    why), oldest first."""
    row = await _visible_customer(session, principal, customer_id)
    items, last = await service.changes(session, customer_id=customer_id, after=_position(cursor, "after", int),
                                        limit=_limit(request.app.state.settings, limit))
    return CustomerChangePage(
        customer_id=customer_id, tier=row.tier, primary=row.primary_rm, backup=row.backup_rm,
        standing=row.standing, items=[ChangeItem(**i) for i in items],
        next=encode_cursor({"after": last}) if last else None)


@router.get("/v1/rms/{rm_id}/assignments", response_model=ChangePage, response_model_by_alias=True,
            responses=problems(404))
async def get_rm_assignments(rm_id: str, request: Request, limit: int | None = Query(default=None, ge=1),
                             cursor: str | None = None, principal: Principal = Depends(current_principal),
                             session: AsyncSession = Depends(db_session)):
    """Every change that gave a customer to this RM or took one away, oldest first."""
    await _visible_rm(session, principal, rm_id)
    items, last = await service.changes(session, rm_id=rm_id, after=_position(cursor, "after", int),
                                        limit=_limit(request.app.state.settings, limit))
    return ChangePage(items=[ChangeItem(**i) for i in items],
                      next=encode_cursor({"after": last}) if last else None)


# --- follow-ups -----------------------------------------------------------------------------


CONTACT_CLOCK_SKEW = timedelta(minutes=5)
"""How far ahead of the business clock a contact time may be (the caller's clock running a
little fast); further is a contact that has not happened."""


class FollowUpRequest(Strict):
    channel: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)] = Field(
        examples=["phone"])
    note: Annotated[str, StringConstraints(max_length=4000)] = ""
    outcome: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] = Field(
        examples=["interested"])
    next_date: BankDate | None = Field(default=None, description="next planned contact (bank's date)")
    contacted_at: Timestamp | None = Field(default=None, description="when the contact happened; now on the business clock if empty")


class FollowUpItem(BaseModel):
    id: int
    customer_id: str
    rm_id: str | None
    author: str
    channel: str
    note: str
    outcome: str
    next_date: date | None
    contacted_at: datetime
    recorded_at: datetime


class FollowUpPage(BaseModel):
    items: list[FollowUpItem]
    next: str | None


@router.post("/v1/customers/{customer_id}/follow-ups", response_model=FollowUpItem, status_code=201,
             responses=problems(404))
async def post_follow_up(customer_id: str, body: FollowUpRequest, request: Request, response: Response,
                         principal: Principal = Depends(require_roles("rm", "branch_manager", "admin"))):
    """Log a contact with a customer (跟踪记录): channel, note, outcome and the next planned
    contact date. An RM logs only for their own customers."""
    settings = request.app.state.settings
    now = business_clock(request).now()
    contacted_at = body.contacted_at or now
    if contacted_at > now + CONTACT_CLOCK_SKEW:
        raise Problem(422, "Invalid request",
                      f"contacted_at {contacted_at.isoformat()} is in the future (now is {now.isoformat()} "
                      f"on the business clock): log a contact once it has happened.")
    if body.next_date is not None and body.next_date < contacted_at.astimezone(settings.zone).date():
        raise Problem(422, "Invalid request", "next_date is before the contact.")
    runtime = request.app.state.runtime
    async with runtime.transaction("assignment", cause=f"follow-up:{uuid.uuid4()}") as tx:
        row = await _visible_customer(tx.session, principal, customer_id)
        follow_up = await service.record_follow_up(
            tx.session, row, rm_id=principal.rm_id, author=f"{principal.role}:{principal.subject}",
            channel=body.channel, note=body.note, outcome=body.outcome, next_date=body.next_date,
            contacted_at=contacted_at)
        tx.emit(ContactLoggedV1(
            follow_up_id=str(follow_up.id), customer_id=customer_id, rm_id=principal.rm_id,
            channel=body.channel, outcome=body.outcome, contacted_at=contacted_at,
            next_contact=body.next_date), stable_id=f"follow-up:{follow_up.id}")
        item = FollowUpItem(**service.follow_up_item(follow_up))
    response.headers["Location"] = f"/v1/customers/{customer_id}/follow-ups"
    return item


@router.get("/v1/customers/{customer_id}/follow-ups", response_model=FollowUpPage, responses=problems(404))
async def get_follow_ups(customer_id: str, request: Request, limit: int | None = Query(default=None, ge=1),
                         cursor: str | None = None, principal: Principal = Depends(current_principal),
                         session: AsyncSession = Depends(db_session)):
    """The customer's follow-ups, newest first."""
    await _visible_customer(session, principal, customer_id)
    items, last = await service.follow_ups(session, customer_id, before=_position(cursor, "before", int),
                                           limit=_limit(request.app.state.settings, limit))
    return FollowUpPage(items=[FollowUpItem(**i) for i in items],
                        next=encode_cursor({"before": last}) if last else None)


# --- who may see what ----------------------------------------------------------------------


def may_see(principal: Principal, row: AssignmentCustomer) -> bool:
    """An RM sees the customers they are primary or backup RM of; a branch manager those of the
    branch (home branch, or the centre that serves them)."""
    if principal.sees_everyone:
        return True
    if principal.role == "rm":
        return principal.rm_id is not None and principal.rm_id in (row.primary_rm, row.backup_rm)
    if principal.role == "branch_manager":
        return principal.branch_id in (row.home_branch_id, row.serving_branch)
    return False


async def _visible_customer(session: AsyncSession, principal: Principal, customer_id: str) -> AssignmentCustomer:
    row = await session.get(AssignmentCustomer, customer_id)
    if row is not None and may_see(principal, row):
        return row
    if row is None and principal.sees_everyone:
        raise Problem(404, "Customer not found", f"Assignment has no customer {customer_id}.")
    raise Problem(403, "Forbidden", f"Customer {customer_id} is not in your book.")


async def _visible_rm(session: AsyncSession, principal: Principal, rm_id: str) -> AssignmentRm:
    if principal.role == "rm" and principal.rm_id != rm_id:
        raise Problem(403, "Forbidden", "An RM sees only their own worklist and book.")
    row = await session.get(AssignmentRm, rm_id)
    if row is None:
        raise Problem(404, "RM not found", f"No RM {rm_id} in the registry.")
    if principal.role == "branch_manager" and row.branch_id != principal.branch_id:
        raise Problem(403, "Forbidden", f"RM {rm_id} is not in your branch.")
    return row


def _valid(value: object, kind: type) -> bool:
    """A cursor is base64 JSON a client can forge: a value of another type, or an integer
    beyond what the database holds, is refused rather than passed to a query (a 500)."""
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool) and -(2**62) < value < 2**62
    return isinstance(value, kind) and len(value) <= 200


def _position(cursor: str | None, key: str, kind: type):
    value = (decode_cursor(cursor) or {}).get(key)
    if value is not None and not _valid(value, kind):
        raise Problem(422, "Invalid cursor", "The cursor is not one this API returned.")
    return value


def _actor(principal: Principal, cause: str) -> service.Actor:
    return service.Actor(f"{principal.role}:{principal.subject}", cause)


def _limit(settings, limit: int | None) -> int:
    return min(limit or settings.assignment.page_size, settings.assignment.max_page_size)

