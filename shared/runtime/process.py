"""One process of Strata: the database, the bus, and for each service it runs a consumer loop
and an outbox relay. The distributed mode runs one service per process; the single-process mode
runs all five in one, on the in-memory bus and SQLite, through exactly the same code."""

from __future__ import annotations

import asyncio
import gc
import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator, Sequence

from shared import migrate
from shared.bus import Bus, build_bus
from shared.bus.base import BusUnavailable
from shared.bus.memory import MemoryBus
from shared.clock import BusinessClock
from shared.contracts.topics import all_topics
from shared.db import Database
from shared.money import set_max_amount
from shared.runtime.consumer import ConsumerLoop, check_partition_counts
from shared.runtime.errors import is_retryable
from shared.runtime.outbox import OutboxRelay
from shared.runtime.retry import Backoff
from shared.runtime.service import ServiceSpec
from shared.runtime.transaction import BatchTransaction
from shared.settings import Settings

log = logging.getLogger(__name__)


def tune_gc(settings: Settings) -> None:
    """Once per process, before serving: freeze what start-up loaded (modules, models, the
    app) out of the collector's way, and collect the young generation less often
    (``runtime.gc_young_threshold``). Not for a process that builds many runtimes (tests):
    what is frozen is never collected."""
    gc.collect()
    gc.freeze()
    young = settings.runtime.gc_young_threshold
    if young:
        # the older generations are scanned after 20 and 100 collections of the one below
        # (Python: 10 and 10); with the start-up objects frozen, full scans stay small anyway
        gc.set_threshold(young, 20, 100)


