"""Tier-policy simulation at scale: a month of history for ``customers`` customers seeded
straight into tiering's tables with COPY (each customer's end-of-day AUM and day's high on the
days they had activity), then the simulation job timed exactly as the API runs it.

Two runs on one database: the tier part alone (pricing's table not there yet, so the job
answers without the fee part), then, with ``postings`` priced postings with a fee seeded into
``pricing_fees``, the whole job; the fee part is reported in seconds per million postings
(the second run's extra time). Peak memory of the process is read after each run.
"""

from __future__ import annotations

import json
import random
import resource
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import asyncpg

from bench.feed import opening_balance
from shared import migrate
from shared.db import Database
from shared.settings import Settings
from services.tiering.domain import TierPolicy
from services.tiering.models import TieringSimulation
from services.tiering.simulation import candidate_policy
from services.tiering import simulation_job

MONTH = date(2026, 10, 1)
DAYS = 31
CANDIDATE = [{"id": "gold", "floor": "40000.00"}, {"id": "platinum", "floor": "150000.00"}]
ZONE_OFFSET = timezone(timedelta(hours=8))


def active_days(rng: random.Random) -> int:
    """Days with activity in the month: most retail customers move money on a few days, a
    fifth of them on most days (mean about 8)."""
    u = rng.random()
    if u < 0.35:
        return rng.randint(1, 2)
    if u < 0.80:
        return rng.randint(3, 10)
    return rng.randint(11, DAYS)


