"""Balanced distribution between equal RMs depends on the order customers are placed in, so
assignment applies tiering's stream in one order across customers (event time over every
partition it holds): the same stream ends with the same assignments however it is batched and
however its partitions interleave on the way in."""

from __future__ import annotations

from datetime import timedelta

from aiokafka.partitioner import murmur2
from sqlalchemy import select

from services.assignment.models import AssignmentChange, AssignmentCustomer
from shared.contracts.cloudevents import Event, new_event
from tests.conftest import private_strata
from tests.unit.assignment.stream import T0, customer_record, tier_record

BRANCH = "BR-ORDER"
RMS = [("O-L1-A", "L1"), ("O-L1-B", "L1"), ("O-L1-C", "L1"), ("O-L2-A", "L2"), ("O-L2-B", "L2")]
RUNTIME = {"poll_timeout_ms": 20, "outbox_poll_interval_ms": 20, "lag_interval_s": 0.5,
           "business_gauges_interval_s": 1.5, "retry_initial_ms": 10, "retry_max_ms": 200}


def stream() -> list[Event]:
    """Twelve customers of one branch reaching gold one after another, four of them platinum later
    (which frees room among the L1 RMs), in the order tiering applied the facts."""
    records = []
    customers = [f"ORD-{i:02d}" for i in range(12)]
    for i, c in enumerate(customers):
        records.append(customer_record(c, BRANCH, T0 + timedelta(seconds=i)))
    for i, c in enumerate(customers):
        records.append(tier_record(c, "gold", "initial_placement", T0 + timedelta(minutes=10 + 7 * i)))
        if i % 3 == 1:
            records.append(tier_record(c, "platinum", "upgrade", T0 + timedelta(minutes=13 + 7 * i)))
    records.sort(key=lambda r: r.at)
    return [new_event(r, "/strata/tiering", id=f"order-{n}") for n, r in enumerate(records)]


async def run(events: list[Event], batch_size: int) -> tuple[dict, list]:
    async with private_strata(["assignment"], runtime={**RUNTIME, "batch_size": batch_size}) as strata:
        for rm_id, level in RMS:
            response = await strata.client.put(f"/v1/rms/{rm_id}", headers=strata.token("admin"), json={
                "name": rm_id, "branch_id": BRANCH, "level": level})
            assert response.status_code == 200, response.text
        await strata.publish(*events)
        await strata.settle()
        async with strata.runtime.db.sessions() as session:
            rows = (await session.execute(select(AssignmentCustomer))).scalars().all()
            trail = (await session.execute(
                select(AssignmentChange.customer_id, AssignmentChange.role, AssignmentChange.from_rm,
                       AssignmentChange.to_rm, AssignmentChange.reason).order_by(AssignmentChange.id))).all()
        return {r.customer_id: (r.tier, r.primary_rm, r.backup_rm) for r in rows}, [tuple(t) for t in trail]


def by_partition(events: list[Event], partitions: int = 2) -> list[list[Event]]:
    """The stream as the partitions of the single-process bus (Kafka's partitioner) hold it."""
    out: list[list[Event]] = [[] for _ in range(partitions)]
    for e in events:
        out[(murmur2(e.data.customer_id.encode()) & 0x7FFFFFFF) % partitions].append(e)
    return out


async def test_the_same_stream_in_other_batches_and_partition_interleavings_ends_with_the_same_assignments():
    events = stream()
    parts = by_partition(events)
    assert all(parts), "the stream's customers fall in both partitions"
    in_order, state = await run(events, batch_size=2000)
    assert sum(1 for tier, primary, _ in in_order.values() if tier != "mass" and primary) == 12
    # each partition's records in their own order, the partitions one after the other (the last
    # first), fetched a few at a time
    reversed_partitions = [e for part in reversed(parts) for e in part]
    other, other_state = await run(reversed_partitions, batch_size=3)
    assert other == in_order, "the same stream ends with the same assignments"
    assert [t for t in other_state] == [t for t in state], "and the same trail, change by change"
    interleaved = [e for pair in zip(*parts) for e in pair] + [e for part in parts for e in part[min(map(len, parts)):]]
    third, _ = await run(interleaved, batch_size=1)
    assert third == in_order
