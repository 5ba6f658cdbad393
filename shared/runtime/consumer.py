"""The one consumer loop every service runs."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from sqlalchemy import select, text

from shared.access import ACCESS_TOPICS, apply_access
from shared.bus.base import Bus, Consumer, Record
from shared.contracts.cloudevents import Event, InvalidEvent, decode_record
from shared.contracts.topics import dead_letter_topic
from shared.db import Database, insert_for
from shared.metrics import (
    BATCH_SECONDS,
    CONSUMER_LAG,
    EVENTS_CONSUMED,
    EVENTS_DEAD_LETTERED,
    EVENTS_DUPLICATE,
    HANDLER_SECONDS,
    RETRIES,
)
from shared.runtime.errors import Rejected, is_conflict, is_retryable
from shared.runtime.faults import checkpoint
from shared.runtime.models import ProcessedEvent
from shared.runtime.service import ServiceSpec
from shared.runtime.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


class _ConcurrentlyProcessed(Exception):
    """Another member of the group applied some of these events first (after a rebalance)."""


class _HandlerFailed(Exception):
    def __init__(self, index: int, reason: str, category: str, conflict: bool = False) -> None:
        super().__init__(reason)
        self.index = index
        self.reason = reason
        self.category = category
        self.conflict = conflict


# PostgreSQL: a batch's event ids as one array parameter, instead of IN lists or an
# executemany whose per-row cost in the driver exceeded the lookup's. The lookup joins the
# array so that each id is one probe of the primary key: written as ``event_id = ANY(...)``,
# the prepared statement's generic plan probed by consumer alone and filtered every id the
# consumer ever processed, once per batch.
_ALREADY_PROCESSED = text(
    "SELECT p.event_id FROM unnest(CAST(:ids AS VARCHAR[])) AS i(id) "
    "JOIN runtime_processed_events p ON p.consumer = :consumer AND p.event_id = i.id"
)
_RECORD_PROCESSED = text(
    "INSERT INTO runtime_processed_events (consumer, event_id, processed_at) "
    "SELECT :consumer, id, :now FROM unnest(CAST(:ids AS VARCHAR[])) AS i(id) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
)

CONFLICT_RETRIES = 5
"""How often a batch is run again after a unique violation (``is_conflict``) before the event
that raised it is dead-lettered."""


@dataclass
class _Item:
    record: Record
    event: Event | None
    dead_reason: str | None = None
    dead_category: str | None = None

    @property
    def idempotency_key(self) -> str:
        if self.event is not None:
            return self.event.id
        r = self.record
        return f"raw:{r.topic}:{r.partition}:{r.offset}"


@dataclass
class Backoff:
    initial: float
    maximum: float
    current: float = field(init=False)

    def __post_init__(self) -> None:
        self.current = self.initial

    async def wait(self) -> None:
        await asyncio.sleep(self.current)
        self.current = min(self.maximum, self.current * 2)

    def reset(self) -> None:
        self.current = self.initial


class ConsumerLoop:
    """Reads a service's topics in batches and applies them exactly once to its database."""

    def __init__(self, spec: ServiceSpec, db: Database, bus: Bus, settings,
                 on_commit: Callable[[], None] = lambda: None) -> None:
        self.spec = spec
        self.db = db
        self.bus = bus
        self.settings = settings
        self.on_commit = on_commit
        self.group = f"{settings.kafka.group_prefix}.{spec.name}"
        self.topics = list(dict.fromkeys(
            list(spec.subscriptions) + (list(ACCESS_TOPICS) if spec.keeps_access else [])
        ))
        self.consumer: Consumer | None = None
        self._stopping = asyncio.Event()
        self.batches = 0

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand, commit it and return."""
        self._stopping.set()

    async def run(self) -> None:
        cfg = self.settings.runtime
        backoff = Backoff(cfg.retry_initial_ms / 1000, cfg.retry_max_ms / 1000)
        self.consumer = await self._start_consumer(backoff)
        last_lag = 0.0
        try:
            while not self._stopping.is_set():
                try:
                    records = await self.consumer.getmany(cfg.batch_size, cfg.poll_timeout_ms)
                    backoff.reset()
                except Exception as exc:
                    if not is_retryable(exc):
                        raise
                    RETRIES.labels(self.spec.name, "fetch").inc()
                    await backoff.wait()
                    continue
                if records:
                    await self.process_batch(records)
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

    async def process_batch(self, records: list[Record]) -> None:
        """Apply one batch exactly once. The order of the side effects is what makes it safe:

        1. Decode every record; one that is not a valid event of its topic is marked for the
           dead-letter topic with the reason.
        2. In ONE database transaction: look up which event ids this consumer group has already
           processed; run the handler of each new event, which writes its state and the events
           it emits to the outbox table; write dead-letter messages to the outbox too; record
           every event id (and the position of each undecodable record) as processed.
           If a handler rejects its event or fails with a non-retryable error, the transaction
           is rolled back and the batch re-run with that event marked for the dead-letter topic,
           so nothing of the bad event remains and the rest of the batch still applies.
           Recording the ids inserts only ids not yet there; if another instance recorded one
           meanwhile (a rebalance), the transaction is rolled back and retried, and the retry
           skips it, so two instances never both apply one event.
        3. Commit the transaction. A retryable error (database or bus down, lock conflict) up to
           here rolls back and retries the same batch with backoff: never dropped. A unique
           violation (another instance inserted the same row first: a customer's topics may sit
           with different instances) re-runs the batch up to ``CONFLICT_RETRIES`` times, and
           dead-letters its event only if it persists. A
           non-retryable failure that no single handler owned (e.g. at commit) re-runs the
           batch one event per transaction, to find and dead-letter the event that causes it.
        4. Commit the offsets to the bus, only now. A crash between 3 and 4 redelivers the batch,
           and step 2 finds every id already processed: no effect, nothing counted twice.
        5. Wake the outbox relay, which publishes and then deletes the outbox rows; a crash
           between its publish and its delete republishes, and consumers drop the duplicate ids.
        """
        started = time.perf_counter()
        items = [self._decode(r) for r in records]
        cfg = self.settings.runtime
        backoff = Backoff(cfg.retry_initial_ms / 1000, cfg.retry_max_ms / 1000)
        await self._apply_until_done(items, backoff)
        checkpoint("after_db_commit")
        await self._commit_offsets(records, backoff)
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
                if is_retryable(exc) or isinstance(exc, _ConcurrentlyProcessed):
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
        name = self.spec.name
        tally: list[tuple[str, str, str | None]] = []  # counted only once the batch commits
        async with self.db.transaction() as session:
            done = await self._already_processed(session, [i.idempotency_key for i in items])
            seen: set[str] = set()
            now = datetime.now(timezone.utc)
            batch: dict = {}
            outbox: list[dict] = []
            if self.spec.prefetch is not None:
                fresh = [i.event for i in items
                         if i.event is not None and i.dead_reason is None and i.idempotency_key not in done]
                await self.spec.prefetch(fresh, UnitOfWork(session, name, self.settings, "prefetch", batch, outbox))
            for index, item in enumerate(items):
                key = item.idempotency_key
                topic = item.record.topic
                if key in done or key in seen:
                    tally.append(("duplicate", topic, None))
                    continue
                seen.add(key)
                uow = UnitOfWork(session, name, self.settings, key, batch, outbox)
                if item.dead_reason is not None:
                    self._dead_letter(uow, item)
                    tally.append(("dead", topic, item.dead_category or "invalid"))
                    continue
                handler = self.spec.subscriptions.get(topic)
                t0 = time.perf_counter()
                try:
                    if self.spec.keeps_access and topic in ACCESS_TOPICS:
                        await apply_access(item.event, uow)
                    if handler is not None:
                        await handler(item.event, uow)
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
                tally.append(("consumed", topic, None))
            await UnitOfWork(session, name, self.settings, "flush", batch, outbox).flush()
            if seen:
                recorded = await self._record_processed(session, list(seen), now)
                if len(recorded) != len(seen):
                    raise _ConcurrentlyProcessed(f"{len(seen) - len(recorded)} events were applied by another instance")
        for kind, topic, category in tally:
            if kind == "consumed":
                EVENTS_CONSUMED.labels(name, topic).inc()
            elif kind == "duplicate":
                EVENTS_DUPLICATE.labels(name, topic).inc()
            else:
                EVENTS_DEAD_LETTERED.labels(name, topic, category).inc()

    async def _record_processed(self, session, keys: list[str], now: datetime) -> list[str]:
        """Insert the ids not recorded yet; returns those this transaction inserted."""
        if session.get_bind().dialect.name == "postgresql":
            return (await session.execute(_RECORD_PROCESSED, {
                "consumer": self.group, "ids": keys, "now": now})).scalars().all()
        insert = (insert_for(session)(ProcessedEvent).on_conflict_do_nothing()
                  .returning(ProcessedEvent.event_id))
        return (await session.execute(insert, [
            {"consumer": self.group, "event_id": k, "processed_at": now} for k in keys
        ])).scalars().all()

    async def _already_processed(self, session, keys: list[str]) -> set[str]:
        unique = list(dict.fromkeys(keys))
        if session.get_bind().dialect.name == "postgresql":
            rows = await session.execute(_ALREADY_PROCESSED, {"consumer": self.group, "ids": unique})
            return set(rows.scalars())
        done: set[str] = set()
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            rows = await session.execute(
                select(ProcessedEvent.event_id).where(
                    ProcessedEvent.consumer == self.group, ProcessedEvent.event_id.in_(chunk)
                )
            )
            done.update(rows.scalars())
        return done

    def _dead_letter(self, uow: UnitOfWork, item: _Item) -> None:
        r = item.record
        headers = [(k, v) for k, v in r.headers if not k.startswith("strata_dlq_")]
        headers += [
            ("strata_dlq_reason", item.dead_reason.encode()),
            ("strata_dlq_category", (item.dead_category or "invalid").encode()),
            ("strata_dlq_service", self.spec.name.encode()),
            ("strata_dlq_source", f"{r.topic}/{r.partition}/{r.offset}".encode()),
        ]
        uow.add_message(dead_letter_topic(r.topic), r.key, r.value or b"", headers)

    async def _commit_offsets(self, records: list[Record], backoff: Backoff) -> None:
        offsets: dict[tuple[str, int], int] = {}
        for r in records:
            tp = (r.topic, r.partition)
            offsets[tp] = max(offsets.get(tp, 0), r.offset + 1)
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
