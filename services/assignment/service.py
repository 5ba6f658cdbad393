"""Assignment's handlers and the operations the API calls: keep every customer with the right
RMs as tiers, home branches and the registry change, and record why.

Handlers and operations work on plain values (:mod:`services.assignment.state`): the consumer's
batch loads them before its first record, an API call for what it names; nothing reaches the
database before the transaction commits. Every decision reads the books of all eligible RMs, so
decisions take turns (``AssignmentState.take_turn``) and are deterministic given the database
and the order of the stream: the same records over the same state assign the same RMs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Sequence

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.contracts.cloudevents import Event
from shared.contracts.events import AssignmentChangedV1, SignalV1, TieringChangeV1
from shared.runtime.errors import Rejected
from shared.runtime.transaction import BatchTransaction
from shared.settings import Settings
from services.assignment import metrics
from services.assignment.domain import (
    BACKUP,
    BRANCH_CHANGE,
    PRIMARY,
    TIER_CHANGE,
    WAITING,
    NO_BACKUP,
    AssignmentRules,
    Capacity,
    ClaimVerdict,
    Placement,
    book_moves,
)
from services.assignment.models import (
    AssignmentBook,
    AssignmentChange,
    AssignmentCustomer,
    AssignmentFollowUp,
    AssignmentRm,
    AssignmentSignal,
)
from services.assignment.state import CUSTOMERS, AssignmentState, Customer, RegistryRm

AUDIT = AssignmentChange.__table__


@dataclass(frozen=True)
class Actor:
    """Who made a change: ``system`` (an event, named by ``cause``) or a token's role and subject."""

    who: str
    cause: str


def system(tx: BatchTransaction) -> Actor:
    return Actor("system", f"event:{tx.cause}")


# --- handlers -------------------------------------------------------------------------------


async def on_tiering_change(event: Event, tx: BatchTransaction) -> None:
    """One fact of a customer as tiering applied it, in the customer's order: core banking's
    record (the home branch), the tier and AUM right after the fact. A customer whose tier or
    serving branch changes moves to the RMs it needs; an upgrade or downgrade that leaves the
    primary RM's level right moves no one, nor does a watch (the tier stays)."""
    change: TieringChangeV1 = event.data
    state: AssignmentState = tx.state
    if not state.rules.knows(change.tier):
        raise Rejected(f"tier {change.tier!r} is not in the tier table")
    customer = state.customer(change.customer_id)
    customer.aum, customer.watch, customer.months_below = change.aum, change.watch, change.months_below
    if customer.aum_at is None or change.at > customer.aum_at:
        customer.aum_at = change.at
    state.changed(customer)
    home = None
    fact = change.customer
    if fact is not None and (customer.branch_at is None or fact.updated_at >= customer.branch_at):
        customer.branch_at = fact.updated_at  # an older record than the one applied changes nothing
        if fact.name is not None:
            customer.name = fact.name
        if fact.home_branch_id is not None and fact.home_branch_id != customer.home_branch_id:
            home = fact.home_branch_id
    tier = change.tier if change.tier != customer.tier else None
    if tier is None and home is None:
        return
    await place(tx, customer, TIER_CHANGE if tier else BRANCH_CHANGE, system(tx), tier=tier, home_branch_id=home)


async def on_signal(event: Event, tx: BatchTransaction) -> None:
    """Keep each signal as last announced (status and time raised: a trigger that takes a
    signal over re-announces it), so the worklist counts the open ones."""
    data: SignalV1 = event.data
    tx.state.signal({"signal_id": data.id, "customer_id": data.customer_id, "status": data.status,
                     "signal_type": data.signal_type, "raised_at": data.raised_at})


# --- the steps the handlers and the API share ----------------------------------------------


async def place(tx: BatchTransaction, customer: Customer, cause: str, actor: Actor, *,
                tier: str | None = None, home_branch_id: str | None = None) -> None:
    """Place a customer after their tier or home branch changed; capacity a move frees goes to
    customers waiting for it."""
    state: AssignmentState = tx.state
    rules = state.rules
    placement = rules.place(customer.assignment(), state.pool, cause, tier=tier, home_branch_id=home_branch_id)
    state.pool.apply(placement, rules.weights)
    apply_placement(tx, customer, placement, actor)
    freed = {m.from_rm for m in book_moves(placement)
             if m.role == PRIMARY and m.from_rm is not None and m.from_rm != m.to_rm}
    if freed:
        await _pick_up_after_release(tx, freed, actor)


