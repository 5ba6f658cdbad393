"""The one consumer runtime: exactly once into the database, dead letters, retries, order."""

from __future__ import annotations

import asyncio
import tempfile
from decimal import Decimal

import pytest
from sqlalchemy.exc import OperationalError

from shared.bus.memory import MemoryBus
from shared.contracts import topics
from shared.contracts.cloudevents import decode_record, encode_binary, new_event
from shared.contracts.events import PostingV1, TierChangedV1
from shared.bus.base import Message
from shared.db import Database
from shared import migrate
from shared.runtime.consumer import ConsumerLoop
from shared.runtime.errors import Rejected
from shared.runtime.outbox import OutboxRelay
from shared.runtime.service import ServiceSpec
from tests.conftest import single_process_settings


def posting(n: int, amount: str = "1.00") -> PostingV1:
    return PostingV1(posting_id=f"P{n}", customer_id=f"C{n % 3}", account_id=f"A{n}", account_seq=1,
                     product_type="demand_deposit", direction="credit", amount=amount,
                     balance_after=amount, currency="CNY", tx_type="salary", channel="batch",
                     branch_id="B", posted_at="2026-11-10T10:00:00+08:00")


class Probe:
    """A service that emits one tier event per posting, and can be told to fail."""

    def __init__(self) -> None:
        self.calls = 0
        self.outages = 0

    async def handle(self, event, uow) -> None:
        self.calls += 1
        p: PostingV1 = event.data
        if self.outages:
            self.outages -= 1
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("database is down"))
        uow.emit(TierChangedV1(customer_id=p.customer_id, from_="mass", to="gold", reason=p.posting_id,
                               effective_at=p.posted_at, change="upgrade", watch=False,
                               aum=p.amount, basis=p.amount))
        if p.amount == Decimal("13.00"):
            raise Rejected(f"posting {p.posting_id} is unlucky")


@pytest.fixture
async def rig():
    with tempfile.TemporaryDirectory() as tmp:
        settings = single_process_settings(tmp)
        db = Database(settings.database_url)
        await migrate.upgrade(db, [])
        bus = MemoryBus(default_partitions=2)
        await bus.ensure_topics(topics.all_topics(), 2)
        probe = Probe()
        spec = ServiceSpec("probe", {topics.POSTINGS: probe.handle}, keeps_access=False)
        yield settings, db, bus, probe, spec
        await db.dispose()


async def publish(bus, *events):
    await bus.publish([Message(e.topic, *encode_binary(e)) for e in events])


async def drain(loop: ConsumerLoop, relay: OutboxRelay, bus: MemoryBus) -> None:
    if loop.consumer is None:
        loop.consumer = loop.bus.consumer(loop.group, loop.topics)
        await loop.consumer.start()
    while records := await loop.consumer.getmany(100, 10):
        await loop.process_batch(records)
    while await relay.publish_pending():
        pass


def published(bus: MemoryBus, topic: str):
    return [decode_record(r.value, r.headers) for p in bus.topics[topic] for r in p.records]


async def test_rejected_event_leaves_nothing_behind_and_the_rest_of_the_batch_applies(rig):
    settings, db, bus, probe, spec = rig
    await publish(bus, *[new_event(posting(n, "13.00" if n == 2 else "1.00"), "core") for n in range(5)])
    loop, relay = ConsumerLoop(spec, db, bus, settings), OutboxRelay("probe", db, bus)
    await drain(loop, relay, bus)
    reasons = [e.data.reason for e in published(bus, topics.TIERS)]
    assert sorted(reasons) == ["P0", "P1", "P3", "P4"], "the rejected posting's emitted event was rolled back"
    dead = [r for p in bus.topics["bank.postings.dlq"] for r in p.records]
    assert len(dead) == 1
    headers = dict(dead[0].headers)
    assert headers["strata_dlq_reason"] == b"posting P2 is unlucky"
    assert headers["strata_dlq_category"] == b"rejected"
    assert decode_record(dead[0].value, dead[0].headers).data.posting_id == "P2"


async def test_database_outage_is_retried_and_applied_once(rig):
    settings, db, bus, probe, spec = rig
    probe.outages = 3
    await publish(bus, new_event(posting(1), "core"))
    loop, relay = ConsumerLoop(spec, db, bus, settings), OutboxRelay("probe", db, bus)
    await drain(loop, relay, bus)
    assert len(published(bus, topics.TIERS)) == 1
    assert probe.calls == 4


