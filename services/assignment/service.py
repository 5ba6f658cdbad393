"""Assignment's handlers and the operations the API calls: keep every customer with the right
RMs as tiers, home branches and the registry change, and record why.

Every decision reads the books of all eligible RMs, so decisions take turns (see
:func:`take_turn`) and are deterministic given the database: the same events over the same
state assign the same RMs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Iterable, Sequence

from sqlalchemy import func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.contracts.cloudevents import Event
from shared.contracts.events import AssignmentChangedV1, CustomerFact, SignalV1, TieringChangeV1
from shared.db import insert_for
from shared.money import ZERO
from shared.runtime.errors import Rejected
from shared.runtime.unit_of_work import UnitOfWork
from shared.settings import Settings
from services.assignment import metrics
from services.assignment.domain import (
    BACKUP,
    BRANCH_CHANGE,
    PRIMARY,
    TIER_CHANGE,
    WAITING,
    NO_BACKUP,
    Assignment,
    AssignmentRules,
    Capacity,
    ClaimVerdict,
    Placement,
    Pool,
    Rm,
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

LOCK_KEY = 7_212_105
PICK_UP_AFTER_RELEASE = 50
"""How many waiting customers a release of capacity looks at; a registry change looks at all."""

_RULES: dict[int, tuple[Settings, AssignmentRules]] = {}


def rules_of(settings: Settings) -> AssignmentRules:
    """The assignment rules of these settings, built once per settings object."""
    cached = _RULES.get(id(settings))
    if cached is None or cached[0] is not settings:
        cached = (settings, AssignmentRules.from_settings(settings))
        _RULES[id(settings)] = cached
    return cached[1]


@dataclass(frozen=True)
class Actor:
    """Who made a change: ``system`` (an event, named by ``cause``) or a token's role and subject."""

    who: str
    cause: str


def system(uow: UnitOfWork) -> Actor:
    return Actor("system", f"event:{uow.cause}")


async def take_turn(session: AsyncSession) -> None:
    """Let one assignment decision at a time read and change the books, so two decisions never
    fill the same room. On PostgreSQL a transaction-scoped advisory lock (held to commit, taken
    once per transaction); SQLite's writers already take turns (BEGIN IMMEDIATE)."""
    if session.info.get("assignment_turn"):
        return
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
    session.info["assignment_turn"] = True


# --- handlers -------------------------------------------------------------------------------


async def prefetch(events: list[Event], uow: UnitOfWork) -> None:
    """Load the batch's customers in a few queries; a batch that may move customers takes its
    turn first, so the RMs' books it then reads stay its own until it commits."""
    changes = [e.data for e in events if isinstance(e.data, TieringChangeV1)]
    if any(c.customer is not None or c.tier_changes for c in changes):
        await take_turn(uow.session)
    ids = sorted({c.customer_id for c in changes})
    customers = uow.batch.setdefault("customers", {})
    for start in range(0, len(ids), 500):
        rows = (await uow.session.execute(
            select(AssignmentCustomer).where(AssignmentCustomer.customer_id.in_(ids[start:start + 500]))
        )).scalars()
        customers.update((r.customer_id, r) for r in rows)
    uow.batch["unseen"] = set(ids) - set(customers)


async def on_tiering_change(event: Event, uow: UnitOfWork) -> None:
    """One fact of a customer as tiering applied it, in the customer's order: core banking's
    record (the home branch), then the tier and AUM right after the fact."""
    change: TieringChangeV1 = event.data
    rules = rules_of(uow.settings)
    if not rules.knows(change.tier):
        raise Rejected(f"tier {change.tier!r} is not in the tier table")
    if change.customer is not None:
        await _on_customer(change.customer, uow)
    row = await _customer(uow, change.customer_id)
    if row.aum_at is None or change.at >= row.aum_at:
        row.aum, row.aum_at = change.aum, change.at
    if row.tier != change.tier:
        await take_turn(uow.session)
        await _replace(uow, row, TIER_CHANGE, system(uow), tier=change.tier)


