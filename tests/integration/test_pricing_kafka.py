"""Pricing end to end on the real Kafka broker and PostgreSQL, behind tiering as in production."""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from decimal import Decimal as D

import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from shared.contracts.cloudevents import Event, decode_record
from shared.contracts.events import BalanceV1, PostingV1
from services.pricing.models import PricingCustomer, PricingFee
from tests.integration.conftest import KAFKA, distributed
from tests.unit.pricing.pricing_feed import Feed, customer

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("integration_env")]

CUSTOMERS = int(os.environ.get("STRATA_PRICING_IT_CUSTOMERS", "20"))


class Crash(Exception):
    """Stands for the process dying after its database commit and before its offset commit."""


async def read_topic(topic: str, expect: int, timeout: float = 120.0) -> list:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=KAFKA, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    out = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(out) < expect and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                out.extend(records)
        for records in (await consumer.getmany(timeout_ms=1000)).values():
            out.extend(records)  # anything beyond the expected shows up here
    finally:
        await consumer.stop()
    return out


def november(c: Feed) -> list[PostingV1]:
    """As mass: 5 interbank withdrawals (4.00 each), the SMS fee (2.00), card spending (50
    points) and a tx_type the contract does not know (zero)."""
    day = "2026-11-{:02d}T10:00:00+08:00".format
    return [c.salary("30000.00", day(2)), *[c.interbank_atm(day(3 + i)) for i in range(5)],
            c.sms(day(20)), c.card_spend("1000.00", day(21)),
            c.post("crypto_swap", "10.00", at=day(22), direction="credit", channel="mobile")]


def december(c: Feed) -> list[PostingV1]:
    """The salary lifts AUM past gold's floor: 3 of 5 withdrawals free, 2 at 4.00; SMS half
    price (1.00); a fund purchase in two legs (100 points, once)."""
    day = "2026-12-{:02d}T10:00:00+08:00".format
    return [c.salary("30000.00", "2026-12-01T09:00:00+08:00"),
            *[c.interbank_atm(day(2 + i)) for i in range(5)], c.sms(day(20)),
            *c.fund_purchase("10000.00", day(21))]


def expected(index: int) -> dict:
    """Worked out by hand from docs/RULES.md. Customers with an odd index opted in to automatic
    offset: November's 50 points pay 0.50 of December's first charged withdrawal."""
    if index % 2:
        return {"net": D("30.50"), "points_used": 50, "points_balance": 100}
    return {"net": D("31.00"), "points_used": 0, "points_balance": 150}


def duplicates_seen_by_pricing() -> float:
    return REGISTRY.get_sample_value("strata_events_duplicate_total",
                                     {"service": "pricing", "topic": "strata.tiering.changes"}) or 0.0


def with_duplicates(strata, postings: list[PostingV1], earlier: list[Event]) -> list[Event]:
    """Every posting as an event; every 5th sent again under a new ce_id (the same posting from
    core banking twice), and every 7th earlier event again with its own ce_id (a redelivery)."""
    events = [strata.event(p) for p in postings]
    events += [strata.event(p) for p in postings[::5]]
    events += earlier[::7]
    return events


