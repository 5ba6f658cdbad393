"""The Kafka broker stopped and started again while the services are in the middle of the
stream: /readyz answers 503 while it is down and 200 once it is back, the services wait,
reconnect, and end exactly where the reference run did.

The broker is the suite's own (see conftest), so the shared broker other test runs use is never
touched.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.faults.conftest import assert_same, faulted_run
from tests.faults.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.usefixtures("integration_env")]

DOWN_FOR_S = 3.0


async def readiness(stack: Stack) -> dict[str, int]:
    out = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for name in stack.procs:
            try:
                out[name] = (await client.get(stack.url(name, "/readyz"))).status_code
            except httpx.HTTPError:
                out[name] = 0
    return out


async def until_readiness(stack: Stack, status: int, timeout: float = 60.0) -> dict[str, int]:
    """Poll every service's /readyz until all answer ``status``; returns the last answers."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen = await readiness(stack)
    while any(code != status for code in seen.values()) and loop.time() < deadline:
        await asyncio.sleep(0.25)
        seen = await readiness(stack)
    return seen


async def test_broker_stopped_and_started_mid_stream_ends_in_the_reference_state(broker, reference, feed):
    seen: dict[str, dict[str, int]] = {}

    async def restart_broker(stack: Stack) -> None:
        await broker.stop()
        try:
            seen["down"] = await until_readiness(stack, 503, timeout=30)
            await asyncio.sleep(DOWN_FOR_S)
        finally:
            await broker.start()
        seen["up"] = await until_readiness(stack, 200)

    stack, outcome = await faulted_run(broker.bootstrap, feed, during=restart_broker)
    assert set(seen["down"].values()) == {503}, f"/readyz while the broker was down: {seen['down']}"
    assert set(seen["up"].values()) == {200}, f"/readyz once it was back: {seen['up']}"
    assert_same(reference.outcome, outcome, stack, feed)