async def _on_customer(data: CustomerFact, uow: UnitOfWork) -> None:
    """Keep the home branch; a customer whose serving branch changes moves to its RMs."""
    if data.home_branch_id is None:
        return
    row = await _customer(uow, data.customer_id)
    if row.branch_at is not None and data.updated_at < row.branch_at:
        return  # an older record than the one applied
    row.branch_at = data.updated_at
    if row.home_branch_id == data.home_branch_id:
        return
    rules = rules_of(uow.settings)
    if not rules.needs_rm(row.tier):
        row.home_branch_id = data.home_branch_id
        row.serving_branch = rules.serving_branch(row.tier, data.home_branch_id)
        return
    await take_turn(uow.session)
    await _replace(uow, row, BRANCH_CHANGE, system(uow), home_branch_id=data.home_branch_id)


async def on_signal(event: Event, uow: UnitOfWork) -> None:
    """Keep each signal as last announced (status and time raised: a trigger that takes a
    signal over re-announces it), so the worklist counts the open ones."""
    data: SignalV1 = event.data
    stmt = insert_for(uow.session)(AssignmentSignal).values(
        signal_id=data.id, customer_id=data.customer_id, status=data.status, raised_at=data.raised_at,
    )
    stmt = stmt.on_conflict_do_update(index_elements=["signal_id"],
                                      set_={"status": data.status, "raised_at": data.raised_at})
    await uow.session.execute(stmt)


# --- the steps the handlers and the API share ----------------------------------------------


def assignment_of(row: AssignmentCustomer) -> Assignment:
    return Assignment(row.customer_id, row.tier, row.home_branch_id, row.primary_rm, row.backup_rm)


async def _customer(uow: UnitOfWork, customer_id: str) -> AssignmentCustomer:
    """The customer's row, created (in the lowest tier) on first sight. Rows are kept in the
    batch's scratch space, since a row added but not yet flushed is not found by a lookup."""
    customers = uow.batch.setdefault("customers", {})
    row = customers.get(customer_id)
    if row is None and customer_id not in uow.batch.get("unseen", ()):
        row = await uow.session.get(AssignmentCustomer, customer_id)
    if row is None:
        rules = rules_of(uow.settings)
        lowest = rules.tiers[0]
        row = AssignmentCustomer(
            customer_id=customer_id, tier=lowest, tier_rank=0, home_branch_id=None, branch_at=None,
            serving_branch=None, standing=rules.standing(Assignment(customer_id, lowest)),
            primary_rm=None, backup_rm=None, aum=ZERO,
        )
        uow.session.add(row)
    customers[customer_id] = row
    return row


async def _replace(uow: UnitOfWork, row: AssignmentCustomer, cause: str, actor: Actor, *,
                   tier: str | None = None, home_branch_id: str | None = None) -> None:
    """Place a customer after their tier or home branch changed; capacity a move frees goes to
    customers waiting for it."""
    rules = rules_of(uow.settings)
    current = assignment_of(row)
    branch = rules.serving_branch(tier or row.tier, home_branch_id or row.home_branch_id)
    pool = await pool_for(uow, [branch], [current.primary, current.backup])
    placement = rules.place(current, pool, cause, tier=tier, home_branch_id=home_branch_id)
    pool.apply(placement, rules.weights)
    await apply_placement(uow, row, placement, actor)
    freed = {m.from_rm for m in book_moves(placement)
             if m.role == PRIMARY and m.from_rm is not None and m.from_rm != m.to_rm}
    if freed:
        await _pick_up_after_release(uow, freed, actor)