async def test_stream_with_duplicates_and_a_restart_ends_with_one_fee_event_per_posting_and_exact_totals():
    feeds = [Feed(f"KP{i:04d}") for i in range(CUSTOMERS)]
    async with distributed(["tiering", "pricing"]) as strata:
        url, prefix = strata.settings.database_url, strata.settings.kafka.topic_prefix
        await strata.publish(*[customer(f.customer_id, auto_points_offset=bool(i % 2))
                               for i, f in enumerate(feeds)])
        await strata.settle()
        loop = strata.runtime.loops["pricing"]
        task = next(t for t in strata.runtime._tasks if t.get_name() == "pricing-consumer")

        async def crash(records, backoff):
            raise Crash()

        loop._commit_offsets = crash
        first = [strata.event(p) for f in feeds for p in november(f)]
        await strata.publish(*with_duplicates(strata, [e.data for e in first], first))
        for _ in range(1200):  # generous: only waits for the crash
            if task.done():
                break
            await asyncio.sleep(0.1)
        assert task.done() and isinstance(task.exception(), Crash)
        async with strata.runtime.db.sessions() as session:
            priced_before_crash = await session.scalar(select(func.count()).select_from(PricingFee))
        assert priced_before_crash > 0, "the crashed batch had committed to the database"
    postings = [*(e.data for e in first)]
    skipped = duplicates_seen_by_pricing()
    async with distributed(["tiering", "pricing"], database_url=url, prefix=prefix) as strata:
        second = [p for f in feeds for p in december(f)]
        postings += second
        await strata.publish(*with_duplicates(strata, second, first))
        await strata.settle(timeout=60)
        assert duplicates_seen_by_pricing() - skipped >= priced_before_crash, \
            "the batch whose offsets were never committed came again and was skipped"
        records = await read_topic(prefix + "strata.fees", expect=len(postings))
        # A record may be published twice under its one ce_id (the relay stopped between a
        # publish and its delete): the contract makes that one event, so count by ce_id.
        events = list({e.id: e for e in (decode_record(r.value, r.headers) for r in records)}.values())
        ids_by_posting: dict[str, set[str]] = defaultdict(set)
        for e in events:
            ids_by_posting[e.data.posting_id].add(e.id)
        assert set(ids_by_posting) == {p.posting_id for p in postings}
        assert all(len(ids) == 1 for ids in ids_by_posting.values()), "one fee event per posting"
        assert len(events) == len(postings)
        totals: dict[str, dict] = defaultdict(lambda: {"net": D("0.00"), "points_used": 0})
        balance: dict[str, int] = {}
        for e in sorted(events, key=lambda e: e.data.posted_at):
            totals[e.data.customer_id]["net"] += e.data.net
            totals[e.data.customer_id]["points_used"] += e.data.points_used
            balance[e.data.customer_id] = e.data.points_balance
        for i, f in enumerate(feeds):
            want = expected(i)
            assert totals[f.customer_id] == {"net": want["net"], "points_used": want["points_used"]}, f.customer_id
            assert balance[f.customer_id] == want["points_balance"], f.customer_id
        async with strata.runtime.db.sessions() as session:
            stored = (await session.execute(
                select(PricingFee.customer_id, func.count(), func.sum(PricingFee.net), func.sum(PricingFee.base))
                .group_by(PricingFee.customer_id))).all()
            customers = {c.customer_id: c for c in (await session.execute(select(PricingCustomer))).scalars()}
        assert len(stored) == CUSTOMERS
        for customer_id, count, net, base in stored:
            i = int(customer_id[2:])
            assert (count, net, base) == (len(november(Feed("x"))) + len(december(Feed("x"))),
                                          expected(i)["net"], D("44.00"))
            assert customers[customer_id].points_balance == expected(i)["points_balance"]
        view = (await strata.get(f"/v1/customers/{feeds[0].customer_id}/fees")).json()
        assert view["points_balance"] == 150
        withdrawals = [f for f in view["items"] if f["fee_id"] == "atm_interbank" and f["tier"] == "gold"]
        assert sorted(f["net"] for f in withdrawals) == ["0.00", "0.00", "0.00", "4.00", "4.00"]


async def test_pricing_started_long_after_tiering_prices_each_posting_with_its_own_tier():
    c = Feed("KLAG")
    at = "2026-11-12T{:02d}:00:00+08:00".format
    postings = [c.salary("10000.00", at(8)), c.interbank_atm(at(9)),
                c.salary("1000000.00", at(10)),                    # -> diamond
                c.interbank_atm(at(11))]
    async with distributed(["tiering"]) as strata:
        url, prefix = strata.settings.database_url, strata.settings.kafka.topic_prefix
        await strata.publish(*postings)
        await strata.settle()
    async with distributed(["tiering", "pricing"], database_url=url, prefix=prefix) as strata:
        await strata.settle()
        fees = {f["posting_id"]: f for f in (await strata.get("/v1/customers/KLAG/fees")).json()["items"]}
        assert (fees[postings[1].posting_id]["tier"], fees[postings[1].posting_id]["net"]) == ("mass", "4.00")
        assert (fees[postings[3].posting_id]["tier"], fees[postings[3].posting_id]["net"]) == ("diamond", "0.00")
        quote = await strata.post("/v1/pricing/quote", {
            "customer_id": "KLAG", "tx_type": "atm_withdrawal", "amount": "100.00", "channel": "atm",
            "counterparty_bank": "OTHER", "cross_region": False})
        assert (quote.json()["tier"], quote.json()["net"]) == ("diamond", "0.00")


async def test_a_late_upgrade_corrects_an_assessed_fee_once_on_kafka_and_postgres():
    c = Feed("KADJ")
    salary, spend = c.salary("10000.00", "2026-11-10T08:00:00+08:00"), c.card_spend("3000.00", "2026-11-10T08:10:00+08:00")
    atm = c.interbank_atm("2026-11-10T11:00:00+08:00")
    late = BalanceV1(customer_id="KADJ", account_id="KADJ-FUND", product_type="fund", balance="60000.00",
                     currency="CNY", as_of="2026-11-10T09:00:00+08:00")
    async with distributed(["tiering", "pricing"]) as strata:
        prefix = strata.settings.kafka.topic_prefix
        await strata.publish(customer("KADJ", auto_points_offset=True))
        await strata.settle()
        await strata.publish(salary, spend, atm)
        await strata.settle()
        await strata.publish(late)
        await strata.settle()
        await strata.publish(late)
        await strata.settle()
        view = (await strata.get("/v1/customers/KADJ/fees")).json()
        [adjustment] = view["adjustments"]
        assert (adjustment["posting_id"], adjustment["tier_after"], adjustment["difference"],
                adjustment["points_returned"]) == (atm.posting_id, "gold", "-2.50", 150)
        assert view["points_balance"] == 150
        records = await read_topic(prefix + "strata.fee_adjustments", expect=1, timeout=30)
        assert [decode_record(r.value, r.headers).data.posting_id for r in records] == [atm.posting_id]
