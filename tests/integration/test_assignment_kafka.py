"""Assignment end to end on the real Kafka broker and PostgreSQL: tiering's stream for many
customers, a restart in the middle, and every customer above mass assigned once, at the right
level, within capacity and as evenly as worked out by hand; the same stream assigns as the
single-process mode does."""

from __future__ import annotations

import asyncio
import math
import os
import random
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import func, select

from shared.contracts.cloudevents import decode_record
from shared.contracts.events import TieringChangeV1
from shared.runtime.models import ProcessedEvent
from services.assignment.models import AssignmentChange, AssignmentCustomer
from tests.integration.conftest import KAFKA, distributed
from tests.unit.assignment import test_assignment_order as order
from tests.unit.assignment.stream import customer_record, tier_record

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("integration_env")]

CUSTOMERS = int(os.environ.get("STRATA_TEST_ASSIGNMENT_CUSTOMERS", "10000"))
BRANCHES = int(os.environ.get("STRATA_TEST_ASSIGNMENT_BRANCHES", "4"))
CENTRE = "PB-CENTRE"
SETTINGS = {"assignment": {"centres": {"private": CENTRE}, "default_capacity": 400}}
T0 = datetime(2026, 11, 10, 10, 0, tzinfo=timezone(timedelta(hours=8)))
LEVEL = {"gold": "L1", "platinum": "L2", "diamond": "L3", "private": "L4"}
WEIGHT = {"gold": 1, "platinum": 2, "diamond": 4, "private": 8}
BACKUP_LEVELS = {"gold": {"L1", "L2"}, "platinum": {"L1", "L2", "L3"}, "diamond": {"L2", "L3", "L4"},
                 "private": {"L3", "L4"}}


def tier_event(customer_id: str, to: str, change: str = "upgrade", minutes: int = 0) -> TieringChangeV1:
    return tier_record(customer_id, to, change, T0 + timedelta(minutes=minutes))


class Book:
    """The bank worked out by hand: who is where, and which pool (branch, level) serves them."""

    def __init__(self, n: int, seed: int = 5) -> None:
        rng = random.Random(seed)
        self.branch = {}
        self.records: dict[str, TieringChangeV1] = {}
        self.final = {}
        self.first_half: list[TieringChangeV1] = []
        self.second_half: list[TieringChangeV1] = []
        self.branch_late = set()
        for i in range(n):
            c = f"C{i:06d}"
            self.branch[c] = f"BR-{i % BRANCHES + 1:02d}"
            late = i % 10 == 3  # its tier events come before its home branch
            if not late:  # the customer record as tiering passes it on before the tier decisions: in mass
                self.records[c] = customer_record(c, self.branch[c], T0, name="客户")
            roll = rng.random()
            tier = ("private" if roll < 0.05 else "diamond" if roll < 0.15 else "platinum" if roll < 0.40
                    else "gold" if roll < 0.95 else "returns_to_mass")
            events = self.first_half if i < n // 2 else self.second_half
            if tier == "returns_to_mass":  # only in the first half: later upgrades fill the holes
                events = self.first_half
                events += [tier_event(c, "gold"), tier_event(c, "mass", "downgrade", 1)]
                self.final[c] = "mass"
            else:
                events.append(tier_event(c, tier))
                self.final[c] = tier
            if late:  # the record tiering passes on after the tier decisions carries the tier they left
                self.records[c] = customer_record(c, self.branch[c], T0, name="客户")
                self.branch_late.add(c)

    def pool(self, c: str) -> tuple[str, str]:
        tier = self.final[c]
        return (CENTRE if tier == "private" else self.branch[c], LEVEL[tier])

    def rms(self) -> dict[tuple[str, str], list[str]]:
        """Enough RMs per pool to carry it at about 75 % of capacity (at least two, for A/B)."""
        weight = Counter()
        for c, tier in self.final.items():
            if tier != "mass":
                weight[self.pool(c)] += WEIGHT[tier]
        return {pool: [f"RM-{pool[0]}-{pool[1]}-{k}" for k in range(max(2, math.ceil(w / 300)))]
                for pool, w in sorted(weight.items())}

    def customers(self, late: bool) -> list[TieringChangeV1]:
        return [r for c, r in self.records.items() if (c in self.branch_late) == late]