async def pool_for(uow: UnitOfWork, branches: Iterable[str | None], rm_ids: Iterable[str | None] = ()) -> Pool:
    """The unit of work's pool of RMs, holding at least the RMs of ``branches`` and those named
    in ``rm_ids``, with their books. Loaded once per transaction (which holds the turn) and kept
    current as placements are applied to it."""
    pool: Pool = uow.batch.setdefault("pool", Pool())
    loaded: set[str] = uow.batch.setdefault("pool_branches", set())
    branches = sorted({b for b in branches if b and b not in loaded})
    rm_ids = sorted({r for r in rm_ids if r and pool.get(r) is None})
    if not branches and not rm_ids:
        return pool
    rules = rules_of(uow.settings)
    rows = (await uow.session.execute(
        select(AssignmentRm.rm_id, AssignmentRm.branch_id, AssignmentRm.level, AssignmentRm.capacity,
               AssignmentRm.active)
        .where(or_(AssignmentRm.branch_id.in_(branches), AssignmentRm.rm_id.in_(rm_ids)))
    )).all()
    rows = [r for r in rows if pool.get(r.rm_id) is None]
    ids = {r.rm_id for r in rows}
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for (rm_id, role, tier), book in (await _book_rows(uow, sorted(ids))).items():
        if rm_id in ids:
            counts.setdefault((rm_id, role), {})[tier] = book.customers
    for r in rows:
        pool.add(Rm(r.rm_id, r.branch_id, r.level,
                    Capacity.parse(r.capacity) or rules.default_capacity(r.level), r.active,
                    rules.book(counts.get((r.rm_id, PRIMARY), {})),
                    rules.book(counts.get((r.rm_id, BACKUP), {}))))
    loaded.update(branches)
    return pool


async def _book_rows(uow: UnitOfWork, rm_ids: Sequence[str]) -> dict[tuple[str, str, str], AssignmentBook]:
    """The book rows of these RMs, kept in the transaction's scratch space: placements change
    them in memory and the commit writes them all at once (the turn makes that safe)."""
    books: dict[tuple[str, str, str], AssignmentBook] = uow.batch.setdefault("books", {})
    loaded: set[str] = uow.batch.setdefault("books_loaded", set())
    wanted = sorted(set(rm_ids) - loaded)
    for start in range(0, len(wanted), 500):
        rows = (await uow.session.execute(
            select(AssignmentBook).where(AssignmentBook.rm_id.in_(wanted[start:start + 500]))
        )).scalars()
        books.update(((b.rm_id, b.role, b.tier), b) for b in rows)
    loaded.update(wanted)
    return books


async def _books(session: AsyncSession, rm_ids: Sequence[str]) -> dict[tuple[str, str], dict[str, int]]:
    books: dict[tuple[str, str], dict[str, int]] = {}
    for start in range(0, len(rm_ids), 500):
        rows = await session.execute(
            select(AssignmentBook.rm_id, AssignmentBook.role, AssignmentBook.tier, AssignmentBook.customers)
            .where(AssignmentBook.rm_id.in_(rm_ids[start:start + 500]))
        )
        for rm_id, role, tier, customers in rows:
            books.setdefault((rm_id, role), {})[tier] = customers
    return books


async def _count(uow: UnitOfWork, rm_id: str, role: str, tier: str, delta: int) -> None:
    books = await _book_rows(uow, [rm_id])
    row = books.get((rm_id, role, tier))
    if row is None:
        row = AssignmentBook(rm_id=rm_id, role=role, tier=tier, customers=0)
        uow.session.add(row)
        books[(rm_id, role, tier)] = row
    row.customers += delta


