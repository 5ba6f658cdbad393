"""The one consumer loop every service runs."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

from shared.access import ACCESS_TOPICS, AccessState
from shared.bus.base import Bus, Consumer, Record
from shared.contracts.cloudevents import Event, InvalidEvent, decode_record
from shared.contracts.topics import dead_letter_topic
from shared.db import Database
from shared.metrics import (
    BATCH_SECONDS,
    CONSUMER_LAG,
    EVENTS_CONSUMED,
    EVENTS_DEAD_LETTERED,
    EVENTS_DUPLICATE,
    EVENTS_LATE,
    HANDLER_SECONDS,
    RETRIES,
)
from shared.runtime.errors import Rejected, is_conflict, is_retryable
from shared.runtime.faults import checkpoint
from shared.runtime.order import EventTimeOrder, order_key
from shared.runtime.retry import Backoff
from shared.runtime.service import ServiceSpec
from shared.runtime.transaction import BatchTransaction, ConcurrentlyProcessed

log = logging.getLogger(__name__)

CONFLICT_RETRIES = 5
"""How often a batch is run again after a unique violation (``is_conflict``) before the event
that raised it is dead-lettered."""

BUFFER_PER_PARTITION = 5_000
"""Records an ordered partition may hold back before its fetching pauses (the others catch up)."""


class _HandlerFailed(Exception):
    def __init__(self, index: int, reason: str, category: str, conflict: bool = False) -> None:
        super().__init__(reason)
        self.index = index
        self.reason = reason
        self.category = category
        self.conflict = conflict


@dataclass
class _Item:
    record: Record
    event: Event | None
    dead_reason: str | None = None
    dead_category: str | None = None
    key: tuple | None = None
    """The order key of an event of an ordered topic (``shared.runtime.order``)."""
    late: bool = False

    @property
    def idempotency_key(self) -> str:
        if self.event is not None:
            return self.event.id
        r = self.record
        return f"raw:{r.topic}:{r.partition}:{r.offset}"


class PartitionCountMismatch(RuntimeError):
    """The topics a service reads do not have one partition count: a customer's records would
    not fall in one partition number, and no instance could see all of them in order."""


class ConsumerLoop:
    """Reads a service's topics in batches and applies them exactly once to its database."""

    def __init__(self, spec: ServiceSpec, db: Database, bus: Bus, settings,
                 on_commit: Callable[[], None] = lambda: None) -> None:
        self.spec = spec
        self.db = db
        self.bus = bus
        self.settings = settings
        self.on_commit = on_commit
        self.handoff: Callable[[list[int], list], None] | None = None
        """Where a committed batch's outbox rows go (the relay publishes them from memory)."""
        self.group = f"{settings.kafka.group_prefix}.{spec.name}"
        self.topics = list(dict.fromkeys(
            list(spec.subscriptions) + (list(ACCESS_TOPICS) if spec.keeps_access else [])
        ))
        ordered = [t for t in spec.ordered if t in self.topics]
        runtime = settings.runtime
        bound = runtime.max_lateness_s * (1 + spec.upstream_orders) + (runtime.stream_wait_s if spec.upstream_orders else 0)
        self.order = EventTimeOrder(ordered, bound, scope=spec.order_scope) if ordered else None
        self.consumer: Consumer | None = None
        self._stopping = False
        self.batches = 0

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand, commit it and return."""
        self._stopping = True

    async def run(self) -> None:
        cfg = self.settings.runtime
        backoff = Backoff.of(self.settings)
        self.consumer = await self._start_consumer(backoff)
        last_lag = 0.0
        try:
            while not self._stopping:
                waiting = self.order is not None and self.order.waiting()
                try:
                    records = await self.consumer.getmany(
                        cfg.batch_size, min(cfg.poll_timeout_ms, 20) if waiting else cfg.poll_timeout_ms)
                    backoff.reset()
                except Exception as exc:
                    if not is_retryable(exc):
                        raise
                    RETRIES.labels(self.spec.name, "fetch").inc()
                    await backoff.wait()
                    continue
                if self.order is None:
                    if records:
                        await self.process_batch(records)
                else:
                    await self._ordered(records)
                if time.monotonic() - last_lag > cfg.lag_interval_s:
                    await self._report_lag()
                    last_lag = time.monotonic()
        finally:
            await self.consumer.stop()

    async def _start_consumer(self, backoff: Backoff) -> Consumer:
        while True:
            consumer = self.bus.consumer(self.group, self.topics)
            try:
                await consumer.start()
                return consumer
            except Exception as exc:
                if not is_retryable(exc):
                    raise
                log.warning("bus not reachable, retrying", extra={"service": self.spec.name})
                RETRIES.labels(self.spec.name, "consumer_start").inc()
                await backoff.wait()

    async def _report_lag(self) -> None:
        if self.consumer is None:
            return
        for (topic, partition), lag in (await self.consumer.lag()).items():
            CONSUMER_LAG.labels(self.spec.name, topic, str(partition)).set(lag)

    # --- event-time order ---------------------------------------------------------------

    async def _ordered(self, records: list[Record]) -> None:
        """Buffer what was fetched; apply what the order releases, batch by batch."""
        order = self.order
        consumer = self.consumer
        order.assign(consumer.assignment(), consumer.generation)
        direct: list[_Item] = []
        held = []
        for r in records:
            item = self._decode(r)
            if order.orders(r.topic):
                if item.event is not None and item.dead_reason is None:
                    item.key = order_key(item.event, order.ranks[r.topic], r.partition, r.offset)
                held.append(item)
            else:
                direct.append(item)
        order.add(held)
        if direct:
            await self._apply_batch(direct, _next_offsets([i.record for i in direct]))
        batch = self.settings.runtime.batch_size
        while True:
            released = order.release(consumer.lagging, batch, consumer.refreshed)
            if not released:
                break
            items = []
            for r in released:
                r.item.late = r.late
                items.append(r.item)
            await self._apply_batch(items, order.committable)
            if len(released) < batch:
                break
        for tp in consumer.assignment():
            if not order.orders(tp[0]):
                continue
            if order.buffered(tp) > BUFFER_PER_PARTITION:
                consumer.pause([tp])
            else:
                consumer.resume([tp])

    # --- one batch ------------------------------------------------------------------------

    async def process_batch(self, records: list[Record]) -> None:
        """Apply one batch of records (of topics read in arrival order) exactly once."""
        await self._apply_batch([self._decode(r) for r in records], _next_offsets(records))

    async def _apply_batch(self, items: list[_Item], offsets) -> None:
        """Apply one batch exactly once. The order of the side effects is what makes it safe:

        1. Every record was decoded; one that is not a valid event of its topic is marked for
           the dead-letter topic with the reason.
        2. In ONE database transaction (:class:`shared.runtime.transaction.BatchTransaction`):
           look up which event ids this consumer group has already processed; load the state
           the batch's new events need (the service's ``state``, the access projection); run
           the handler of each new event, which changes that state and emits events; add
           dead-letter messages to the outbox; then commit writes the state, the appended rows,
           the outbox and the processed ids (see ``BatchTransaction.commit``).
           If a handler rejects its event or fails with a non-retryable error, the transaction
           is rolled back and the batch re-run with that event marked for the dead-letter
           topic, so nothing of the bad event remains and the rest of the batch still applies.
           If another instance recorded one of the ids meanwhile (a rebalance), the transaction
           is rolled back and retried, and the retry skips it.
        3. A retryable error (database or bus down, lock conflict) up to here rolls back and
           retries the same batch with backoff: never dropped. A unique violation (another
           instance inserted the same row first) re-runs the batch up to ``CONFLICT_RETRIES``
           times, and dead-letters its event only if it persists. A non-retryable failure that
           no single handler owned (e.g. at commit) re-runs the batch one event per
           transaction, to find and dead-letter the event that causes it.
        4. Commit the offsets to the bus, only now. A crash between 3 and 4 redelivers the batch,
           and step 2 finds every id already processed: no effect, nothing counted twice.
        5. Wake the outbox relay, which publishes and then deletes the outbox rows; a crash
           between its publish and its delete republishes, and consumers drop the duplicate ids.
        """
        started = time.perf_counter()
        backoff = Backoff.of(self.settings)
        await self._apply_until_done(items, backoff)
        checkpoint("after_db_commit")
        await self._commit_offsets(offsets() if callable(offsets) else offsets, backoff)
        checkpoint("after_offset_commit")
        self.batches += 1
        BATCH_SECONDS.labels(self.spec.name).observe(time.perf_counter() - started)
        self.on_commit()

    async def _apply_until_done(self, items: list[_Item], backoff: Backoff) -> None:
        conflicts = 0
        while True:
            try:
                await self._apply(items)
                return
            except _HandlerFailed as failed:
                if failed.conflict and conflicts < CONFLICT_RETRIES:
                    conflicts += 1
                    await self._retry("conflict", failed.reason, backoff)
                    continue
                item = items[failed.index]
                item.dead_reason, item.dead_category = failed.reason, failed.category
                log.warning("event dead-lettered", extra={
                    "service": self.spec.name, "topic": item.record.topic,
                    "event_id": item.idempotency_key, "reason": failed.reason})
            except Exception as exc:
                if is_conflict(exc) and conflicts < CONFLICT_RETRIES:  # at commit: the same race
                    conflicts += 1
                    await self._retry("conflict", str(exc), backoff)
                    continue
                if is_retryable(exc) or isinstance(exc, ConcurrentlyProcessed):
                    await self._retry("batch", str(exc), backoff)
                    continue
                if len(items) > 1:
                    log.warning("batch failed at commit; applying its events one by one",
                                extra={"service": self.spec.name, "error": str(exc)[:300]})
                    for item in items:
                        await self._apply_until_done([item], backoff)
                    return
                log.exception("event cannot be stored", extra={"service": self.spec.name})
                items[0].dead_reason = f"cannot be stored: {type(exc).__name__}: {exc}"[:500]
                items[0].dead_category = "handler_error"

    async def _retry(self, kind: str, error: str, backoff: Backoff) -> None:
        """Count and log a re-run of the batch (``kind``: ``batch`` for an outage, ``conflict``
        for a unique violation), then wait out the backoff."""
        RETRIES.labels(self.spec.name, kind).inc()
        log.warning("batch retry", extra={"service": self.spec.name, "kind": kind, "error": error[:300]})
        await backoff.wait()

    def _decode(self, record: Record) -> _Item:
        try:
            event = decode_record(record.value, record.headers)
        except InvalidEvent as exc:
            return _Item(record, None, str(exc), "invalid")
        if event.topic != record.topic:
            return _Item(record, event, f"ce_type {event.type} does not belong on {record.topic}", "wrong_topic")
        return _Item(record, event)

    async def _apply(self, items: list[_Item]) -> None:
        name, spec = self.spec.name, self.spec
        tally: list[tuple[str, str, str | None]] = []
        async with BatchTransaction(self.db, name, self.settings, group=self.group) as tx:
            tx.handoff = self.handoff
            done = await tx.already_processed([i.idempotency_key for i in items])
            fresh = [i.event for i in items
                     if i.event is not None and i.dead_reason is None and i.idempotency_key not in done]
            if spec.state is not None:
                tx.state = await spec.state.load(tx, fresh)
            if spec.keeps_access:
                tx.access = tx.track(await AccessState.load(tx, [e for e in fresh if e.topic in ACCESS_TOPICS]))
            seen: set[str] = set()
            for index, item in enumerate(items):
                key = item.idempotency_key
                topic = item.record.topic
                if key in done or key in seen:
                    tally.append(("duplicate", topic, None))
                    continue
                seen.add(key)
                tx.for_event(key)
                tx.processed(key)
                if item.dead_reason is not None:
                    self._dead_letter(tx, item)
                    tally.append(("dead", topic, item.dead_category or "invalid"))
                    continue
                handler = spec.subscriptions.get(topic)
                t0 = time.perf_counter()
                try:
                    if spec.keeps_access and topic in ACCESS_TOPICS:
                        tx.access.apply(item.event)
                    if handler is not None:
                        await handler(item.event, tx)
                except Rejected as exc:
                    raise _HandlerFailed(index, str(exc), "rejected") from exc
                except Exception as exc:
                    if is_retryable(exc):
                        raise
                    conflict = is_conflict(exc)
                    if not conflict:
                        log.exception("handler failed", extra={"service": name, "topic": topic})
                    raise _HandlerFailed(index, f"handler error: {type(exc).__name__}: {exc}"[:500],
                                         "handler_error", conflict) from exc
                HANDLER_SECONDS.labels(name, topic).observe(time.perf_counter() - t0)
                tally.append(("late" if item.late else "consumed", topic, None))
            tx.after_commit(lambda: _count(name, tally))

    def _dead_letter(self, tx: BatchTransaction, item: _Item) -> None:
        r = item.record
        headers = [(k, v) for k, v in r.headers if not k.startswith("strata_dlq_")]
        headers += [
            ("strata_dlq_reason", item.dead_reason.encode()),
            ("strata_dlq_category", (item.dead_category or "invalid").encode()),
            ("strata_dlq_service", self.spec.name.encode()),
            ("strata_dlq_source", f"{r.topic}/{r.partition}/{r.offset}".encode()),
        ]
        tx.add_message(dead_letter_topic(r.topic), r.key, r.value or b"", headers)

    async def _commit_offsets(self, offsets: dict[tuple[str, int], int], backoff: Backoff) -> None:
        if not offsets:
            return
        backoff.reset()
        while True:
            try:
                await self.consumer.commit(offsets)
                return
            except Exception as exc:
                if not is_retryable(exc):
                    raise
                RETRIES.labels(self.spec.name, "offset_commit").inc()
                await backoff.wait()


def _next_offsets(records: list[Record]) -> dict[tuple[str, int], int]:
    offsets: dict[tuple[str, int], int] = {}
    for r in records:
        tp = (r.topic, r.partition)
        offsets[tp] = max(offsets.get(tp, 0), r.offset + 1)
    return offsets


def _count(service: str, tally: list[tuple[str, str, str | None]]) -> None:
    for kind, topic, category in tally:
        if kind in ("consumed", "late"):
            EVENTS_CONSUMED.labels(service, topic).inc()
            if kind == "late":
                EVENTS_LATE.labels(service, topic).inc()
        elif kind == "duplicate":
            EVENTS_DUPLICATE.labels(service, topic).inc()
        else:
            EVENTS_DEAD_LETTERED.labels(service, topic, category).inc()


async def check_partition_counts(bus: Bus, service: str, topics: list[str]) -> None:
    """Refuse to start when the topics a service reads do not share one partition count."""
    counts = {topic: await bus.partitions(topic) for topic in topics}
    known = {t: n for t, n in counts.items() if n}
    if len(set(known.values())) > 1:
        listed = ", ".join(f"{t}: {n}" for t, n in sorted(known.items()))
        raise PartitionCountMismatch(
            f"{service} reads topics with different partition counts ({listed}). Every topic a "
            f"service reads must have the same number of partitions, so that all of a customer's "
            f"records fall in one partition number: add partitions to the smaller topics "
            f"(kafka-topics --alter --partitions N) before starting {service}.")
