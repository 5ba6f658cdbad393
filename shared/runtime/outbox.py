"""The outbox relay: publishes what handlers wrote to the outbox, in the order written."""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections import Counter

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
        self.lock_key = zlib.crc32(f"strata-outbox-{service}".encode()) & 0x7FFFFFFF

    def wake(self) -> None:
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
            ids = [r.id for r in rows]
            if self.db.dialect == "postgresql":
                await session.execute(text("DELETE FROM runtime_outbox WHERE id = ANY(CAST(:ids AS BIGINT[]))"),
                                      {"ids": ids})
            else:
                for start in range(0, len(ids), 500):
                    await session.execute(delete(t).where(t.c.id.in_(ids[start:start + 500])))
        for topic, n in Counter(r.topic for r in rows).items():
            EVENTS_EMITTED.labels(self.service, topic).inc(n)
        return len(rows)

    async def backlog(self) -> int:
        async with self.db.sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.service == self.service)
            )
        OUTBOX_BACKLOG.labels(self.service).set(count or 0)
        return count or 0
