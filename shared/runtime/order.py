"""Event-time order across the topics a service reads: the same facts are applied in the same
order whatever order Kafka delivers them in.

Kafka orders one partition of one topic. A service that reads several topics (tiering reads a
customer's master data, accounts, postings and balance snapshots from four) would otherwise
apply their records in whatever order its fetches happened to bring them, and that accident
would shape its state. So, as Kafka Streams does for co-partitioned inputs, the records are
held in a buffer per task and released in event-time order:

- A **task** is one partition number across the ordered topics (partition ``p`` of each; every
  Strata topic is keyed by customer with one partition count, which the runtime checks at
  start-up, so a customer's records all fall in one task), or, with ``scope="all"``, every
  partition the instance holds.
- Each record has an **order key**: its event time (``posted_at``, ``as_of``, ``updated_at``,
  or the CloudEvents time of a record that has none), then the topic's rank in the service's
  list (master data before snapshots before postings of one instant), then the order core
  banking published it in (its partition and offset). Facts of one instant on one topic keep
  their publishing order: the two legs of a move between a customer's accounts carry one
  ``posted_at``, and the debit core banking sent first is applied first (their ``account_seq``
  count on two accounts and say nothing of each other; on one account they follow it).
- Each partition's **time** is the latest event time fetched from it; its next records may
  be of that instant still, not earlier (a fact earlier than its own partition's latest is
  late). So the least key it may still bring is (its time, its topic's rank, partition, next
  offset). A partition that has records on the broker not fetched yet (lag) holds the task back
  at that key. A partition that is caught up holds it back there for ``max_lateness`` seconds
  after it went quiet (core banking may publish a topic a little behind the others, or still be
  writing the rest of an instant's records), then no longer. Buffered records whose key is
  below the task's **watermark** (the least of these bounds) are released in key order.
- "Caught up" is what the broker said at its last answer about a partition. Records core
  banking published together (one produce request, whose partitions the broker appends one
  after another) may not all have been visible then, so a record is released only once the
  broker has answered again, since the record was buffered, for every quiet partition of its
  task (``Consumer.refreshed``; the next fetch, at most the fetch wait). Then even with no
  lateness allowed, facts published together are applied in their order.

A record that arrives after a later one of its task was released is **late**: it is released
at once and applied by the rules of its service for facts out of order (an older snapshot or
posting never moves a balance back; a late fact counts on the day it is applied; nothing
already emitted is rewritten), and counted (``strata_events_late_total``). Within the bound
nothing is late: the record is released in its place, exactly as if it had arrived in order.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Literal, Sequence

TopicPartition = tuple[str, int]
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_INF = float("inf")
_NEG = float("-inf")
_DONE = (_INF,)
_MICROSECOND = timedelta(microseconds=1)


def event_time(event: Any) -> datetime:
    """The moment a fact happened, by its own clock: a posting's ``posted_at``, a snapshot's
    ``as_of``, a customer record's ``updated_at``, an AUM's ``as_of``, a tier change's
    ``effective_at``; otherwise (an account record carries no time) the event's ``time``."""
    data = event.data
    for name in ("posted_at", "as_of", "updated_at", "effective_at", "at"):
        value = getattr(data, name, None)
        if isinstance(value, datetime):
            return value
    return event.time


def order_key(event: Any, rank: int, partition: int, offset: int) -> tuple:
    """``(event time in microseconds, topic rank, partition, offset)``."""
    micros = (event_time(event) - _EPOCH) // _MICROSECOND
    return (micros, rank, partition, offset)



@dataclass
class _Partition:
    tp: TopicPartition
    rank: int = 0
    time: float = _NEG
    """The latest event time fetched (microseconds since the epoch)."""
    next: int = 0
    """The offset after the last one fetched."""
    idle_since: float | None = None
    fetched: deque = field(default_factory=deque)
    """Offsets fetched and not yet committable, in offset order."""
    released: set = field(default_factory=set)
    """Of those, the ones released."""

    def unreleased(self) -> int:
        return len(self.fetched) - len(self.released)

    def next_offset(self) -> int | None:
        """The offset to commit: past every released offset that has no unreleased one before
        it (the committed prefix is forgotten)."""
        done = None
        fetched, released = self.fetched, self.released
        while fetched and fetched[0] in released:
            done = fetched.popleft()
            released.discard(done)
        return None if done is None else done + 1


@dataclass
class _Task:
    partitions: dict[TopicPartition, _Partition] = field(default_factory=dict)
    heap: list = field(default_factory=list)
    stream_time: tuple | None = None
    waiting_since: float | None = None
    """When the buffer last went from empty to holding records (the clock's time): a quiet
    partition holds those back for ``max_lateness`` from then, not from when it went quiet."""


@dataclass
class Released:
    """A record released to the consumer: the item and whether it came late."""

    item: Any
    late: bool


