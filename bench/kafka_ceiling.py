"""The ceiling: how fast this broker and this machine move the same events with no processing,
through aiokafka (what Strata uses) and through Kafka's own performance tools."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

REPO = Path(__file__).resolve().parents[1]
LIBS = REPO / "deploy" / "kafka" / "libs"


async def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            await admin.create_topics([NewTopic(topic, partitions, 1)])
        for _ in range(100):
            if topic in await admin.list_topics():
                return
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, records, *, rate: float = 0.0) -> dict:
    """Produce records (key, value, headers) as Strata's producer does (acks=all, idempotent)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    count, started = 0, time.perf_counter()
    try:
        pending = []
        for key, value, headers in records:
            pending.append(await producer.send(topic, value=value, key=key, headers=headers))
            count += 1
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
            if rate:  # each record at its own time: bursts would measure the burst, not the service
                ahead = count / rate - (time.perf_counter() - started)
                if ahead > 0.001:
                    await asyncio.sleep(ahead)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    seconds = time.perf_counter() - started
    return {"events": count, "seconds": round(seconds, 3), "events_per_s": round(count / seconds)}


async def consume(bootstrap: str, topic: str, expect: int) -> dict:
    """Consume ``expect`` records from the start with no processing."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None, max_partition_fetch_bytes=4 << 20)
    await consumer.start()
    count, started = 0, None
    try:
        while count < expect:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            if started is None and batch:
                started = time.perf_counter()
            for records in batch.values():
                count += len(records)
    finally:
        await consumer.stop()
    seconds = time.perf_counter() - (started or time.perf_counter())
    return {"events": count, "seconds": round(seconds, 3), "events_per_s": round(count / max(seconds, 1e-9))}


def kafka_tools(bootstrap: str, topic: str, records: int, record_size: int) -> dict:
    """Kafka's own ProducerPerformance and ConsumerPerformance, from the broker's jars."""
    cp = f"{LIBS}/*"
    produced = subprocess.run(
        ["java", "-Xmx512m", "-cp", cp, "org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
         "--num-records", str(records), "--record-size", str(record_size), "--throughput", "-1",
         "--producer-props", f"bootstrap.servers={bootstrap}", "acks=all", "linger.ms=5",
         "batch.size=262144"],
        capture_output=True, text=True, timeout=900, check=True,
    ).stdout
    last = [line for line in produced.splitlines() if "records sent" in line][-1]
    producer_eps = float(re.search(r"([\d.]+) records/sec", last).group(1))
    consumed = subprocess.run(
        ["java", "-Xmx512m", "-cp", cp, "org.apache.kafka.tools.ConsumerPerformance",
         "--bootstrap-server", bootstrap, "--topic", topic, "--messages", str(records),
         "--timeout", "60000"],
        capture_output=True, text=True, timeout=900, check=True,
    ).stdout
    lines = [line for line in consumed.splitlines() if line.strip()]
    header = [h.strip() for h in lines[-2].split(",")]
    values = [v.strip() for v in lines[-1].split(",")]
    row = dict(zip(header, values))
    return {"producer_events_per_s": round(producer_eps),
            "consumer_events_per_s": round(float(row.get("nMsg.sec", "0"))),
            "record_size": record_size}
