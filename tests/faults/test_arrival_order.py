"""Same feed, same state: the simulated bank's feed (every inbound topic, every product type,
balance snapshots and postings on the same accounts, customers of the same branches and tiers
competing for the same RMs) ends in exactly the same state, table by table, whether it is
applied by the single-process mode as it was published, or by the distributed mode when it
arrives in another order:

- one topic delayed: the balance snapshots published seconds after everything else;
- topics one after another: the postings first, the customer records last;
- every service killed with SIGKILL at points of its commit order, and restarted.

Each service applies a customer's facts in event-time order across the topics it reads (see
``shared.runtime.order``); the delays here stay within ``runtime.max_lateness_s`` (``LATENESS``),
so nothing is late and everything is applied as if it had arrived in order.

Sizes: ``STRATA_ORDER_CUSTOMERS`` (default 120) and ``STRATA_ORDER_DAYS`` (default 5).
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
from dataclasses import dataclass
from datetime import date, timedelta

import pytest

from shared.auth import issue_token
from shared.bus.base import Message
from shared.bus.kafka import KafkaBus
from shared.contracts import topics
from shared.contracts.cloudevents import Event, encode_binary
from shared.runtime.transaction import derived_event_id
from shared.settings import Settings
from strata.registry import load_all
from strata.simulator.feed import Feed
from strata.testing import Harness
from tests.conftest import single_process_settings
from tests.faults.conftest import _without, drop_database
from tests.faults.snapshot import differences, snapshot
from tests.faults.stack import Stack
from tests.integration.conftest import create_database

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.usefixtures("integration_env")]

CUSTOMERS = int(os.environ.get("STRATA_ORDER_CUSTOMERS", "120"))
DAYS = int(os.environ.get("STRATA_ORDER_DAYS", "5"))
START = date(2026, 3, 23)
PARTITIONS = 3
LATENESS = 20.0
DELAY = 4.0
"""How long the delayed topic is held back (well within ``LATENESS``)."""


@dataclass
class BankFeed:
    rms: list[dict]
    events: list[Event]


@pytest.fixture(scope="module")
def bank_feed() -> BankFeed:
    sim = Feed(17, CUSTOMERS, START, Settings())
    events = list(sim.master_events())
    for n in range(DAYS):
        events += sim.published_day(START + timedelta(days=n))
    return BankFeed([rm.as_json() for rm in sim.bank.rms()], events)


def _admin(settings: Settings) -> dict[str, str]:
    auth = settings.auth
    token = issue_token(auth.secret.get_secret_value(), "admin", ttl_minutes=60, issuer=auth.issuer,
                        algorithm=auth.algorithm, subject="fault-tests")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
async def single_process(bank_feed) -> dict:
    """The state the single-process mode ends in, fed the events in the order published."""
    with tempfile.TemporaryDirectory(prefix="strata-order-") as tmp:
        settings = single_process_settings(tmp, kafka={"partitions": PARTITIONS},
                                           runtime={"stream_wait_s": Settings().runtime.stream_wait_s})
        harness = await Harness(settings, load_all()).start()
        try:
            for body in bank_feed.rms:
                r = await harness.client.put(f"/v1/rms/{body['rm_id']}", json=body, headers=_admin(settings))
                assert r.status_code == 200, r.text
            for start in range(0, len(bank_feed.events), 500):
                await harness.publish(*bank_feed.events[start:start + 500])
            await harness.settle(600)
        finally:
            await harness.stop()
        return await snapshot(settings.database_url)


async def _publish(bus: KafkaBus, events: list[Event]) -> None:
    for start in range(0, len(events), 500):
        await bus.publish([Message(e.topic, *encode_binary(e)) for e in events[start:start + 500]])


async def _run(broker, bank_feed: BankFeed, send, faults: dict[str, list[str]] | None = None) -> tuple[dict, Stack]:
    stack = Stack(broker.bootstrap, await create_database(), partitions=PARTITIONS, max_lateness_s=LATENESS)
    try:
        await stack.prepare()
        await stack.start(faults=faults)
        await stack.register_rms(bank_feed.rms)
        bus = KafkaBus(stack.kafka, topic_prefix=stack.prefix, client_id="order-feed")
        await bus.start()
        try:
            await send(bus)
        finally:
            await bus.stop()
        await stack.settle(max(300.0, len(bank_feed.events) / 50))
        state = await snapshot(stack.database_url)
    finally:
        await stack.close()
        await drop_database(stack.database_url)
    return state, stack


def _announcements(*states: dict) -> set[str]:
    """The event ids of every signal's announcements: one per raise and change, and one per
    re-route, whose number depends on when alerts read the assignments (a signal raised before
    the customer's assignment is read is re-routed when it is); the signals themselves, with the
    RM an active one has now, are compared in full."""
    ids = set()
    for state in states:
        names, rows = state["alerts_signals"]
        for row in rows:
            signal_id = row[names.index("id")]
            ids |= {derived_event_id("alerts", f"signal:{signal_id}:{v}") for v in range(1, 50)}
    return ids


def _assert_same(reference: dict, state: dict, stack: Stack) -> None:
    assert not stack.crashes, "a service died without being killed:\n" + "\n".join(stack.crashes)
    announcements = _announcements(reference, state)
    diff = differences(_without(reference, announcements), _without(state, announcements))
    assert not diff, "the distributed mode ends elsewhere than the single-process mode:\n" + "\n".join(diff)


async def test_a_topic_delayed_ends_where_the_single_process_mode_does(broker, bank_feed, single_process):
    async def send(bus):
        await _publish(bus, [e for e in bank_feed.events if e.topic != topics.BALANCES])
        await asyncio.sleep(DELAY)
        await _publish(bus, [e for e in bank_feed.events if e.topic == topics.BALANCES])

    state, stack = await _run(broker, bank_feed, send)
    _assert_same(single_process, state, stack)


async def test_topics_read_one_after_another_end_where_the_single_process_mode_does(broker, bank_feed, single_process):
    async def send(bus):
        for topic in (topics.POSTINGS, topics.BALANCES, topics.ACCOUNTS, topics.CUSTOMERS):
            await _publish(bus, [e for e in bank_feed.events if e.topic == topic])
            await asyncio.sleep(DELAY / 2)

    state, stack = await _run(broker, bank_feed, send)
    _assert_same(single_process, state, stack)


async def test_every_service_killed_at_random_ends_where_the_single_process_mode_does(broker, bank_feed,
                                                                                      single_process):
    rng = random.Random(5)
    points = ("after_db_commit", "after_offset_commit", "after_outbox_publish")
    faults = {name: [f"{rng.choice(points[:2] if name == 'profile' else points)}={rng.randint(2, 6)}"]
              for name in ("profile", "tiering", "alerts", "pricing", "assignment")}

    async def send(bus):
        await _publish(bus, bank_feed.events)

    state, stack = await _run(broker, bank_feed, send, faults=faults)
    killed = sorted(service for service, code, _plan in stack.kills if code == -9)
    assert killed == sorted(faults), f"every service was killed once: {stack.kills}"
    _assert_same(single_process, state, stack)