def apply_placement(tx: BatchTransaction, customer: Customer, placement: Placement, actor: Actor) -> None:
    """Write a placement: the customer's row, the RMs' books, one audit row and one
    ``strata.assignment_changed.v1`` per changed role, all in the caller's transaction."""
    state: AssignmentState = tx.state
    rules = state.rules
    for move in book_moves(placement):
        if move.from_rm is not None:
            state.count(move.from_rm, move.role, move.from_tier, -1)
        if move.to_rm is not None:
            state.count(move.to_rm, move.role, move.to_tier, +1)
    after = placement.after
    before_branch, before_standing = customer.serving_branch, customer.standing
    # the projection keeps the newest change per role: never let a change look older than the last
    now = max([datetime.now(timezone.utc)] + [t for t in (customer.primary_since, customer.backup_since) if t])
    branch = rules.serving_branch(after.tier, after.home_branch_id)
    customer.tier, customer.tier_rank = after.tier, rules.rank(after.tier)
    customer.home_branch_id, customer.serving_branch = after.home_branch_id, branch
    if customer.primary_rm != after.primary:
        customer.primary_rm, customer.primary_since = after.primary, now
    if customer.backup_rm != after.backup:
        customer.backup_rm, customer.backup_since = after.backup, now
    standing = rules.standing(after)
    customer.waiting_since = (customer.waiting_since or now) if standing == WAITING else None
    customer.standing = standing
    state.placed(customer, before_branch, before_standing)
    for change in placement.changes:
        tx.append(AUDIT, {
            "customer_id": after.customer_id, "role": change.role, "from_rm": change.from_rm,
            "to_rm": change.to_rm, "reason": change.code, "detail": change.detail[:2000],
            "actor": actor.who[:200], "cause": actor.cause[:250], "tier": after.tier, "branch_id": branch,
            "changed_at": now,
        })
        tx.emit(AssignmentChangedV1.model_construct(
            customer_id=after.customer_id, role=change.role, from_=change.from_rm, to=change.to_rm,
            reason=change.reason, changed_at=now, tier=after.tier, branch_id=branch,
        ), key=f"{after.customer_id}:{change.role}:{change.from_rm}>{change.to_rm}")
        tx.after_commit(metrics.ASSIGNMENT_CHANGES.labels(change.role, change.code).inc)


async def _pick_up_after_release(tx: BatchTransaction, freed: set[str], actor: Actor) -> None:
    """A customer left these RMs' books: customers waiting at their branches for the tiers they
    serve may fit now (the first few, highest tier first; a registry change looks at all)."""
    state: AssignmentState = tx.state
    by_branch: dict[str, set[str]] = {}
    for rm_id in sorted(freed):
        rm = state.pool.get(rm_id)
        if rm is not None:
            by_branch.setdefault(rm.branch_id, set()).update(state.rules.tiers_served_by(rm.level))
    for branch in sorted(by_branch):
        waiting = await state.waiting_for_release(tx, branch, by_branch[branch])
        if waiting:
            _pick_up(tx, waiting, actor)


def _pick_up(tx: BatchTransaction, customers: Sequence[Customer], actor: Actor) -> int:
    """Give these waiting customers the RMs available now (the pool holds their branch);
    returns how many got a primary RM."""
    state: AssignmentState = tx.state
    by_id = {c.customer_id: c for c in customers}
    placements = state.rules.pick_up([c.assignment() for c in customers], state.pool)
    for placement in placements:
        apply_placement(tx, by_id[placement.after.customer_id], placement, actor)
    return sum(1 for p in placements if p.after.primary and p.before.primary != p.after.primary)


async def pick_up_waiting(tx: BatchTransaction, branch: str, actor: Actor) -> int:
    """Give every customer waiting at ``branch`` (for a primary or a backup RM) the RMs that are
    available now; returns how many got a primary RM."""
    state: AssignmentState = tx.state
    customers = await state.load_customers_where(tx, and_(CUSTOMERS.c.serving_branch == branch,
                                                          CUSTOMERS.c.standing.in_([WAITING, NO_BACKUP])))
    if not customers:
        return 0
    await state.load_pool(tx, [branch], [x for c in customers for x in (c.primary_rm, c.backup_rm)])
    return _pick_up(tx, customers, actor)


# --- the RM registry ------------------------------------------------------------------------


class RegistryConflict(Exception):
    """A registry change that would leave customers with an RM who cannot serve them."""