async def register(strata, rms: dict[tuple[str, str], list[str]]) -> None:
    for (branch, level), ids in rms.items():
        for rm_id in ids:
            response = await strata.client.put(
                f"/v1/rms/{rm_id}", headers=strata.token("admin"),
                json={"name": rm_id, "branch_id": branch, "level": level, "active": True})
            assert response.status_code == 200, response.text


async def processed(strata) -> int:
    async with strata.runtime.db.sessions() as session:
        return await session.scalar(select(func.count()).select_from(ProcessedEvent)) or 0


async def read_all(topic: str, timeout: float = 30.0) -> list:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=KAFKA, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    out = []
    try:
        partitions = consumer.assignment()
        while not partitions:
            await asyncio.sleep(0.05)
            partitions = consumer.assignment()
        ends = await consumer.end_offsets(list(partitions))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            for records in batch.values():
                out.extend(records)
            positions = [await consumer.position(tp) for tp in ends]
            if all(p >= end for p, end in zip(positions, ends.values())):
                break
    finally:
        await consumer.stop()
    return out


async def test_the_stream_of_many_customers_ends_assigned_once_balanced_and_the_same_after_a_restart():
    book = Book(CUSTOMERS)
    rms = book.rms()
    level_of = {rm: level for (_, level), ids in rms.items() for rm in ids}
    branch_of = {rm: branch for (branch, _), ids in rms.items() for rm in ids}
    first_total = len(book.first_half) + CUSTOMERS
    async with distributed(["assignment"], **SETTINGS) as strata:
        url, prefix = strata.settings.database_url, strata.settings.kafka.topic_prefix
        await register(strata, rms)
        await strata.publish(*book.customers(late=False))
        await strata.publish(*book.first_half)
        await strata.publish(*book.customers(late=True))
        deadline = time.monotonic() + 60
        while await processed(strata) < first_total // 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stopped_at = await processed(strata)
    assert 0 < stopped_at < first_total, "the restart falls in the middle of the stream"

    async with distributed(["assignment"], database_url=url, prefix=prefix, **SETTINGS) as strata:
        await strata.settle(timeout=120)
        await strata.publish(*book.second_half)
        await strata.settle(timeout=120)
        async with strata.runtime.db.sessions() as session:
            rows = {r.customer_id: r for r in (await session.execute(select(AssignmentCustomer))).scalars()}
            changes = (await session.execute(
                select(AssignmentChange.customer_id, AssignmentChange.role, AssignmentChange.from_rm,
                       AssignmentChange.to_rm))).all()
        published = await read_all(prefix + "strata.assignments")

    assert len(rows) == CUSTOMERS
    loads: dict[str, int] = defaultdict(int)
    for c, tier in book.final.items():
        row = rows[c]
        assert row.tier == tier
        if tier == "mass":
            assert (row.primary_rm, row.backup_rm, row.standing) == (None, None, "pool")
            continue
        assert row.primary_rm is not None, f"{c} ({tier}) has no primary RM"
        assert level_of[row.primary_rm] == LEVEL[tier] and branch_of[row.primary_rm] == book.pool(c)[0]
        assert row.backup_rm != row.primary_rm and level_of[row.backup_rm] in BACKUP_LEVELS[tier]
        assert branch_of[row.backup_rm] == book.pool(c)[0]
        loads[row.primary_rm] += WEIGHT[tier]

    # assigned once: one primary assignment per customer above mass, none doubled by the restart;
    # one who went back to mass was assigned and released, or never assigned if their home branch
    # came after both tier events
    primary_changes = Counter(c for c, role, _, _ in changes if role == "primary")
    for c, tier in book.final.items():
        assert primary_changes[c] in ((0, 2) if tier == "mass" else (1,)), (c, primary_changes[c])

    # within capacity, and balanced exactly as worked out by hand: n customers over k RMs
    for pool, ids in rms.items():
        counts = sorted(loads[rm] // WEIGHT[next(t for t, lv in LEVEL.items() if lv == pool[1])] for rm in ids)
        assert all(loads[rm] <= 400 for rm in ids)
        n, k = sum(counts), len(ids)
        assert counts == sorted([n // k + (1 if i < n % k else 0) for i in range(k)]), (pool, counts)

    # the bus carries every change exactly once (by event id), keyed by customer
    events = {}
    for record in published:
        event = decode_record(record.value, record.headers)
        assert record.key == event.data.customer_id.encode()
        events[event.id] = event
    assert len(events) == len(changes)
    last = {}
    for record in published:  # one customer's events share a partition, in the order emitted
        event = decode_record(record.value, record.headers)
        last[(event.data.customer_id, event.data.role)] = event.data.to
    assert all(last.get((c, "primary")) == rows[c].primary_rm for c in book.final if book.final[c] != "mass")


async def test_concurrent_claims_on_postgres_never_fill_more_than_the_room_and_handover_moves_the_book():
    async with distributed(["assignment"]) as strata:
        await register(strata, {("BR-01", "L1"): ["RM-A"]})
        customers = [f"K{i:03d}" for i in range(20)]
        await strata.publish(*[customer_record(c, "BR-01", T0, name="客户") for c in customers])
        await strata.settle()
        await strata.publish(*[tier_event(c, "gold") for c in customers])
        await strata.settle()
        response = await strata.client.put("/v1/rms/RM-B", headers=strata.token("admin"), json={
            "name": "B", "branch_id": "BR-01", "level": "L1", "capacity": 5})
        assert response.status_code == 200

        async def claim(c):
            answer = await strata.post("/v1/assignments/claims", {"rm_id": "RM-B", "customer_id": c},
                                       role="rm", rm_id="RM-B")
            return answer.json()["code"]

        codes = Counter(await asyncio.gather(*[claim(c) for c in customers]))
        assert codes == {"accepted": 5, "over_capacity": 15}
        moved = await strata.post("/v1/rms/RM-A/handover", {"reason": "retires", "to": ["RM-B"]})
        assert moved.status_code == 409, "RM-B has no room for 15 more"
        await strata.client.put("/v1/rms/RM-B", headers=strata.token("admin"), json={
            "name": "B", "branch_id": "BR-01", "level": "L1", "capacity": 20})
        moved = await strata.post("/v1/rms/RM-A/handover", {"reason": "retires", "deactivate": True})
        assert moved.json() == {"moved": 15, "backups_replaced": 5, "deactivated": True, "dry_run": False,
                            "preview": []}
        async with strata.runtime.db.sessions() as session:
            primaries = Counter((await session.execute(select(AssignmentCustomer.primary_rm))).scalars())
        assert primaries == {"RM-B": 20}


async def test_the_same_stream_assigns_on_kafka_and_postgres_as_in_the_single_process_mode():
    """Balanced distribution between equal RMs depends on the order customers are placed in: on
    three Kafka partitions, read as they come, the stream ends as on the single-process bus's two."""
    events = order.stream()
    single, single_trail = await order.run(events, batch_size=2000)
    async with distributed(["assignment"]) as strata:
        for rm_id, level in order.RMS:
            response = await strata.client.put(f"/v1/rms/{rm_id}", headers=strata.token("admin"), json={
                "name": rm_id, "branch_id": order.BRANCH, "level": level})
            assert response.status_code == 200, response.text
        await strata.publish(*events)
        await strata.settle(timeout=120)
        async with strata.runtime.db.sessions() as session:
            rows = (await session.execute(select(AssignmentCustomer))).scalars().all()
            trail = (await session.execute(
                select(AssignmentChange.customer_id, AssignmentChange.role, AssignmentChange.from_rm,
                       AssignmentChange.to_rm, AssignmentChange.reason).order_by(AssignmentChange.id))).all()
    assert {r.customer_id: (r.tier, r.primary_rm, r.backup_rm) for r in rows} == single
    assert [tuple(t) for t in trail] == single_trail
