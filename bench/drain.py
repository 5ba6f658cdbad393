"""A service (or the whole pipeline) as separate processes, draining preloaded topics."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field

from sqlalchemy import func, select

from shared.bus.kafka import KafkaBus
from shared.db import Database
from shared.runtime.models import OutboxMessage
from pathlib import Path

from strata.processes import REPO, ServiceProcess


@dataclass
class Deployment:
    """Fresh database and topic prefix, service processes started on demand."""

    bootstrap: str
    database_url: str
    partitions: int = 6
    prefix: str = field(default_factory=lambda: f"b{uuid.uuid4().hex[:8]}.")
    processes: list[ServiceProcess] = field(default_factory=list)
    peak_rss: dict[str, int] = field(default_factory=dict)
    code: Path = REPO
    """The checkout the services run from (another commit's, side by side)."""
    python: str = field(default_factory=lambda: __import__("sys").executable)
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {
            "STRATA_BUS": "kafka", "STRATA_DATABASE_URL": self.database_url,
            "STRATA_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap,
            "STRATA_KAFKA__TOPIC_PREFIX": self.prefix,
            "STRATA_KAFKA__GROUP_PREFIX": self.prefix + "strata",
            "STRATA_KAFKA__PARTITIONS": str(self.partitions),
            "STRATA_LOG_LEVEL": "WARNING",
            **self.extra_env,
        }

    async def start(self, services: list[str]) -> None:
        for name in services:
            proc = ServiceProcess(name, self.env(), code=self.code, python=self.python).start()
            self.processes.append(proc)
        for proc in self.processes:
            await proc.wait_ready(120)

    def sample_rss(self) -> None:
        for proc in self.processes:
            _rss, peak = proc.rss_bytes()
            self.peak_rss[proc.service] = max(self.peak_rss.get(proc.service, 0), peak)

    def stop(self) -> None:
        self.sample_rss()
        for proc in self.processes:
            proc.terminate()
        self.processes.clear()


async def wait_drained(dep: Deployment, groups: dict[str, list[str]], total_in: int,
                       timeout: float = 3600) -> dict:
    """Wait until every group has committed everything and the outbox is empty; the rate is
    measured from the first progress, so start-up and group joins are not counted."""
    bus = KafkaBus(dep.bootstrap, topic_prefix=dep.prefix)
    await bus.start()
    db = Database(dep.database_url)
    first_progress = None
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < timeout:
            pending = 0
            for group, topics in groups.items():
                pending += await bus.pending(dep.prefix + "strata." + group, topics)
            dep.sample_rss()
            if first_progress is None and pending < total_in:
                first_progress = time.perf_counter()
            if pending == 0:
                async with db.sessions() as session:
                    backlog = await session.scalar(select(func.count()).select_from(OutboxMessage))
                if not backlog:
                    break
            await asyncio.sleep(0.25)
        else:
            raise TimeoutError("not drained")
        done = time.perf_counter()
    finally:
        await bus.stop()
        await db.dispose()
    seconds = done - (first_progress or started)
    return {"events": total_in, "seconds": round(seconds, 2),
            "events_per_s": round(total_in / max(seconds, 1e-9))}
