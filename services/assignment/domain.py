"""Who serves a customer (责任到人): the bank's assignment rules as pure values and functions.

Three principles decide every assignment, in this order of precedence:

- **tier correspondence** (层级对应): a customer above mass has a primary RM of a level the tier
  needs, in the branch (or wealth / private-banking centre) that serves the tier, and a backup RM
  (A/B角) of the same or an adjacent level;
- **familiarity claims** (熟悉度认领): an RM who knows a customer may claim them; a claim outranks
  balance but never level or capacity;
- **balanced distribution** (均衡分配): otherwise the eligible RM with the least weighted book
  takes the customer, never over capacity, ties broken by RM id.

Nothing here touches a database, the bus or HTTP. Every decision carries a reason code and a
sentence saying why, which become the audit trail and the ``reason`` of the event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Collection, Iterable, Iterator, Mapping, Sequence

PRIMARY, BACKUP = "primary", "backup"
ROLES = (PRIMARY, BACKUP)

# Why an assignment changed (the ``reason`` code of the audit trail and the metrics).
BALANCED = "balanced_distribution"
CAPACITY_AVAILABLE = "capacity_available"
TIER_CHANGE = "tier_change"
BRANCH_CHANGE = "home_branch_change"
RETURNED_TO_POOL = "returned_to_pool"
NO_ELIGIBLE_RM = "no_eligible_rm"
CLAIM = "familiarity_claim"
HANDOVER = "handover"
PREVIOUS_PRIMARY = "previous_primary_as_backup"
NO_ELIGIBLE_BACKUP = "no_eligible_backup"

# Why a claim was refused.
UNKNOWN_CUSTOMER = "unknown_customer"
NOT_ABOVE_MASS = "not_above_mass"
UNKNOWN_RM = "unknown_rm"
INACTIVE_RM = "inactive_rm"
ALREADY_ASSIGNED = "already_assigned"
LEVEL_MISMATCH = "level_mismatch"
HOME_BRANCH_UNKNOWN = "home_branch_unknown"
BRANCH_MISMATCH = "branch_mismatch"
OVER_CAPACITY = "over_capacity"
ACCEPTED = "accepted"

# A customer's standing, kept with the customer so waiting ones are found with one index.
IN_POOL = "pool"            # mass: no named RM needed
ASSIGNED = "assigned"       # primary and backup
NO_BACKUP = "no_backup"     # primary but no eligible backup yet
WAITING = "waiting"         # above mass without a primary RM


# --- books and capacity --------------------------------------------------------------------


@dataclass(frozen=True)
class Book:
    """The customers an RM holds in one role: a count per tier and their weighted sum.

    >>> Book().plus("gold", 1).plus("private", 8).weight
    9
    """

    by_tier: Mapping[str, int] = field(default_factory=dict)
    weight: int = 0

    @property
    def customers(self) -> int:
        return sum(self.by_tier.values())

    def plus(self, tier: str, weight: int) -> Book:
        counts = dict(self.by_tier)
        counts[tier] = counts.get(tier, 0) + 1
        return Book(counts, self.weight + weight)

    def minus(self, tier: str, weight: int) -> Book:
        counts = dict(self.by_tier)
        counts[tier] = counts.get(tier, 0) - 1
        return Book(counts, self.weight - weight)


@dataclass(frozen=True)
class Capacity:
    """How much an RM may carry as primary RM: a weighted book (``weighted``) or a number of
    customers per tier (``by_tier``; a tier not listed is not taken).

    >>> Capacity(weighted=10).admits(Book({"gold": 9}, 9), "gold", 1)
    True
    """

    weighted: int | None = None
    by_tier: Mapping[str, int] | None = None

    def admits(self, book: Book, tier: str, weight: int) -> bool:
        """Whether one more customer of ``tier`` (weighing ``weight``) fits in ``book``."""
        if self.by_tier is not None:
            return book.by_tier.get(tier, 0) + 1 <= self.by_tier.get(tier, 0)
        return book.weight + weight <= (self.weighted or 0)

    def describe(self) -> str:
        if self.by_tier is not None:
            return ", ".join(f"{n} {t}" for t, n in sorted(self.by_tier.items())) or "none"
        return f"weighted {self.weighted}"

    def as_json(self) -> int | dict[str, int]:
        return dict(self.by_tier) if self.by_tier is not None else int(self.weighted or 0)

    @classmethod
    def parse(cls, value: int | Mapping[str, int] | str | None) -> Capacity | None:
        """A capacity from the registry's value (an integer, a mapping tier -> count, or their
        JSON text); ``None`` when the registry gives none."""
        if value is None:
            return None
        if isinstance(value, str):
            value = json.loads(value)
        if isinstance(value, Mapping):
            return cls(by_tier={str(k): int(v) for k, v in value.items()})
        return cls(weighted=int(value))


# --- RMs, customers and the pool a decision uses --------------------------------------------


@dataclass(frozen=True)
class Rm:
    """A relationship manager as the rules see them: where, what level, how full."""

    rm_id: str
    branch_id: str
    level: str
    capacity: Capacity
    active: bool = True
    book: Book = Book()
    backups: Book = Book()


@dataclass(frozen=True)
class Assignment:
    """Who serves one customer: tier, home branch, primary and backup RM."""

    customer_id: str
    tier: str
    home_branch_id: str | None = None
    primary: str | None = None
    backup: str | None = None


@dataclass(frozen=True)
class Change:
    """One role of one customer moving from an RM to another (either may be None)."""

    role: str
    from_rm: str | None
    to_rm: str | None
    code: str
    detail: str

    @property
    def reason(self) -> str:
        """The event's ``reason``: the code, then why."""
        return f"{self.code}: {self.detail}"


