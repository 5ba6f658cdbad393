"""What one batch of events reads and writes at once, so that profile's handlers cost a few
statements per batch rather than a few per event.

Before the handlers run (:func:`prefetch`): the customers, accounts, signals and access rows
the batch touches are loaded in a few queries and kept in ``uow.batch`` (the session holds rows
only weakly); the batch's priced postings and tier changes are inserted in one statement each,
and the keys the database did not have yet are the batch's new facts. While they run, handlers
collect tag replacements and customers' AUM changes per business day; when the batch's
transaction commits (``before_commit``), they are written in one statement each. Everything
lives as long as the transaction: a rolled-back attempt leaves nothing behind, and a handler
called without a prefetch writes at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Iterable

from sqlalchemy import delete, insert, select
from sqlalchemy import event as sql_events

from shared.access import ACCESS_TOPICS, CustomerAccess
from shared.contracts.cloudevents import Event
from shared.contracts.events import AccountV1, CustomerV1, FeeAssessedV1, SignalV1, TierChangedV1
from shared.db import insert_for
from shared.money import ZERO
from shared.runtime.unit_of_work import UnitOfWork
from services.profile.models import (
    ProfileAccount,
    ProfileCustomer,
    ProfileCustomerFlow,
    ProfileFeePosting,
    ProfileSignal,
    ProfileTag,
    ProfileTierChange,
)

CHUNK = 1000
_AT_COMMIT = "at_commit"


async def prefetch(events: list[Event], uow: UnitOfWork) -> None:
    """Load and record what the batch of ``events`` needs (see the module's docstring).

    Access rows missing for a core customer record or an assignment are created here and
    flushed once: the runtime's ``apply_access`` looks a row up with ``session.get``, which does
    not see a row added earlier in the batch without a flush, and would add it twice."""
    customers, accounts, signals, access = set(), set(), set(), set()
    fees, tier_changes = [], []
    for event in events:
        data = event.data
        customers.add(data.customer_id)
        if isinstance(data, AccountV1):
            accounts.add(data.account_id)
        elif isinstance(data, SignalV1):
            signals.add(data.id)
        elif isinstance(data, FeeAssessedV1):
            fees.append(fee_row(data))
        elif isinstance(data, TierChangedV1):
            tier_changes.append(tier_change_row(data))
        if event.topic in ACCESS_TOPICS and (not isinstance(data, CustomerV1) or data.source == "core"):
            access.add(data.customer_id)
    await _load(uow, ProfileCustomer, customers)
    await _load(uow, ProfileAccount, accounts)
    await _load(uow, ProfileSignal, signals)
    await _create_access_rows(uow, access)
    await _record_facts(uow, ProfileFeePosting, fees)
    await _record_facts(uow, ProfileTierChange, tier_changes)
    writes = uow.batch.setdefault(_AT_COMMIT, CommitWrites())
    sql_events.listen(uow.session.sync_session, "before_commit", writes.write)


# --- rows, loaded once per batch ------------------------------------------------------------


async def cached(uow: UnitOfWork, model, key: str):
    """The row of ``model`` with primary key ``key`` (or ``None``), from the batch's cache."""
    cache = uow.batch.setdefault(model, {})
    if key not in cache:
        cache[key] = await uow.session.get(model, key)
    return cache[key]


def remember(uow: UnitOfWork, row, key: str) -> None:
    """A new row: added to the session and found by the batch's later events."""
    uow.session.add(row)
    uow.batch.setdefault(type(row), {})[key] = row


async def _load(uow: UnitOfWork, model, ids: set[str]) -> None:
    cache = uow.batch.setdefault(model, {})
    key = model.__mapper__.primary_key[0]
    missing = sorted(i for i in ids if i not in cache)
    for chunk in _chunks(missing):
        found = {getattr(r, key.key): r
                 for r in (await uow.session.execute(select(model).where(key.in_(chunk)))).scalars()}
        for i in chunk:
            cache[i] = found.get(i)


async def _create_access_rows(uow: UnitOfWork, customer_ids: set[str]) -> None:
    rows = uow.batch.setdefault(CustomerAccess, {})
    ids = sorted(customer_ids)
    for chunk in _chunks(ids):
        found = await uow.session.execute(select(CustomerAccess).where(
            CustomerAccess.service == uow.service, CustomerAccess.customer_id.in_(chunk)))
        rows.update({r.customer_id: r for r in found.scalars()})
    missing = [i for i in ids if i not in rows]
    for customer_id in missing:
        rows[customer_id] = CustomerAccess(service=uow.service, customer_id=customer_id)
        uow.session.add(rows[customer_id])
    if missing:
        await uow.session.flush()


def _chunks(ids: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]


# --- business facts, recorded once ----------------------------------------------------------


def fee_row(data: FeeAssessedV1) -> dict[str, Any]:
    return {"posting_id": data.posting_id, "customer_id": data.customer_id, "fee_id": data.fee_id,
            "net": data.net, "points_used": data.points_used, "posted_at": data.posted_at}


def tier_change_row(data: TierChangedV1) -> dict[str, Any]:
    return {"customer_id": data.customer_id, "effective_at": data.effective_at, "change": data.change,
            "from_tier": data.from_, "to_tier": data.to, "reason": data.reason}


def _fact_key(model, row: dict[str, Any]) -> tuple:
    return tuple(row[c.key] for c in model.__mapper__.primary_key)


async def _record_facts(uow: UnitOfWork, model, rows: list[dict[str, Any]]) -> None:
    fresh = uow.batch.setdefault(("fresh", model), set())
    firsts: dict[tuple, dict[str, Any]] = {}
    for r in rows:  # the first event of a key takes it, as first_time says, so its row is stored
        firsts.setdefault(_fact_key(model, r), r)
    unique = list(firsts.values())
    # One statement, executed for many rows (SQLAlchemy batches them into multi-row INSERTs
    # from a cached compilation); a VALUES list per chunk was compiled anew for every batch.
    stmt = (insert_for(uow.session)(model.__table__).on_conflict_do_nothing()
            .returning(*model.__table__.primary_key.columns))
    if unique:
        fresh.update(tuple(r) for r in await uow.session.execute(stmt, unique))


async def first_time(uow: UnitOfWork, model, row: dict[str, Any]) -> bool:
    """Whether this fact (a priced posting, a tier change) is new, by its key: the first event
    of the batch carrying a key the batch's insert added takes it; without a prefetch, the row
    is inserted now."""
    fresh = uow.batch.get(("fresh", model))
    if fresh is None:
        result = await uow.session.execute(insert_for(uow.session)(model).values(**row).on_conflict_do_nothing())
        return bool(result.rowcount)
    key = _fact_key(model, row)
    if key in fresh:
        fresh.discard(key)
        return True
    return False


# --- writes at commit -----------------------------------------------------------------------


@dataclass
class CommitWrites:
    """Tag replacements and AUM changes of a batch, written when its transaction commits."""

    tags: dict[str, list[str]] = field(default_factory=dict)
    flows: dict[tuple[str, date], Decimal] = field(default_factory=dict)

    def write(self, session) -> None:
        """``before_commit`` of the batch's (synchronous) session, inside its transaction."""
        if self.tags:
            ids = sorted(self.tags)
            for chunk in _chunks(ids):
                session.execute(delete(ProfileTag).where(ProfileTag.customer_id.in_(chunk)))
            rows = [{"customer_id": c, "tag": t} for c in ids for t in self.tags[c]]
            if rows:
                session.execute(insert(ProfileTag), rows)
            self.tags.clear()
        if self.flows:
            session.execute(flows_upsert(session), flow_rows(self.flows))
            self.flows.clear()


async def replace_tags(uow: UnitOfWork, customer_id: str, tags: list[str]) -> None:
    writes: CommitWrites | None = uow.batch.get(_AT_COMMIT)
    if writes is not None:
        writes.tags[customer_id] = list(tags)
        return
    await uow.session.execute(delete(ProfileTag).where(ProfileTag.customer_id == customer_id))
    if tags:
        await uow.session.execute(insert(ProfileTag), [{"customer_id": customer_id, "tag": t} for t in tags])


async def add_flow(uow: UnitOfWork, customer_id: str, day: date, delta: Decimal) -> None:
    """Add ``delta`` to the customer's net AUM change of business day ``day``: summed per
    customer and day over the batch and written at commit, the row of a key the batch touched
    even when its changes cancel out (``+100`` then ``-100``), so that the table ends the same
    as when the two fall in two batches."""
    writes: CommitWrites | None = uow.batch.get(_AT_COMMIT)
    if writes is not None:
        key = (customer_id, day)
        writes.flows[key] = writes.flows.get(key, ZERO) + delta
        return
    await uow.session.execute(flows_upsert(uow.session), flow_rows({(customer_id, day): delta}))


def flows_upsert(session):
    """Added in the database (``net = net + ...``): each event's change counts once whatever
    batch it falls in, so a day's net is the same however the events were batched."""
    stmt = insert_for(session)(ProfileCustomerFlow)
    return stmt.on_conflict_do_update(
        index_elements=["customer_id", "day"],
        set_={"net": ProfileCustomerFlow.net + stmt.excluded.net},
    )


def flow_rows(flows: dict[tuple[str, date], Decimal]) -> list[dict[str, Any]]:
    """One row per customer and day (one statement may not touch a row twice), in key order."""
    return [{"customer_id": c, "day": d, "net": net} for (c, d), net in sorted(flows.items())]
