"""Assignment's rows as one transaction sees them: customers, the RM registry, the RMs' books and
the signals as plain values, read in a few set-based statements for everything the transaction's
decisions need, changed by the handlers (or an API call), and written at commit, one statement
per table.

Who writes which columns of a customer's row, so that writers never undo each other:

- the placement (tier, branches, standing, RMs and since when) changes only while the writer
  holds the turn (:meth:`AssignmentState.take_turn`: one decision at a time reads and changes
  the books), so a transaction holding it has read the rows as they are;
- the facts of tiering's stream (AUM, name, watch, months below) are written by the consumer alone, with or without the
  turn: a batch of postings that moves nobody takes no turn and writes only those;
- the contacts are the follow-ups' (``service.record_follow_up``), never written here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Iterable

from sqlalchemy import ColumnElement, func, or_, select, text

from shared.contracts.events import TieringChangeV1
from shared.db import read_rows, write_rows
from shared.money import ZERO
from shared.runtime.transaction import BatchTransaction
from services.assignment.domain import BACKUP, PRIMARY, WAITING, Assignment, AssignmentRules, Capacity, Pool, Rm
from services.assignment.models import AssignmentBook, AssignmentCustomer, AssignmentRm, AssignmentSignal

CUSTOMERS = AssignmentCustomer.__table__
RMS = AssignmentRm.__table__
BOOKS = AssignmentBook.__table__
SIGNALS = AssignmentSignal.__table__

LOCK_KEY = 7_212_105
PICK_UP_AFTER_RELEASE = 50
"""How many waiting customers a release of capacity looks at (the first, highest tier first);
a registry change looks at all."""
WAITING_READ = 2 * PICK_UP_AFTER_RELEASE
"""How many customers waiting at each branch for each tier a batch reads before its first
record: enough for every release the batch makes, unless it takes more than half of them."""

PLACEMENT = ("tier", "tier_rank", "home_branch_id", "branch_at", "serving_branch", "standing", "primary_rm",
             "backup_rm", "primary_since", "backup_since", "waiting_since")
FACTS = ("aum", "aum_at", "name", "watch", "months_below")
COLUMNS = ("customer_id",) + PLACEMENT + FACTS


@dataclass(slots=True)
class Customer:
    """Who serves one customer, with what the worklist shows of them."""

    customer_id: str
    tier: str
    tier_rank: int
    home_branch_id: str | None
    branch_at: datetime | None
    serving_branch: str | None
    standing: str
    primary_rm: str | None
    backup_rm: str | None
    primary_since: datetime | None
    backup_since: datetime | None
    waiting_since: datetime | None
    aum: Decimal
    aum_at: datetime | None
    name: str | None
    watch: bool
    months_below: int

    def assignment(self) -> Assignment:
        return Assignment(self.customer_id, self.tier, self.home_branch_id, self.primary_rm, self.backup_rm)


@dataclass(slots=True)
class RegistryRm:
    """A row of the RM registry (``capacity`` as stored: JSON text, or None for the default)."""

    rm_id: str
    name: str
    branch_id: str
    level: str
    capacity: str | None
    active: bool
    updated_at: datetime
    updated_by: str


def _customer_of(r) -> Customer:
    return Customer(*(getattr(r, c) for c in COLUMNS))


def _row_of(c: Customer) -> dict:
    return {name: getattr(c, name) for name in COLUMNS}


class AssignmentState:
    """What one transaction of assignment works on (a consumer's batch or an API call)."""

    def __init__(self, rules: AssignmentRules, *, facts: bool) -> None:
        self.rules = rules
        self.facts = facts
        """Whether this transaction writes the stream's facts (the consumer does, the API not)."""
        self.turn = False
        self.customers: dict[str, Customer | None] = {}
        self.registry: dict[str, RegistryRm] = {}
        self.pool = Pool()
        self.books: dict[str, dict[tuple[str, str], int]] = {}
        """RM -> (role, tier) -> customers, for every RM in the pool."""
        self.signals: dict[str, dict] = {}
        self._branches: set[str] = set()
        """Branches whose RMs are all in the pool."""
        self._waiting_read: set[str] = set()
        self._waiting_depth: dict[tuple[str, str], str] = {}
        """(branch, tier) -> the last customer id read of those waiting there, where more wait
        in the database than were read."""
        self._waiting_at: dict[str, set[str]] = {}
        """Serving branch -> the customers known to be waiting there, as they stand now."""
        self._dirty_customers: set[str] = set()
        self._dirty_books: set[tuple[str, str, str]] = set()
        self._dirty_rms: set[str] = set()

    # --- loading ----------------------------------------------------------------------------

    @classmethod
    async def load(cls, tx: BatchTransaction, events: list) -> "AssignmentState":
        """A consumer's batch: its customers; and, when a record may move someone, the turn
        first, then the RMs and books of every branch its decisions may need and who waits there."""
        state = cls(AssignmentRules.from_settings(tx.settings), facts=True)
        changes = [e.data for e in events if isinstance(e.data, TieringChangeV1)]
        if not changes:
            return state
        ids = {c.customer_id for c in changes}
        if any(c.customer is not None or c.tier_changes for c in changes):
            await state.take_turn(tx)
        await state.load_customers(tx, ids)
        if not state.turn and any(c.tier != state.tier_of(c.customer_id) for c in changes):
            await state.take_turn(tx)  # and read again: a claim may have moved one meanwhile
            state.customers.clear()
            state._waiting_at.clear()
            await state.load_customers(tx, ids)
        if state.turn:
            await state._load_for_decisions(tx, changes)
        return state

    @classmethod
    async def for_api(cls, tx: BatchTransaction) -> "AssignmentState":
        """An API call's state, holding the turn, written when its transaction commits."""
        state = cls(AssignmentRules.from_settings(tx.settings), facts=False)
        await state.take_turn(tx)
        tx.state = state
        return state

    async def take_turn(self, tx: BatchTransaction) -> None:
        """Let one assignment decision at a time read and change the books, so two decisions
        never fill the same room: on PostgreSQL a transaction-scoped advisory lock, held to
        commit; SQLite's writers already take turns (BEGIN IMMEDIATE)."""
        if self.turn:
            return
        if tx.session.get_bind().dialect.name == "postgresql":
            await tx.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
        self.turn = True

    async def _load_for_decisions(self, tx: BatchTransaction, changes: list[TieringChangeV1]) -> None:
        tiers: dict[str, set[str]] = {}
        homes: dict[str, set[str | None]] = {}
        for c in changes:
            held = self.customers.get(c.customer_id)
            tiers.setdefault(c.customer_id, {held.tier if held else self.rules.tiers[0]}).add(c.tier)
            homes.setdefault(c.customer_id, {held.home_branch_id if held else None})
            if c.customer is not None:
                homes[c.customer_id].add(c.customer.home_branch_id)
        branches = {self.rules.serving_branch(t, h) for cid in tiers for t in tiers[cid] for h in homes[cid]
                    if self.rules.knows(t)}
        serving = [x for c in self.customers.values() if c for x in (c.primary_rm, c.backup_rm)]
        await self.load_pool(tx, branches, serving)
        await self.load_waiting(tx, self._branches)

    async def load_customers(self, tx: BatchTransaction, ids: Iterable[str]) -> None:
        """These customers (None for those assignment does not know)."""
        wanted = set(ids) - set(self.customers)
        for r in await read_rows(tx.session, CUSTOMERS, "customer_id", wanted,
                                 columns=[CUSTOMERS.c[n] for n in COLUMNS]):
            self._add(_customer_of(r))
        for customer_id in wanted:
            self.customers.setdefault(customer_id, None)

    async def load_customers_where(self, tx: BatchTransaction, where: ColumnElement) -> list[Customer]:
        """The customers a condition names (an API call's: an RM's book, a branch's waiting),
        by customer id."""
        rows = await tx.session.execute(select(*[CUSTOMERS.c[n] for n in COLUMNS]).where(where)
                                        .order_by(CUSTOMERS.c.customer_id))
        out = []
        for r in rows:
            known = self.customers.get(r.customer_id)
            out.append(known if known is not None else self._add(_customer_of(r)))
        return out

    def _add(self, customer: Customer) -> Customer:
        self.customers[customer.customer_id] = customer
        if customer.standing == WAITING and customer.serving_branch:
            self._waiting_at.setdefault(customer.serving_branch, set()).add(customer.customer_id)
        return customer

    async def load_pool(self, tx: BatchTransaction, branches: Iterable[str | None],
                        rm_ids: Iterable[str | None] = ()) -> None:
        """The pool holds every RM of ``branches`` and of the branches of ``rm_ids``, with their
        books (one statement for the registry, one for the books)."""
        branches = {b for b in branches if b} - self._branches
        rm_ids = {r for r in rm_ids if r} - set(self.registry)
        if not branches and not rm_ids:
            return
        of_rms = select(RMS.c.branch_id).where(RMS.c.rm_id.in_(sorted(rm_ids)))
        rows = await tx.session.execute(select(RMS).where(or_(RMS.c.branch_id.in_(sorted(branches)),
                                                               RMS.c.branch_id.in_(of_rms))))
        new = [RegistryRm(r.rm_id, r.name, r.branch_id, r.level, r.capacity, r.active, r.updated_at, r.updated_by)
               for r in rows if r.rm_id not in self.registry]
        for r in await read_rows(tx.session, BOOKS, "rm_id", [rm.rm_id for rm in new]):
            self.books.setdefault(r.rm_id, {})[(r.role, r.tier)] = r.customers
        for rm in new:
            self.registry[rm.rm_id] = rm
            self.pool.add(self._rm(rm))
        self._branches |= branches | {rm.branch_id for rm in new}

    def _rm(self, row: RegistryRm) -> Rm:
        counts: dict[str, dict[str, int]] = {PRIMARY: {}, BACKUP: {}}
        for (role, tier), n in self.books.get(row.rm_id, {}).items():
            counts[role][tier] = n
        return Rm(row.rm_id, row.branch_id, row.level,
                  Capacity.parse(row.capacity) or self.rules.default_capacity(row.level), row.active,
                  self.rules.book(counts[PRIMARY]), self.rules.book(counts[BACKUP]))

    async def load_waiting(self, tx: BatchTransaction, branches: Iterable[str]) -> None:
        """The first customers waiting at each branch for each tier (by customer id), up to
        :data:`WAITING_READ` each, in one statement; with the RMs they name."""
        wanted = sorted(set(branches) - self._waiting_read)
        if not wanted:
            return
        self._waiting_read.update(wanted)
        nth = func.row_number().over(partition_by=(CUSTOMERS.c.serving_branch, CUSTOMERS.c.tier),
                                     order_by=CUSTOMERS.c.customer_id).label("nth")
        ranked = (select(*[CUSTOMERS.c[n] for n in COLUMNS], nth)
                  .where(CUSTOMERS.c.standing == WAITING, CUSTOMERS.c.serving_branch.in_(wanted)).subquery())
        rows = await tx.session.execute(select(ranked).where(ranked.c.nth <= WAITING_READ))
        self._read_waiting(rows, WAITING_READ)
        await self._load_named_rms(tx)

    def _read_waiting(self, rows, limit: int) -> None:
        seen: dict[tuple[str, str], list[str]] = {}
        for r in rows:
            seen.setdefault((r.serving_branch, r.tier), []).append(r.customer_id)
            if r.customer_id not in self.customers or self.customers[r.customer_id] is None:
                self._add(_customer_of(r))
        for key, ids in seen.items():
            if len(ids) >= limit:
                self._waiting_depth[key] = max(ids)
            else:
                self._waiting_depth.pop(key, None)

    async def _load_named_rms(self, tx: BatchTransaction) -> None:
        named = {x for c in self.customers.values() if c for x in (c.primary_rm, c.backup_rm) if x}
        await self.load_pool(tx, (), named - set(self.registry))

    async def waiting_for_release(self, tx: BatchTransaction, branch: str, tiers: Iterable[str]) -> list[Customer]:
        """The first :data:`PICK_UP_AFTER_RELEASE` customers waiting at ``branch`` for one of
        ``tiers`` as they stand now, highest tier first, then by customer id: what a query of
        the database as this transaction leaves it would answer. Read before the batch's first
        record; only a batch that has taken more than half of those read goes back for more."""
        tiers = set(tiers)
        await self.load_waiting(tx, [branch])
        for tier in sorted(tiers):
            while (branch, tier) in self._waiting_depth:
                depth = self._waiting_depth[(branch, tier)]
                known = sum(1 for c in self._waiting(branch) if c.tier == tier and c.customer_id <= depth)
                if known >= PICK_UP_AFTER_RELEASE:
                    break
                rows = await tx.session.execute(
                    select(*[CUSTOMERS.c[n] for n in COLUMNS])
                    .where(CUSTOMERS.c.standing == WAITING, CUSTOMERS.c.serving_branch == branch,
                           CUSTOMERS.c.tier == tier, CUSTOMERS.c.customer_id > depth)
                    .order_by(CUSTOMERS.c.customer_id).limit(WAITING_READ))
                self._read_waiting(rows, WAITING_READ)
                await self._load_named_rms(tx)
        waiting = [c for c in self._waiting(branch) if c.tier in tiers]
        waiting.sort(key=lambda c: (-c.tier_rank, c.customer_id))
        return waiting[:PICK_UP_AFTER_RELEASE]

    def _waiting(self, branch: str) -> list[Customer]:
        return [self.customers[c] for c in self._waiting_at.get(branch, ())]

    # --- what handlers and API calls change -------------------------------------------------

    def tier_of(self, customer_id: str) -> str:
        held = self.customers.get(customer_id)
        return held.tier if held is not None else self.rules.tiers[0]

    def customer(self, customer_id: str) -> Customer:
        """The customer's row, a new one (in the lowest tier, in the branch pool) on first sight."""
        customer = self.customers.get(customer_id)
        if customer is None:
            lowest = self.rules.tiers[0]
            customer = Customer(customer_id, lowest, 0, None, None, None,
                                self.rules.standing(Assignment(customer_id, lowest)), None, None, None, None, None,
                                ZERO, None, None, False, 0)
            self.customers[customer_id] = customer
            self.changed(customer)
        return customer

    def changed(self, customer: Customer) -> None:
        self._dirty_customers.add(customer.customer_id)

    def placed(self, customer: Customer, before_branch: str | None, before_standing: str) -> None:
        """A customer's placement changed (while holding the turn)."""
        if not self.turn:
            raise RuntimeError("a placement changed without the turn")
        if before_standing == WAITING and before_branch:
            self._waiting_at.get(before_branch, set()).discard(customer.customer_id)
        if customer.standing == WAITING and customer.serving_branch:
            self._waiting_at.setdefault(customer.serving_branch, set()).add(customer.customer_id)
        self.changed(customer)

    def count(self, rm_id: str, role: str, tier: str, delta: int) -> None:
        book = self.books.setdefault(rm_id, {})
        book[(role, tier)] = book.get((role, tier), 0) + delta
        self._dirty_books.add((rm_id, role, tier))

    def held(self, rm_id: str) -> dict[str, int]:
        """How many customers an RM holds as primary and as backup."""
        held = {PRIMARY: 0, BACKUP: 0}
        for (role, _tier), n in self.books.get(rm_id, {}).items():
            held[role] += n
        return held

    def put_rm(self, row: RegistryRm) -> None:
        """Add or change an RM of the registry; the pool sees them at once, with their book."""
        if not self.turn:
            raise RuntimeError("the registry changed without the turn")
        self.registry[row.rm_id] = row
        self.pool.add(self._rm(row))
        self._dirty_rms.add(row.rm_id)

    def deactivate(self, rm_id: str, at: datetime, by: str) -> None:
        self.put_rm(replace(self.registry[rm_id], active=False, updated_at=at, updated_by=by))

    def signal(self, row: dict) -> None:
        """A signal as last announced (several announcements in one batch: the last one)."""
        self.signals[row["signal_id"]] = row

    # --- commit -------------------------------------------------------------------------------

    async def write(self, tx: BatchTransaction) -> None:
        session = tx.session
        update = (PLACEMENT if self.turn else ()) + (FACTS if self.facts else ())
        await write_rows(session, CUSTOMERS, [_row_of(self.customers[c]) for c in sorted(self._dirty_customers)],
                         key=("customer_id",), update=update)
        await write_rows(session, BOOKS, [{"rm_id": r, "role": role, "tier": t, "customers": self.books[r][(role, t)]}
                                          for r, role, t in sorted(self._dirty_books)], key=("rm_id", "role", "tier"))
        await write_rows(session, RMS, [{"rm_id": r.rm_id, "name": r.name, "branch_id": r.branch_id, "level": r.level,
                                         "capacity": r.capacity, "active": r.active, "updated_at": r.updated_at,
                                         "updated_by": r.updated_by}
                                        for r in (self.registry[i] for i in sorted(self._dirty_rms))],
                         key=("rm_id",))
        await write_rows(session, SIGNALS, [self.signals[s] for s in sorted(self.signals)], key=("signal_id",))