@dataclass(frozen=True)
class Placement:
    """The outcome of a rule for one customer: where they are now and what changed."""

    before: Assignment
    after: Assignment
    changes: tuple[Change, ...] = ()
    waiting: str | None = None
    """Why a customer above mass has no primary RM (None when they have one or need none)."""


@dataclass(frozen=True)
class ClaimVerdict:
    accepted: bool
    code: str
    reason: str
    placement: Placement | None = None


class Pool:
    """The RMs decisions may use, with their books as they stand. Applying a placement updates
    the books, so that many customers placed in one step (a handover, a pick-up pass, a batch
    of events) stay balanced."""

    def __init__(self, rms: Iterable[Rm] = ()) -> None:
        self._rms: dict[str, Rm] = {}
        self._branches: dict[str, set[str]] = {}
        for rm in rms:
            self.add(rm)

    def add(self, rm: Rm) -> None:
        old = self._rms.get(rm.rm_id)
        if old is not None:
            self._branches[old.branch_id].discard(rm.rm_id)
        self._rms[rm.rm_id] = rm
        self._branches.setdefault(rm.branch_id, set()).add(rm.rm_id)

    def get(self, rm_id: str | None) -> Rm | None:
        return self._rms.get(rm_id) if rm_id else None

    def at(self, branch: str | None) -> list[Rm]:
        """The RMs of one branch (or centre), by RM id."""
        return [self._rms[r] for r in sorted(self._branches.get(branch, ()))] if branch else []

    def __iter__(self) -> Iterator[Rm]:
        return iter(sorted(self._rms.values(), key=lambda rm: rm.rm_id))

    def __len__(self) -> int:
        return len(self._rms)

    def apply(self, placement: Placement, weights: Mapping[str, int]) -> None:
        """Move the customer's weight out of the old RMs' books and into the new ones'."""
        for move in book_moves(placement):
            if move.from_rm in self._rms:
                self._change(move.from_rm, move.role, lambda b: b.minus(move.from_tier, weights.get(move.from_tier, 0)))
            if move.to_rm in self._rms:
                self._change(move.to_rm, move.role, lambda b: b.plus(move.to_tier, weights.get(move.to_tier, 0)))

    def _change(self, rm_id: str, role: str, how) -> None:
        rm = self._rms[rm_id]
        self._rms[rm_id] = replace(rm, book=how(rm.book)) if role == PRIMARY else replace(rm, backups=how(rm.backups))


# --- the rules ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BookMove:
    """Book accounting for one role of a placement: take ``tier`` out of ``from_rm``'s book and
    put ``to_tier`` into ``to_rm``'s."""

    role: str
    from_rm: str | None
    from_tier: str
    to_rm: str | None
    to_tier: str


def book_moves(placement: Placement) -> list[BookMove]:
    """What a placement does to RMs' books (nothing for a role whose RM and tier both stay)."""
    before, after = placement.before, placement.after
    moves = []
    for role, old, new in ((PRIMARY, before.primary, after.primary), (BACKUP, before.backup, after.backup)):
        if old == new and before.tier == after.tier:
            continue
        if old is None and new is None:
            continue
        moves.append(BookMove(role, old, before.tier, new, after.tier))
    return moves