async def test_crash_between_database_commit_and_offset_commit_redelivers_without_effect(rig):
    settings, db, bus, probe, spec = rig
    await publish(bus, *[new_event(posting(n), "core") for n in range(4)])
    crashing = ConsumerLoop(spec, db, bus, settings)
    crashing.consumer = bus.consumer(crashing.group, crashing.topics)
    await crashing.consumer.start()

    async def die(_offsets):
        raise SystemExit("killed after the database commit")

    crashing.consumer.commit = die
    records = await crashing.consumer.getmany(100, 10)
    with pytest.raises(SystemExit):
        await crashing.process_batch(records)
    restarted, relay = ConsumerLoop(spec, db, bus, settings), OutboxRelay("probe", db, bus)
    await drain(restarted, relay, bus)
    assert len(published(bus, topics.TIERS)) == 4, "each posting's effect is there exactly once"
    assert probe.calls == 4, "the redelivered events were recognised, not re-handled"


async def test_undecodable_record_is_dead_lettered_once_even_when_redelivered(rig):
    settings, db, bus, probe, spec = rig
    await bus.publish([Message(topics.POSTINGS, b"C1", b"garbage", [("ce_type", b"bank.posting.v1")])])
    loop, relay = ConsumerLoop(spec, db, bus, settings), OutboxRelay("probe", db, bus)
    await drain(loop, relay, bus)
    bus.committed[loop.group].clear()  # a group reset replays the topic from the start
    again = ConsumerLoop(spec, db, bus, settings)
    await drain(again, relay, bus)
    dead = [r for p in bus.topics["bank.postings.dlq"] for r in p.records]
    assert len(dead) == 1 and b"not JSON" in dict(dead[0].headers)["strata_dlq_reason"]


async def test_event_of_the_wrong_topic_is_dead_lettered(rig):
    settings, db, bus, probe, spec = rig
    event = new_event(posting(1), "core")
    key, value, headers = encode_binary(event)
    await bus.publish([Message(topics.POSTINGS, key, value,
                               [(k, b"bank.balance.v1" if k == "ce_type" else v) for k, v in headers])])
    loop, relay = ConsumerLoop(spec, db, bus, settings), OutboxRelay("probe", db, bus)
    await drain(loop, relay, bus)
    dead = [r for p in bus.topics["bank.postings.dlq"] for r in p.records]
    assert len(dead) == 1 and probe.calls == 0


async def test_outbox_publishes_each_customers_events_in_the_order_written(rig):
    settings, db, bus, probe, spec = rig
    await publish(bus, *[new_event(posting(n), "core") for n in range(30)])
    loop, relay = ConsumerLoop(spec, db, bus, settings), OutboxRelay("probe", db, bus)
    await drain(loop, relay, bus)
    for partition in bus.topics[topics.TIERS]:
        per_customer: dict[str, list[int]] = {}
        for r in partition.records:
            e = decode_record(r.value, r.headers)
            per_customer.setdefault(e.subject, []).append(int(e.data.reason[1:]))
        for ids in per_customer.values():
            assert ids == sorted(ids)


async def test_graceful_stop_finishes_the_batch_in_hand(rig):
    settings, db, bus, probe, spec = rig
    await publish(bus, *[new_event(posting(n), "core") for n in range(10)])
    loop, relay = ConsumerLoop(spec, db, bus, settings), OutboxRelay("probe", db, bus)
    task = asyncio.create_task(loop.run())
    while loop.batches == 0:
        await asyncio.sleep(0.005)
    loop.stop()
    await asyncio.wait_for(task, 120)  # generous: only waits for the batch in hand
    assert await bus.pending(loop.group, loop.topics) == 0


async def test_processed_ids_are_forgotten_only_after_the_retention():
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import func, select

    from shared.runtime.models import ProcessedEvent
    from tests.conftest import private_strata

    async with private_strata(["tiering"]) as strata:
        await strata.publish(posting(1), posting(2))
        await strata.settle()
        runtime = strata.runtime
        later = datetime.now(timezone.utc) + timedelta(days=runtime.settings.runtime.dedupe_retention_days - 1)
        assert await runtime.prune_processed(now=later) == 0
        much_later = later + timedelta(days=2)
        assert await runtime.prune_processed(now=much_later) == 2
        async with runtime.db.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(ProcessedEvent)) == 0


async def test_customer_and_assignment_for_a_new_customer_in_one_batch_both_apply():
    from shared.access import CustomerAccess
    from shared.contracts.events import AssignmentChangedV1, CustomerV1
    from tests.conftest import private_strata

    async with private_strata(["tiering"]) as strata:
        await strata.publish(
            CustomerV1(customer_id="AX1", name="n", home_branch_id="BR-9", updated_at="2026-11-01T09:00:00+08:00"),
            AssignmentChangedV1(customer_id="AX1", role="primary", from_=None, to="RM-1", reason="r",
                                changed_at="2026-11-01T09:00:00+08:00"),
            AssignmentChangedV1(customer_id="AX1", role="backup", from_=None, to="RM-2", reason="r",
                                changed_at="2026-11-01T09:00:00+08:00"),
        )
        await strata.settle()
        async with strata.runtime.db.sessions() as session:
            row = await session.get(CustomerAccess, ("tiering", "AX1"))
        assert (row.branch_id, row.primary_rm, row.backup_rm) == ("BR-9", "RM-1", "RM-2")


