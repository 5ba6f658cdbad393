"""Bad input on the real bus: all five services on Kafka and PostgreSQL, every kind of bad event
on every inbound topic (``tests/unit/security/bad_events.py``).

Each bad event lands on ``<topic>.dlq`` once per service that reads the topic (or once per
service that refuses it), with ``strata_dlq_reason`` naming the problem, is counted in
``strata_events_dead_lettered_total``, and the good event published right after it for the same
customer (same key, so same partition, after it) is applied. Over ``POST /v1/events`` the same
bad events are refused with problem+json naming the field, and nothing is published.

**Unknown customers and accounts.** Core banking's topics are ordered per customer within a
topic, never across topics: a posting may arrive before the ``bank.accounts`` record of its
account, or before the customer's ``bank.customers`` record. So for Strata:

- a posting or balance for an account (or a customer) not seen yet is *applied*: tiering
  creates the account with the owner and product type the event names, and the master data
  fills in when it arrives;
- the first event that names an account fixes its owner and product type; a later posting,
  balance or registration that contradicts them (another customer, another product type) is
  *rejected* to the DLQ: core banking never moves an account to another customer or changes
  its product, so a contradiction is a producer bug, and applying it would move one customer's
  money into another's AUM. Tiering refuses it (and so never passes it on to pricing and
  alerts, which read postings from ``strata.postings.tiered``);
- these state-dependent refusals happen at the consumers: ``POST /v1/events`` checks the
  contract only, as it cannot know what the consumers know.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.contracts import topics
from shared.contracts.cloudevents import BATCH, STRUCTURED, to_structured
from shared.contracts.topics import dead_letter_topic
from tests.integration.conftest import KAFKA, distributed
from tests.unit.security.bad_events import (
    INBOUND,
    catalogue,
    counters,
    dead_letter_services,
    good_after,
    judge,
    publish_bad_then_good,
    readers,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("integration_env")]

SERVICES = ["profile", "tiering", "alerts", "pricing", "assignment"]


async def read_all(topic: str, expect: int, timeout: float = 180.0) -> list:
    """The records of ``topic`` from the beginning: until ``expect`` have arrived (the harness
    has settled, so every dead letter is published), then one more fetch for any extra.
    ``timeout`` is generous: it only bounds a wait for records already written."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=KAFKA, auto_offset_reset="earliest",
                                enable_auto_commit=False, max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    out: list = []
    try:
        deadline = time.monotonic() + timeout
        while len(out) < expect and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out.extend(records)
        for records in (await consumer.getmany(timeout_ms=1000)).values():
            out.extend(records)
    finally:
        await consumer.stop()
    return out


async def end_offsets(names: list[str], partitions: int) -> dict:
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, enable_auto_commit=False)
    await consumer.start()
    try:
        return await consumer.end_offsets([TopicPartition(t, p) for t in names for p in range(partitions)])
    finally:
        await consumer.stop()


async def test_every_bad_event_on_kafka_is_dead_lettered_with_its_reason_and_the_stream_goes_on():
    bad_events = catalogue()
    async with distributed(SERVICES) as strata:
        prefix = strata.settings.kafka.topic_prefix
        before = counters(strata, bad_events)
        started = time.monotonic()
        await publish_bad_then_good(strata, bad_events)
        who_reads = readers(strata)
        expected = {t: sum(len(dead_letter_services(b, who_reads)) for b in bad_events if b.topic == t)
                    for t in INBOUND}
        letters = {t: await read_all(prefix + dead_letter_topic(t), expected[t]) for t in INBOUND}
        print(f"\n{len(bad_events)} bad and {len(bad_events)} good events through five services on Kafka "
              f"in {time.monotonic() - started:.1f} s")
        wrong = await judge(strata, bad_events, letters, before)
        assert not wrong, "\n".join(wrong)


async def test_bad_events_posted_over_http_are_refused_and_nothing_reaches_kafka():
    bad_events = [b for b in catalogue() if b.over_http]
    async with distributed(["tiering"]) as strata:
        prefix = strata.settings.kafka.topic_prefix
        inbound = [prefix + t for t in INBOUND]
        partitions = strata.settings.kafka.partitions
        ends = await end_offsets(inbound, partitions)
        await strata.publish(good_after(topics.POSTINGS, "SEC-HTTP-PROBE"))
        assert sum((await end_offsets(inbound, partitions)).values()) == sum(ends.values()) + 1, \
            "end offsets show a published event"
        ends = await end_offsets(inbound, partitions)
        headers = strata.token("admin")
        good = to_structured(strata.event(good_after(topics.POSTINGS, "SEC-HTTP-GOOD")))
        wrong = []
        for bad in bad_events:
            response = await strata.client.post("/v1/events", content=bad.http_body(),
                                                headers={**headers, "content-type": STRUCTURED})
            problem = response.json()
            text = f"{problem.get('title')} {problem.get('detail', '')}"
            if response.status_code != bad.http_status or (bad.http_says or bad.says) not in text:
                wrong.append(f"{bad.id}: {response.status_code} {text[:160]}")
            if bad.structured() is None:
                continue
            response = await strata.client.post("/v1/events", content=json.dumps([good, bad.structured()]),
                                                headers={**headers, "content-type": BATCH})
            errors = response.json().get("errors", [{"index": 1, "reason": bad.says}])  # a 400 has none
            if response.status_code != bad.http_status or [e["index"] for e in errors] != [1] \
                    or bad.says not in errors[0]["reason"]:
                wrong.append(f"{bad.id} in a batch: {response.status_code} {errors}")
        await asyncio.sleep(0.5)
        assert await end_offsets(inbound, partitions) == ends, "a refused request published nothing"
        assert not wrong, "\n".join(wrong)