class AssignmentRules:
    """The bank's assignment rules, built from settings (``assignment`` and the tier table).

    >>> rules = AssignmentRules.from_settings(settings)
    >>> rules.levels_for("platinum")
    ['L2']
    """

    def __init__(self, tiers: Sequence[str], primary_levels: Mapping[str, Sequence[str]],
                 backup_levels: Mapping[str, Sequence[str]], weights: Mapping[str, int],
                 centres: Mapping[str, str] | None = None, default_capacity: int = 400,
                 default_capacity_by_level: Mapping[str, int] | None = None) -> None:
        self.tiers = list(tiers)
        unknown = [t for t in list(primary_levels) + list(backup_levels) + list(centres or {})
                   if t not in self.tiers]
        if unknown:
            raise ValueError(f"assignment settings name tiers not in the tier table: {sorted(set(unknown))}")
        self.primary_levels = {t: list(v) for t, v in primary_levels.items()}
        self.backup_levels = {t: list(v) for t, v in backup_levels.items()}
        self.weights = dict(weights)
        self.centres = dict(centres or {})
        self._default_capacity = default_capacity
        self._default_capacity_by_level = dict(default_capacity_by_level or {})

    @classmethod
    def from_settings(cls, settings) -> AssignmentRules:
        a = settings.assignment
        return cls([t.id for t in settings.tiers], a.primary_levels, a.backup_levels, a.weights,
                   a.centres, a.default_capacity, a.default_capacity_by_level)

    # --- tier correspondence ---------------------------------------------------------------

    def knows(self, tier: str) -> bool:
        return tier in self.tiers

    def rank(self, tier: str) -> int:
        return self.tiers.index(tier)

    def needs_rm(self, tier: str) -> bool:
        """Whether a tier's customers need a named RM (mass customers stay in the branch pool)."""
        return bool(self.primary_levels.get(tier))

    def levels_for(self, tier: str) -> list[str]:
        """The RM levels that may be ``tier``'s primary RM, most preferred first."""
        return self.primary_levels.get(tier, [])

    def backup_levels_for(self, tier: str) -> list[str]:
        return self.backup_levels.get(tier, [])

    def tiers_served_by(self, level: str) -> list[str]:
        return [t for t in self.tiers if level in self.levels_for(t)]

    def weight(self, tier: str) -> int:
        """A customer's weight in an RM's book (a private customer weighs more than a gold one)."""
        return self.weights.get(tier, 0)

    def serving_branch(self, tier: str, home_branch_id: str | None) -> str | None:
        """The branch whose RMs serve a customer: the tier's centre if it has one, else the
        customer's home branch (None while the home branch is unknown)."""
        return self.centres.get(tier) or home_branch_id

    def default_capacity(self, level: str) -> Capacity:
        return Capacity(weighted=self._default_capacity_by_level.get(level, self._default_capacity))

    def book(self, by_tier: Mapping[str, int]) -> Book:
        """A book from its counts per tier, weighted with these rules' weights."""
        counts = {t: n for t, n in by_tier.items() if n}
        return Book(counts, sum(self.weight(t) * n for t, n in counts.items()))

    def primary_misfit(self, rm: Rm | None, tier: str, branch: str | None) -> str | None:
        """Why ``rm`` may not be primary RM of a ``tier`` customer served at ``branch`` (None if
        they may). Capacity is not looked at: a customer already in a book stays there."""
        if rm is None:
            return "no RM"
        if not rm.active:
            return f"RM {rm.rm_id} is inactive"
        if rm.level not in self.levels_for(tier):
            return f"RM {rm.rm_id} is {rm.level}; a {tier} customer needs {_levels(self.levels_for(tier))}"
        if branch is None:
            return "the customer's home branch is not known yet"
        if rm.branch_id != branch:
            return f"RM {rm.rm_id} is at {rm.branch_id}; this {tier} customer is served at {branch}"
        return None

    def backup_misfit(self, rm: Rm | None, tier: str, branch: str | None, primary: str | None) -> str | None:
        if rm is None:
            return "no RM"
        if rm.rm_id == primary:
            return f"RM {rm.rm_id} is the primary RM"
        if not rm.active:
            return f"RM {rm.rm_id} is inactive"
        if rm.level not in self.backup_levels_for(tier):
            return f"RM {rm.rm_id} is {rm.level}; a {tier} backup is {_levels(self.backup_levels_for(tier))}"
        if branch is None or rm.branch_id != branch:
            return f"RM {rm.rm_id} is at {rm.branch_id}, not {branch}"
        return None

    # --- balanced distribution ---------------------------------------------------------------

    def choose_primary(self, tier: str, branch: str | None, pool: Pool, *,
                       exclude: Collection[str] = (), only: Collection[str] | None = None) -> tuple[Rm | None, str]:
        """The primary RM for a ``tier`` customer served at ``branch``: of the RMs of a level the
        tier needs (most preferred level first) who are active, at that branch and have room,
        the one with the least weighted book; ties go to the lower RM id. Returns the RM (or
        None) and why.

        >>> rules.choose_primary("gold", "BR-1", Pool([rm("A", book=3), rm("B", book=2)]))[0].rm_id
        'B'
        """
        levels = self.levels_for(tier)
        weight = self.weight(tier)
        if branch is None:
            return None, "the customer's home branch is not known yet"
        eligible = [rm for rm in pool.at(branch)
                    if rm.rm_id not in exclude and (only is None or rm.rm_id in only)
                    and self.primary_misfit(rm, tier, branch) is None]
        with_room = [rm for rm in eligible if rm.capacity.admits(rm.book, tier, weight)]
        if not with_room:
            if eligible:
                return None, (f"all {len(eligible)} active {_levels(levels)} RM(s) at {branch} are at "
                              f"capacity for a {tier} customer")
            return None, f"no active {_levels(levels)} RM at {branch}"
        chosen = min(with_room, key=lambda rm: (levels.index(rm.level), rm.book.weight, rm.rm_id))
        return chosen, (f"{tier} needs {_levels(levels)}; {chosen.rm_id} has the least weighted book "
                        f"({chosen.book.weight}, capacity {chosen.capacity.describe()}) of "
                        f"{len(with_room)} eligible at {branch}")

    def choose_backup(self, tier: str, branch: str | None, primary: str | None, pool: Pool, *,
                      prefer: Sequence[str | None] = (), exclude: Collection[str] = ()) -> tuple[Rm | None, bool]:
        """The backup RM: the first of ``prefer`` still eligible (kept), else of the RMs of a
        backup level (most preferred level first), active, at the branch and not the primary, the
        one with the least weighted backup book, ties to the lower RM id. A backup role needs no
        capacity: it is the primary's stand-in. Returns the RM and whether it was a preferred one."""
        for rm_id in prefer:
            rm = pool.get(rm_id)
            if rm is not None and rm.rm_id not in exclude and self.backup_misfit(rm, tier, branch, primary) is None:
                return rm, True
        levels = self.backup_levels_for(tier)
        eligible = [rm for rm in pool.at(branch) if rm.rm_id not in exclude
                    and self.backup_misfit(rm, tier, branch, primary) is None]
        if not eligible:
            return None, False
        return min(eligible, key=lambda rm: (levels.index(rm.level), rm.backups.weight, rm.rm_id)), False

    # --- placing one customer ----------------------------------------------------------------

    def place(self, current: Assignment, pool: Pool, cause: str = BALANCED, *,
              tier: str | None = None, home_branch_id: str | None = None) -> Placement:
        """Where a customer should be, now in ``tier`` and ``home_branch_id`` (unchanged when
        not given), who is served as ``current`` says.

        A mass customer goes back to the branch pool. Otherwise a primary RM who still fits the
        tier's level and branch stays (a tier change that leaves the level right moves no one);
        one who does not is replaced by balance, and stays on as backup where the levels allow.
        A customer with no eligible RM is left waiting, with the reason. ``cause`` names what
        prompted the decision (``tier_change``, ``home_branch_change``, ``capacity_available``).

        >>> rules.place(Assignment("C1", "gold", "BR-1", "A"), pool, TIER_CHANGE, tier="platinum").after.primary
        'B'
        """
        customer = replace(current, tier=tier or current.tier,
                           home_branch_id=home_branch_id or current.home_branch_id)
        tier, old_primary, old_backup = customer.tier, customer.primary, customer.backup
        if not self.needs_rm(tier):
            after = replace(customer, primary=None, backup=None)
            why = f"{tier} customers are served by the branch pool"
            changes = [Change(role, old, None, RETURNED_TO_POOL, why)
                       for role, old in ((PRIMARY, old_primary), (BACKUP, old_backup)) if old]
            return Placement(current, after, tuple(changes))
        branch = self.serving_branch(tier, customer.home_branch_id)
        changes: list[Change] = []
        waiting = None
        misfit = self.primary_misfit(pool.get(old_primary), tier, branch) if old_primary else None
        primary = old_primary
        if old_primary is None or misfit:
            chosen, why = self.choose_primary(tier, branch, pool, exclude=[old_primary] if old_primary else [])
            primary = chosen.rm_id if chosen else None
            if old_primary is None:
                code = CAPACITY_AVAILABLE if cause == CAPACITY_AVAILABLE else BALANCED
                detail = why
            else:
                code = cause if chosen else NO_ELIGIBLE_RM
                detail = f"{misfit}; {why}"
            if chosen is None:
                waiting = why
            if primary != old_primary:
                changes.append(Change(PRIMARY, old_primary, primary, code, detail))
        prefer = [old_primary if old_primary != primary else None, old_backup]
        backup_rm, kept = self.choose_backup(tier, branch, primary, pool, prefer=prefer)
        backup = backup_rm.rm_id if backup_rm else None
        if backup != old_backup:
            code = changes[0].code if changes and changes[0].code != NO_ELIGIBLE_RM else cause
            changes.append(self._backup_change(old_backup, backup, old_primary, primary, tier, branch, code))
        after = replace(customer, primary=primary, backup=backup)
        return Placement(current, after, tuple(changes), waiting)

    def _backup_change(self, old: str | None, new: str | None, old_primary: str | None,
                       primary: str | None, tier: str, branch: str | None, code: str) -> Change:
        if new is None:
            return Change(BACKUP, old, None, NO_ELIGIBLE_BACKUP,
                          f"no active {_levels(self.backup_levels_for(tier))} RM at {branch} other than the primary")
        if new == old_primary and new != primary:
            return Change(BACKUP, old, new, PREVIOUS_PRIMARY,
                          f"the previous primary RM {new} stays on as backup")
        return Change(BACKUP, old, new, code,
                      f"{tier} backup is {_levels(self.backup_levels_for(tier))}; {new} has the least "
                      f"backup book at {branch}")

    # --- familiarity claims ------------------------------------------------------------------

    def claim(self, customer: Assignment | None, rm: Rm | None, pool: Pool, why: str = "") -> ClaimVerdict:
        """An RM claims a customer they know. Accepted when the RM is active, of a level the tier
        needs, at the serving branch and has room; the claim then outranks balance and the
        previous primary stays on as backup where the levels allow. Refused otherwise, with the
        reason."""
        if customer is None:
            return ClaimVerdict(False, UNKNOWN_CUSTOMER, "the customer is not known to assignment")
        tier = customer.tier
        if not self.needs_rm(tier):
            return ClaimVerdict(False, NOT_ABOVE_MASS,
                                f"{customer.customer_id} is {tier}: served by the branch pool, not a named RM")
        if rm is None:
            return ClaimVerdict(False, UNKNOWN_RM, "the RM is not in the registry")
        if not rm.active:
            return ClaimVerdict(False, INACTIVE_RM, f"RM {rm.rm_id} is inactive")
        if customer.primary == rm.rm_id:
            return ClaimVerdict(False, ALREADY_ASSIGNED,
                                f"{customer.customer_id} is already assigned to {rm.rm_id}")
        if rm.level not in self.levels_for(tier):
            return ClaimVerdict(False, LEVEL_MISMATCH,
                                f"RM {rm.rm_id} is {rm.level}; a {tier} customer needs {_levels(self.levels_for(tier))}")
        branch = self.serving_branch(tier, customer.home_branch_id)
        if branch is None:
            return ClaimVerdict(False, HOME_BRANCH_UNKNOWN,
                                f"the home branch of {customer.customer_id} is not known yet")
        if rm.branch_id != branch:
            return ClaimVerdict(False, BRANCH_MISMATCH,
                                f"RM {rm.rm_id} is at {rm.branch_id}; {customer.customer_id} is served at {branch}")
        if not rm.capacity.admits(rm.book, tier, self.weight(tier)):
            return ClaimVerdict(False, OVER_CAPACITY,
                                f"RM {rm.rm_id}'s book ({rm.book.weight}, capacity {rm.capacity.describe()}) "
                                f"has no room for a {tier} customer (weight {self.weight(tier)})")
        detail = f"{rm.rm_id} claimed {customer.customer_id}" + (f" ({why})" if why else "")
        changes = [Change(PRIMARY, customer.primary, rm.rm_id, CLAIM, detail)]
        prefer = [customer.primary, customer.backup]
        backup_rm, _ = self.choose_backup(tier, branch, rm.rm_id, pool, prefer=prefer)
        backup = backup_rm.rm_id if backup_rm else None
        if backup != customer.backup:
            changes.append(self._backup_change(customer.backup, backup, customer.primary, rm.rm_id,
                                               tier, branch, CLAIM))
        placement = Placement(customer, replace(customer, primary=rm.rm_id, backup=backup), tuple(changes))
        return ClaimVerdict(True, ACCEPTED, detail, placement)

    # --- handover ------------------------------------------------------------------------------

    def hand_over(self, leaving: str, customers: Sequence[Assignment], pool: Pool, *,
                  to: Collection[str] | None = None, why: str = "") -> Handover:
        """Move every customer of ``leaving``'s book to other RMs in one step: heaviest customers
        first, each to the eligible RM (of ``to`` if given) with the least weighted book as it
        stands after the moves before it, so the book spreads evenly. Customers ``leaving`` backs
        up get another backup. Customers no eligible RM can take are listed in ``unplaced``."""
        placements: list[Placement] = []
        unplaced: list[str] = []
        primaries = sorted((c for c in customers if c.primary == leaving),
                           key=lambda c: (-self.weight(c.tier), c.customer_id))
        for c in primaries:
            branch = self.serving_branch(c.tier, c.home_branch_id)
            chosen, reason = self.choose_primary(c.tier, branch, pool, exclude=[leaving], only=to)
            if chosen is None:
                unplaced.append(c.customer_id)
                continue
            detail = f"{leaving}'s book handed over" + (f" ({why})" if why else "") + f"; {reason}"
            changes = [Change(PRIMARY, leaving, chosen.rm_id, HANDOVER, detail)]
            backup_rm, _ = self.choose_backup(c.tier, branch, chosen.rm_id, pool, prefer=[c.backup],
                                              exclude=[leaving])
            backup = backup_rm.rm_id if backup_rm else None
            if backup != c.backup:
                changes.append(self._backup_change(c.backup, backup, None, chosen.rm_id, c.tier, branch, HANDOVER))
            placement = Placement(c, replace(c, primary=chosen.rm_id, backup=backup), tuple(changes))
            pool.apply(placement, self.weights)
            placements.append(placement)
        for c in sorted((c for c in customers if c.backup == leaving and c.primary != leaving),
                        key=lambda c: c.customer_id):
            branch = self.serving_branch(c.tier, c.home_branch_id)
            backup_rm, _ = self.choose_backup(c.tier, branch, c.primary, pool, exclude=[leaving])
            backup = backup_rm.rm_id if backup_rm else None
            change = self._backup_change(c.backup, backup, None, c.primary, c.tier, branch, HANDOVER)
            placement = Placement(c, replace(c, backup=backup), (change,))
            pool.apply(placement, self.weights)
            placements.append(placement)
        return Handover(tuple(placements), tuple(unplaced),
                        sum(1 for p in placements if p.before.primary == leaving))

    # --- waiting customers --------------------------------------------------------------------

    def pick_up(self, waiting: Sequence[Assignment], pool: Pool) -> list[Placement]:
        """Give waiting customers (no primary, or no backup) the RMs that have become available,
        highest tier first, then by customer id, each decision seeing the books as the ones
        before it left them. Only placements that change something are returned."""
        placements = []
        for c in sorted(waiting, key=lambda c: (-self.rank(c.tier) if self.knows(c.tier) else 0, c.customer_id)):
            placement = self.place(c, pool, CAPACITY_AVAILABLE)
            if placement.changes:
                pool.apply(placement, self.weights)
                placements.append(placement)
        return placements

    def standing(self, a: Assignment) -> str:
        """``pool``, ``assigned``, ``no_backup`` or ``waiting``."""
        if not self.needs_rm(a.tier):
            return IN_POOL
        if a.primary is None:
            return WAITING
        return ASSIGNED if a.backup else NO_BACKUP


@dataclass(frozen=True)
class Handover:
    placements: tuple[Placement, ...]
    unplaced: tuple[str, ...]
    moved: int
    """Customers whose primary RM changed."""


def _levels(levels: Sequence[str]) -> str:
    return "/".join(levels) if levels else "no level"
