"""Tiering as its own process, killed between the steps of its commit order, ends in exactly
the state of an undisturbed run."""

from __future__ import annotations

import os
import random
from decimal import Decimal

import pytest
from sqlalchemy import select

from shared.bus.kafka import KafkaBus
from shared.contracts.cloudevents import encode_binary, new_event
from shared.contracts.events import PostingV1
from shared.bus.base import Message
from shared.db import Database
from shared.runtime.models import OutboxMessage
from services.tiering.models import TieringCustomer
from tests.integration.conftest import KAFKA, create_database
from strata.processes import ServiceProcess

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("integration_env")]

POSTINGS = int(os.environ.get("STRATA_FAULT_POSTINGS", "3000"))
CUSTOMERS = 300


def feed(seed: int = 5) -> tuple[list, dict[str, Decimal]]:
    """Postings over CUSTOMERS customers, each sent twice under two event ids now and then,
    and the AUM each customer must end with."""
    rng = random.Random(seed)
    balances: dict[str, Decimal] = {}
    seqs: dict[str, int] = {}
    events = []
    for n in range(POSTINGS):
        c = f"FC{rng.randrange(CUSTOMERS):04d}"
        seqs[c] = seqs.get(c, 0) + 1
        balances[c] = Decimal(rng.randrange(0, 30_000_000)) / 100
        p = PostingV1(posting_id=f"FP{n}", customer_id=c, account_id=f"{c}-A", account_seq=seqs[c],
                      product_type="demand_deposit", direction="credit", amount="1.00",
                      balance_after=balances[c], currency="CNY", tx_type="transfer_in",
                      channel="mobile", branch_id="B", posted_at="2026-11-10T10:00:00+08:00")
        event = new_event(p, "core")
        events.append(event)
        if rng.random() < 0.05:
            events.append(event)  # redelivered by the source
    return events, balances


async def publish(bus: KafkaBus, events) -> None:
    for start in range(0, len(events), 500):
        await bus.publish([Message(e.topic, *encode_binary(e)) for e in events[start:start + 500]])


async def settled(bus: KafkaBus, db: Database, group: str) -> bool:
    from sqlalchemy import func

    if await bus.pending(group, ["bank.postings", "bank.balances", "bank.accounts", "bank.customers",
                                 "strata.assignments"]):
        return False
    async with db.sessions() as session:
        return not await session.scalar(select(func.count()).select_from(OutboxMessage))


@pytest.mark.parametrize("fault", ["after_db_commit=3", "after_offset_commit=2", "after_outbox_publish=2"])
async def test_sigkill_between_commit_steps_loses_nothing_and_counts_nothing_twice(fault):
    import asyncio

    url = await create_database()
    prefix = f"f{random.randrange(10**8)}."
    env = {"STRATA_BUS": "kafka", "STRATA_DATABASE_URL": url, "STRATA_KAFKA__BOOTSTRAP_SERVERS": KAFKA,
           "STRATA_KAFKA__TOPIC_PREFIX": prefix, "STRATA_KAFKA__GROUP_PREFIX": prefix + "strata",
           "STRATA_KAFKA__PARTITIONS": "3", "STRATA_RUNTIME__BATCH_SIZE": "100"}
    events, expected = feed()
    bus = KafkaBus(KAFKA, topic_prefix=prefix)
    await bus.start()
    db = Database(url)
    service = ServiceProcess("tiering", env).start(faults=fault)
    try:
        await service.wait_ready()
        await publish(bus, events)
        assert await service.wait_exit() == -9, "the fault point was reached and the process killed"
        service.start()
        await service.wait_ready()
        for _ in range(600):
            if await settled(bus, db, prefix + "strata.tiering"):
                break
            await asyncio.sleep(0.1)
        async with db.sessions() as session:
            rows = (await session.execute(select(TieringCustomer))).scalars().all()
        assert {r.customer_id: r.aum for r in rows} == expected
        tiered = await count_topic(prefix + "strata.tiering.changes")
        assert len(set(tiered)) == POSTINGS, "every posting passed on to pricing"
    finally:
        service.terminate()
        await bus.stop()
        await db.dispose()


async def count_topic(topic: str) -> list[str]:
    """The ce_ids on a topic (duplicates included: consumers drop them by id)."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=KAFKA, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    ids = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            if not batch:
                break
            for records in batch.values():
                ids += [dict(r.headers)["ce_id"].decode() for r in records]
    finally:
        await consumer.stop()
    return ids
