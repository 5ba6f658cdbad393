"""What a service is to the runtime: its name, the topics it handles and its HTTP routes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Awaitable, Callable, Protocol

from fastapi import APIRouter

from shared.contracts.cloudevents import Event
from shared.runtime.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from shared.runtime.process import Runtime


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
