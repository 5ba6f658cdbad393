"""A tier-policy simulation as a background job: the whole customer base streamed a chunk of
customers at a time through the replay (:mod:`services.tiering.replay`) under today's policy
and a candidate, the fee part priced again by pricing's rules (:mod:`services.pricing.whatif`),
progress and the answer kept in tiering's own tables.

Each chunk is read (the customers, their AUM before the period, their days with activity, their
priced postings), replayed in a worker thread while the next chunk is read, and its customers'
outcomes written with the job's progress. Memory holds a chunk and the answer's counters, never
the customer base. Nothing live is touched: the job reads tiering's and pricing's tables and
writes only ``tiering_simulations`` and ``tiering_simulation_customers``; it emits nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, delete, func, select, type_coerce, update

from shared.calendar import days_in_month, month_key, months_between, next_month, parse_month
from shared.db import Database, read_rows, write_rows
from shared.money import to_cents
from services.assignment.domain import AssignmentRules
from services.pricing.whatif import FeeHistory, FeePosting, TierRepricing
from services.tiering.models import (
    TieringCustomer,
    TieringDailyAum,
    TieringMonthClose,
    TieringSimulation,
    TieringSimulationCustomer,
)
from services.tiering.replay import Close, DayTiers, History, Path, decide, household_path, path_of
from services.tiering.simulation import SIDES, Figures, SimulatedPolicy, rms_needed, todays_policy

log = logging.getLogger("strata.tiering.simulation")

CHUNK = 5_000
HOUSEHOLD_CHUNK = 2_000
STALE_AFTER = timedelta(minutes=2)
"""A running simulation whose heartbeat is older than this was interrupted (its process ended)."""
KEEP_CUSTOMER_ROWS = 20
"""The latest simulations whose per-customer outcomes are kept; older ones keep their answer."""

CUSTOMERS = TieringCustomer.__table__
DAYS = TieringDailyAum.__table__
SIMULATIONS = TieringSimulation.__table__
OUTCOMES = TieringSimulationCustomer.__table__


# --- submitting and reading ------------------------------------------------------------------


async def submit(runtime, requested_by: str, candidate: SimulatedPolicy, first: str, last: str) -> str:
    """Record the simulation and start it in the background; returns its id."""
    simulation_id = str(uuid.uuid4())
    request = {"from": first, "to": last, "today": todays_policy(runtime.settings).as_dict(),
               "candidate": candidate.as_dict()}
    async with runtime.db.transaction() as session:
        session.add(TieringSimulation(id=simulation_id, state="queued", request=json.dumps(request),
                                      requested_by=requested_by, requested_at=_now(), customers_total=0,
                                      customers_done=0))
    runtime.run_in_background(run(runtime.db, runtime.settings, simulation_id, candidate, first, last),
                              f"tiering-simulation-{simulation_id}")
    return simulation_id


def view(row: TieringSimulation, now: datetime | None = None) -> dict:
    """The simulation as the API shows it: state, how far it is, and the answer once done."""
    now = now or _now()
    state = row.state
    beat = row.heartbeat_at or row.requested_at
    if state in ("queued", "running") and now - beat > STALE_AFTER:
        state = "interrupted"
    total, done = row.customers_total, row.customers_done
    if state == "done":
        percent = 100.0
    else:
        percent = round(100.0 * done / total, 1) if total else 0.0
    return {"id": row.id, "state": state, "percent": percent, "customers_total": total, "customers_done": done,
            "requested_by": row.requested_by, "requested_at": row.requested_at, "started_at": row.started_at,
            "finished_at": row.finished_at, "request": json.loads(row.request), "error": row.error,
            "result": json.loads(row.result) if row.result and state == "done" else None}


async def outcomes_page(session, simulation_id: str, after: str | None, limit: int) -> list[Any]:
    """Customers' outcomes in customer order, ``limit`` from after ``after``."""
    q = select(OUTCOMES).where(OUTCOMES.c.simulation_id == simulation_id)
    if after:
        q = q.where(OUTCOMES.c.customer_id > after)
    return list(await session.execute(q.order_by(OUTCOMES.c.customer_id).limit(limit)))


# --- the job -----------------------------------------------------------------------------------


@dataclass
class Sides:
    """The two policies a simulation replays, each a tier policy and household aggregation."""

    policies: dict[str, Any]
    aggregate: dict[str, bool]

    @classmethod
    def of(cls, today: SimulatedPolicy, candidate: SimulatedPolicy) -> Sides:
        return cls({"today": today.policy, "candidate": candidate.policy},
                   {"today": today.household_aggregation, "candidate": candidate.household_aggregation})

    @property
    def households(self) -> bool:
        return any(self.aggregate.values())