async def test_failure_at_commit_is_traced_to_its_event_which_alone_is_dead_lettered(rig):
    from datetime import datetime, timezone

    from shared.runtime.models import ProcessedEvent

    settings, db, bus, probe, spec = rig

    async def clashing(event, uow):
        await probe.handle(event, uow)
        if event.data.posting_id in ("P1", "P3"):
            # two events writing the same key: only visible when the batch is flushed
            uow.session.add(ProcessedEvent(consumer="x", event_id="same", processed_at=datetime.now(timezone.utc)))

    spec = ServiceSpec("probe", {topics.POSTINGS: clashing}, keeps_access=False)
    await publish(bus, *[new_event(posting(n), "core") for n in range(5)])
    loop, relay = ConsumerLoop(spec, db, bus, settings), OutboxRelay("probe", db, bus)
    await drain(loop, relay, bus)
    assert sorted(e.data.reason for e in published(bus, topics.TIERS)) == ["P0", "P1", "P2", "P4"]
    dead = [r for p in bus.topics["bank.postings.dlq"] for r in p.records]
    assert len(dead) == 1 and b"cannot be stored" in dict(dead[0].headers)["strata_dlq_reason"]


async def test_a_missing_database_is_an_outage_to_wait_out_not_a_bad_event():
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.ext.asyncio import create_async_engine

    from shared.runtime.errors import is_retryable

    class InvalidCatalogNameError(Exception):  # what asyncpg raises, wrapped by the driver
        sqlstate = "3D000"

    wrapped = OperationalError("connect", {}, InvalidCatalogNameError('database "x" does not exist'))
    assert is_retryable(wrapped)
    chained = RuntimeError("wrapper")
    chained.__cause__ = InvalidCatalogNameError("x")
    assert is_retryable(chained)
    assert not is_retryable(IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not is_retryable(ValueError("a bug"))


class UniqueViolationError(Exception):
    """What asyncpg raises when an insert meets a row another transaction committed."""

    sqlstate = "23505"


async def run_three_postings(rig, violating: dict[str, int]) -> tuple[list[str], list]:
    """Postings P0-P2 through a probe whose handler raises a unique violation for the posting
    ids in ``violating``, that many times each (-1: always); the tier events published and the
    dead letters."""
    settings, db, bus, probe, _spec = rig

    async def racing(event, uow):
        left = violating.get(event.data.posting_id, 0)
        if left:
            violating[event.data.posting_id] = left - 1
            raise UniqueViolationError('duplicate key value violates unique constraint "pk_x"')
        await probe.handle(event, uow)

    spec = ServiceSpec("probe", {topics.POSTINGS: racing}, keeps_access=False)
    await publish(bus, *[new_event(posting(n), "core") for n in range(3)])
    loop, relay = ConsumerLoop(spec, db, bus, settings), OutboxRelay("probe", db, bus)
    await drain(loop, relay, bus)
    dead = [r for p in bus.topics.get("bank.postings.dlq", []) for r in p.records]
    return sorted(e.data.reason for e in published(bus, topics.TIERS)), dead


async def test_a_unique_violation_from_a_concurrent_instance_reruns_the_batch_instead_of_dead_lettering(rig):
    applied, dead = await run_three_postings(rig, {"P1": 2})  # the other instance won twice in a row
    assert applied == ["P0", "P1", "P2"] and dead == []


async def test_a_unique_violation_that_persists_is_dead_lettered_after_a_few_reruns(rig):
    from shared.runtime.consumer import CONFLICT_RETRIES

    violating = {"P1": -1}
    applied, dead = await run_three_postings(rig, violating)
    assert applied == ["P0", "P2"]
    assert len(dead) == 1 and b"duplicate key" in dict(dead[0].headers)["strata_dlq_reason"]
    assert violating["P1"] == -1 - (CONFLICT_RETRIES + 1), "run once, then re-run CONFLICT_RETRIES times"


def test_a_unique_violation_is_told_apart_through_the_drivers_wrapping():
    from sqlalchemy.exc import IntegrityError

    from shared.runtime.errors import is_conflict, is_retryable

    assert is_conflict(IntegrityError("INSERT", {}, UniqueViolationError("duplicate key")))
    assert not is_conflict(IntegrityError("INSERT", {}, Exception("null value in column")))
    assert not is_retryable(IntegrityError("INSERT", {}, UniqueViolationError("duplicate key")))


def _sqlite_overflow() -> OperationalError:
    import sqlite3

    return OperationalError("SELECT sum(aum)", {}, sqlite3.OperationalError("integer overflow"))


class NumericValueOutOfRangeError(Exception):
    """What asyncpg raises for a bigint that overflows."""

    sqlstate = "22003"


def test_an_overflow_is_never_an_outage():
    from decimal import Context, Overflow

    from sqlalchemy.exc import DBAPIError

    from shared.runtime.errors import is_data_fault, is_retryable

    decimal_overflow = None
    try:
        Context(Emax=10, traps=[Overflow]).create_decimal("1e20")
    except Overflow as exc:
        decimal_overflow = exc
    for fault in (_sqlite_overflow(), DBAPIError("UPDATE", {}, NumericValueOutOfRangeError("bigint out of range")),
                  OverflowError("Python int too large to convert to SQLite INTEGER"), decimal_overflow):
        assert is_data_fault(fault) and not is_retryable(fault), fault
    assert is_retryable(OperationalError("SELECT 1", {}, ConnectionRefusedError("database is down")))


async def test_an_overflow_in_a_handler_is_dead_lettered_with_its_reason_not_retried_forever(rig):
    settings, db, bus, probe, _spec = rig
    calls = []

    async def overflowing(event, uow):
        calls.append(event.data.posting_id)
        if event.data.posting_id == "P1":
            raise _sqlite_overflow()
        await probe.handle(event, uow)

    spec = ServiceSpec("probe", {topics.POSTINGS: overflowing}, keeps_access=False)
    await publish(bus, *[new_event(posting(n), "core") for n in range(3)])
    loop, relay = ConsumerLoop(spec, db, bus, settings), OutboxRelay("probe", db, bus)
    await drain(loop, relay, bus)
    dead = [r for p in bus.topics.get("bank.postings.dlq", []) for r in p.records]
    assert [decode_record(r.value, r.headers).data.posting_id for r in dead] == ["P1"]
    assert b"integer overflow" in dict(dead[0].headers)["strata_dlq_reason"]
    assert sorted(e.data.reason for e in published(bus, topics.TIERS)) == ["P0", "P2"]
    assert calls.count("P1") <= 2, "run once, then once more to be dead-lettered"


def test_outbox_headers_keep_every_byte_and_rows_of_the_old_format_stay_readable():
    from shared.runtime.unit_of_work import decode_headers, encode_headers

    headers = [("ce_id", "事件-1".encode()), ("x-trace", b"\xff\xfe\x00\x80"), ("x-escaped", b"\\xff"),
               ("x-empty", b""), ("x-none", None)]
    assert decode_headers(encode_headers(headers)) == headers
    assert decode_headers('[["ce_id", "e-1"], ["content-type", "application/json"]]') == [
        ("ce_id", b"e-1"), ("content-type", b"application/json")]


async def test_a_record_with_a_header_that_is_not_utf8_is_dead_lettered_with_its_headers_intact(rig):
    settings, db, bus, probe, spec = rig
    event = new_event(posting(1), "core")
    key, value, headers = encode_binary(event)
    headers = [*headers, ("x-trace", b"\xff\xfe\x00trace"), ("x-literal", b"\\xff")]
    await bus.publish([Message(event.topic, key, value, headers)])
    loop, relay = ConsumerLoop(spec, db, bus, settings), OutboxRelay("probe", db, bus)
    await drain(loop, relay, bus)
    [dead] = [r for p in bus.topics["bank.postings.dlq"] for r in p.records]
    assert b"x-trace is not UTF-8" in dict(dead.headers)["strata_dlq_reason"]
    assert [(k, v) for k, v in dead.headers if not k.startswith("strata_dlq_")] == headers
    assert dead.value == value


async def test_a_service_refuses_to_start_when_its_topics_differ_in_partition_count(tmp_path):
    from shared.runtime.consumer import PartitionCountMismatch
    from shared.runtime.process import Runtime
    from strata.registry import load

    settings = single_process_settings(str(tmp_path), kafka={"partitions": 3})
    bus = MemoryBus(default_partitions=3)
    await bus.ensure_topics(["bank.postings"], 6)  # grown on its own, the others left at 3
    runtime = Runtime(settings, [load("tiering")], bus=bus)
    with pytest.raises(PartitionCountMismatch, match=r"bank\.postings: 6") as refused:
        await runtime.start()
    assert "same number of partitions" in str(refused.value)
    await runtime.db.dispose()
