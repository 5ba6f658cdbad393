"""What a service is to the runtime: its name, the topics it handles and its HTTP routes."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Literal, Protocol

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from shared.contracts.cloudevents import Event
from shared.runtime.errors import is_retryable
from shared.runtime.transaction import BatchTransaction

if TYPE_CHECKING:
    from shared.settings import Settings

log = logging.getLogger(__name__)


class Handler(Protocol):
    async def __call__(self, event: Event, tx: BatchTransaction) -> None: ...


class BatchStateType(Protocol):
    """A service's state for one batch: loaded for the batch's new events before its handlers
    run (a few set-based reads), changed by the handlers as plain values, and written at commit
    (one statement per table)."""

    async def load(self, tx: BatchTransaction, events: list[Event]) -> Any: ...


class Process(Protocol):
    """What a background task gets of the process it runs in (``shared.runtime.process.Runtime``)."""

    db: Any
    settings: "Settings"


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
    background: tuple[Callable[[Process], Awaitable[None]], ...] = field(default_factory=tuple)
    state: BatchStateType | None = None
    """The class of the service's batch state (``load(tx, events)``), set as ``tx.state``."""
    keeps_access: bool = True
    """Keep this service's copy of who may see which customer (see ``shared.access``)."""
    ordered: tuple[str, ...] = ()
    """Topics whose records are applied in event-time order across them (``shared.runtime.order``),
    in the rank that breaks ties of one instant; other topics are applied as they arrive."""
    order_scope: Literal["task", "all"] = "task"
    """``task``: the order holds within each partition number (every customer's records);
    ``all``: across every partition the instance holds (one order for all customers)."""
    upstream_orders: int = 0
    """How many event-time orders the ordered topics' records went through before (1 for
    ``strata.tiering.changes``, which tiering writes in its order). Each may hold one partition's
    records up to ``max_lateness`` behind another's, so a quiet partition of them is waited for
    that much longer: ``(1 + upstream_orders) * max_lateness``, and ``runtime.stream_wait_s``
    more (the upstream service writes its partitions in turns, batch by batch)."""


def business_gauges(refresh: Callable[[AsyncSession, "Settings"], Awaitable[None]]
                    ) -> Callable[[Process], Awaitable[None]]:
    """A background task that runs ``refresh(session, settings)`` now and then every
    ``runtime.business_gauges_interval_s``: the counts behind a service's business dashboard,
    each a scan of its customers. A database outage leaves the gauges at their last values
    (readiness reports the outage); any other failure, an overflow included
    (``errors.is_data_fault``), is logged and tried again next time."""

    async def gauges(runtime: Process) -> None:
        while True:
            try:
                async with runtime.db.sessions() as session:
                    await refresh(session, runtime.settings)
            except Exception as exc:
                if not is_retryable(exc):
                    log.exception("business gauges failed", extra={"refresh": refresh.__qualname__})
            await asyncio.sleep(runtime.settings.runtime.business_gauges_interval_s)

    return gauges
