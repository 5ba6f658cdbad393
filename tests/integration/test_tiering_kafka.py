"""Tiering end to end on the real Kafka broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import select

from shared.contracts.cloudevents import decode_record
from shared.contracts.events import PostingV1
from services.tiering.models import TieringCustomer, TieringMonthClose, TieringMonthlyAum
from shared.runtime.models import OutboxMessage
from tests.integration.conftest import KAFKA, distributed

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("integration_env")]


def posting(seq: int, balance: str, *, customer="C1", account="A1", amount="1.00", pid=None,
            at="2026-11-10T10:00:00+08:00", tx_type="salary", direction="credit") -> PostingV1:
    return PostingV1(
        posting_id=pid or f"P-{account}-{seq}", customer_id=customer, account_id=account,
        account_seq=seq, product_type="demand_deposit", direction=direction, amount=amount,
        balance_after=balance, currency="CNY", tx_type=tx_type, channel="batch",
        branch_id="BR-1", posted_at=at,
    )


async def read_topic(topic: str, expect: int, timeout: float = 120.0) -> list:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=KAFKA, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    out = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(out) < expect and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                out.extend(records)
        # a short extra wait shows whether anything beyond the expected arrives
        batch = await consumer.getmany(timeout_ms=500)
        for records in batch.values():
            out.extend(records)
    finally:
        await consumer.stop()
    return out


async def test_postings_through_kafka_end_as_tier_in_postgres_and_events_on_strata_tiers():
    async with distributed(["tiering"]) as strata:
        prefix = strata.settings.kafka.topic_prefix
        first = strata.event(posting(1, "30000.00", amount="30000.00"))
        await strata.publish(first, strata.event(posting(2, "250000.00", amount="220000.00",
                                                         at="2026-11-10T11:00:00+08:00")))
        await strata.publish(first)  # the same event again: no effect
        await strata.settle()
        async with strata.runtime.db.sessions() as session:
            customer = await session.get(TieringCustomer, "C1")
        assert (customer.tier, customer.aum) == ("platinum", Decimal("250000.00"))
        records = await read_topic(prefix + "strata.tiers", expect=1)
        events = [decode_record(r.value, r.headers) for r in records]
        assert [(e.data.from_, e.data.to, e.data.change) for e in events] == [("mass", "platinum", "upgrade")]
        assert records[0].key == b"C1"
        tiered = await read_topic(prefix + "strata.tiering.changes", expect=2)
        assert len(tiered) == 2, "each posting is passed on exactly once"


async def test_malformed_event_goes_to_dlq_with_reason_and_the_next_event_is_processed():
    async with distributed(["tiering"]) as strata:
        prefix = strata.settings.kafka.topic_prefix
        await strata.publish_raw("bank.postings", b"{not json", [("ce_type", b"bank.posting.v1")], key=b"C9")
        bad_amount = json.loads(posting(1, "1.00", customer="C9", account="A9").model_dump_json())
        bad_amount["amount"] = 12.5  # a float, not a decimal string
        await strata.publish_raw("bank.postings", json.dumps(bad_amount).encode(), [
            ("ce_specversion", b"1.0"), ("ce_id", b"bad-1"), ("ce_source", b"core"),
            ("ce_type", b"bank.posting.v1"), ("content-type", b"application/json")], key=b"C9")
        await strata.publish(posting(1, "70000.00", customer="C9", account="A9", amount="70000.00"))
        await strata.settle()
        dead = await read_topic(prefix + "bank.postings.dlq", expect=2)
        reasons = [dict(r.headers)["strata_dlq_reason"].decode() for r in dead]
        assert len(dead) == 2
        assert "not JSON" in reasons[0]
        assert "data.amount" in reasons[1]
        async with strata.runtime.db.sessions() as session:
            customer = await session.get(TieringCustomer, "C9")
        assert customer.tier == "gold"


async def test_restart_midstream_counts_every_posting_once():
    async with distributed(["tiering"]) as strata:
        url, prefix = strata.settings.database_url, strata.settings.kafka.topic_prefix
        await strata.publish(*[posting(i, f"{i * 1000}.00", customer="C5", account="A5") for i in range(1, 51)])
        await strata.settle()
    async with distributed(["tiering"], database_url=url, prefix=prefix) as strata:
        await strata.publish(*[posting(i, f"{i * 1000}.00", customer="C5", account="A5") for i in range(1, 101)])
        await strata.settle()
        async with strata.runtime.db.sessions() as session:
            customer = await session.get(TieringCustomer, "C5")
            rows = (await session.execute(select(TieringCustomer))).scalars().all()
        assert customer.aum == Decimal("100000.00") and customer.tier == "gold"
        assert len(rows) == 1


async def test_month_end_closes_on_postgres_watch_then_downgrade_and_are_idempotent():
    async with distributed(["tiering"]) as strata:
        feed = [posting(1, "250000.00", customer="M1", account="MA1", amount="250000.00",
                        at="2026-08-01T09:00:00+08:00"),
                posting(2, "120000.00", customer="M1", account="MA1", amount="130000.00",
                        direction="debit", at="2026-09-01T09:00:00+08:00"),
                posting(1, "80000.00", customer="M2", account="MA2", amount="80000.00",
                        at="2026-08-15T09:00:00+08:00")]
        await strata.publish(*feed)
        await strata.settle()
        async def months() -> list[tuple]:
            async with strata.runtime.db.sessions() as session:
                return (await session.execute(select(TieringMonthlyAum.customer_id, TieringMonthlyAum.month,
                                                     TieringMonthlyAum.average)
                                        .order_by(TieringMonthlyAum.customer_id, TieringMonthlyAum.month))).all()

        stored = await months()
        dry = await strata.post("/v1/admin/month-end-close", {"month": "2026-08", "dry_run": True})
        assert dry.status_code == 200, dry.text
        assert (dry.json()["watch"], [p["customer_id"] for p in dry.json()["preview"]]) == (1, ["M2"])
        assert await months() == stored
        async with strata.runtime.db.sessions() as session:
            assert not (await session.execute(select(TieringMonthClose))).all(), "a dry run closed the month"
            assert not (await session.execute(select(OutboxMessage))).all()
        results = []
        for month in ("2026-08", "2026-09", "2026-09", "2026-10", "2026-11"):
            response = await strata.post("/v1/admin/month-end-close", {"month": month})
            assert response.status_code == 200, response.text
            results.append(response.json())
        assert [r["watch"] for r in results] == [1, 1, 1, 1, 0]  # M2's half month of August, then M1
        assert results[2]["already_closed"] is True
        assert results[4]["downgrades"] == 1
        m1 = (await strata.get("/v1/customers/M1/tier")).json()
        assert (m1["tier"], m1["watch"]) == ("gold", False)
        m2 = (await strata.get("/v1/customers/M2/tier")).json()
        # August: 17 days at 80,000 of 31 -> 43,870.97 < 50,000 -> watch; September at the floor
        assert (m2["tier"], m2["watch"], [h["change"] for h in m2["history"]]) == (
            "gold", False, ["initial_placement", "watch", "watch_cleared"])
        prefix = strata.settings.kafka.topic_prefix
        await strata.settle()
        tiers = await read_topic(prefix + "strata.tiers", expect=7)
        assert len(tiers) == 7  # 2 placements, M2 watch + cleared, M1 watch, watch, downgrade


async def test_services_in_separate_processes_share_one_database_and_migrate_in_turn():
    from tests.integration.conftest import create_database

    url = await create_database()
    async with distributed(["tiering"], database_url=url):
        pass
    async with distributed(["pricing"], database_url=url):
        pass  # its process must accept a database whose alembic_version names tiering's head
    async with distributed(["tiering", "pricing"], database_url=url) as strata:
        assert (await strata.client.get("/readyz")).status_code == 200