async def seed_history(dsn: str, customers: int, settings: Settings, seed: int = 5) -> dict:
    policy = TierPolicy(settings.tier_ladder)
    rng = random.Random(seed)
    conn = await asyncpg.connect(dsn)
    people, days, rows_days = [], [], 0
    try:
        for n in range(customers):
            aum = opening_balance(rng)
            active = sorted(rng.sample(range(1, DAYS + 1), active_days(rng)))
            mtd_sum, last_day, last = 0, 1, aum
            customer_id = f"C{n:08d}"
            for d in active:
                mtd_sum += last * (d - last_day)
                move = rng.random()
                if move < 0.03:
                    eod = int(last * rng.uniform(1.3, 3.0)) + 1_000_000  # a windfall
                elif move < 0.05:
                    eod = int(last * rng.uniform(0.1, 0.6))  # money leaves
                else:
                    eod = max(0, int(last * rng.uniform(0.97, 1.03)))
                high = max(eod, last) + (rng.randrange(0, max(1, last // 20)) if rng.random() < 0.2 else 0)
                days.append((customer_id, MONTH.replace(day=d), eod, high))
                last, last_day = eod, d
            tier = policy.tier_for(Decimal(aum) / 100).id
            people.append((customer_id, None, last, 0, "{}", tier, False, 0, MONTH.replace(day=last_day),
                           mtd_sum, last, 0, "{}"))
            if len(days) >= 200_000:
                rows_days += len(days)
                await _copy_days(conn, days)
                days.clear()
            if len(people) == 50_000:
                await _copy_customers(conn, people)
                people.clear()
        if days:
            rows_days += len(days)
            await _copy_days(conn, days)
        if people:
            await _copy_customers(conn, people)
        await conn.execute("ANALYZE tiering_customers; ANALYZE tiering_daily_aum")
    finally:
        await conn.close()
    return {"customers": customers, "daily_rows": rows_days}


async def _copy_customers(conn, rows) -> None:
    await conn.copy_records_to_table(
        "tiering_customers", records=rows,
        columns=["customer_id", "household_id", "aum", "liabilities", "holdings", "tier", "watch", "months_below",
                 "mtd_day", "mtd_sum", "day_high", "average_aum_12m", "recent_averages"])


async def _copy_days(conn, rows) -> None:
    await conn.copy_records_to_table("tiering_daily_aum", records=rows, columns=["customer_id", "day", "aum", "high"])


FEES = (("atm_withdrawal", "atm", "OTHER", "atm_interbank", 400), ("sms_monthly", "batch", None, "sms_monthly", 200),
        ("card_annual", "batch", None, "card_annual", 1000))


async def seed_fees(dsn: str, customers: int, postings: int, seed: int = 6) -> dict:
    """``postings`` priced postings with a fee, over the month, spread over customers."""
    rng = random.Random(seed)
    conn = await asyncpg.connect(dsn)
    rows = []
    priced_at = datetime(2026, 11, 1, tzinfo=timezone.utc)
    try:
        for n in range(postings):
            c = rng.randrange(customers)
            tx_type, channel, bank, fee_id, cents = FEES[0] if rng.random() < 0.7 else rng.choice(FEES[1:])
            at = datetime(2026, 10, rng.randint(1, DAYS), rng.randint(8, 20), rng.randint(0, 59), tzinfo=ZONE_OFFSET)
            rows.append((f"BP{n:09d}", f"C{c:08d}", f"C{c:08d}-A", tx_type, "demand_deposit", "debit", channel, bank,
                         False, 10_000, at, "2026-10", "mass", fee_id, 1, cents, 0, 0, 0, 0, cents, 0, 0,
                         json.dumps([f"fee.{fee_id}"]), "[]", 0, 0, 0, priced_at))
            if len(rows) == 100_000:
                await _copy_fees(conn, rows)
                rows.clear()
        if rows:
            await _copy_fees(conn, rows)
        await conn.execute("ANALYZE pricing_fees")
    finally:
        await conn.close()
    return {"postings": postings}


async def _copy_fees(conn, rows) -> None:
    await conn.copy_records_to_table("pricing_fees", records=rows, columns=[
        "posting_id", "customer_id", "account_id", "tx_type", "product_type", "direction", "channel",
        "counterparty_bank", "cross_region", "amount", "posted_at", "month", "tier", "fee_id", "use_number", "base",
        "waived", "discount", "points_used", "points_value", "net", "points_earned", "points_balance", "rules",
        "breakdown", "average_aum_12m", "fees_paid", "contribution_score", "priced_at"])


async def _simulate(db: Database, settings: Settings) -> tuple[float, dict]:
    candidate = candidate_policy(settings, CANDIDATE, None)
    simulation_id = str(uuid.uuid4())
    async with db.transaction() as session:
        session.add(TieringSimulation(id=simulation_id, state="queued", request="{}", requested_by="bench",
                                      requested_at=datetime.now(timezone.utc), customers_total=0, customers_done=0))
    started = time.perf_counter()
    await simulation_job.run(db, settings, simulation_id, candidate, "2026-10", "2026-10")
    seconds = time.perf_counter() - started
    async with db.sessions() as session:
        row = await session.get(TieringSimulation, simulation_id)
    if row.state != "done":
        raise RuntimeError(f"the simulation ended {row.state}: {row.error}")
    return seconds, json.loads(row.result)


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


async def run(database_url: str, customers: int, postings: int) -> dict:
    settings = Settings(database_url=database_url, bus="memory")
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    db = Database(database_url)
    await migrate.upgrade(db, ["tiering"])
    started = time.perf_counter()
    seeded = await seed_history(dsn, customers, settings)
    seeded["seed_seconds"] = round(time.perf_counter() - started, 1)
    rss_before = _peak_rss_mb()
    tier_seconds, tier_result = await _simulate(db, settings)
    out = {**seeded, "tier_part": {"seconds": round(tier_seconds, 2),
                                   "customers_per_s": round(customers / tier_seconds),
                                   "daily_rows_per_s": round(seeded["daily_rows"] / tier_seconds),
                                   "fee_part": tier_result["fees"]["available"],
                                   "peak_rss_mb_before": rss_before, "peak_rss_mb_after": _peak_rss_mb()},
           "migration_end": tier_result["migration"]["end"]}
    if postings:
        await migrate.upgrade(db, ["tiering", "pricing"])
        out.update(await seed_fees(dsn, customers, postings))
        whole_seconds, whole = await _simulate(db, settings)
        extra = whole_seconds - tier_seconds
        out["with_fee_part"] = {"seconds": round(whole_seconds, 2), "fee_postings": whole["fees"]["postings"],
                                "fee_part_seconds": round(extra, 2),
                                "fee_part_seconds_per_million_postings": round(extra * 1e6 / max(1, postings), 2),
                                "peak_rss_mb_after": _peak_rss_mb(), "fees_totals": whole["fees"]["totals"]}
    await db.dispose()
    return out
