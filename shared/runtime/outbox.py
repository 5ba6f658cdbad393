"""The outbox relay: publishes what handlers wrote to the outbox, in the order written."""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections import Counter, deque

from sqlalchemy import delete, func, select, text

from shared.bus.base import Bus, Message
from shared.db import Database
from shared.metrics import EVENTS_EMITTED, OUTBOX_BACKLOG, RETRIES
from shared.runtime.errors import is_retryable
from shared.runtime.faults import checkpoint
from shared.runtime.models import OutboxMessage
from shared.runtime.transaction import decode_headers

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(self, service: str, db: Database, bus: Bus, batch_size: int = 1000,
                 poll_interval_s: float = 0.2, max_backoff_s: float = 10.0) -> None:
        self.service = service
        self.db = db
        self.bus = bus
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.max_backoff_s = max_backoff_s
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._fresh: deque[tuple[list[int], list[Message]]] = deque()
        """Rows this process just committed, with their messages: published from memory when
        nothing older waits in the table (see :meth:`offer`)."""
        self.lock_key = zlib.crc32(f"strata-outbox-{service}".encode()) & 0x7FFFFFFF

    def wake(self) -> None:
        self._wake.set()

    def offer(self, ids: list[int], messages: list[Message]) -> None:
        """Rows a transaction of this process has just committed and their messages, so the
        relay need not read back and decode what it has in hand."""
        if ids:
            self._fresh.append((ids, messages))
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        delay = self.poll_interval_s
        while True:
            try:
                while await self.publish_pending():
                    pass
                delay = self.poll_interval_s
            except Exception as exc:
                if not is_retryable(exc):
                    log.exception("outbox relay failed", extra={"service": self.service})
                RETRIES.labels(self.service, "outbox").inc()
                delay = min(self.max_backoff_s, delay * 2)
            if self._stopping.is_set():
                return
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()

    async def publish_pending(self) -> int:
        """Publish one batch of the oldest outbox rows; returns how many went out.

        Order: (1) take this service's relay lock in the transaction (PostgreSQL advisory lock,
        so two instances never interleave a customer's events); (2) read the oldest rows;
        (3) publish them and wait for every acknowledgement; (4) delete them and commit.
        A crash after (3) and before (4) publishes them again; every consumer drops an event id
        it has processed, so the effect is once.
        """
        async with self.db.transaction() as session:
            if self.db.dialect == "postgresql":
                got = await session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": self.lock_key})
                if not got:
                    return 0
            t = OutboxMessage.__table__
            fresh = await self._from_memory(session)
            if fresh is not None:
                ids, messages = fresh
                await self.bus.publish(messages)
                checkpoint("after_outbox_publish")
                await self._delete(session, ids)
                for topic, n in Counter(m.topic for m in messages).items():
                    EVENTS_EMITTED.labels(self.service, topic).inc(n)
                return len(ids)
            rows = (await session.execute(
                select(t.c.id, t.c.topic, t.c.key, t.c.value, t.c.headers)
                .where(t.c.service == self.service)
                .order_by(t.c.id)
                .limit(self.batch_size)
            )).all()
            if not rows:
                return 0
            await self.bus.publish([
                Message(r.topic, r.key, r.value, decode_headers(r.headers)) for r in rows
            ])
            checkpoint("after_outbox_publish")
            # Exactly the rows published: a row with a lower id may commit after this read.
            await self._delete(session, [r.id for r in rows])
        for topic, n in Counter(r.topic for r in rows).items():
            EVENTS_EMITTED.labels(self.service, topic).inc(n)
        return len(rows)

    async def _from_memory(self, session) -> tuple[list[int], list[Message]] | None:
        """The oldest rows of the table, from memory: the batches this process committed, if
        the first of them is the oldest row waiting and no row of another transaction sits
        between their ids; otherwise None, and what is in memory is forgotten (the table
        has it all)."""
        if not self._fresh:
            return None
        t = OutboxMessage.__table__
        ids: list[int] = []
        messages: list[Message] = []
        while self._fresh and len(ids) < self.batch_size:
            more_ids, more = self._fresh.popleft()
            ids += more_ids
            messages += more
        oldest, count = (await session.execute(
            select(func.min(t.c.id), func.count()).where(t.c.service == self.service, t.c.id <= max(ids)))).one()
        if oldest == ids[0] and count == len(ids):
            return ids, messages
        self._fresh.clear()
        return None

    async def _delete(self, session, ids: list[int]) -> None:
        """Exactly the rows published: a row with a lower id may commit after they were read."""
        t = OutboxMessage.__table__
        if self.db.dialect == "postgresql":
            await session.execute(text("DELETE FROM runtime_outbox WHERE id = ANY(CAST(:ids AS BIGINT[]))"),
                                  {"ids": ids})
        else:
            for start in range(0, len(ids), 500):
                await session.execute(delete(t).where(t.c.id.in_(ids[start:start + 500])))

    async def backlog(self) -> int:
        async with self.db.sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.service == self.service)
            )
        OUTBOX_BACKLOG.labels(self.service).set(count or 0)
        return count or 0
