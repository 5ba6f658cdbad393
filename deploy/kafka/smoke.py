#!/usr/bin/env python3
"""End-to-end smoke check of the local broker with aiokafka.

Creates a unique topic (3 partitions), produces keyed messages with acks=all
and idempotence, consumes them back through a consumer group (exercises the
group coordinator / __consumer_offsets), commits, and deletes the topic.
Run: python3 deploy/kafka/smoke.py [--bootstrap 127.0.0.1:9092]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("-n", type=int, default=100)
    args = ap.parse_args()
    topic = f"strata-smoke-{uuid.uuid4().hex[:8]}"
    t0 = time.monotonic()

    admin = AIOKafkaAdminClient(bootstrap_servers=args.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
        producer = AIOKafkaProducer(bootstrap_servers=args.bootstrap, acks="all",
                                    enable_idempotence=True)
        await producer.start()
        try:
            for i in range(args.n):
                await producer.send(topic, key=f"C{i % 7}".encode(), value=f"v{i}".encode())
            await producer.flush()
        finally:
            await producer.stop()

        consumer = AIOKafkaConsumer(topic, bootstrap_servers=args.bootstrap,
                                    group_id=f"{topic}-g", auto_offset_reset="earliest",
                                    enable_auto_commit=False)
        await consumer.start()
        seen: set[bytes] = set()
        try:
            deadline = time.monotonic() + 30
            while len(seen) < args.n and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    seen.update(r.value for r in records)
            await consumer.commit()
        finally:
            await consumer.stop()
        await admin.delete_topics([topic])
    finally:
        await admin.close()

    ok = len(seen) == args.n
    print(f"smoke {'OK' if ok else 'FAILED'}: produced {args.n}, consumed {len(seen)} "
          f"on {topic} in {time.monotonic() - t0:.1f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