async def apply_placement(uow: UnitOfWork, row: AssignmentCustomer, placement: Placement,
                          actor: Actor) -> None:
    """Write a placement: the customer's row, the RMs' books, one audit row and one
    ``strata.assignment_changed.v1`` per changed role, all in the caller's transaction."""
    rules = rules_of(uow.settings)
    session = uow.session
    for move in book_moves(placement):
        if move.from_rm is not None:
            await _count(uow, move.from_rm, move.role, move.from_tier, -1)
        if move.to_rm is not None:
            await _count(uow, move.to_rm, move.role, move.to_tier, +1)
    after = placement.after
    # the projection keeps the newest change per role: never let a change look older than the last
    now = max([datetime.now(timezone.utc)] + [t for t in (row.primary_since, row.backup_since) if t])
    branch = rules.serving_branch(after.tier, after.home_branch_id)
    row.tier, row.tier_rank = after.tier, rules.rank(after.tier)
    row.home_branch_id, row.serving_branch = after.home_branch_id, branch
    if row.primary_rm != after.primary:
        row.primary_rm, row.primary_since = after.primary, now
    if row.backup_rm != after.backup:
        row.backup_rm, row.backup_since = after.backup, now
    standing = rules.standing(after)
    row.waiting_since = (row.waiting_since or now) if standing == WAITING else None
    row.standing = standing
    for change in placement.changes:
        session.add(AssignmentChange(
            customer_id=after.customer_id, role=change.role, from_rm=change.from_rm, to_rm=change.to_rm,
            reason=change.code, detail=change.detail[:2000], actor=actor.who[:200], cause=actor.cause[:250],
            tier=after.tier, branch_id=branch, changed_at=now,
        ))
        uow.emit(AssignmentChangedV1(
            customer_id=after.customer_id, role=change.role, from_=change.from_rm, to=change.to_rm,
            reason=change.reason, changed_at=now, tier=after.tier, branch_id=branch,
        ), key=f"{after.customer_id}:{change.role}:{change.from_rm}>{change.to_rm}")
        metrics.ASSIGNMENT_CHANGES.labels(change.role, change.code).inc()


async def _pick_up_after_release(uow: UnitOfWork, freed: set[str], actor: Actor) -> None:
    """A customer left these RMs' books: customers waiting at their branches for the tiers they
    serve may fit now (the first few, highest tier first; a registry change looks at all)."""
    rules = rules_of(uow.settings)
    pool = await pool_for(uow, [], freed)
    by_branch: dict[str, set[str]] = {}
    for rm_id in sorted(freed):
        rm = pool.get(rm_id)
        if rm is not None:
            by_branch.setdefault(rm.branch_id, set()).update(rules.tiers_served_by(rm.level))
    await uow.session.flush()  # the query below reads who is waiting
    for branch in sorted(by_branch):
        rows = (await uow.session.execute(
            select(AssignmentCustomer)
            .where(AssignmentCustomer.serving_branch == branch, AssignmentCustomer.standing == WAITING,
                   AssignmentCustomer.tier.in_(sorted(by_branch[branch])))
            .order_by(AssignmentCustomer.tier_rank.desc(), AssignmentCustomer.customer_id)
            .limit(PICK_UP_AFTER_RELEASE)
        )).scalars().all()
        if rows:
            await _pick_up(uow, branch, rows, actor)


async def _pick_up(uow: UnitOfWork, branch: str, rows: Sequence[AssignmentCustomer], actor: Actor) -> int:
    rules = rules_of(uow.settings)
    by_id = {r.customer_id: r for r in rows}
    extra = [r.primary_rm for r in rows] + [r.backup_rm for r in rows]
    pool = await pool_for(uow, [branch], extra)
    placements = rules.pick_up([assignment_of(r) for r in rows], pool)
    for placement in placements:
        await apply_placement(uow, by_id[placement.after.customer_id], placement, actor)
    return sum(1 for p in placements if p.after.primary and p.before.primary != p.after.primary)


async def pick_up_waiting(uow: UnitOfWork, branch: str, actor: Actor) -> int:
    """Give every customer waiting at ``branch`` (for a primary or a backup RM) the RMs that are
    available now; returns how many got a primary RM."""
    await uow.session.flush()
    rows = (await uow.session.execute(
        select(AssignmentCustomer)
        .where(AssignmentCustomer.serving_branch == branch,
               AssignmentCustomer.standing.in_([WAITING, NO_BACKUP]))
        .order_by(AssignmentCustomer.tier_rank.desc(), AssignmentCustomer.customer_id)
    )).scalars().all()
    return await _pick_up(uow, branch, rows, actor) if rows else 0


