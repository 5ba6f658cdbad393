"""The bus: one interface, two adapters (Kafka and in-memory)."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Sequence

TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class Record:
    """One consumed message."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    timestamp_ms: int = 0


@dataclass(frozen=True)
class Message:
    """One message to publish."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class BusUnavailable(ConnectionError):
    """The bus cannot be reached now; the caller retries."""


class Consumer(abc.ABC):
    """A member of a consumer group that reads batches and commits offsets explicitly."""

    generation: int = 0
    """Counts the rebalances that took this member's partitions away: after one, what it holds
    is read again from the group's committed offsets, so what it had fetched comes again."""

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    async def getmany(self, max_records: int, timeout_ms: int) -> list[Record]:
        """Up to ``max_records`` records, in offset order per partition."""

    @abc.abstractmethod
    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Record ``offsets`` (the next offset to read, per partition) for the group."""

    @abc.abstractmethod
    async def lag(self) -> dict[TopicPartition, int]:
        """Messages not yet consumed, per assigned partition, as last known."""

    @abc.abstractmethod
    def assignment(self) -> set[TopicPartition]:
        """The partitions this member holds now."""

    @abc.abstractmethod
    def lagging(self, topic: str, partition: int) -> bool | None:
        """Whether the broker holds records of the partition that :meth:`getmany` has not
        returned yet (None: not known yet)."""

    @abc.abstractmethod
    def refreshed(self, topic: str, partition: int) -> float | None:
        """When (``time.time()``) the broker last told this consumer where the partition ends,
        which :meth:`lagging` goes by (None: not yet). A record fetched before that moment
        was published before it, so a partition refreshed since then and not lagging holds
        nothing published together with the record; one refreshed earlier may (the broker
        appends the partitions of one produce request one after another)."""

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        """Stop fetching these partitions until :meth:`resume` (what is fetched stays)."""

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        """Fetch these partitions again."""


class Bus(abc.ABC):
    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    async def ensure_topics(self, topics: Sequence[str], partitions: int) -> None:
        """Create the topics that do not exist yet."""

    @abc.abstractmethod
    async def publish(self, messages: Sequence[Message]) -> None:
        """Publish and wait until every message is acknowledged; order is kept per key."""

    @abc.abstractmethod
    def consumer(self, group: str, topics: Sequence[str]) -> Consumer: ...

    @abc.abstractmethod
    async def partitions(self, topic: str) -> int:
        """How many partitions ``topic`` has (0 when it does not exist)."""

    @abc.abstractmethod
    async def pending(self, group: str, topics: Sequence[str]) -> int:
        """Messages on ``topics`` that ``group`` has not committed yet (from the broker's own
        committed offsets and end offsets)."""

    @abc.abstractmethod
    async def ping(self) -> bool:
        """True when the bus answers a real request now."""
