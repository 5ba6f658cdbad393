"""The Kafka adapter (aiokafka): idempotent producer with acks=all, consumers with manual
offset commits, and topic creation at start-up."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition as KafkaTP
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.partitioner import murmur2
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError, TopicAlreadyExistsError

from shared.bus.base import Bus, BusUnavailable, Consumer, Message, Record, TopicPartition

log = logging.getLogger(__name__)

GROUP_TIMING = {"session_timeout_ms": 15_000, "heartbeat_interval_ms": 3_000, "max_poll_interval_ms": 300_000}
"""Consumer group timing unless the settings (``kafka.*``) say otherwise."""


class KafkaBus(Bus):
    def __init__(self, bootstrap_servers: str, client_id: str = "strata",
                 replication_factor: int = 1, linger_ms: int = 5, topic_prefix: str = "",
                 group_timing: dict[str, int] | None = None) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.prefix = topic_prefix
        self.client_id = client_id
        self.replication_factor = replication_factor
        self.linger_ms = linger_ms
        self.group_timing = {**GROUP_TIMING, **(group_timing or {})}
        self._producer: AIOKafkaProducer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._probe: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            client_id=self.client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=self.linger_ms,
            max_batch_size=256 * 1024,
            request_timeout_ms=30_000,
        )
        try:
            await producer.start()
        except KafkaError as exc:
            await producer.stop()
            raise BusUnavailable(f"Kafka at {self.bootstrap_servers}: {exc}") from exc
        self._producer = producer
        self._admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers,
                                          client_id=f"{self.client_id}-admin")
        await self._admin.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        if self._admin is not None:
            await self._admin.close()
            self._admin = None
        if self._probe is not None:
            await self._probe.stop()
            self._probe = None

    async def ensure_topics(self, topics: Sequence[str], partitions: int) -> None:
        assert self._admin is not None, "bus not started"
        existing = set(await self._admin.list_topics())
        wanted = [self.prefix + t for t in dict.fromkeys(topics)]
        missing = [t for t in wanted if t not in existing]
        if not missing:
            return
        new = [NewTopic(t, num_partitions=partitions, replication_factor=self.replication_factor)
               for t in missing]
        try:
            await self._admin.create_topics(new)
        except TopicAlreadyExistsError:
            pass  # another service created it first
        # Creation is asynchronous on the broker: wait until the metadata shows every topic.
        for _ in range(100):
            if set(missing) <= set(await self._admin.list_topics()):
                return
            await asyncio.sleep(0.1)
        raise BusUnavailable(f"topics not visible after creation: {missing}")

    async def publish(self, messages: Sequence[Message]) -> None:
        """Publish in order and wait for every acknowledgement.

        The messages are grouped by topic-partition (Kafka's default partitioner: murmur2 of the
        key, as every Kafka client computes it) and handed to the producer as one record batch
        per partition, in their order. Per-message ``send`` cost more CPU than the handlers that
        made the messages: each one waited on metadata and hashed its key again."""
        producer = self._producer
        if producer is None:
            raise BusUnavailable("producer not started")
        try:
            by_partition: dict[tuple[str, int], list[Message]] = {}
            partitions: dict[str, list[int]] = {}
            hashes: dict[bytes, int] = {}
            for m in messages:
                topic = self.prefix + m.topic
                parts = partitions.get(topic)
                if parts is None:
                    parts = partitions[topic] = sorted(await producer.partitions_for(topic))
                if m.key is None:
                    partition = random.choice(parts)
                else:
                    h = hashes.get(m.key)
                    if h is None:
                        h = hashes[m.key] = murmur2(m.key) & 0x7FFFFFFF
                    partition = parts[h % len(parts)]
                by_partition.setdefault((topic, partition), []).append(m)
            futures = []
            for (topic, partition), batch_messages in by_partition.items():
                batch = producer.create_batch()
                for m in batch_messages:
                    if batch.append(key=m.key, value=m.value, timestamp=None, headers=m.headers) is None:
                        futures.append(await producer.send_batch(batch, topic, partition=partition))
                        batch = producer.create_batch()
                        if batch.append(key=m.key, value=m.value, timestamp=None, headers=m.headers) is None:
                            raise BusUnavailable(f"a message of {len(m.value or b'')} bytes does not fit a batch")
                futures.append(await producer.send_batch(batch, topic, partition=partition))
            await asyncio.gather(*futures)
        except KafkaError as exc:
            raise BusUnavailable(f"publish failed: {exc}") from exc

    def consumer(self, group: str, topics: Sequence[str]) -> Consumer:
        return KafkaConsumer(self.bootstrap_servers, group, list(topics), self.client_id, self.prefix,
                             **self.group_timing)

    async def pending(self, group: str, topics: Sequence[str]) -> int:
        assert self._admin is not None, "bus not started"
        physical = [self.prefix + t for t in topics]
        committed = await self._group_offsets(group)
        if self._probe is None:
            self._probe = AIOKafkaConsumer(bootstrap_servers=self.bootstrap_servers,
                                           client_id=f"{self.client_id}-probe", enable_auto_commit=False)
            await self._probe.start()
        partitions = []
        for topic in physical:
            for p in self._probe.partitions_for_topic(topic) or await self._refresh(topic):
                partitions.append(KafkaTP(topic, p))
        ends = await self._probe.end_offsets(partitions)
        total = 0
        for tp, end in ends.items():
            meta = committed.get(tp)
            total += end - (meta.offset if meta is not None and meta.offset >= 0 else 0)
        return total

    async def _group_offsets(self, group: str, attempts: int = 40) -> dict:
        """The group's committed offsets. Just after a broker starts, or while the group's
        coordinator moves, the broker answers with retriable coordinator errors: wait them out
        (about 20 s) rather than report an outage that is only the broker warming up."""
        assert self._admin is not None, "bus not started"
        for attempt in range(attempts):
            try:
                return await self._admin.list_consumer_group_offsets(group)
            except KafkaError as exc:
                if not exc.retriable or attempt == attempts - 1:
                    raise BusUnavailable(f"offsets of group {group}: {exc}") from exc
                await asyncio.sleep(0.5)
        raise AssertionError("unreachable")

    async def _refresh(self, topic: str) -> set[int]:
        await self._probe._client.force_metadata_update()
        return self._probe.partitions_for_topic(topic) or set()

    async def partitions(self, topic: str) -> int:
        assert self._admin is not None, "bus not started"
        described = await self._admin.describe_topics([self.prefix + topic])
        for entry in described:
            if entry.get("error_code", 0) == 0:
                return len(entry.get("partitions", ()))
        return 0

    async def ping(self) -> bool:
        if self._admin is None:
            return False
        try:
            await asyncio.wait_for(self._admin.describe_cluster(), timeout=5)
            return True
        except Exception:
            return False


class KafkaConsumer(Consumer):
    def __init__(self, bootstrap_servers: str, group: str, topics: list[str], client_id: str,
                 prefix: str = "", *, session_timeout_ms: int = GROUP_TIMING["session_timeout_ms"],
                 heartbeat_interval_ms: int = GROUP_TIMING["heartbeat_interval_ms"],
                 max_poll_interval_ms: int = GROUP_TIMING["max_poll_interval_ms"]) -> None:
        self.prefix = prefix
        self._topics = [prefix + t for t in topics]
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=group,
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_interval_ms=max_poll_interval_ms,
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=heartbeat_interval_ms,
            fetch_max_wait_ms=100,
            # Range, not round robin: partition p of every topic the group reads goes to the same
            # instance, and Strata keys every topic by customer with one partition count, so one
            # instance holds all of a customer's topics and no two write a customer's rows at once
            partition_assignment_strategy=(RangePartitionAssignor,),
        )
        self._positions: dict[TopicPartition, int] = {}
        """The next offset :meth:`getmany` returns, per assigned partition."""
        self._unknown: set = set()
        """Partitions assigned whose position is not known yet."""

    async def start(self) -> None:
        try:
            await self._consumer.start()
            self._consumer.subscribe(self._topics, listener=_Positions(self))
        except KafkaError as exc:
            await self._consumer.stop()
            raise BusUnavailable(str(exc)) from exc

    def assignment(self) -> set[TopicPartition]:
        n = len(self.prefix)
        return {(tp.topic[n:], tp.partition) for tp in self._consumer.assignment()}

    def lagging(self, topic: str, partition: int) -> bool | None:
        tp = KafkaTP(self.prefix + topic, partition)
        position = self._positions.get((topic, partition))
        try:
            high = self._consumer.highwater(tp)
        except Exception:  # not assigned (any more)
            return None
        if high is None or position is None:
            return None
        return high > position

    def refreshed(self, topic: str, partition: int) -> float | None:
        try:
            ms = self._consumer.last_poll_timestamp(KafkaTP(self.prefix + topic, partition))
        except (AssertionError, KeyError):  # not assigned (any more)
            return None
        return None if ms is None else ms / 1000

    def pause(self, partitions) -> None:
        wanted = [KafkaTP(self.prefix + t, p) for t, p in partitions]
        held = self._consumer.assignment()
        self._consumer.pause(*[tp for tp in wanted if tp in held])

    def resume(self, partitions) -> None:
        wanted = [KafkaTP(self.prefix + t, p) for t, p in partitions]
        self._consumer.resume(*[tp for tp in wanted if tp in self._consumer.paused()])

    async def stop(self) -> None:
        await self._consumer.stop()

    async def getmany(self, max_records: int, timeout_ms: int) -> list[Record]:
        try:
            batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        except KafkaError as exc:
            raise BusUnavailable(f"fetch failed: {exc}") from exc
        out: list[Record] = []
        for tp, records in batches.items():
            topic = tp.topic[len(self.prefix):]
            for r in records:
                out.append(Record(topic, r.partition, r.offset, r.key, r.value,
                                  list(r.headers or ()), r.timestamp))
            if records:
                self._positions[(topic, tp.partition)] = records[-1].offset + 1
                self._unknown.discard(tp)
        for tp in [tp for tp in self._unknown if tp in self._consumer.assignment()]:
            try:
                position = await asyncio.wait_for(self._consumer.position(tp), 1.0)
            except Exception:  # not ready yet (or moved on): asked again at the next fetch
                continue
            self._positions.setdefault((tp.topic[len(self.prefix):], tp.partition), position)
            self._unknown.discard(tp)
        return out

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self._consumer.commit({KafkaTP(self.prefix + t, p): o for (t, p), o in offsets.items()})
        except (CommitFailedError, IllegalStateError) as exc:
            # The partitions moved to another member during a rebalance. Our database commit
            # stands; the new owner re-reads from the last committed offset and its idempotency
            # check makes those events no-ops.
            log.warning("offset commit refused after rebalance", extra={"error": str(exc)})
        except KafkaError as exc:
            raise BusUnavailable(f"offset commit failed: {exc}") from exc

    async def lag(self) -> dict[TopicPartition, int]:
        out = {}
        for tp in list(self._consumer.assignment()):
            high = self._consumer.highwater(tp)
            if high is None:
                continue
            key = (tp.topic[len(self.prefix):], tp.partition)
            position = self._positions.get(key)
            if position is None:
                try:
                    position = await self._consumer.position(tp)
                except Exception:
                    continue
            out[key] = max(0, high - position)
        return out


class _Positions(ConsumerRebalanceListener):
    """Keeps :attr:`KafkaConsumer._positions` to the partitions held; a newly assigned one's
    position (the committed offset it resumes from) is asked at the next fetch, so whether it
    lags is known before its first record arrives."""

    def __init__(self, consumer: KafkaConsumer) -> None:
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked) -> None:
        self.consumer.generation += 1
        n = len(self.consumer.prefix)
        for tp in revoked:
            self.consumer._positions.pop((tp.topic[n:], tp.partition), None)

    async def on_partitions_assigned(self, assigned) -> None:
        self.consumer._unknown.update(assigned)
