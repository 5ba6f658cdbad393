"""PostgreSQL restarted while the services are in the middle of the stream: /readyz answers 503
while it is down and 200 once it is back, the services retry the batch in hand (never drop it),
and the run ends exactly where the reference run did.

The cluster is a private one (the project's deploy/postgres/postgres.sh on a free port and a
temporary run dir), so the shared database other test runs use is never touched.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.faults.conftest import assert_same, faulted_run
from tests.faults.private import PrivatePostgres
from tests.faults.stack import Stack
from tests.faults.test_broker_restart import until_readiness

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.usefixtures("integration_env")]

DOWN_FOR_S = 3.0


async def test_postgres_restarted_mid_stream_ends_in_the_reference_state(broker, reference, feed):
    pg = PrivatePostgres()
    seen: dict[str, dict[str, int]] = {}

    async def restart_postgres(stack: Stack) -> None:
        await pg.stop()
        try:
            seen["down"] = await until_readiness(stack, 503, timeout=30)
            await asyncio.sleep(DOWN_FOR_S)
        finally:
            await pg.start()
        seen["up"] = await until_readiness(stack, 200)

    try:
        await pg.start()
        stack, outcome = await faulted_run(broker.bootstrap, feed, database_url=pg.url,
                                           during=restart_postgres)
    finally:
        await pg.destroy()
    assert set(seen["down"].values()) == {503}, f"/readyz while PostgreSQL was down: {seen['down']}"
    assert set(seen["up"].values()) == {200}, f"/readyz once it was back: {seen['up']}"
    assert_same(reference.outcome, outcome, stack, feed)
