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
            for _ in range(200):
                if len(calls) >= 4:
                    break
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await db.dispose()
    assert len(calls) >= 4, "kept refreshing after an outage and a bug"
    logged = [r for r in caplog.records if r.name == "shared.runtime.service"]
    assert len(logged) == 1 and "a bug" in logged[0].exc_text  # the outage is not logged