@dataclass
class Run:
    """What one run of the job keeps between chunks."""

    closes: list[Close]
    sides: Sides
    figures: Figures
    fees: FeeHistory | None
    repricing: TierRepricing
    days_seen: set[date] = field(default_factory=set)


async def run(db: Database, settings, simulation_id: str, candidate: SimulatedPolicy, first: str, last: str) -> None:
    """The job: replay the period under both policies for every customer, then keep the answer."""
    try:
        await _run(db, settings, simulation_id, candidate, first, last)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the answer is that it failed, and why; the log has the rest
        log.exception("tier-policy simulation failed", extra={"simulation_id": simulation_id})
        async with db.transaction() as session:
            await session.execute(update(SIMULATIONS).where(SIMULATIONS.c.id == simulation_id).values(
                state="failed", error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=_now()))


async def _run(db: Database, settings, simulation_id: str, candidate: SimulatedPolicy, first: str,
               last: str) -> None:
    months = months_between(first, last)
    async with db.transaction() as session:
        closes = await _closes(session, months)
        total = await session.scalar(select(func.count()).select_from(CUSTOMERS))
        first_day = await session.scalar(select(func.min(DAYS.c.day)))
        fees = await FeeHistory.open(session, settings.zone)
        await _forget_old_outcomes(session)
        await session.execute(update(SIMULATIONS).where(SIMULATIONS.c.id == simulation_id).values(
            state="running", started_at=_now(), heartbeat_at=_now(), customers_total=total))
    today = todays_policy(settings)
    sides = Sides.of(today, candidate)
    tiers = [t.id for t in settings.tiers]
    job = Run(closes, sides, Figures(closes, tiers), fees, TierRepricing(settings.pricing, SIDES))
    done = 0
    for chunks in ([_single_customers(db, job)] + ([_households(db, job)] if sides.households else [])):
        async for groups in _read_ahead(chunks):
            rows = await asyncio.to_thread(_replay_chunk, job, groups)
            done += sum(len(g[0]) for g in groups)
            async with db.transaction() as session:
                await _keep_outcomes(session, simulation_id, rows)
                await session.execute(update(SIMULATIONS).where(SIMULATIONS.c.id == simulation_id).values(
                    customers_done=done, heartbeat_at=_now()))
    result = _answer(job, settings, today, candidate, first_day)
    async with db.transaction() as session:
        await session.execute(update(SIMULATIONS).where(SIMULATIONS.c.id == simulation_id).values(
            state="done", customers_done=done, result=json.dumps(result, default=_plain), finished_at=_now(),
            heartbeat_at=_now()))


OUTCOME_COLUMNS = ("simulation_id", "customer_id", "today_tier", "today_watch", "today_months_below",
                   "candidate_tier", "candidate_watch", "candidate_months_below", "aum")


