"""All five services as separate ``strata serve`` processes on one database and one topic
prefix, fed the seeded feed phase by phase, with a watchdog that restarts a process the fault
plan killed.

A fault test builds a :class:`Stack` (``tests.faults.conftest.faulted_run``), starts it
(optionally with a schedule of ``STRATA_FAULTS`` plans per service), registers the RMs, sends
the feed with :meth:`Stack.send` (which can run a disturbance in the middle of the stream
phase and waits, after each phase, for every consumer group and outbox to drain), and compares
:func:`tests.faults.snapshot.snapshot` with the reference run's.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

import httpx

from shared import migrate
from shared.access import ACCESS_TOPICS
from shared.auth import issue_token
from shared.bus.base import Message
from shared.bus.kafka import KafkaBus
from shared.contracts.cloudevents import encode_binary
from shared.contracts.topics import all_topics
from shared.db import Database
from shared.settings import Settings
from strata.processes import ServiceProcess
from strata.registry import load
from tests.faults.feed import FaultFeed


SERVICES = ("profile", "tiering", "alerts", "pricing", "assignment")
PUBLISH_BATCH = 500


def consumer_groups(prefix: str) -> dict[str, list[str]]:
    """Each service's consumer group and the (logical) topics it reads, as its loop has them."""
    groups = {}
    for name in SERVICES:
        spec = load(name)
        topics = list(spec.subscriptions) + (list(ACCESS_TOPICS) if spec.keeps_access else [])
        groups[f"{prefix}strata.{name}"] = list(dict.fromkeys(topics))
    return groups