# --- the RM registry ------------------------------------------------------------------------


class RegistryConflict(Exception):
    """A registry change that would leave customers with an RM who cannot serve them."""


class HandoverRefused(Exception):
    def __init__(self, message: str, unplaced: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.unplaced = list(unplaced)


class UnknownRm(Exception):
    pass


async def holdings(session: AsyncSession, rm_id: str) -> dict[str, int]:
    """How many customers an RM holds as primary and as backup."""
    rows = await session.execute(
        select(AssignmentBook.role, func.sum(AssignmentBook.customers))
        .where(AssignmentBook.rm_id == rm_id).group_by(AssignmentBook.role)
    )
    held = {PRIMARY: 0, BACKUP: 0}
    for role, n in rows:
        held[role] = int(n or 0)
    return held


async def put_rm(uow: UnitOfWork, rm_id: str, *, name: str, branch_id: str, level: str,
                 capacity: int | dict[str, int] | None, active: bool, actor: Actor) -> tuple[AssignmentRm, int]:
    """Add or change an RM. Moving an RM to another level or branch, or deactivating them, is
    refused while they hold customers (hand the book over first). Any waiting customers of the
    RM's branch are then given the RMs available now; returns the RM and how many were."""
    await take_turn(uow.session)
    row = await uow.session.get(AssignmentRm, rm_id)
    now = datetime.now(timezone.utc)
    if row is not None:
        held = await holdings(uow.session, rm_id)
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
    else:
        row = AssignmentRm(rm_id=rm_id)
        uow.session.add(row)
    row.name, row.branch_id, row.level, row.active = name, branch_id, level, active
    row.capacity = None if capacity is None else json.dumps(capacity, sort_keys=True)
    row.updated_at, row.updated_by = now, actor.who[:200]
    await uow.session.flush()
    picked = await pick_up_waiting(uow, branch_id, actor) if active else 0
    return row, picked


async def hand_over(uow: UnitOfWork, rm_id: str, reason: str, to: Sequence[str] | None,
                    deactivate: bool, actor: Actor) -> dict:
    """Move an RM's whole book in one step, balanced over the eligible RMs (or over ``to``);
    refused as a whole if any customer has nowhere to go."""
    rules = rules_of(uow.settings)
    session = uow.session
    await take_turn(session)
    rm = await session.get(AssignmentRm, rm_id)
    if rm is None:
        raise UnknownRm(rm_id)
    rows = (await session.execute(
        select(AssignmentCustomer)
        .where(or_(AssignmentCustomer.primary_rm == rm_id, AssignmentCustomer.backup_rm == rm_id))
        .order_by(AssignmentCustomer.customer_id)
    )).scalars().all()
    branches = {r.serving_branch for r in rows}
    extra = list(to or []) + [r.primary_rm for r in rows] + [r.backup_rm for r in rows]
    pool = await pool_for(uow, branches, extra)
    plan = rules.hand_over(rm_id, [assignment_of(r) for r in rows], pool, to=to, why=reason)
    if plan.unplaced:
        shown = ", ".join(plan.unplaced[:10]) + (" ..." if len(plan.unplaced) > 10 else "")
        raise HandoverRefused(
            f"{len(plan.unplaced)} of {rm_id}'s customers have no eligible RM with room"
            f"{' among ' + ', '.join(to) if to else ''}: {shown}", plan.unplaced)
    by_id = {r.customer_id: r for r in rows}
    for placement in plan.placements:
        await apply_placement(uow, by_id[placement.after.customer_id], placement, actor)
    if deactivate:
        rm.active = False
        rm.updated_at, rm.updated_by = datetime.now(timezone.utc), actor.who[:200]
    await session.flush()
    metrics.HANDOVERS.inc()
    return {"moved": plan.moved, "backups_replaced": len(plan.placements) - plan.moved,
            "deactivated": bool(deactivate)}


async def claim(uow: UnitOfWork, rm_id: str, customer_id: str, why: str, actor: Actor) -> ClaimVerdict:
    """An RM claims a customer they know: accepted (and applied) or refused with the reason."""
    rules = rules_of(uow.settings)
    session = uow.session
    await take_turn(session)
    row = await session.get(AssignmentCustomer, customer_id)
    customer = assignment_of(row) if row is not None else None
    branch = rules.serving_branch(row.tier, row.home_branch_id) if row is not None else None
    extra = [rm_id] + ([row.primary_rm, row.backup_rm] if row is not None else [])
    pool = await pool_for(uow, [branch], extra)
    verdict = rules.claim(customer, pool.get(rm_id), pool, why)
    if verdict.accepted and verdict.placement is not None:
        pool.apply(verdict.placement, rules.weights)
        await apply_placement(uow, row, verdict.placement, actor)
    return verdict


# --- follow-ups -----------------------------------------------------------------------------


async def record_follow_up(session: AsyncSession, row: AssignmentCustomer, *, rm_id: str | None,
                           author: str, channel: str, note: str, outcome: str, next_date: date | None,
                           contacted_at: datetime) -> AssignmentFollowUp:
    """Log a contact; the customer's last contact and next planned contact follow the latest."""
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


async def rm_view(session: AsyncSession, settings: Settings, row: AssignmentRm) -> dict:
    rules = rules_of(settings)
    books = await _books(session, [row.rm_id])
    primary = rules.book(books.get((row.rm_id, PRIMARY), {}))
    backup = rules.book(books.get((row.rm_id, BACKUP), {}))
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
    return [await rm_view(session, settings, r) for r in rows], (rows[-1].rm_id if more else None)


WORKLIST_SORTS = {
    "tier": AssignmentCustomer.tier_rank,
    "aum": AssignmentCustomer.aum,
    "next_contact": AssignmentCustomer.next_contact,
    "last_contact": AssignmentCustomer.last_contact,
    "customer_id": AssignmentCustomer.customer_id,
}


async def worklist(session: AsyncSession, rm_id: str, *, role: str, sort: str, descending: bool,
                   offset: int, limit: int) -> tuple[list[dict], bool]:
    """The RM's customers (as primary, backup or both) with tier, AUM, last and next contact and
    open signals, sorted (empty values last, then by customer id) and paged."""
    open_signals = (
        select(func.count()).select_from(AssignmentSignal)
        .where(AssignmentSignal.customer_id == AssignmentCustomer.customer_id,
               AssignmentSignal.status == "open")
        .correlate(AssignmentCustomer).scalar_subquery()
    )
    if role == PRIMARY:
        mine = AssignmentCustomer.primary_rm == rm_id
    elif role == BACKUP:
        mine = AssignmentCustomer.backup_rm == rm_id
    else:
        mine = or_(AssignmentCustomer.primary_rm == rm_id, AssignmentCustomer.backup_rm == rm_id)
    column = WORKLIST_SORTS[sort] if sort != "open_signals" else open_signals
    order = [column.is_(None), column.desc() if descending else column.asc(), AssignmentCustomer.customer_id]
    rows = (await session.execute(
        select(AssignmentCustomer, open_signals.label("open_signals")).where(mine)
        .order_by(*order).offset(offset).limit(limit + 1)
    )).all()
    items = [{
        "customer_id": c.customer_id, "tier": c.tier, "aum": c.aum, "last_contact": c.last_contact,
        "next_contact": c.next_contact, "open_signals": int(n or 0),
        "role": PRIMARY if c.primary_rm == rm_id else BACKUP, "home_branch_id": c.home_branch_id,
        "serving_branch": c.serving_branch,
    } for c, n in rows[:limit]]
    return items, len(rows) > limit


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
    rules = rules_of(settings)
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

