"""Every consumer group reset to the earliest offset and the whole stream read again: the
services recognise every event id they processed, and nothing changes, on the bus or in the
database.

This replays the reference run itself (its database and topics), after it was observed.
"""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.bus.kafka import KafkaBus
from tests.faults.conftest import assert_same, observe
from tests.faults.stack import consumer_groups

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.usefixtures("integration_env")]


async def reset_to_earliest(kafka: str, prefix: str) -> None:
    """What ``kafka-consumer-groups --reset-offsets --to-earliest`` does, for every service's
    group (all stopped: an empty group accepts commits from outside it)."""
    for group, topics in consumer_groups(prefix).items():
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=group, enable_auto_commit=False,
                                    client_id="fault-reset")
        await consumer.start()
        try:
            cluster = await consumer._client.fetch_all_metadata()  # topics it does not subscribe to
            partitions = [TopicPartition(prefix + t, p) for t in topics
                          for p in sorted(cluster.partitions_for_topic(prefix + t) or ())]
            consumer.assign(partitions)
            earliest = await consumer.beginning_offsets(partitions)
            await consumer.commit({tp: earliest[tp] for tp in partitions})
        finally:
            await consumer.stop()


async def pending(kafka: str, prefix: str) -> dict[str, int]:
    bus = KafkaBus(kafka, topic_prefix=prefix, client_id="fault-replay")
    await bus.start()
    try:
        return {g.rsplit(".", 1)[-1]: await bus.pending(g, t) for g, t in consumer_groups(prefix).items()}
    finally:
        await bus.stop()


async def test_groups_reset_to_earliest_replay_the_stream_without_changing_anything(reference, feed):
    stack = reference.stack
    await reset_to_earliest(stack.kafka, stack.prefix)
    before = await pending(stack.kafka, stack.prefix)
    assert all(before.values()) and before["tiering"] >= feed.events, \
        f"every group has its topics to read again from the start: {before}"
    try:
        await stack.start()
        await stack.settle(max(240.0, sum(before.values()) / 100))  # the whole history again
        outcome = await observe(stack)
    finally:
        await stack.close()
    assert_same(reference.outcome, outcome, stack, feed)
