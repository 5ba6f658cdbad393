"""The in-memory bus of the single-process mode: partitioned topics, consumer groups with
committed offsets, and the same delivery semantics as Kafka within one process."""

from __future__ import annotations

import asyncio
import time
from typing import Sequence

from aiokafka.partitioner import murmur2

from shared.bus.base import Bus, Consumer, Message, Record, TopicPartition


class _Partition:
    __slots__ = ("base", "records")

    def __init__(self) -> None:
        self.base = 0  # offset of records[0]; consumed records are trimmed away
        self.records: list[Record] = []

    @property
    def end(self) -> int:
        return self.base + len(self.records)


class MemoryBus(Bus):
    def __init__(self, default_partitions: int = 1) -> None:
        self.default_partitions = default_partitions
        self.topics: dict[str, list[_Partition]] = {}
        self.committed: dict[str, dict[TopicPartition, int]] = {}
        self.subscriptions: dict[str, set[str]] = {}
        self._hashes: dict[bytes, int] = {}
        self._changed = asyncio.Condition()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def ping(self) -> bool:
        return True

    async def ensure_topics(self, topics: Sequence[str], partitions: int) -> None:
        for topic in topics:
            self.topics.setdefault(topic, [_Partition() for _ in range(partitions)])

    def partition_for(self, topic: str, key: bytes | None) -> int:
        """Kafka's default partitioner (murmur2 of the key), so that a customer's records fall
        in the same partitions as on a broker with the same partition count."""
        parts = self.topics[topic]
        if key is None:
            return 0
        h = self._hashes.get(key)
        if h is None:
            if len(self._hashes) > 1_000_000:
                self._hashes.clear()
            h = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return h % len(parts)

    async def partitions(self, topic: str) -> int:
        return len(self.topics.get(topic, ()))

    async def publish(self, messages: Sequence[Message]) -> None:
        now = int(time.time() * 1000)
        for msg in messages:
            if msg.topic not in self.topics:
                await self.ensure_topics([msg.topic], self.default_partitions)
            p = self.partition_for(msg.topic, msg.key)
            part = self.topics[msg.topic][p]
            part.records.append(
                Record(msg.topic, p, part.end, msg.key, msg.value, list(msg.headers), now)
            )
        async with self._changed:
            self._changed.notify_all()

    def consumer(self, group: str, topics: Sequence[str]) -> Consumer:
        self.subscriptions.setdefault(group, set()).update(topics)
        self.committed.setdefault(group, {})
        return MemoryConsumer(self, group, list(topics))

    def end_offsets(self, topic: str) -> list[int]:
        return [p.end for p in self.topics.get(topic, [])]

    def uncommitted(self) -> int:
        """Messages some group has not committed yet (for tests and the settle loop)."""
        return sum(self._group_pending(g, ts) for g, ts in self.subscriptions.items())

    def _group_pending(self, group: str, topics) -> int:
        total = 0
        for topic in topics:
            for i, part in enumerate(self.topics.get(topic, [])):
                total += part.end - self.committed.get(group, {}).get((topic, i), 0)
        return total

    async def pending(self, group: str, topics: Sequence[str]) -> int:
        return self._group_pending(group, topics)

    def _trim(self, topic: str, partition: int) -> None:
        """Forget records every subscribed group has committed past, so a long demo run keeps
        a bounded memory."""
        groups = [g for g, ts in self.subscriptions.items() if topic in ts]
        if not groups:
            return
        low = min(self.committed[g].get((topic, partition), 0) for g in groups)
        part = self.topics[topic][partition]
        drop = low - part.base
        if drop > 0:
            del part.records[:drop]
            part.base = low


class MemoryConsumer(Consumer):
    def __init__(self, bus: MemoryBus, group: str, topics: list[str]) -> None:
        self.bus = bus
        self.group = group
        self.topics = topics
        self.position: dict[TopicPartition, int] = {}
        self.paused: set[TopicPartition] = set()

    async def start(self) -> None:
        await self.bus.ensure_topics(self.topics, self.bus.default_partitions)
        committed = self.bus.committed[self.group]
        for topic in self.topics:
            for i, _ in enumerate(self.bus.topics[topic]):
                self.position[(topic, i)] = committed.get((topic, i), 0)

    async def stop(self) -> None:
        return None

    def _take(self, max_records: int) -> list[Record]:
        """Up to ``max_records``, a fair share from each partition that has some (as a broker's
        fetch brings some of every partition), the rest from those with more."""
        out: list[Record] = []
        live = [tp for tp in self.position if tp not in self.paused]
        share = max(1, max_records // max(1, len(live)))
        for limit in (share, max_records):
            for tp in live:
                if len(out) >= max_records:
                    return out
                part = self.bus.topics[tp[0]][tp[1]]
                start = max(self.position[tp], part.base) - part.base
                chunk = part.records[start:start + min(limit, max_records - len(out))]
                if chunk:
                    out.extend(chunk)
                    self.position[tp] = chunk[-1].offset + 1
        return out

    def assignment(self) -> set[TopicPartition]:
        return set(self.position)

    def lagging(self, topic: str, partition: int) -> bool | None:
        part = self.bus.topics[topic][partition]
        return part.end > self.position.get((topic, partition), 0)

    def refreshed(self, topic: str, partition: int) -> float | None:
        return float("inf")  # a publish appends every record before any consumer runs again

    def pause(self, partitions) -> None:
        self.paused.update(partitions)

    def resume(self, partitions) -> None:
        self.paused.difference_update(partitions)

    async def getmany(self, max_records: int, timeout_ms: int) -> list[Record]:
        records = self._take(max_records)
        if records:
            return records
        try:
            async with self.bus._changed:
                await asyncio.wait_for(self.bus._changed.wait(), timeout_ms / 1000)
        except asyncio.TimeoutError:
            return []
        return self._take(max_records)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        committed = self.bus.committed[self.group]
        for tp, offset in offsets.items():
            committed[tp] = max(committed.get(tp, 0), offset)
            self.bus._trim(*tp)

    async def lag(self) -> dict[TopicPartition, int]:
        return {
            tp: self.bus.topics[tp[0]][tp[1]].end - pos for tp, pos in self.position.items()
        }