class HandoverRefused(Exception):
    def __init__(self, message: str, unplaced: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.unplaced = list(unplaced)


class UnknownRm(Exception):
    pass


async def put_rm(tx: BatchTransaction, rm_id: str, *, name: str, branch_id: str, level: str,
                 capacity: int | dict[str, int] | None, active: bool, actor: Actor) -> tuple[dict, int]:
    """Add or change an RM. Moving an RM to another level or branch, or deactivating them, is
    refused while they hold customers (hand the book over first). Any waiting customers of the
    RM's branch are then given the RMs available now; returns the RM's view and how many were."""
    state = await AssignmentState.for_api(tx)
    await state.load_pool(tx, [branch_id], [rm_id])
    row = state.registry.get(rm_id)
    if row is not None:
        held = state.held(rm_id)
        if held[PRIMARY] or held[BACKUP]:
            what = []
            if row.level != level:
                what.append(f"level {row.level} -> {level}")
            if row.branch_id != branch_id:
                what.append(f"branch {row.branch_id} -> {branch_id}")
            if row.active and not active:
                what.append("deactivation")
            if what:
                raise RegistryConflict(
                    f"RM {rm_id} still holds {held[PRIMARY]} customer(s) as primary and {held[BACKUP]} "
                    f"as backup; hand the book over (POST /v1/rms/{rm_id}/handover) before "
                    f"{', '.join(what)}")
    state.put_rm(RegistryRm(rm_id, name, branch_id, level,
                            None if capacity is None else json.dumps(capacity, sort_keys=True), active,
                            datetime.now(timezone.utc), actor.who[:200]))
    picked = await pick_up_waiting(tx, branch_id, actor) if active else 0
    return rm_item(state.rules, state.registry[rm_id], state.books.get(rm_id, {})), picked


@dataclass(frozen=True)
class HandoverOutcome:
    moved: int
    backups_replaced: int
    deactivated: bool
    placements: tuple[Placement, ...]

    def as_dict(self) -> dict:
        return {"moved": self.moved, "backups_replaced": self.backups_replaced, "deactivated": self.deactivated}


async def hand_over(tx: BatchTransaction, rm_id: str, reason: str, to: Sequence[str] | None,
                    deactivate: bool, actor: Actor) -> HandoverOutcome:
    """Move an RM's whole book in one step, balanced over the eligible RMs (or over ``to``);
    refused as a whole if any customer has nowhere to go."""
    state = await AssignmentState.for_api(tx)
    rules = state.rules
    await state.load_pool(tx, [], [rm_id])
    if rm_id not in state.registry:
        raise UnknownRm(rm_id)
    customers = await state.load_customers_where(tx, or_(CUSTOMERS.c.primary_rm == rm_id,
                                                         CUSTOMERS.c.backup_rm == rm_id))
    await state.load_pool(tx, {c.serving_branch for c in customers},
                          list(to or []) + [x for c in customers for x in (c.primary_rm, c.backup_rm)])
    plan = rules.hand_over(rm_id, [c.assignment() for c in customers], state.pool, to=to, why=reason)
    if plan.unplaced:
        shown = ", ".join(plan.unplaced[:10]) + (" ..." if len(plan.unplaced) > 10 else "")
        raise HandoverRefused(
            f"{len(plan.unplaced)} of {rm_id}'s customers have no eligible RM with room"
            f"{' among ' + ', '.join(to) if to else ''}: {shown}", plan.unplaced)
    by_id = {c.customer_id: c for c in customers}
    for placement in plan.placements:
        apply_placement(tx, by_id[placement.after.customer_id], placement, actor)
    if deactivate:
        state.deactivate(rm_id, datetime.now(timezone.utc), actor.who[:200])
    tx.after_commit(metrics.HANDOVERS.inc)
    return HandoverOutcome(plan.moved, len(plan.placements) - plan.moved, bool(deactivate), plan.placements)


async def claim(tx: BatchTransaction, rm_id: str, customer_id: str, why: str, actor: Actor) -> ClaimVerdict:
    """An RM claims a customer they know: accepted (and applied) or refused with the reason."""
    state = await AssignmentState.for_api(tx)
    rules = state.rules
    await state.load_customers(tx, [customer_id])
    customer = state.customers.get(customer_id)
    branch = rules.serving_branch(customer.tier, customer.home_branch_id) if customer is not None else None
    await state.load_pool(tx, [branch], [rm_id] + ([customer.primary_rm, customer.backup_rm] if customer else []))
    verdict = rules.claim(customer.assignment() if customer else None, state.pool.get(rm_id), state.pool, why)
    if verdict.accepted and verdict.placement is not None:
        state.pool.apply(verdict.placement, rules.weights)
        apply_placement(tx, customer, verdict.placement, actor)
    tx.after_commit(metrics.CLAIMS.labels("accepted" if verdict.accepted else "refused", verdict.code).inc)
    return verdict


# --- follow-ups -----------------------------------------------------------------------------


async def record_follow_up(session: AsyncSession, row: AssignmentCustomer, *, rm_id: str | None,
                           author: str, channel: str, note: str, outcome: str, next_date: date | None,
                           contacted_at: datetime) -> AssignmentFollowUp:
    """Log a contact; the customer's last contact and next planned contact follow the latest.
    Only the contact columns of the customer's row change (the consumer keeps the others)."""
    follow_up = AssignmentFollowUp(
        customer_id=row.customer_id, rm_id=rm_id, author=author[:200], channel=channel, note=note,
        outcome=outcome, next_date=next_date, contacted_at=contacted_at,
        recorded_at=datetime.now(timezone.utc),
    )
    session.add(follow_up)
    if row.last_contact is None or contacted_at >= row.last_contact:
        row.last_contact = contacted_at
        row.next_contact = next_date
    await session.flush()
    return follow_up


# --- reads ----------------------------------------------------------------------------------


def rm_item(rules: AssignmentRules, row: AssignmentRm | RegistryRm, book: dict[tuple[str, str], int]) -> dict:
    """An RM of the registry with their book (``book``: (role, tier) -> customers)."""
    primary = rules.book({t: n for (role, t), n in book.items() if role == PRIMARY})
    backup = rules.book({t: n for (role, t), n in book.items() if role == BACKUP})
    capacity = Capacity.parse(row.capacity)
    return {
        "rm_id": row.rm_id, "name": row.name, "branch_id": row.branch_id, "level": row.level,
        "capacity": (capacity or rules.default_capacity(row.level)).as_json(),
        "capacity_is_default": capacity is None, "active": row.active,
        "customers": primary.customers, "book_weight": primary.weight,
        "book_by_tier": dict(primary.by_tier), "backup_customers": backup.customers,
        "updated_at": row.updated_at, "updated_by": row.updated_by,
    }


async def list_rms(session: AsyncSession, settings: Settings, *, branch_id: str | None,
                   level: str | None, active: bool | None, rm_id: str | None, after: str | None,
                   limit: int) -> tuple[list[dict], str | None]:
    q = select(AssignmentRm).order_by(AssignmentRm.rm_id).limit(limit + 1)
    if branch_id is not None:
        q = q.where(AssignmentRm.branch_id == branch_id)
    if level is not None:
        q = q.where(AssignmentRm.level == level)
    if active is not None:
        q = q.where(AssignmentRm.active == active)
    if rm_id is not None:
        q = q.where(AssignmentRm.rm_id == rm_id)
    if after is not None:
        q = q.where(AssignmentRm.rm_id > after)
    rows = (await session.execute(q)).scalars().all()
    more = len(rows) > limit
    rows = rows[:limit]
    rules = AssignmentRules.from_settings(settings)
    books = await _books(session, [r.rm_id for r in rows])
    return [rm_item(rules, r, books.get(r.rm_id, {})) for r in rows], (rows[-1].rm_id if more else None)


WORKLIST_SORTS = {
    "tier": AssignmentCustomer.tier_rank,
    "aum": AssignmentCustomer.aum,
    "next_contact": AssignmentCustomer.next_contact,
    "last_contact": AssignmentCustomer.last_contact,
    "customer_id": AssignmentCustomer.customer_id,
}


@dataclass(frozen=True)
class WorklistFilter:
    """Which of an RM's customers a worklist page lists: ``tiers`` (any of them; empty: all),
    on ``watch`` or not (None: both), ``q`` a prefix of the customer id or name (any case)."""

    tiers: tuple[str, ...] = ()
    watch: bool | None = None
    q: str | None = None

    def where(self) -> list:
        conditions = []
        if self.tiers:
            conditions.append(AssignmentCustomer.tier.in_(self.tiers))
        if self.watch is not None:
            conditions.append(AssignmentCustomer.watch == self.watch)
        if self.q:
            needle = self.q.lower()
            conditions.append(or_(func.lower(AssignmentCustomer.customer_id).startswith(needle, autoescape=True),
                                  func.lower(AssignmentCustomer.name).startswith(needle, autoescape=True)))
        return conditions


def _book_of(rm_id: str, role: str):
    if role == PRIMARY:
        return AssignmentCustomer.primary_rm == rm_id
    if role == BACKUP:
        return AssignmentCustomer.backup_rm == rm_id
    return or_(AssignmentCustomer.primary_rm == rm_id, AssignmentCustomer.backup_rm == rm_id)


def _open_signals():
    return (
        select(func.count()).select_from(AssignmentSignal)
        .where(AssignmentSignal.customer_id == AssignmentCustomer.customer_id,
               AssignmentSignal.status == "open")
        .correlate(AssignmentCustomer).scalar_subquery()
    )


async def worklist(session: AsyncSession, rm_id: str, *, role: str, sort: str, descending: bool,
                   offset: int, limit: int, only: WorklistFilter = WorklistFilter()) -> tuple[list[dict], bool]:
    """The RM's customers (as primary, backup or both) with name, tier, watch, months below,
    AUM, last and next contact and open signals (how many, of which types), narrowed by
    ``only``, sorted (empty values last, then by customer id) and paged."""
    open_signals = _open_signals()
    column = WORKLIST_SORTS[sort] if sort != "open_signals" else open_signals
    order = [column.is_(None), column.desc() if descending else column.asc(), AssignmentCustomer.customer_id]
    rows = (await session.execute(
        select(AssignmentCustomer, open_signals.label("open_signals")).where(_book_of(rm_id, role), *only.where())
        .order_by(*order).offset(offset).limit(limit + 1)
    )).all()
    page = rows[:limit]
    types: dict[str, set[str]] = {}
    if page:
        for customer_id, signal_type in await session.execute(
            select(AssignmentSignal.customer_id, AssignmentSignal.signal_type)
            .where(AssignmentSignal.customer_id.in_([c.customer_id for c, _ in page]),
                   AssignmentSignal.status == "open", AssignmentSignal.signal_type.is_not(None))
        ):
            types.setdefault(customer_id, set()).add(signal_type)
    items = [{
        "customer_id": c.customer_id, "name": c.name, "tier": c.tier, "watch": c.watch,
        "months_below": c.months_below, "aum": c.aum, "last_contact": c.last_contact,
        "next_contact": c.next_contact, "open_signals": int(n or 0),
        "open_signal_types": sorted(types.get(c.customer_id, ())),
        "role": PRIMARY if c.primary_rm == rm_id else BACKUP, "branch_id": c.home_branch_id,
        "home_branch_id": c.home_branch_id, "serving_branch": c.serving_branch,
    } for c, n in page]
    return items, len(rows) > limit


async def worklist_counts(session: AsyncSession, rm_id: str, *, role: str, today: date) -> dict[str, int]:
    """How many customers the RM's book holds (in ``role``), how many are on watch, whose next
    contact is due today or overdue (before ``today``), and their open signals: the whole book,
    whatever filters a page applies."""
    def counted(condition):
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    row = (await session.execute(
        select(func.count(), counted(AssignmentCustomer.watch.is_(True)),
               counted(AssignmentCustomer.next_contact == today), counted(AssignmentCustomer.next_contact < today),
               func.coalesce(func.sum(_open_signals()), 0))
        .where(_book_of(rm_id, role))
    )).one()
    return {"customers": int(row[0]), "watch": int(row[1]), "contacts_due_today": int(row[2]),
            "contacts_overdue": int(row[3]), "open_signals": int(row[4])}


async def rm_view(session: AsyncSession, settings: Settings, row: AssignmentRm) -> dict:
    books = await _books(session, [row.rm_id])
    return rm_item(AssignmentRules.from_settings(settings), row, books.get(row.rm_id, {}))


async def _books(session: AsyncSession, rm_ids: Sequence[str]) -> dict[str, dict[tuple[str, str], int]]:
    books: dict[str, dict[tuple[str, str], int]] = {}
    for start in range(0, len(rm_ids), 500):
        rows = await session.execute(
            select(AssignmentBook.rm_id, AssignmentBook.role, AssignmentBook.tier, AssignmentBook.customers)
            .where(AssignmentBook.rm_id.in_(rm_ids[start:start + 500]))
        )
        for rm_id, role, tier, customers in rows:
            books.setdefault(rm_id, {})[(role, tier)] = customers
    return books


def change_item(c: AssignmentChange) -> dict:
    return {"id": c.id, "customer_id": c.customer_id, "role": c.role, "from": c.from_rm, "to": c.to_rm,
            "reason": c.reason, "detail": c.detail, "actor": c.actor, "cause": c.cause, "tier": c.tier,
            "branch_id": c.branch_id, "changed_at": c.changed_at}


async def changes(session: AsyncSession, *, customer_id: str | None = None, rm_id: str | None = None,
                  after: int | None, limit: int) -> tuple[list[dict], int | None]:
    """The audit trail of a customer, or of every change to or from an RM, oldest first."""
    q = select(AssignmentChange).order_by(AssignmentChange.id).limit(limit + 1)
    if customer_id is not None:
        q = q.where(AssignmentChange.customer_id == customer_id)
    if rm_id is not None:
        q = q.where(or_(AssignmentChange.from_rm == rm_id, AssignmentChange.to_rm == rm_id))
    if after is not None:
        q = q.where(AssignmentChange.id > after)
    rows = (await session.execute(q)).scalars().all()
    more = len(rows) > limit
    rows = rows[:limit]
    return [change_item(c) for c in rows], (rows[-1].id if more else None)


def follow_up_item(f: AssignmentFollowUp) -> dict:
    return {"id": f.id, "customer_id": f.customer_id, "rm_id": f.rm_id, "author": f.author,
            "channel": f.channel, "note": f.note, "outcome": f.outcome, "next_date": f.next_date,
            "contacted_at": f.contacted_at, "recorded_at": f.recorded_at}


async def follow_ups(session: AsyncSession, customer_id: str, *, before: int | None,
                     limit: int) -> tuple[list[dict], int | None]:
    """A customer's follow-ups, newest first."""
    q = (select(AssignmentFollowUp).where(AssignmentFollowUp.customer_id == customer_id)
         .order_by(AssignmentFollowUp.id.desc()).limit(limit + 1))
    if before is not None:
        q = q.where(AssignmentFollowUp.id < before)
    rows = (await session.execute(q)).scalars().all()
    more = len(rows) > limit
    rows = rows[:limit]
    return [follow_up_item(f) for f in rows], (rows[-1].id if more else None)


async def level_books(session: AsyncSession) -> list[tuple[str, str, str, int]]:
    """(level, role, tier, customers) over every RM, for the book-size gauges."""
    rows = await session.execute(
        select(AssignmentRm.level, AssignmentBook.role, AssignmentBook.tier, func.sum(AssignmentBook.customers))
        .join(AssignmentBook, AssignmentBook.rm_id == AssignmentRm.rm_id)
        .group_by(AssignmentRm.level, AssignmentBook.role, AssignmentBook.tier)
    )
    return [(level, role, tier, int(n or 0)) for level, role, tier, n in rows]


async def refresh_gauges(session: AsyncSession, settings: Settings) -> None:
    """Book sizes by level, RMs by level, customers waiting for a primary or a backup RM."""
    rules = AssignmentRules.from_settings(settings)
    customers: dict[tuple[str, str], int] = {}
    weight: dict[str, int] = {}
    for level, role, tier, n in await level_books(session):
        customers[(level, role)] = customers.get((level, role), 0) + n
        if role == PRIMARY:
            weight[level] = weight.get(level, 0) + n * rules.weight(tier)
    for level in settings.assignment.levels:
        for role in (PRIMARY, BACKUP):
            metrics.BOOK_CUSTOMERS.labels(level, role).set(customers.get((level, role), 0))
        metrics.BOOK_WEIGHT.labels(level).set(weight.get(level, 0))
    rms = await session.execute(
        select(AssignmentRm.level, AssignmentRm.active, func.count()).group_by(AssignmentRm.level, AssignmentRm.active)
    )
    for level in settings.assignment.levels:
        for active in ("true", "false"):
            metrics.RMS.labels(level, active).set(0)
    for level, active, n in rms:
        metrics.RMS.labels(level, "true" if active else "false").set(n)
    standing = dict((await session.execute(
        select(AssignmentCustomer.standing, func.count())
        .where(AssignmentCustomer.standing.in_([WAITING, NO_BACKUP]))
        .group_by(AssignmentCustomer.standing)
    )).all())
    metrics.UNASSIGNED.set(standing.get(WAITING, 0))
    metrics.NO_BACKUP.set(standing.get(NO_BACKUP, 0))

