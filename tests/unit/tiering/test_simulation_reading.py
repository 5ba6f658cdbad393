"""The simulation job reads the customer base a chunk at a time, on SQLite and on PostgreSQL
alike (where it reads through the driver, money in cents): every customer's history reaches
the replay exactly as it is in tiering's tables, whatever the chunk boundaries, and each
customer's outcome is the replay of that history under both policies."""

from __future__ import annotations

import os
import random
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from shared import migrate
from shared.db import Database
from shared.money import from_cents
from shared.settings import Settings
from services.tiering import simulation_job
from services.tiering.models import TieringCustomer, TieringDailyAum, TieringSimulation
from services.tiering.replay import Close, History, decide, household_path, path_of
from services.tiering.simulation import candidate_policy, todays_policy

OCTOBER = Close(date(2026, 10, 1), date(2026, 10, 31))
CANDIDATE = [{"id": "gold", "floor": "40000.00", "downgrade_after_months": 1},
             {"id": "platinum", "floor": "150000.00"}]
CUSTOMERS = 90


def bank(seed: int = 11) -> tuple[list[dict], list[dict], dict[str, History]]:
    """Customers and their daily rows of four kinds (with a day before October and days in it;
    new in October; a day before October only; no day at all, last active in August), some in
    households whose members are far apart in key order, some with a day after the period; and
    the history each must reach the replay with (cents)."""
    rng = random.Random(seed)
    customers, days, histories = [], [], {}
    for n in range(CUSTOMERS):
        customer_id = f"C{n:04d}"
        household_id = f"H{n % 7}" if n % 3 == 0 else None
        kind = n % 4
        opening = rng.randrange(0, 30_000_000) if kind != 1 else None
        if kind in (0, 2):
            days.append({"customer_id": customer_id, "day": date(2026, 9, rng.randint(1, 30)),
                         "aum": from_cents(opening), "high": from_cents(opening)})
        in_period, last, last_day = [], opening or 0, date(2026, 8, 20)
        if kind in (0, 1):
            for d in sorted(rng.sample(range(1, 32), rng.randint(1, 9))):
                eod = max(0, last + rng.randrange(-8_000_000, 12_000_000))
                high = max(eod, last) + rng.randrange(0, 2_000_000)
                in_period.append((date(2026, 10, d), eod, high))
                days.append({"customer_id": customer_id, "day": date(2026, 10, d), "aum": from_cents(eod),
                             "high": from_cents(high)})
                last, last_day = eod, date(2026, 10, d)
        if n % 5 == 0 and kind != 3:  # a day after the period: not part of it
            last += 5_000_000
            last_day = date(2026, 11, 3)
            days.append({"customer_id": customer_id, "day": last_day, "aum": from_cents(last),
                         "high": from_cents(last)})
        if kind == 3:
            last = opening
        customers.append({"customer_id": customer_id, "household_id": household_id, "aum": from_cents(last),
                          "tier": "mass", "mtd_day": last_day, "mtd_sum": Decimal("0.00"),
                          "day_high": from_cents(last)})
        histories[customer_id] = History(customer_id, household_id, opening, in_period)
    return customers, days, histories


def expected(histories: dict[str, History], settings) -> dict[str, tuple]:
    today = todays_policy(settings).policy
    candidate = candidate_policy(settings, CANDIDATE, True).policy
    paths = {c: path_of(h, [OCTOBER]) for c, h in histories.items()}
    households: dict[str, list[str]] = {}
    for c in sorted(histories):
        if histories[c].household_id:
            households.setdefault(histories[c].household_id, []).append(c)
    together = {h: household_path([paths[c] for c in members], [OCTOBER]) for h, members in households.items()}
    out = {}
    for c, own in paths.items():
        basis = together.get(histories[c].household_id, own)
        [a] = decide(own, own, today, [OCTOBER])
        [b] = decide(own, basis, candidate, [OCTOBER])
        if a is not None and b is not None:
            out[c] = (a.state.tier, a.state.watch, a.state.months_below, b.state.tier, b.state.watch,
                      b.state.months_below, own.stretches[-1].month_end_aum)
    return out


async def _sqlite(tmp_path) -> Database:
    return Database(f"sqlite+aiosqlite:///{tmp_path}/t.db")


async def _postgres() -> Database | None:
    url = os.environ.get("STRATA_TEST_DATABASE_URL")
    if not url:
        return None
    from tests.integration.conftest import create_database

    return Database(await create_database(), 2)


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request, tmp_path):
    database = await (_sqlite(tmp_path) if request.param == "sqlite" else _postgres())
    if database is None:
        if os.environ.get("STRATA_REQUIRE_INTEGRATION") == "1":
            pytest.fail("STRATA_TEST_DATABASE_URL is not set")
        pytest.skip("no PostgreSQL (scripts/test starts one)")
    await migrate.upgrade(database, ["tiering"])
    try:
        yield database
    finally:
        await database.dispose()


async def test_every_customers_history_reaches_the_replay_whole_whatever_the_chunks(db, monkeypatch):
    settings = Settings(database_url=db.url, bus="memory")
    customers, days, histories = bank()
    async with db.transaction() as session:
        session.add_all([TieringCustomer(**c) for c in customers] + [TieringDailyAum(**d) for d in days])
        session.add(TieringSimulation(id="S1", state="queued", request="{}", requested_by="test",
                                      requested_at=datetime.now(timezone.utc)))
    read: list[History] = []
    sizes: list[int] = []
    replay = simulation_job._replay_chunk

    def seen(job, groups):
        sizes.append(sum(len(g[0]) for g in groups))
        read.extend(h for histories_, _postings in groups for h in histories_)
        return replay(job, groups)

    monkeypatch.setattr(simulation_job, "CHUNK", 8)
    monkeypatch.setattr(simulation_job, "HOUSEHOLD_CHUNK", 3)
    monkeypatch.setattr(simulation_job, "_replay_chunk", seen)
    await simulation_job.run(db, settings, "S1", candidate_policy(settings, CANDIDATE, True), "2026-10", "2026-10")

    async with db.sessions() as session:
        row = await session.get(TieringSimulation, "S1")
        assert row.state == "done", row.error
        outcomes = await simulation_job.outcomes_page(session, "S1", None, 10 * CUSTOMERS)
    assert sorted(read, key=lambda h: h.customer_id) == [histories[c] for c in sorted(histories)]
    assert all(isinstance(h.opening, (int, type(None))) for h in read), "money reaches the replay in cents"
    assert max(sizes) <= 8 * 3 and len(sizes) >= CUSTOMERS // 8
    assert (row.customers_done, row.customers_total) == (CUSTOMERS, CUSTOMERS)
    got = {r.customer_id: (r.today_tier, r.today_watch, r.today_months_below, r.candidate_tier, r.candidate_watch,
                           r.candidate_months_below, r.aum) for r in outcomes}
    assert got == expected(histories, settings)
    assert {t for o in got.values() for t in (o[0], o[3])} >= {"mass", "gold"}, "the bank should spread over tiers"
