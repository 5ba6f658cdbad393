"""A harness for driving Strata from tests and scripts: publish events the way core banking
does, wait until every service has caught up, and call the API with a token of any role.

Works on the single-process mode (in-memory bus, SQLite) and on the distributed adapters (real
Kafka and PostgreSQL) alike, since it only uses the bus and database interfaces.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any, Sequence

import httpx
from pydantic import BaseModel
from sqlalchemy import func, select

from shared.audit import PURPOSE_HEADER
from shared.auth import issue_token
from shared.bus.base import Message
from shared.bus.memory import MemoryBus
from shared.contracts.cloudevents import Event, encode_binary, new_event
from shared.http import create_app
from shared.runtime.models import OutboxMessage
from shared.runtime.process import Runtime
from shared.runtime.service import ServiceSpec
from shared.settings import Settings


TEST_PURPOSE = "automated test"


class Harness:
    def __init__(self, settings: Settings, services: Sequence[ServiceSpec]) -> None:
        self.settings = settings
        self.runtime = Runtime(settings, services)
        self.app = create_app(self.runtime, manage_runtime=False)
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                        base_url="http://strata.test")

    async def start(self) -> "Harness":
        await self.runtime.start()
        return self

    async def stop(self) -> None:
        await self.client.aclose()
        await self.runtime.stop()

    # --- events -----------------------------------------------------------------------------

    def event(self, data: BaseModel, *, id: str | None = None, time: datetime | None = None) -> Event:
        return new_event(data, "core-banking", id=id, time=time)

    async def publish(self, *items: BaseModel | Event) -> list[Event]:
        """Publish contract data (or ready events) in binary mode, as core banking does."""
        events = [i if isinstance(i, Event) else self.event(i) for i in items]
        messages = []
        for event in events:
            key, value, headers = encode_binary(event)
            messages.append(Message(event.topic, key, value, headers))
        await self.runtime.bus.publish(messages)
        return events

    async def publish_raw(self, topic: str, value: bytes, headers: list[tuple[str, bytes]] | None = None,
                          key: bytes | None = b"raw") -> None:
        await self.runtime.bus.publish([Message(topic, key, value, headers or [])])

    async def settle(self, timeout: float = 30.0) -> None:
        """Wait until every consumer has committed everything and every outbox is empty,
        twice in a row (a handler may emit events that other services then consume)."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while quiet < 2:
            if time.monotonic() > deadline:
                raise TimeoutError("Strata did not settle")
            if await self._idle():
                quiet += 1
            else:
                quiet = 0
            await asyncio.sleep(0.01)

    async def _idle(self) -> bool:
        bus = self.runtime.bus
        if isinstance(bus, MemoryBus):
            if bus.uncommitted():
                return False
        else:
            for loop in self.runtime.loops.values():
                if await bus.pending(loop.group, loop.topics):
                    return False
        async with self.runtime.db.sessions() as session:
            backlog = await session.scalar(select(func.count()).select_from(OutboxMessage))
        return not backlog

    # --- HTTP -------------------------------------------------------------------------------

    def token(self, role: str, *, rm_id: str | None = None, branch_id: str | None = None,
              ttl_minutes: int = 60, purpose: str | None = TEST_PURPOSE) -> dict[str, str]:
        """The headers of a caller with this role: the bearer token and, unless ``purpose`` is
        None, the stated purpose that audited reads require (``shared.audit``)."""
        token = issue_token(self.settings.auth.secret.get_secret_value(), role, rm_id=rm_id,
                            branch_id=branch_id, ttl_minutes=ttl_minutes)
        headers = {"Authorization": f"Bearer {token}"}
        if purpose is not None:
            headers[PURPOSE_HEADER] = purpose
        return headers

    async def get(self, path: str, role: str = "admin", **kw: Any) -> httpx.Response:
        return await self.client.get(path, headers=self.token(role, **_ids(kw)), params=kw.get("params"))

    async def post(self, path: str, json: Any = None, role: str = "admin", **kw: Any) -> httpx.Response:
        return await self.client.post(path, json=json, headers=self.token(role, **_ids(kw)))


def _ids(kw: dict[str, Any]) -> dict[str, Any]:
    return {k: kw[k] for k in ("rm_id", "branch_id") if k in kw}
