"""What a service is to the runtime: its name, the topics it handles and its HTTP routes."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Awaitable, Callable, Protocol

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from shared.contracts.cloudevents import Event
from shared.runtime.errors import is_retryable
from shared.runtime.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from shared.runtime.process import Runtime
    from shared.settings import Settings

log = logging.getLogger(__name__)


class Handler(Protocol):
    async def __call__(self, event: Event, uow: UnitOfWork) -> None: ...


@dataclass(frozen=True)
class ServiceSpec:
    """One of Strata's five services, as every process wires it.

    ``subscriptions`` maps a topic to the handler of its events; ``routers`` are mounted on the
    service's FastAPI app (and on the single-process app); ``background`` tasks run for the life
    of the process (e.g. periodic gauges).
    """

    name: str
    subscriptions: dict[str, Handler]
    routers: tuple[APIRouter, ...] = ()
    emits: tuple[str, ...] = ()
    background: tuple[Callable[["Runtime"], Awaitable[None]], ...] = field(default_factory=tuple)
    prefetch: Callable[[list[Event], UnitOfWork], Awaitable[None]] | None = None
    """Load what a whole batch needs in a few queries before its handlers run (into
    ``uow.batch`` or the session), instead of one query per event."""
    keeps_access: bool = True
    """Keep this service's copy of who may see which customer (see ``shared.access``)."""


def business_gauges(refresh: Callable[[AsyncSession, "Settings"], Awaitable[None]]
                    ) -> Callable[["Runtime"], Awaitable[None]]:
    """A background task that runs ``refresh(session, settings)`` now and then every
    ``runtime.business_gauges_interval_s``: the counts behind a service's business dashboard,
    each a scan of its customers. A database outage leaves the gauges at their last values
    (readiness reports the outage); any other failure, an overflow included
    (``errors.is_data_fault``), is logged and tried again next time."""

    async def gauges(runtime: "Runtime") -> None:
        while True:
            try:
                async with runtime.db.sessions() as session:
                    await refresh(session, runtime.settings)
            except Exception as exc:
                if not is_retryable(exc):
                    log.exception("business gauges failed", extra={"refresh": refresh.__qualname__})
            await asyncio.sleep(runtime.settings.runtime.business_gauges_interval_s)

    return gauges