class Runtime:
    def __init__(self, settings: Settings, services: Sequence[ServiceSpec], *,
                 bus: Bus | None = None, db: Database | None = None, consume: bool = True,
                 clock: BusinessClock | None = None) -> None:
        self.settings = settings
        self.clock = clock or BusinessClock(settings.zone)
        set_max_amount(settings.limits.max_amount)
        """The process's business clock (``shared.clock``): the wall clock unless a simulated
        bank drives this process."""
        self.services = list(services)
        self.db = db or Database(settings.database_url, settings.database_pool_size)
        self.bus = bus or build_bus(settings)
        self.consume = consume
        self.relays: dict[str, OutboxRelay] = {}
        self.loops: dict[str, ConsumerLoop] = {}
        self._tasks: list[asyncio.Task] = []
        self.started = False

    async def start(self) -> None:
        """Migrate, connect to the bus (waiting while it is down), create topics, start loops."""
        await migrate.upgrade(self.db, [s.name for s in self.services])
        backoff = Backoff.of(self.settings)
        while True:
            try:
                await self.bus.start()
                await self.bus.ensure_topics(all_topics(), self.settings.kafka.partitions)
                break
            except Exception as exc:
                if not is_retryable(exc) and not isinstance(exc, BusUnavailable):
                    raise
                log.warning("bus not reachable at start-up, retrying", extra={"error": str(exc)[:200]})
                await backoff.wait()
        cfg = self.settings.runtime
        loops = {spec.name: ConsumerLoop(spec, self.db, self.bus, self.settings)
                 for spec in self.services if self.consume and spec.subscriptions}
        for name, loop in loops.items():
            await check_partition_counts(self.bus, name, loop.topics)
        for spec in self.services:
            relay = OutboxRelay(spec.name, self.db, self.bus, cfg.outbox_batch_size,
                                cfg.outbox_poll_interval_ms / 1000, cfg.retry_max_ms / 1000)
            self.relays[spec.name] = relay
            self._spawn(relay.run(), f"{spec.name}-outbox")
            if spec.name in loops:
                loop = loops[spec.name]
                loop.on_commit, loop.handoff = relay.wake, relay.offer
                self.loops[spec.name] = loop
                self._spawn(loop.run(), f"{spec.name}-consumer")
            for task in spec.background:
                self._spawn(task(self), f"{spec.name}-background")
        self._spawn(self._gauges(), "gauges")
        self._spawn(self._prune_forever(), "prune-processed")
        self.started = True

    def _spawn(self, coro, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._crashed)
        self._tasks.append(task)

    def run_in_background(self, coro, name: str) -> asyncio.Task:
        """Run an operator job (a tier-policy simulation, say) beside the loops and relays:
        it is cancelled at stop with them, and forgotten once it ends."""
        self._spawn(coro, name)
        task = self._tasks[-1]
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)
        return task

    def _crashed(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("background task died", extra={"task": task.get_name()},
                      exc_info=task.exception())

    async def prune_processed(self, now=None) -> int:
        """Forget processed event ids older than the retention, a few thousand at a time, so
        the idempotency table does not grow without bound. Returns how many were removed."""
        from datetime import datetime, timedelta, timezone

        from sqlalchemy import delete, select

        from shared.runtime.models import ProcessedEvent

        now = now or datetime.now(timezone.utc)
        cutoff = now - timedelta(days=self.settings.runtime.dedupe_retention_days)
        removed = 0
        for group in [loop.group for loop in self.loops.values()]:
            while True:
                async with self.db.transaction() as session:
                    ids = (await session.execute(
                        select(ProcessedEvent.event_id)
                        .where(ProcessedEvent.consumer == group, ProcessedEvent.processed_at < cutoff)
                        .limit(5000))).scalars().all()
                    if ids:
                        await session.execute(delete(ProcessedEvent).where(
                            ProcessedEvent.consumer == group, ProcessedEvent.event_id.in_(ids)))
                removed += len(ids)
                if len(ids) < 5000:
                    break
        return removed

    async def _prune_forever(self) -> None:
        while True:
            await asyncio.sleep(3600)
            try:
                await self.prune_processed()
            except Exception:  # the database may be down; try again next round
                log.warning("pruning processed event ids failed; retrying later")

    async def _gauges(self) -> None:
        from shared.metrics import READY

        while True:
            try:
                ok = all((await self.ready()).values())
            except Exception:
                ok = False
            for spec in self.services:
                READY.labels(spec.name).set(1 if ok else 0)
            for relay in self.relays.values():
                try:
                    await relay.backlog()
                except Exception:  # the database may be down; the readiness probe says so
                    pass
            await asyncio.sleep(self.settings.runtime.lag_interval_s)

    async def stop(self, drain_timeout: float = 30.0) -> None:
        """Graceful shutdown: consumers finish and commit the batch in hand, relays publish what
        is committed, then connections close. On the in-memory bus, which forgets what it holds
        when the process ends, every event already published is first consumed and every
        committed outbox row published (for at most ``drain_timeout`` seconds), so a stop loses
        nothing that a Kafka broker would have kept."""
        if isinstance(self.bus, MemoryBus) and self.consume and self.started:
            try:
                await self._drain_in_memory(drain_timeout)
            except Exception:  # the database gone too: stop anyway, in order
                log.exception("draining the in-memory bus at shutdown failed")
        for loop in self.loops.values():
            loop.stop()
        loops = [t for t in self._tasks if t.get_name().endswith("-consumer")]
        if loops:
            await asyncio.wait(loops, timeout=30)
        # A stopped relay publishes what is committed and then returns: waiting for it (rather
        # than cancelling it) never cuts a publish off from the delete that follows it.
        for relay in self.relays.values():
            relay.stop()
        relays = [t for t in self._tasks if t.get_name().endswith("-outbox")]
        if relays:
            _done, late = await asyncio.wait(relays, timeout=30)
            if late:
                log.warning("outbox not drained at shutdown; it is published at next start")
        for task in self._tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.bus.stop()
        await self.db.dispose()
        self.started = False

    async def _drain_in_memory(self, timeout: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        unconsumed = 0
        while asyncio.get_running_loop().time() < deadline:
            # by each loop's group (a loop that has not subscribed yet still has work waiting)
            unconsumed = sum([await self.bus.pending(loop.group, loop.topics) for loop in self.loops.values()])
            if not unconsumed and not sum([await r.backlog() for r in self.relays.values()]):
                return
            for relay in self.relays.values():
                relay.wake()
            await asyncio.sleep(0.05)
        log.warning("in-memory bus not drained within %.0f s at shutdown: %d events unconsumed",
                    timeout, unconsumed)

    @asynccontextmanager
    async def transaction(self, service: str, cause: str) -> AsyncIterator[BatchTransaction]:
        """The transaction of an API call that changes state and emits events: both commit
        together (``BatchTransaction.commit``), then the service's relay is woken to publish."""
        async with BatchTransaction(self.db, service, self.settings, cause=cause) as tx:
            relay = self.relays.get(service)
            if relay is not None:
                tx.handoff = relay.offer
            yield tx

    async def ready(self) -> dict[str, bool]:
        """What /readyz reports: the database and the bus answer now, and no consumer loop or
        relay has died."""
        db_ok, bus_ok = await asyncio.gather(self.db.ping(), self.bus.ping())
        def healthy(task: asyncio.Task) -> bool:
            if task.get_name().endswith(("-consumer", "-outbox")):
                return not task.done()
            # a background task may finish its work; it is unhealthy only if it failed
            return not task.done() or task.cancelled() or task.exception() is None

        loops_ok = all(healthy(t) for t in self._tasks) if self.started else False
        return {"database": db_ok, "bus": bus_ok, "consumers": loops_ok}