class EventTimeOrder:
    """The buffer of a consumer's ordered topics (see the module docstring)."""

    def __init__(self, topics: Sequence[str], max_lateness_s: float, *,
                 scope: Literal["task", "all"] = "task", clock: Callable[[], float] = time.time) -> None:
        self.ranks = {topic: i for i, topic in enumerate(topics)}
        self.max_lateness = max_lateness_s
        self.scope = scope
        self.clock = clock
        """Wall-clock seconds (the clock the consumer's ``refreshed`` answers in)."""
        self.tasks: dict[int, _Task] = {}
        self._partitions: dict[TopicPartition, _Partition] = {}
        self._counter = itertools.count()
        self.generation = 0

    def orders(self, topic: str) -> bool:
        return topic in self.ranks

    def _task_of(self, partition: int) -> int:
        return 0 if self.scope == "all" else partition

    def assign(self, partitions: Iterable[TopicPartition], generation: int = 0) -> None:
        """The partitions the consumer holds now, in the consumer's assignment ``generation``.
        A partition taken away is forgotten with what it buffered: its new owner reads it again
        from the committed offset. A new generation (a rebalance took every partition away and
        gave some back, which the consumer then reads again from the committed offsets) forgets
        everything, so no record is held twice."""
        if generation != self.generation:
            self.generation = generation
            self.tasks.clear()
            self._partitions.clear()
        wanted = {tp for tp in partitions if tp[0] in self.ranks}
        for tp in [tp for tp in self._partitions if tp not in wanted]:
            part = self._partitions.pop(tp)
            task = self.tasks[self._task_of(tp[1])]
            del task.partitions[tp]
            if part.fetched:
                task.heap = [e for e in task.heap if (e[2].record.topic, e[2].record.partition) != tp]
                heapq.heapify(task.heap)
        for tp in wanted:
            if tp not in self._partitions:
                part = self._partitions[tp] = _Partition(tp, self.ranks[tp[0]])
                self.tasks.setdefault(self._task_of(tp[1]), _Task()).partitions[tp] = part

    def add(self, items: Iterable[Any]) -> None:
        """Buffer fetched items of ordered topics (``item.record`` gives topic, partition,
        offset; ``item.key`` the order key, None for a record that is not an event)."""
        now = self.clock()
        for item in items:
            r = item.record
            tp = (r.topic, r.partition)
            part = self._partitions.get(tp)
            if part is None:  # fetched before the assignment was known
                self.assign([*self._partitions, tp])
                part = self._partitions[tp]
            part.fetched.append(r.offset)
            part.next = r.offset + 1
            part.idle_since = None
            key = item.key if item.key is not None else (_NEG,)
            if item.key is not None and key[0] > part.time:
                part.time = key[0]
            task = self.tasks[self._task_of(r.partition)]
            if not task.heap:
                task.waiting_since = now
            heapq.heappush(task.heap, (key, next(self._counter), item, now))

    def buffered(self, tp: TopicPartition | None = None) -> int:
        if tp is None:
            return sum(len(t.heap) for t in self.tasks.values())
        part = self._partitions.get(tp)
        return 0 if part is None else part.unreleased()

    def release(self, lagging: Callable[[str, int], bool | None], limit: int,
                refreshed: Callable[[str, int], float | None] | None = None) -> list[Released]:
        """Up to ``limit`` buffered items whose time has come, in key order within each task
        (``lagging(topic, partition)``: whether the broker holds records not fetched yet,
        None when not known; ``refreshed(topic, partition)``: when, by this order's clock, the
        broker last said where the partition ends, None when not yet; not given: always now)."""
        now = self.clock()
        out: list[Released] = []
        for task in self.tasks.values():
            if len(out) >= limit:
                break
            if not task.heap:
                task.waiting_since = None
                continue
            watermark, confirmed = self._watermark(task, lagging, refreshed, now)
            while task.heap and len(out) < limit and task.heap[0][0] < watermark and task.heap[0][3] < confirmed:
                key, _n, item, _received = heapq.heappop(task.heap)
                late = task.stream_time is not None and key < task.stream_time and key[0] != _NEG
                if task.stream_time is None or key > task.stream_time:
                    task.stream_time = key
                r = item.record
                self._partitions[(r.topic, r.partition)].released.add(r.offset)
                out.append(Released(item, late))
        return out

    def _watermark(self, task: _Task, lagging, refreshed, now: float) -> tuple[tuple, float]:
        """The least order key any partition of the task may still bring, and the time before
        which a record must have been buffered to be released.

        A partition that lags or has just gone quiet may bring more of its latest instant (the
        rest of core banking's records of that instant, still being written), so a record of a
        later-ranked topic at that instant waits for them; one quiet for the bound brings nothing
        more in order. But "quiet" is what the broker said when it last answered about the
        partition: records published together with a buffered one (one produce request, its
        partitions appended one after another) may not have been visible then. So a record is
        released only once every quiet, empty partition of its task has been answered for since
        it was buffered (the next fetch: at most the broker's fetch wait)."""
        watermark, confirmed = _DONE, _INF
        waiting = task.waiting_since if task.waiting_since is not None else now
        for part in task.partitions.values():
            lag = lagging(*part.tp)
            if lag is None or lag:
                part.idle_since = None
            else:
                if part.idle_since is None:
                    part.idle_since = now
                # a partition quiet since long before the buffered records came holds them back
                # for the bound all the same: its topic may be published behind the others
                if now - max(part.idle_since, waiting) >= self.max_lateness:
                    if refreshed is not None and not part.unreleased():
                        at = refreshed(*part.tp)
                        confirmed = min(confirmed, _NEG if at is None else at)
                    continue
            bound = (part.time, part.rank, part.tp[1], part.next)
            if bound < watermark:
                watermark = bound
        return watermark, confirmed

    def committable(self) -> dict[TopicPartition, int]:
        """For each ordered partition with newly released records at its head, the offset to
        commit (everything before it released)."""
        out = {}
        for tp, part in self._partitions.items():
            offset = part.next_offset()
            if offset is not None:
                out[tp] = offset
        return out

    def waiting(self) -> bool:
        """Whether records are held back (the consumer then polls briefly instead of long)."""
        return any(task.heap for task in self.tasks.values())
