"""The Kafka broker stopped and started again while the services are in the middle of the
stream: they wait, reconnect, and end exactly where the reference run did.

The broker is a private one (the project's deploy/kafka/kafka.sh on other ports and another run
dir), so the shared broker other test runs use is never touched.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.faults.conftest import assert_same, observe
from tests.faults.private import PrivateKafka
from tests.faults.stack import Stack
from tests.integration.conftest import create_database

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


async def test_broker_stopped_and_started_mid_stream_ends_in_the_reference_state(reference, feed):
    kafka = PrivateKafka()
    await kafka.start()
    stack = Stack(kafka.bootstrap, await create_database())
    seen: dict[str, dict[str, int]] = {}

    async def restart_broker() -> None:
        await kafka.stop()
        seen["down"] = await until_readiness(stack, 503, timeout=30)
        await asyncio.sleep(DOWN_FOR_S)
        await kafka.start()
        seen["up"] = await until_readiness(stack, 200)

    try:
        await stack.prepare()
        await stack.start()
        await stack.register_rms(feed.rms)
        await stack.send(feed, during=restart_broker)
        outcome = await observe(stack)
    finally:
        await stack.close()
        await kafka.destroy()
    assert set(seen["down"].values()) == {503}, f"/readyz while the broker was down: {seen['down']}"
    assert set(seen["up"].values()) == {200}, f"/readyz once it was back: {seen['up']}"
    assert_same(reference.outcome, outcome, stack, feed)