async def _keep_outcomes(session, simulation_id: str, rows: list[dict]) -> None:
    """A chunk's outcomes in one statement: COPY on PostgreSQL (a million rows in seconds)."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        await write_rows(session, OUTCOMES, [{"simulation_id": simulation_id, **r} for r in rows])
        return
    driver = (await (await session.connection()).get_raw_connection()).driver_connection
    await driver.copy_records_to_table(OUTCOMES.name, columns=OUTCOME_COLUMNS, records=[
        (simulation_id, r["customer_id"], r["today_tier"], r["today_watch"], r["today_months_below"],
         r["candidate_tier"], r["candidate_watch"], r["candidate_months_below"], to_cents(r["aum"])) for r in rows])


async def _closes(session, months: list[str]) -> list[Close]:
    """Each month's close where tiering's history stood when the live close ran (its last day
    for a month not closed, or closed before that was recorded), never past the next month."""
    recorded = {r.month: r.history_through for r in await session.execute(
        select(TieringMonthClose.month, TieringMonthClose.history_through)
        .where(TieringMonthClose.month.in_(months)))}
    closes = []
    for month in months:
        start = parse_month(month)
        last = start.replace(day=days_in_month(start))
        following = next_month(start)
        latest = following.replace(day=days_in_month(following))
        through = recorded.get(month) or last
        closes.append(Close(start, min(max(through, last), latest)))
    return closes


async def _forget_old_outcomes(session) -> None:
    kept = select(SIMULATIONS.c.id).order_by(SIMULATIONS.c.requested_at.desc()).limit(KEEP_CUSTOMER_ROWS)
    old = select(SIMULATIONS.c.id).where(SIMULATIONS.c.id.not_in(kept.scalar_subquery()))
    await session.execute(delete(OUTCOMES).where(OUTCOMES.c.simulation_id.in_(old.scalar_subquery())))


# --- reading a chunk ---------------------------------------------------------------------------

Group = tuple[list[History], dict[str, list[FeePosting]]]
"""Customers replayed together (one customer, or a household's members) and their postings."""


async def _read_ahead(chunks):
    """The chunks of ``chunks``, the next one read while the caller works on the one given."""
    pending = asyncio.ensure_future(anext(chunks, None))
    try:
        while True:
            groups = await pending
            if groups is None:
                return
            pending = asyncio.ensure_future(anext(chunks, None))
            yield groups
    finally:
        if not pending.done():
            pending.cancel()


class HistoryReader:
    """Reads customers and their days for the replay, money in integer cents. On PostgreSQL
    through the session's asyncpg connection: millions of rows without SQLAlchemy's per-row
    work (a tenth of the cost); elsewhere (SQLite) through SQLAlchemy Core."""

    def __init__(self, session, start: date, end: date) -> None:
        self.session = session
        self.start, self.end = start, end

    async def _driver(self):
        if self.session.get_bind().dialect.name != "postgresql":
            return None
        connection = await self.session.connection()
        return (await connection.get_raw_connection()).driver_connection

    async def customers(self, after: str | None, limit: int, *, alone: bool) -> list[tuple]:
        """(customer_id, household_id, aum, mtd_day, opening) in key order; ``alone``: only
        customers in no household."""
        driver = await self._driver()
        if driver is not None:
            where = " AND c.household_id IS NULL" if alone else ""
            return [tuple(r) for r in await driver.fetch(
                f"SELECT c.customer_id, c.household_id, c.aum, c.mtd_day, ({OPENING_SQL}) FROM tiering_customers c "
                f"WHERE c.customer_id > $2{where} ORDER BY c.customer_id LIMIT $3", self.start, after or "", limit)]
        q = select(*self._customer_columns())
        if after is not None:
            q = q.where(CUSTOMERS.c.customer_id > after)
        if alone:
            q = q.where(CUSTOMERS.c.household_id.is_(None))
        return [tuple(r) for r in await self.session.execute(q.order_by(CUSTOMERS.c.customer_id).limit(limit))]

    async def households(self, after: str | None, limit: int) -> list[str]:
        q = select(CUSTOMERS.c.household_id).where(CUSTOMERS.c.household_id.is_not(None)).distinct()
        if after is not None:
            q = q.where(CUSTOMERS.c.household_id > after)
        return [r[0] for r in await self.session.execute(q.order_by(CUSTOMERS.c.household_id).limit(limit))]

    async def members(self, households: list[str]) -> list[tuple]:
        driver = await self._driver()
        if driver is not None:
            return [tuple(r) for r in await driver.fetch(
                f"SELECT c.customer_id, c.household_id, c.aum, c.mtd_day, ({OPENING_SQL}) FROM tiering_customers c "
                f"WHERE c.household_id = ANY($2::text[]) ORDER BY c.customer_id", self.start, households)]
        rows = await read_rows(self.session, CUSTOMERS, "household_id", households, columns=self._customer_columns())
        return sorted((tuple(r) for r in rows), key=lambda r: r[0])

    async def days_between(self, lowest: str, highest: str) -> dict[str, list]:
        """The days of the customers from ``lowest`` to ``highest`` (key order)."""
        driver = await self._driver()
        if driver is not None:
            return _zipped(await driver.fetch(
                f"SELECT customer_id, {DAYS_SQL} WHERE customer_id >= $1 AND customer_id <= $2 AND day >= $3 AND "
                "day <= $4 GROUP BY customer_id", lowest, highest, self.start, self.end))
        rows = await self.session.execute(
            select(*self._day_columns()).where(DAYS.c.customer_id >= lowest, DAYS.c.customer_id <= highest,
                                               DAYS.c.day >= self.start, DAYS.c.day <= self.end)
            .order_by(DAYS.c.customer_id, DAYS.c.day))
        return _by_customer(rows)

    async def days_of(self, ids: list[str]) -> dict[str, list]:
        driver = await self._driver()
        if driver is not None:
            return _zipped(await driver.fetch(
                f"SELECT customer_id, {DAYS_SQL} WHERE customer_id = ANY($1::text[]) AND day >= $2 AND day <= $3 "
                "GROUP BY customer_id", ids, self.start, self.end))
        rows = sorted(await read_rows(self.session, DAYS, "customer_id", ids, columns=self._day_columns(),
                                      where=(DAYS.c.day >= self.start) & (DAYS.c.day <= self.end)),
                      key=lambda r: (r[0], r[1]))
        return _by_customer(rows)

    def _customer_columns(self):
        opening = (select(type_coerce(DAYS.c.aum, BigInteger))
                   .where(DAYS.c.customer_id == CUSTOMERS.c.customer_id, DAYS.c.day < self.start)
                   .order_by(DAYS.c.day.desc()).limit(1).scalar_subquery())
        return (CUSTOMERS.c.customer_id, CUSTOMERS.c.household_id, type_coerce(CUSTOMERS.c.aum, BigInteger),
                CUSTOMERS.c.mtd_day, opening)

    @staticmethod
    def _day_columns():
        return (DAYS.c.customer_id, DAYS.c.day, type_coerce(DAYS.c.aum, BigInteger),
                type_coerce(DAYS.c.high, BigInteger))


DAYS_SQL = ("array_agg(day ORDER BY day), array_agg(aum ORDER BY day), array_agg(high ORDER BY day) "
            "FROM tiering_daily_aum")
"""Each customer's days as three arrays (PostgreSQL): one row per customer, decoded in C."""

OPENING_SQL = ("SELECT d.aum FROM tiering_daily_aum d WHERE d.customer_id = c.customer_id AND d.day < $1 "
               "ORDER BY d.day DESC LIMIT 1")
"""A customer's AUM at the end of their latest day before the period (PostgreSQL)."""


def _zipped(rows) -> dict[str, list]:
    return {customer_id: list(zip(days, aums, highs)) for customer_id, days, aums, highs in rows}


def _by_customer(rows) -> dict[str, list]:
    out: dict[str, list] = {}
    for customer_id, day, aum, high in rows:
        days = out.get(customer_id)
        if days is None:
            days = out[customer_id] = []
        days.append((day, aum, high))
    return out


def _history(row: tuple, days: list, start: date) -> History:
    customer_id, household_id, aum, mtd_day, opening = row
    if opening is None and mtd_day < start:
        opening = aum  # no day since before the period: the AUM now is the AUM then
    return History(customer_id, household_id, opening, days)


async def _single_customers(db: Database, job: Run):
    """Customers in key order, a chunk at a time; with household aggregation on either side,
    only those in no household (households come whole, from :func:`_households`)."""
    start, end = job.closes[0].first, job.closes[-1].through
    after = None
    while True:
        async with db.sessions() as session:
            reader = HistoryReader(session, start, end)
            customers = await reader.customers(after, CHUNK, alone=job.sides.households)
            if not customers:
                return
            after = customers[-1][0]
            days = await reader.days_between(customers[0][0], after)
            postings = await _postings(session, job, [c[0] for c in customers])
        yield [([_history(c, days.get(c[0], []), start)], postings) for c in customers]


async def _households(db: Database, job: Run):
    """Customers in a household, whole households at a time, in household order."""
    start, end = job.closes[0].first, job.closes[-1].through
    after = None
    while True:
        async with db.sessions() as session:
            reader = HistoryReader(session, start, end)
            households = await reader.households(after, HOUSEHOLD_CHUNK)
            if not households:
                return
            after = households[-1]
            members = await reader.members(households)
            ids = [m[0] for m in members]
            days = await reader.days_of(ids)
            postings = await _postings(session, job, ids)
        by_household: dict[str, list[History]] = {}
        for m in members:
            by_household.setdefault(m[1], []).append(_history(m, days.get(m[0], []), start))
        yield [(by_household[h], postings) for h in households if h in by_household]


async def _postings(session, job: Run, ids: list[str]) -> dict[str, list[FeePosting]]:
    if job.fees is None:
        return {}
    return await job.fees.postings(session, ids, job.closes[0].first, job.closes[-1].last)


# --- replaying a chunk (in a worker thread: plain values only) --------------------------------


def _replay_chunk(job: Run, groups: list[Group]) -> list[dict]:
    rows = []
    closes, sides, figures, seen = job.closes, job.sides, job.figures, job.days_seen
    today, candidate = sides.policies["today"], sides.policies["candidate"]
    with_household = {side: sides.aggregate[side] for side in SIDES}
    for histories, postings in groups:
        paths = [path_of(h, closes) for h in histories]
        household = household_path(paths, closes) if sides.households and histories[0].household_id else None
        for history, own in zip(histories, paths):
            seen.update([d[0] for d in history.days])
            basis_today = household if household is not None and with_household["today"] else own
            basis_candidate = household if household is not None and with_household["candidate"] else own
            a_months = decide(own, basis_today, today, closes)
            b_months = decide(own, basis_candidate, candidate, closes)
            figures.add(a_months, b_months, own.stretches)
            mine = postings.get(history.customer_id)
            if mine:
                job.repricing.price(mine, {"today": _tier_at(own, basis_today, today, closes),
                                           "candidate": _tier_at(own, basis_candidate, candidate, closes)})
            a, b = a_months[-1], b_months[-1]
            if a is not None and b is not None:
                rows.append({"customer_id": history.customer_id, "today_tier": a.state.tier,
                             "today_watch": a.state.watch, "today_months_below": a.state.months_below,
                             "candidate_tier": b.state.tier, "candidate_watch": b.state.watch,
                             "candidate_months_below": b.state.months_below,
                             "aum": own.stretches[-1].month_end_aum})
    return rows


def _tier_at(own: Path, basis: Path, policy, closes):
    """The tier at each posting under ``policy``: right after the posting where pricing kept
    the AUM after it (and the customer is tiered on their own AUM), else the tier the customer
    started the posting's day with."""
    tiers = DayTiers(own, basis, policy, closes)
    if basis is own:
        return lambda p: tiers.after(p.day, p.aum) if p.aum is not None else tiers.at(p.day)
    return lambda p: tiers.at(p.day)


# --- the answer ---------------------------------------------------------------------------------


def _answer(job: Run, settings, today: SimulatedPolicy, candidate: SimulatedPolicy, first_day: date | None) -> dict:
    figures = job.figures.as_dict()
    rules = AssignmentRules.from_settings(settings)
    tiers = [t.id for t in settings.tiers]
    months = []
    for close in job.closes:
        seen = sum(1 for d in job.days_seen if close.first <= d <= close.last)
        months.append({"month": close.month, "days_with_history": seen, "had_history": seen > 0,
                       "closed_through": close.through})
    with_aum = job.fees is not None and job.fees.with_aum
    if job.fees is None:
        fees = {"available": False,
                "reason": "pricing's priced postings (pricing_fees) are not in this database: the fee part is unavailable"}
    else:
        fees = {"available": True, "tier_at_posting": "after_posting" if with_aum else "start_of_day",
                **job.repricing.as_dict(tiers)}
    return {
        "from": month_key(job.closes[0].first), "to": month_key(job.closes[-1].first),
        "policies": {"today": today.as_dict(), "candidate": candidate.as_dict()},
        "history": {"first_day": first_day, "months": months,
                    "months_with_history": [m["month"] for m in months if m["had_history"]],
                    "months_without_history": [m["month"] for m in months if not m["had_history"]]},
        **figures,
        "rms_needed": {side: rms_needed(rules, job.figures.by_tier_at_end(side)) for side in SIDES},
        "fees": fees,
        "method": _method(with_aum, job.fees is not None),
    }


def _method(with_aum: bool, fees: bool) -> list[str]:
    notes = [
        "Both policies are replayed the same way from the same history: tiering's end-of-day AUM and "
        "highest AUM of each customer's days with activity (a day without a row keeps the AUM of the day "
        "before), with the live path's rules for the running sum, fast up and month-end closes.",
        "Each customer starts the period at the lowest tier and is placed on their AUM at the end of the day "
        "before it, under each policy alike: watch months from before the period are not carried in.",
        "A customer is upgraded on the highest AUM of a day; a month is closed where tiering's history stood "
        "when its live close ran (closed_through), else at its last day.",
        "Household aggregation tiers the members on the household's AUM (current membership); a household's "
        "highest AUM of a day is its AUM at the start of the day plus the largest rise of one member.",
    ]
    if fees:
        notes.append("Fees: the period's postings with a fee are priced again under today's pricing rules with "
                     "each customer's simulated tier at the posting, "
                     + ("right after the posting (from the AUM pricing kept with it)" if with_aum
                        else "the tier the customer started the posting's day with")
                     + "; free uses are counted afresh from each month's first posting, points left out.")
    return notes


def _plain(value):
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _now() -> datetime:
    return datetime.now(timezone.utc)
