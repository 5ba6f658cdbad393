"""A batch's transaction: the one object through which a consumer's batch, or an API call that
changes state, reads and writes the database and emits events.

It holds the session, the state the batch works on (each service's own typed state, loaded
once for all the batch's keys), the rows to append, the outbox, the processed event ids and
what to do once it has committed; :meth:`BatchTransaction.commit` writes them in one order, in
one function, each step named where it is done.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Protocol

from pydantic import BaseModel
from sqlalchemy import Table, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.bus.base import Message
from shared.contracts.cloudevents import Event, encode_binary, new_event
from shared.contracts.topics import event_type_on
from shared.runtime.models import OutboxMessage, ProcessedEvent

if TYPE_CHECKING:
    from shared.db import Database
    from shared.settings import Settings

EVENT_NAMESPACE = uuid.UUID("6f1c9a52-3f0e-4f43-9a57-51a2a3f0c001")


def derived_event_id(*parts: str) -> str:
    """A deterministic event id: the same cause always yields the same id, so a re-run of a
    handler (after a crash before commit) or a replay emits events downstream already know.

    The UUID version 5 of the parts in :data:`EVENT_NAMESPACE`, as ``uuid.uuid5`` makes it,
    without building a ``UUID`` object (it was a tenth of a consumer's time).

    >>> derived_event_id("tiering", "x") == str(uuid.uuid5(EVENT_NAMESPACE, "tiering\x1fx"))
    True
    """
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + "\x1f".join(parts).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_NAMESPACE_BYTES = EVENT_NAMESPACE.bytes


class State(Protocol):
    """What a batch works on, loaded before its handlers run: written at commit."""

    async def write(self, tx: "BatchTransaction") -> None: ...


class ConcurrentlyProcessed(Exception):
    """Another member of the consumer group applied some of these events first (a rebalance):
    the batch is rolled back and run again, and the run skips them."""


class BatchTransaction:
    """One database transaction of a consumer's batch of events, or of one API call.

    Handlers read and change ``state`` (the service's typed state for the batch: plain values,
    loaded for all the batch's keys before the first handler runs), emit events with
    :meth:`emit`, append rows nothing reads back with :meth:`append` and count business metrics
    with :meth:`after_commit`. Nothing reaches the database before :meth:`commit`, and nothing
    of a transaction that rolls back survives it: a re-run starts from a fresh one.
    """

    def __init__(self, db: "Database | None", service: str, settings: "Settings", *, cause: str = "api",
                 group: str | None = None, within: AsyncSession | None = None) -> None:
        self.db = db
        self.service = service
        self.settings = settings
        self.group = group
        self.cause = cause
        self.within = within
        """A session that outlives this transaction (a dry run's): everything is written into
        it, nothing is committed and no after-commit action runs; its owner rolls it back."""
        self.session: AsyncSession = within if within is not None else db.sessions()
        self.sent: list[dict] = []
        """Every message added to the outbox, in order (what a dry run reports)."""
        self.state: Any = None
        self.access: Any = None
        """The access projection's rows of the batch (``shared.access.AccessState``)."""
        self.states: list[State] = []
        self.outbox: list[dict] = []
        self._appended: dict[Table, list[dict]] = {}
        self._after: list[Callable[[], None]] = []
        self._processed: list[str] = []
        self._emitted = 0
        self.handoff: Callable[[list[int], list], None] | None = None
        """Given the outbox rows' ids and messages once committed (the service's relay, which
        then publishes them from memory)."""
        self._written: tuple[list[int], list] = ([], [])
        self.committed = False

    # --- the transaction ------------------------------------------------------------------

    async def __aenter__(self) -> "BatchTransaction":
        if self.within is None:
            await self.session.begin()
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        if self.within is not None:
            if exc_type is None:
                await self.commit()
            return
        try:
            if exc_type is None:
                await self.commit()
            else:
                await self.session.rollback()
        finally:
            await self.session.close()

    async def commit(self) -> None:
        """Write everything and commit, in this order:

        1. state: each state object's rows (the service's, the access projection), one
           statement per table;
        2. appended rows (fees, ledger entries, history), in the order appended, one statement
           per table;
        3. the outbox: emitted events and dead letters, in the order emitted (their ids ascend
           with it, which is the order the relay publishes);
        4. the processed event ids of a consumer's batch; if another instance recorded one of
           them first, the transaction is rolled back (:class:`ConcurrentlyProcessed`) and the
           batch runs again, skipping it;
        5. COMMIT;
        6. the after-commit actions: business metrics, waking the relay. A transaction that
           rolls back runs none of them, so a batch run again is counted once.
        """
        for state in ([self.state] if self.state is not None else []) + self.states:
            await state.write(self)                                   # 1. state
        await self.write_pending()                                    # 2. appended rows, 3. outbox
        if self._processed:                                           # 4. processed ids
            recorded = await self._record_processed()
            if len(recorded) != len(set(self._processed)):
                raise ConcurrentlyProcessed(
                    f"{len(set(self._processed)) - len(recorded)} events were applied by another instance")
        if self.within is not None:  # a dry run: its owner rolls everything back
            return
        await self.session.commit()                                   # 5. COMMIT
        self.committed = True
        if self.handoff is not None and self._written[0]:
            self.handoff(*self._written)
        for action in self._after:                                    # 6. after commit
            action()

    async def write_pending(self) -> None:
        """Write the appended rows and the outbox so far (steps 2 and 3 of :meth:`commit`): a
        job over millions of customers (a month-end close) does it chunk by chunk, so its memory
        stays flat; it is all still one transaction."""
        for table, rows in self._appended.items():
            await self.session.execute(insert(table), rows)
        self._appended.clear()
        await self._write_outbox()
        self.outbox.clear()

    # --- what handlers use ----------------------------------------------------------------

    def for_event(self, cause: str) -> None:
        """The event (or request) whose effects follow: emitted ids derive from it."""
        self.cause = cause
        self._emitted = 0

    def emit(self, data: BaseModel, *, key: str | None = None, stable_id: str | None = None,
             time: datetime | None = None, topic: str | None = None) -> Event:
        """Write ``data`` as an event to the outbox of this transaction.

        The id derives from the cause and ``key`` (which tells apart several events of one type
        caused by one thing), so it is stable across re-runs; ``stable_id`` names the business
        fact instead (``posting:P17``), when the same fact may arrive under several causes and
        must reach consumers as one event. The event goes to its model's own topic, or to
        ``topic`` with the type registered there for the model."""
        n = self._emitted
        self._emitted += 1
        if stable_id is not None:
            event_id = derived_event_id(self.service, stable_id)
        else:
            event_id = derived_event_id(self.service, self.cause, type(data).__name__, key or str(n))
        etype = event_type_on(topic, type(data)) if topic is not None else None
        event = new_event(data, f"/strata/{self.service}", id=event_id, time=time, etype=etype)
        key_bytes, value, headers = encode_binary(event)
        self.add_message(event.topic, key_bytes, value, headers)
        return event

    def add_message(self, topic: str, key: bytes | None, value: bytes,
                    headers: list[tuple[str, bytes]]) -> None:
        """A message for the outbox as it is (a dead letter keeps its record's bytes)."""
        if self.within is not None:
            self.sent.append({"topic": topic, "value": value})
        self.outbox.append({"service": self.service, "topic": topic, "key": key, "value": value,
                            "headers": encode_headers(headers), "created_at": datetime.now(timezone.utc),
                            "message": Message(topic, key, value, headers)})

    def append(self, table: Table, row: dict) -> None:
        """A row nothing reads back in this transaction (a fee, a ledger entry), inserted at
        commit with the others of its table in one statement, in the order appended. Every row
        of a table names the same columns."""
        self._appended.setdefault(table, []).append(row)

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` (a metric's increment) once the transaction has committed."""
        self._after.append(action)

    # Older services keep their batch's rows in this dict and queue appended rows with
    # ``insert_later``; they move to typed state and ``append``.
    @property
    def batch(self) -> dict:
        if not hasattr(self, "_scratch"):
            self._scratch: dict = {}
        return self._scratch

    def insert_later(self, table: Table, row: dict) -> None:
        self.append(table, row)

    async def flush(self) -> None:
        """Nothing to do: everything is written at commit."""

    def track(self, state: State) -> State:
        """Write ``state`` at commit too (besides ``self.state``)."""
        self.states.append(state)
        return state

    # --- the idempotency of a consumer's batch ---------------------------------------------

    async def already_processed(self, keys: list[str]) -> set[str]:
        """Which of these event ids the consumer group has applied before."""
        unique = list(dict.fromkeys(keys))
        if not unique:
            return set()
        if self.session.get_bind().dialect.name == "postgresql":
            rows = await self.session.execute(_ALREADY_PROCESSED, {"consumer": self.group, "ids": unique})
            return set(rows.scalars())
        done: set[str] = set()
        for start in range(0, len(unique), 500):
            rows = await self.session.execute(select(ProcessedEvent.event_id).where(
                ProcessedEvent.consumer == self.group, ProcessedEvent.event_id.in_(unique[start:start + 500])))
            done.update(rows.scalars())
        return done

    def processed(self, key: str) -> None:
        """Record ``key`` as applied by this batch (written at commit, step 4)."""
        self._processed.append(key)

    async def _record_processed(self) -> list[str]:
        keys = list(dict.fromkeys(self._processed))
        now = datetime.now(timezone.utc)
        if self.session.get_bind().dialect.name == "postgresql":
            return (await self.session.execute(_RECORD_PROCESSED, {
                "consumer": self.group, "ids": keys, "now": now})).scalars().all()
        from shared.db import insert_for

        stmt = insert_for(self.session)(ProcessedEvent).on_conflict_do_nothing().returning(ProcessedEvent.event_id)
        return (await self.session.execute(stmt, [
            {"consumer": self.group, "event_id": k, "processed_at": now} for k in keys])).scalars().all()

    async def _write_outbox(self) -> None:
        rows = self.outbox
        if not rows:
            return
        if self.session.get_bind().dialect.name == "postgresql":
            ids = (await self.session.execute(_OUTBOX_INSERT, {
                "service": [r["service"] for r in rows], "topic": [r["topic"] for r in rows],
                "key": [r["key"] for r in rows], "value": [r["value"] for r in rows],
                "headers": [r["headers"] for r in rows], "created_at": [r["created_at"] for r in rows],
            })).scalars().all()
        else:
            ids = (await self.session.execute(
                insert(OutboxMessage).returning(OutboxMessage.id, sort_by_parameter_order=True),
                [{k: v for k, v in r.items() if k != "message"} for r in rows])).scalars().all()
        if self.handoff is not None:
            self._written[0].extend(sorted(ids))
            self._written[1].extend(r["message"] for r in rows)


# PostgreSQL: a batch's event ids as one array parameter. The lookup joins the array so that
# each id is one probe of the primary key: written as ``event_id = ANY(...)``, the prepared
# statement's generic plan probed by consumer alone and filtered every id it ever processed.
_ALREADY_PROCESSED = text(
    "SELECT p.event_id FROM unnest(CAST(:ids AS VARCHAR[])) AS i(id) "
    "JOIN runtime_processed_events p ON p.consumer = :consumer AND p.event_id = i.id"
)
_RECORD_PROCESSED = text(
    "INSERT INTO runtime_processed_events (consumer, event_id, processed_at) "
    "SELECT :consumer, id, :now FROM unnest(CAST(:ids AS VARCHAR[])) AS i(id) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
)
_OUTBOX_INSERT = text(
    "INSERT INTO runtime_outbox (service, topic, key, value, headers, created_at) "
    "SELECT service, topic, key, value, headers, created_at FROM unnest("
    "  CAST(:service AS VARCHAR[]), CAST(:topic AS VARCHAR[]), CAST(:key AS BYTEA[]),"
    "  CAST(:value AS BYTEA[]), CAST(:headers AS TEXT[]), CAST(:created_at AS TIMESTAMPTZ[])"
    ") WITH ORDINALITY AS m(service, topic, key, value, headers, created_at, n) ORDER BY n RETURNING id"
)
"""``ORDER BY n`` keeps the ids (from the sequence) in the order the rows were emitted."""


def encode_headers(headers: list[tuple[str, bytes]]) -> str:
    """Headers as the outbox stores them: a JSON list of ``[name, value]``, a value that is not
    UTF-8 (or that starts with ``b64:``) as ``b64:`` and its base64, so every byte survives (a
    dead letter keeps its record's headers exactly) and the usual ones stay cheap to read."""
    out = []
    for k, v in headers:
        if v is None:
            out.append([k, None])
            continue
        try:
            text_ = v.decode()
        except UnicodeDecodeError:
            text_ = None
        if text_ is None or text_.startswith("b64:"):
            text_ = "b64:" + base64.b64encode(v).decode("ascii")
        out.append([k, text_])
    return json.dumps(out)


def decode_headers(text_: str) -> list[tuple[str, bytes]]:
    """The headers :func:`encode_headers` stored."""
    return [(k, None if v is None else base64.b64decode(v[4:]) if v.startswith("b64:") else v.encode())
            for k, v in json.loads(text_)]
