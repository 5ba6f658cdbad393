"""A dry run of an operator job: the job's own code, every transaction of it inside one database
transaction that is rolled back at the end.

The job decides exactly as it would for real (the same queries, the same rules, each page
seeing what the pages before it wrote), so the answer's counts are the real run's; what it
would have emitted is collected from the outbox it wrote (:attr:`DryRun.emitted`). Nothing
escapes: the rows and the outbox are rolled back, so no event reaches the relay; the business
counters move only when a transaction commits (``BatchTransaction.after_commit``), which this
one never does.

A job takes the dry run where it takes the runtime: it offers the runtime's ``settings``,
``clock``, ``transaction(service, cause)`` and ``db.transaction()``, each of which is a part of
the one transaction. Not savepoints: SQLAlchemy reports a savepoint's release as a commit, which
would let the counters move. An error ends the whole dry run (nothing to undo).
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from shared.runtime.transaction import BatchTransaction

if TYPE_CHECKING:
    from shared.runtime.process import Runtime


@dataclass(frozen=True)
class Emitted:
    """An event a dry run would have published: its topic and its data."""

    topic: str
    data: dict[str, Any]


class _OneTransaction:
    """``runtime.db`` as a job uses it, on the dry run's one session."""

    def __init__(self, session: AsyncSession, dialect: str) -> None:
        self._session = session
        self.dialect = dialect

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        yield self._session


class DryRun:
    def __init__(self, runtime: "Runtime", session: AsyncSession) -> None:
        self._session = session
        self.settings = runtime.settings
        self.clock = runtime.clock
        self.db = _OneTransaction(session, runtime.db.dialect)
        self.emitted: list[Emitted] = []

    @classmethod
    @asynccontextmanager
    async def of(cls, runtime: "Runtime") -> AsyncIterator["DryRun"]:
        """A dry run on ``runtime``'s database, rolled back however the job ends."""
        async with runtime.db.sessions() as session:
            await session.begin()
            try:
                yield cls(runtime, session)
            finally:
                await session.rollback()

    @asynccontextmanager
    async def transaction(self, service: str, cause: str) -> AsyncIterator[BatchTransaction]:
        """What ``Runtime.transaction`` gives a job, inside the dry run's one transaction; the
        events it emits are kept in :attr:`emitted` instead of reaching the relay."""
        async with BatchTransaction(None, service, self.settings, cause=cause, within=self._session) as tx:
            yield tx
        self.emitted += [Emitted(m["topic"], json.loads(m["value"])) for m in tx.sent]

    def on(self, topic: str) -> list[dict[str, Any]]:
        """The data of the events it would have emitted on ``topic``, in order."""
        return [e.data for e in self.emitted if e.topic == topic]


PREVIEW_LIMIT = 50
"""How many items a dry run's preview lists unless the request asks for another number."""


class PreviewItem(BaseModel):
    """One thing a job would do: a customer put on watch or downgraded (``change`` is the tier
    change, ``from`` and ``to`` the tiers), or a signal raised (``change`` is the signal type,
    ``to`` the RM it would reach, null for the branch queue); ``reason`` says why."""

    model_config = ConfigDict(populate_by_name=True)

    customer_id: str
    change: str
    from_: str | None = Field(default=None, alias="from", serialization_alias="from")
    to: str | None = None
    reason: str
    evidence: dict[str, Any] | None = None


def preview_limit_field():
    return Field(default=PREVIEW_LIMIT, ge=0, le=1000,
                 description="with dry_run: how many items the preview lists at most")
