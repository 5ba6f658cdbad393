"""What a handler gets: the open transaction and a way to emit events through the outbox."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from pydantic import BaseModel
from sqlalchemy import Table, insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.contracts.cloudevents import Event, encode_binary, new_event
from shared.contracts.topics import event_type_on
from shared.runtime.models import OutboxMessage

if TYPE_CHECKING:
    from shared.settings import Settings

_LATER = "uow.insert_later"
"""The key in ``batch`` of the rows queued by ``insert_later``, by table."""

EVENT_NAMESPACE = uuid.UUID("6f1c9a52-3f0e-4f43-9a57-51a2a3f0c001")


def derived_event_id(*parts: str) -> str:
    """A deterministic event id: the same cause always yields the same id, so a re-run of a
    handler (after a crash before commit) or a replay emits events downstream already know."""
    return str(uuid.uuid5(EVENT_NAMESPACE, "\x1f".join(parts)))


@dataclass
class UnitOfWork:
    """One event's (or one API call's) share of a transaction.

    ``batch`` is scratch space shared by the handlers of one batch attempt (e.g. rows a
    service prefetched for the whole batch); it lives exactly as long as the transaction, so
    a rolled-back attempt leaves nothing behind. ``outbox`` collects emitted messages, written
    with one bulk insert before the transaction commits (``flush``).
    """

    session: AsyncSession
    service: str
    settings: "Settings"
    cause: str = "api"
    batch: dict = field(default_factory=dict)
    outbox: list[dict] = field(default_factory=list)
    emitted: int = 0

    def emit(self, data: BaseModel, *, key: str | None = None, stable_id: str | None = None,
             time: datetime | None = None, topic: str | None = None) -> Event:
        """Write ``data`` as an event to the outbox in this transaction.

        The event id is derived from the cause and ``key`` (which tells apart several events of
        one type caused by the same thing), so it is stable across re-runs. ``stable_id`` names
        the business fact instead (e.g. ``posting:P17``) when the same fact may arrive under
        several causes and must still reach consumers as one event.

        The event goes to its model's own topic, or to ``topic`` with the type registered there
        for the model (``topics.event_type_on``).
        """
        n = self.emitted
        self.emitted += 1
        if stable_id is not None:
            event_id = derived_event_id(self.service, stable_id)
        else:
            event_id = derived_event_id(self.service, self.cause, type(data).__name__, key or str(n))
        etype = event_type_on(topic, type(data)) if topic is not None else None
        event = new_event(data, f"/strata/{self.service}", id=event_id, time=time, etype=etype)
        k, value, headers = encode_binary(event)
        self.add_message(event.topic, k, value, headers)
        return event

    def add_message(self, topic: str, key: bytes | None, value: bytes,
                    headers: list[tuple[str, bytes]]) -> None:
        self.outbox.append({
            "service": self.service,
            "topic": topic,
            "key": key,
            "value": value,
            "headers": encode_headers(headers),
            "created_at": datetime.now(timezone.utc),
        })

    def insert_later(self, table: Table, row: dict) -> None:
        """Queue an append-only row (a fee, a ledger entry) for one INSERT of all such rows at
        the end of the transaction (:meth:`flush`), in the order queued. For rows nothing reads
        back in the same transaction: an ORM object per row cost more than pricing itself.
        Every row of one table must name the same columns."""
        self.batch.setdefault(_LATER, {}).setdefault(table, []).append(row)

    async def flush(self) -> None:
        """Write the rows queued by :meth:`insert_later`, then the collected outbox messages,
        in the order emitted (ids ascend with it).

        On PostgreSQL one INSERT takes the whole outbox batch as arrays: an executemany, or the
        ORM's bulk insert, costs the consumer more CPU per row than the handler that emitted it."""
        for table, rows in self.batch.pop(_LATER, {}).items():
            await self.session.execute(insert(table), rows)
        if not self.outbox:
            return
        if self.session.get_bind().dialect.name == "postgresql":
            rows = self.outbox
            await self.session.execute(_OUTBOX_INSERT, {
                "service": [r["service"] for r in rows], "topic": [r["topic"] for r in rows],
                "key": [r["key"] for r in rows], "value": [r["value"] for r in rows],
                "headers": [r["headers"] for r in rows], "created_at": [r["created_at"] for r in rows],
            })
        else:
            await self.session.execute(insert(OutboxMessage), self.outbox)
        self.outbox.clear()


_OUTBOX_INSERT = text(
    "INSERT INTO runtime_outbox (service, topic, key, value, headers, created_at) "
    "SELECT service, topic, key, value, headers, created_at FROM unnest("
    "  CAST(:service AS VARCHAR[]), CAST(:topic AS VARCHAR[]), CAST(:key AS BYTEA[]),"
    "  CAST(:value AS BYTEA[]), CAST(:headers AS TEXT[]), CAST(:created_at AS TIMESTAMPTZ[])"
    ") WITH ORDINALITY AS m(service, topic, key, value, headers, created_at, n) ORDER BY n"
)
"""PostgreSQL: the outbox rows of one batch in one statement; ``ORDER BY n`` keeps the ids
(from the sequence) in the order the rows were emitted."""


def encode_headers(headers: list[tuple[str, bytes | None]]) -> str:
    """Headers as the outbox keeps them, losslessly: ``[name, text]`` for a UTF-8 value (what
    Strata writes, readable in the table), ``[name, {"base64": ...}]`` for any other bytes (a
    dead letter keeps its producer's headers byte for byte), ``[name, null]`` for none."""
    return json.dumps([[k, _header_text(v)] for k, v in headers])


def _header_text(value: bytes | None) -> str | dict | None:
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(value).decode("ascii")}


def decode_headers(text: str) -> list[tuple[str, bytes | None]]:
    """The headers :func:`encode_headers` stored (rows written before base64 read as text)."""
    return [(k, base64.b64decode(v["base64"]) if isinstance(v, dict) else None if v is None else v.encode())
            for k, v in json.loads(text)]
