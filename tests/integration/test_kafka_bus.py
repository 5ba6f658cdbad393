"""The Kafka adapter's publish against the real broker: record batches per partition must keep
each key's messages in order and land them where every Kafka client's default partitioner puts
that key, since core banking's producers and Strata's must agree on a customer's partition."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.bus.base import Message
from shared.bus.kafka import KafkaBus
from tests.integration.conftest import KAFKA

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("integration_env")]


async def test_publish_keeps_each_keys_order_and_the_default_partitioners_choice():
    prefix = f"t{uuid.uuid4().hex[:8]}."
    bus = KafkaBus(KAFKA, topic_prefix=prefix)
    await bus.start()
    try:
        await bus.ensure_topics(["alpha", "beta"], partitions=4)
        # interleaved keys and topics, more than one record batch's worth for one partition
        messages = [Message("alpha" if i % 3 else "beta", f"C{i % 7}".encode(),
                            f"{i:06d}".encode() + b"x" * 2000, [("seq", str(i).encode())])
                    for i in range(400)]
        messages.append(Message("alpha", None, b"keyless", []))
        await bus.publish(messages)
    finally:
        await bus.stop()

    consumer = AIOKafkaConsumer(prefix + "alpha", prefix + "beta", bootstrap_servers=KAFKA,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    got = []
    try:
        while len(got) < len(messages):
            batches = await consumer.getmany(timeout_ms=5000)
            assert batches, f"only {len(got)} of {len(messages)} messages arrived"
            for records in batches.values():
                got.extend(records)
    finally:
        await consumer.stop()

    # where aiokafka's own send() puts each key (the murmur2 partitioner of every Kafka client)
    reference = AIOKafkaProducer(bootstrap_servers=KAFKA)
    await reference.start()
    try:
        expected = {}
        for topic, key in {(r.topic, r.key) for r in got if r.key is not None}:
            expected[(topic, key)] = (await reference.send_and_wait(topic, b"probe", key=key)).partition
    finally:
        await reference.stop()
    for r in got:
        if r.key is not None:
            assert r.partition == expected[(r.topic, r.key)], (r.topic, r.key)

    by_key: dict[tuple[str, bytes], list[int]] = {}
    for r in sorted(got, key=lambda r: (r.topic, r.partition, r.offset)):
        if r.key is not None:
            by_key.setdefault((r.topic, r.key), []).append(int(dict(r.headers)["seq"]))
    sent: dict[tuple[str, bytes], list[int]] = {}
    for i, m in enumerate(messages[:-1]):
        sent.setdefault((prefix + m.topic, m.key), []).append(i)
    assert by_key == sent
    assert [r.value for r in got if r.key is None] == [b"keyless"]
