"""Two instances of every service in one consumer group, on six partitions; the second
instance of each is stopped (SIGTERM: it finishes and commits its batch) in the middle of the
stream and started again, so every group rebalances twice under load. The run ends exactly
where the reference run (one instance each, three partitions) did.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.faults.conftest import assert_same, faulted_run
from tests.faults.stack import SERVICES, Stack

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.usefixtures("integration_env")]

AWAY_FOR_S = 3.0


async def test_instances_leaving_and_rejoining_their_group_mid_stream_end_in_the_reference_state(
        broker, reference, feed):
    stopped: dict[str, int] = {}

    async def rolling_restart(stack: Stack) -> None:
        second = [stack.procs[name][1] for name in SERVICES]
        for proc in second:
            stack.hold(proc)
        await asyncio.gather(*(asyncio.to_thread(p.terminate) for p in second))
        stopped.update({p.service: p.proc.returncode for p in second})
        await asyncio.sleep(AWAY_FOR_S)  # the first instances take every partition meanwhile
        for proc in second:
            proc.start()
            stack.release(proc)
        await asyncio.gather(*(p.wait_ready() for p in second))

    stack, outcome = await faulted_run(broker.bootstrap, feed, during=rolling_restart,
                                       partitions=6, instances=2)
    # uvicorn shuts down gracefully on SIGTERM and then re-raises it (-15); -9 would mean
    # ServiceProcess.terminate gave up waiting and killed it
    assert set(stopped) == set(SERVICES) and set(stopped.values()) <= {0, -15}, f"exits on SIGTERM: {stopped}"
    assert_same(reference.outcome, outcome, stack, feed)
