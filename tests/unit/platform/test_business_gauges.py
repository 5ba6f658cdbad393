"""``business_gauges``: a service's dashboard counts, refreshed every
``runtime.business_gauges_interval_s``; an outage is waited out quietly, a bug is logged, and
neither stops the refreshing."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

from sqlalchemy.exc import OperationalError

from shared.db import Database
from shared.runtime.service import business_gauges
from shared.settings import Settings


async def test_refreshes_on_every_interval_and_outlives_failures(tmp_path, caplog):
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/g.db")
    runtime = SimpleNamespace(db=db, settings=Settings(runtime={"business_gauges_interval_s": 0.01}))
    failures = [OperationalError("SELECT", {}, Exception("database down")), ValueError("a bug")]
    calls = []

    async def refresh(session, settings):
        calls.append(settings.runtime.business_gauges_interval_s)
        if failures:
            raise failures.pop(0)

    task = asyncio.create_task(business_gauges(refresh)(runtime))
    try:
        with caplog.at_level(logging.WARNING, logger="shared.runtime.service"):
            for _ in range(12_000):  # generous: waits for the refreshes, at most 2 minutes
                if len(calls) >= 4:
                    break
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await db.dispose()
    assert len(calls) >= 4, "kept refreshing after an outage and a bug"
    logged = [r for r in caplog.records if r.name == "shared.runtime.service"]
    assert len(logged) == 1 and "a bug" in logged[0].exc_text  # the outage is not logged


async def test_an_overflow_is_logged_as_a_fault_and_the_refreshing_goes_on(tmp_path, caplog):
    import sqlite3

    db = Database(f"sqlite+aiosqlite:///{tmp_path}/g.db")
    runtime = SimpleNamespace(db=db, settings=Settings(runtime={"business_gauges_interval_s": 0.01}))
    calls = []

    async def refresh(session, settings):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("SELECT sum(aum)", {}, sqlite3.OperationalError("integer overflow"))

    task = asyncio.create_task(business_gauges(refresh)(runtime))
    try:
        with caplog.at_level(logging.WARNING, logger="shared.runtime.service"):
            for _ in range(12_000):  # generous: waits for the refreshes, at most 2 minutes
                if len(calls) >= 3:
                    break
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await db.dispose()
    assert len(calls) >= 3
    assert [r for r in caplog.records if r.name == "shared.runtime.service" and "integer overflow" in r.exc_text]


async def test_the_tier_gauges_count_aum_beyond_what_a_64_bit_sum_holds(tmp_path):
    from datetime import date
    from decimal import Decimal

    from prometheus_client import REGISTRY

    from services.tiering import _tier_gauges
    from services.tiering.models import TieringCustomer
    from shared import migrate

    db = Database(f"sqlite+aiosqlite:///{tmp_path}/g.db")
    await migrate.upgrade(db, ["tiering"])
    huge = Decimal("90000000000000000.00")  # 9e18 cents each: two of them overflow a signed 64-bit sum
    async with db.transaction() as session:
        for n in range(2):
            session.add(TieringCustomer(customer_id=f"HUGE{n}", aum=huge, liabilities=0, holdings={},
                                        tier="overflow-test", watch=False, months_below=0,
                                        mtd_day=date(2026, 11, 1), mtd_sum=0,
                                        average_aum_12m=0))
    try:
        async with db.sessions() as session:
            await _tier_gauges(session, Settings())
    finally:
        await db.dispose()
    assert REGISTRY.get_sample_value("strata_aum_by_tier_cny", {"tier": "overflow-test"}) == float(2 * huge)
