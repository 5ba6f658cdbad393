"""Month-end close at scale: customers seeded straight into tiering's tables with COPY, then
the close timed exactly as the API runs it (one transaction, events to the outbox)."""

from __future__ import annotations

import random
import time
from datetime import date

import asyncpg

from bench.feed import opening_balance
from shared import migrate
from shared.db import Database
from shared.runtime.transaction import BatchTransaction
from shared.settings import Settings
from services.tiering.domain import TierPolicy
from services.tiering.close import close_month


async def seed(dsn: str, customers: int, settings: Settings, seed: int = 3) -> dict:
    """Customers with November running sums; about 6 % of those above mass had a bad month
    (average below their floor) and some are already on watch."""
    policy = TierPolicy.from_rules(settings.tiers)
    rng = random.Random(seed)
    conn = await asyncpg.connect(dsn)
    below = 0
    rows = []
    try:
        for n in range(customers):
            aum = opening_balance(rng)
            tier = policy.tier_for(__import__("decimal").Decimal(aum) / 100)
            dom = rng.randrange(20, 31)
            per_day = aum
            if tier.rank > 0 and rng.random() < 0.06:
                per_day = int(tier.floor * 100) // 3  # most of the month far below the floor
                below += 1
            watch = tier.rank > 0 and rng.random() < 0.02
            rows.append((f"C{n:08d}", None, aum, 0, "{}", tier.id, watch, 1 if watch else 0, None,
                         date(2026, 11, dom), per_day * (dom - 1), aum, 0, None, ""))
            if len(rows) == 50_000:
                await _copy(conn, rows)
                rows.clear()
        if rows:
            await _copy(conn, rows)
    finally:
        await conn.close()
    return {"customers": customers, "seeded_below_floor": below}


async def _copy(conn, rows) -> None:
    await conn.copy_records_to_table(
        "tiering_customers", records=rows,
        columns=["customer_id", "household_id", "aum", "liabilities", "holdings", "tier", "watch",
                 "months_below", "tier_since", "mtd_day", "mtd_sum", "day_high",
                 "average_aum_12m", "updated_at", "recent_averages"])


async def run(database_url: str, customers: int) -> dict:
    settings = Settings(database_url=database_url, bus="memory")
    db = Database(database_url)
    await migrate.upgrade(db, ["tiering"])
    seeded = await seed(database_url.replace("postgresql+asyncpg://", "postgresql://"), customers, settings)
    started = time.perf_counter()
    async with BatchTransaction(db, "tiering", settings, cause="bench-close") as tx:
        summary = await close_month(tx, "2026-11")
    seconds = time.perf_counter() - started
    await db.dispose()
    return {**seeded, "seconds": round(seconds, 2), "summary": summary.as_dict()}