@dataclass
class Stack:
    kafka: str
    database_url: str
    prefix: str = field(default_factory=lambda: f"x{uuid.uuid4().hex[:8]}.")
    partitions: int = 3
    instances: int = 1
    batch_size: int = 100
    max_lateness_s: float = 0.0
    """``runtime.max_lateness_s`` of every service: how long a quiet topic is waited for."""
    procs: dict[str, list[ServiceProcess]] = field(default_factory=dict)
    kills: list[tuple[str, int, str | None]] = field(default_factory=list)
    """(service, return code, the fault plan it ran with) of every death the watchdog saw."""
    crashes: list[str] = field(default_factory=list)
    """Deaths nobody planned: a test fails on any."""

    def __post_init__(self) -> None:
        self.settings = Settings()
        self._watch_task: asyncio.Task | None = None
        self._held: set[int] = set()  # ids of processes a test stopped on purpose
        self._plans: dict[int, list[str]] = {}  # fault plans still to run, per process
        self.faults_now: dict[int, str | None] = {}
        self.timings: list[tuple[str, float]] = []
        """(step, seconds) of the run, printed by the tests (``pytest -s``) to see where time goes."""
        self._began = time.monotonic()

    # --- processes ------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        return {
            "STRATA_BUS": "kafka",
            "STRATA_DATABASE_URL": self.database_url,
            "STRATA_DATABASE_POOL_SIZE": "4",
            "STRATA_KAFKA__BOOTSTRAP_SERVERS": self.kafka,
            "STRATA_KAFKA__TOPIC_PREFIX": self.prefix,
            "STRATA_KAFKA__GROUP_PREFIX": self.prefix + "strata",
            "STRATA_KAFKA__PARTITIONS": str(self.partitions),
            "STRATA_RUNTIME__BATCH_SIZE": str(self.batch_size),
            "STRATA_RUNTIME__MAX_LATENESS_S": str(self.max_lateness_s),
            # idle processes poll; on two cores ten of them polling every 50 ms cost a core
            "STRATA_RUNTIME__POLL_TIMEOUT_MS": "100",
            "STRATA_RUNTIME__OUTBOX_POLL_INTERVAL_MS": "200",
            "STRATA_RUNTIME__RETRY_INITIAL_MS": "100",
            "STRATA_RUNTIME__RETRY_MAX_MS": "1000",
            "STRATA_RUNTIME__LAG_INTERVAL_S": "2",
            "STRATA_LOG_LEVEL": "WARNING",
            # dozens of process starts: compile the code once, cached outside the repository
            "PYTHONDONTWRITEBYTECODE": "",
            "PYTHONPYCACHEPREFIX": str(Path(tempfile.gettempdir()) / "strata-faults-pycache"),
        }

    async def prepare(self) -> None:
        """Topics and schema made once here, so the five processes do not race to make them."""
        bus = KafkaBus(self.kafka, topic_prefix=self.prefix)
        await bus.start()
        try:
            await bus.ensure_topics(all_topics(), self.partitions)
        finally:
            await bus.stop()
        db = Database(self.database_url, 2)
        try:
            await migrate.upgrade(db, SERVICES)
        finally:
            await db.dispose()
        self.mark("topics and schema")

    async def start(self, faults: dict[str, list[str]] | None = None) -> "Stack":
        """Start every instance of every service and wait until all answer /readyz.

        ``faults``: per service, ``STRATA_FAULTS`` plans for its first instance, one after the
        other: it starts with the first; each time a plan kills it, the watchdog starts it again
        with the next (and with none once they are used up)."""
        env = self.env()
        for name in SERVICES:
            if name not in self.procs:
                self.procs[name] = [ServiceProcess(name, env) for _ in range(self.instances)]
            for n, proc in enumerate(self.procs[name]):
                plans = list((faults or {}).get(name, ())) if n == 0 else []
                self._plans[id(proc)] = plans[1:]
                proc.start(faults=plans[0] if plans else None)
                self.faults_now[id(proc)] = plans[0] if plans else None
        self._held.clear()
        if self._watch_task is None:
            self._watch_task = asyncio.create_task(self._watch(), name="fault-watchdog")
        try:
            await self.wait_ready()
        except BaseException:
            await self.close()
            raise
        self.mark("started")
        return self

    def mark(self, step: str) -> None:
        now = time.monotonic()
        self.timings.append((step, round(now - self._began, 1)))
        self._began = now

    def all(self) -> list[ServiceProcess]:
        return [p for procs in self.procs.values() for p in procs]

    async def wait_ready(self, timeout: float = 120.0) -> None:
        await asyncio.gather(*(p.wait_ready(timeout) for p in self.all() if id(p) not in self._held))

    def hold(self, proc: ServiceProcess) -> None:
        """The watchdog leaves this process down until :meth:`release`."""
        self._held.add(id(proc))

    def release(self, proc: ServiceProcess) -> None:
        self._held.discard(id(proc))

    async def _watch(self) -> None:
        """Restart a process that died: SIGKILL (-9) is the fault plan at work; anything else
        is a crash, recorded for the test to fail on, and restarted too so the run can end."""
        while True:
            for proc in self.all():
                if id(proc) in self._held or proc.proc is None or proc.proc.poll() is None:
                    continue
                code = proc.proc.returncode
                self.kills.append((proc.service, code, self.faults_now.get(id(proc))))
                if code != -9:
                    self.crashes.append(f"{proc.service} exited with {code}: {proc.tail(30)}")
                plans = self._plans.get(id(proc)) or []
                plan = plans.pop(0) if plans else None
                proc.start(faults=plan)
                self.faults_now[id(proc)] = plan
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        """SIGTERM every process (graceful: the batch in hand is finished and committed)."""
        for proc in self.all():
            self.hold(proc)
        await asyncio.gather(*(asyncio.to_thread(p.terminate) for p in self.all()))

    async def close(self) -> None:
        await self.stop()
        if self._watch_task is not None:
            self._watch_task.cancel()
            await asyncio.gather(self._watch_task, return_exceptions=True)
            self._watch_task = None

    def url(self, service: str, path: str, instance: int = 0) -> str:
        return f"http://127.0.0.1:{self.procs[service][instance].port}{path}"

    def admin_headers(self) -> dict[str, str]:
        auth = self.settings.auth
        token = issue_token(auth.secret.get_secret_value(), "admin", ttl_minutes=60, issuer=auth.issuer,
                            algorithm=auth.algorithm, subject="fault-tests")
        return {"Authorization": f"Bearer {token}"}

    # --- the feed -------------------------------------------------------------------------

    async def register_rms(self, rms: list[dict]) -> None:
        async with httpx.AsyncClient(timeout=30, headers=self.admin_headers()) as client:
            for body in rms:
                r = await client.put(self.url("assignment", f"/v1/rms/{body['rm_id']}"), json=body)
                assert r.status_code == 200, r.text
        self.mark("RMs registered")

    async def send(self, feed: FaultFeed, *, during: Callable[["Stack"], Awaitable[None]] | None = None,
                   settle_timeout: float = 240.0) -> None:
        """Publish the feed phase by phase, waiting for the services to drain each one. With
        ``during``, the stream phase goes out in two halves and ``during`` runs once the
        services are busy with the first half (they still have most of it to read)."""
        bus = KafkaBus(self.kafka, topic_prefix=self.prefix, client_id="fault-feed")
        await bus.start()
        try:
            for name, events in feed.phases:
                if name == "stream" and during is not None:
                    half = len(events) // 2
                    await _publish(bus, events[:half])
                    await self.wait_busy(bus)
                    self.mark("stream, first half in")
                    await during(self)
                    self.mark("disturbance")
                    await _publish(bus, events[half:])
                else:
                    await _publish(bus, events)
                # a floor of 100 events/s, far below the pipeline's rate, so a soak run of a
                # hundred thousand postings fails on a stall, not on its own size
                await self.settle(max(settle_timeout, len(events) / 100))
                self.mark(name)
        finally:
            await bus.stop()

    async def wait_busy(self, bus: KafkaBus, timeout: float = 60.0) -> None:
        """Until tiering has read some of what is waiting for it."""
        group = f"{self.prefix}strata.tiering"
        topics = consumer_groups(self.prefix)[group]
        first = await bus.pending(group, topics)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await bus.pending(group, topics) < first * 0.8:
                return
            await asyncio.sleep(0.05)

    async def settle(self, timeout: float = 240.0) -> None:
        """Until every consumer group has committed every offset of its topics and no outbox
        holds a row, three checks in a row (an event in flight between a relay and a topic shows
        in one of the two). Outages are waited through."""
        deadline = time.monotonic() + timeout
        groups = consumer_groups(self.prefix)
        quiet = 0
        last = "nothing checked"
        db = Database(self.database_url, 1)
        bus: KafkaBus | None = None
        try:
            while quiet < 3:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the services did not drain the feed in {timeout:.0f} s: {last}\n"
                                       + self.tails())
                try:
                    if bus is None:
                        bus = KafkaBus(self.kafka, topic_prefix=self.prefix, client_id="fault-settle")
                        await bus.start()
                    pending = {g: await bus.pending(g, t) for g, t in groups.items()}
                    backlog = await _outbox_rows(db)
                except Exception as exc:  # noqa: BLE001 - an outage in progress: wait it out
                    last = f"{type(exc).__name__}: {exc}"
                    if bus is not None:
                        await _quietly(bus.stop())
                        bus = None
                    quiet = 0
                    await asyncio.sleep(0.5)
                    continue
                busy = {g.rsplit(".", 1)[-1]: n for g, n in pending.items() if n}
                if busy or backlog:
                    last = f"pending {busy}, outbox {backlog}"
                    quiet = 0
                else:
                    quiet += 1
                await asyncio.sleep(0.2)
        finally:
            if bus is not None:
                await _quietly(bus.stop())
            await db.dispose()

    def tails(self, lines: int = 8) -> str:
        return "\n".join(f"--- {p.service}:{p.port}\n{p.tail(lines)}" for p in self.all())


async def _publish(bus: KafkaBus, events) -> None:
    for start in range(0, len(events), PUBLISH_BATCH):
        await bus.publish([Message(e.topic, *encode_binary(e)) for e in events[start:start + PUBLISH_BATCH]])


async def _outbox_rows(db: Database) -> int:
    from sqlalchemy import func, select

    from shared.runtime.models import OutboxMessage

    async with db.sessions() as session:
        return await session.scalar(select(func.count()).select_from(OutboxMessage)) or 0


async def _quietly(awaitable) -> None:
    try:
        await awaitable
    except Exception:  # noqa: BLE001 - cleanup of a client whose broker may be gone
        pass


async def read_topic(kafka: str, topic: str) -> list[tuple[str, bytes]]:
    """Every record of a physical topic, start to end, as (ce_id, value): duplicates included
    (a relay killed between publish and delete sends a row again; consumers drop it by id)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, enable_auto_commit=False, client_id="fault-reader")
    await consumer.start()
    out = []
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not parts:
            await consumer._client.force_metadata_update()
            parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        remaining = {tp for tp in parts if ends[tp] > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000, max_records=5000)
            for tp, records in batch.items():
                for r in records:
                    out.append((dict(r.headers)["ce_id"].decode(), r.value))
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return out
