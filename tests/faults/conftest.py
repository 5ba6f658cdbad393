"""Fault tests: a reference run and faulted runs of one seeded feed end in identical state.

Sizes come from the environment so a soak run is one variable away:

- ``STRATA_FAULT_POSTINGS`` (default 2,000): postings in the feed. The issue's 100,000 is
  ``STRATA_FAULT_POSTINGS=100000`` (expect tens of minutes on two cores);
- ``STRATA_FAULT_CUSTOMERS`` (default: a tenth of the postings, at least 300);
- ``STRATA_FAULT_SEED`` (default 11).

- ``STRATA_FAULT_KILLS=all``: every service SIGKILLed at every point (test_sigkill.py);
- ``STRATA_FAULT_KEEP=1``: keep the databases of the runs (dropped by default).

The suite starts its own Kafka broker once per session (the project's deploy/kafka/kafka.sh on
free ports and a temporary run dir, removed at the end): a run creates some thirty topics, and
the hundreds of partitions of a session must not weigh on the shared broker other test runs
use (a broker's heap holds every partition it ever had). Databases are fresh ones on the shared
PostgreSQL, dropped after each run. The reference run is made once per session; each fault test
makes its own run and compares. Month-end close and the daily scan are not run: they are API
calls, not the stream, and have tests of their own; the feed stays inside one month.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass
from typing import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from tests.faults.feed import FaultFeed, build_feed
from tests.faults.snapshot import differences, snapshot
from tests.faults.private import PrivateKafka
from tests.faults.stack import Stack, read_topic
from tests.integration.conftest import create_database, integration_env  # noqa: F401

POSTINGS = int(os.environ.get("STRATA_FAULT_POSTINGS", "2000"))
CUSTOMERS = int(os.environ.get("STRATA_FAULT_CUSTOMERS", str(max(300, POSTINGS // 10))))
SEED = int(os.environ.get("STRATA_FAULT_SEED", "11"))
KEEP = os.environ.get("STRATA_FAULT_KEEP") == "1"


@dataclass
class Outcome:
    """What a run ended with: every table, and the fee and signal events on the bus."""

    state: dict
    fees: dict[str, bytes]
    """ce_id -> the event's data, once per ce_id (a relay may publish a row twice)."""
    fee_postings: dict[str, set[str]]
    """posting_id -> the ce_ids of its fee events."""
    signals: dict[str, list[dict]]
    """signal id -> the data of its events in the order published."""
    announcements: set[str]
    """The ce_ids of the signal events: one per raise and one per change (re-routes included,
    whose number depends on when alerts read the assignments)."""


async def observe(stack: Stack) -> Outcome:
    fees: dict[str, bytes] = {}
    fee_postings: dict[str, set[str]] = defaultdict(set)
    for ce_id, value in await read_topic(stack.kafka, stack.prefix + "strata.fees"):
        fees[ce_id] = value
        fee_postings[json.loads(value)["posting_id"]].add(ce_id)
    signals: dict[str, list[dict]] = defaultdict(list)
    announcements = set()
    for ce_id, value in await read_topic(stack.kafka, stack.prefix + "strata.signals"):
        data = json.loads(value)
        signals[data["id"]].append(data)
        announcements.add(ce_id)
    state = await snapshot(stack.database_url)
    outcome = Outcome(state, fees, dict(fee_postings), dict(signals), announcements)
    stack.mark("observed")
    print(f"{stack.prefix} seconds per step: {stack.timings}")
    return outcome


def _without(state: dict, event_ids: set[str]) -> dict:
    """``state`` without the processed-event rows of these event ids."""
    names, rows = state["runtime_processed_events"]
    at = names.index("event_id")
    return {**state, "runtime_processed_events": (names, [r for r in rows if r[at] not in event_ids])}


async def faulted_run(kafka: str, feed: FaultFeed, *, database_url: str | None = None,
                      faults: dict[str, list[str]] | None = None,
                      during: Callable[[Stack], Awaitable[None]] | None = None,
                      **stack_options) -> tuple[Stack, Outcome]:
    """A whole run: fresh database (unless given) and topics, the services started (with
    ``faults``), the RMs registered, the feed sent (``during`` run mid-stream), the outcome
    observed, the services stopped and the database dropped."""
    stack = Stack(kafka, database_url or await create_database(), **stack_options)
    try:
        await stack.prepare()
        await stack.start(faults=faults)
        await stack.register_rms(feed.rms)
        await stack.send(feed, during=during)
        outcome = await observe(stack)
    finally:
        await stack.close()
        if database_url is None:
            await drop_database(stack.database_url)
    return stack, outcome


async def drop_database(url: str) -> None:
    if KEEP:
        return
    base, name = url.rsplit("/", 1)
    conn = await asyncpg.connect(base.replace("postgresql+asyncpg://", "postgresql://") + "/strata")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def assert_same(reference: Outcome, run: Outcome, stack: Stack, feed: FaultFeed) -> None:
    """The faulted run ended exactly where the reference did, and each posting has one fee
    event and each signal one row, on the bus as in the database."""
    assert not stack.crashes, "a service died without being killed:\n" + "\n".join(stack.crashes)
    announcements = reference.announcements | run.announcements
    diff = differences(_without(reference.state, announcements), _without(run.state, announcements))
    assert not diff, "state differs from the reference run:\n" + "\n".join(diff)
    assert set(run.fee_postings) == feed.postings, "a posting without a fee event, or a fee for no posting"
    assert len(run.fees) == len(feed.postings), "as many distinct fee event ids as postings"
    twice = {p: ids for p, ids in run.fee_postings.items() if len(ids) > 1}
    assert not twice, f"postings with fee events under several ids: {dict(list(twice.items())[:5])}"
    assert run.fees == reference.fees, "fee events differ from the reference run"
    _, rows = run.state["alerts_signals"]
    names = run.state["alerts_signals"][0]
    stored = {r[names.index("id")]: r for r in rows}
    assert set(run.signals) == set(stored), "signals on the bus and in the database differ"
    for signal_id, events in run.signals.items():
        last, row = events[-1], stored[signal_id]
        status = row[names.index("status")]
        assert last["status"] == status, f"the last event of signal {signal_id} is not its status"
        if status in ("open", "acknowledged"):  # a closed one's RM is blanked by the snapshot
            assert last["rm_id"] == row[names.index("rm_id")], f"the last event of {signal_id} is not its RM"


@pytest.fixture(scope="session")
def feed() -> FaultFeed:
    return build_feed(SEED, CUSTOMERS, POSTINGS)


@pytest.fixture(scope="session")
async def broker(integration_env) -> AsyncIterator[PrivateKafka]:  # noqa: F811 - the imported fixture
    """The suite's own broker; the broker test stops and starts it mid-stream."""
    kafka = PrivateKafka()
    await kafka.start()
    try:
        yield kafka
    finally:
        await kafka.destroy()


@dataclass
class Reference:
    outcome: Outcome
    stack: Stack
    """Stopped; the replay test starts it again on its database and topics."""


@pytest.fixture(scope="session")
async def reference(broker, feed) -> AsyncIterator[Reference]:
    stack = Stack(broker.bootstrap, await create_database())
    try:
        await stack.prepare()
        await stack.start()
        await stack.register_rms(feed.rms)
        await stack.send(feed)
        outcome = await observe(stack)
    finally:
        await stack.close()
    assert not stack.crashes, "\n".join(stack.crashes)
    assert len(outcome.fees) == len(feed.postings)
    try:
        yield Reference(outcome, stack)
    finally:
        await stack.close()
        await drop_database(stack.database_url)
