"""``strata simulate``: publishes the feed at the asked rate and prints what it produced."""

from __future__ import annotations

import asyncio
import io
from datetime import date
from types import SimpleNamespace

import pytest

from shared.bus.memory import MemoryBus
from shared.contracts.cloudevents import decode_record
from shared.runtime.order import event_time
from strata.simulator import publish
from strata.simulator.feed import Feed
from strata.simulator.publish import Progress, Publisher


class _Bus(MemoryBus):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__()
        _Bus.last = self


def test_simulate_publishes_every_event_and_prints_the_distribution(monkeypatch, capsys):
    monkeypatch.setattr(publish, "KafkaBus", _Bus)
    args = SimpleNamespace(customers=300, days=12, rate=0.0, seed=3, start="2026-03-01", api_url=None)
    assert publish.simulate_command(args) == 0
    out, err = capsys.readouterr()
    bus = _Bus.last
    records = [r for parts in bus.topics.values() for p in parts for r in p.records]
    events = [decode_record(r.value, r.headers) for r in records]
    assert {e.type for e in events} >= {"bank.customer.v1", "bank.account.v1", "bank.balance.v1", "bank.posting.v1"}
    assert f"Published {len(events):,} events" in out
    assert "The 50,000–1,000,000 band" in out and "salary" in out
    assert "100%" in err


def test_simulate_refuses_a_malformed_start_date(capsys):
    args = SimpleNamespace(customers=3, days=1, rate=0.0, seed=3, start="March", api_url=None)
    assert publish.simulate_command(args) == 2
    assert "--start" in capsys.readouterr().err


async def test_publisher_keeps_to_the_rate(settings):
    """Counted on a clock that moves only when the publisher waits: 150 events at 1,000 a
    second, in batches of 100, wait 0.15 s of it in all, each batch no sooner than its due time."""
    feed = Feed(3, 40, date(2026, 3, 1), settings)
    list(feed.master_events())
    by_time = {}
    for day in range(1, 10):
        for e in feed.published_day(date(2026, 3, day)):
            by_time.setdefault(event_time(e), e)  # one event of each instant
    events = list(by_time.values())[:150]
    assert len(events) == 150
    bus = MemoryBus()
    now = [0.0]
    waits = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    publisher = Publisher(bus, rate=1000, clock=lambda: now[0], sleep=sleep)
    await publisher.publish(events)
    assert publisher.sent == 150 and publisher.batch == 100
    assert waits == pytest.approx([0.1, 0.05])
    assert now[0] == pytest.approx(150 / 1000)


async def test_a_batch_never_splits_the_facts_of_one_instant(settings):
    """A day's master data shares one instant: it reaches the bus in one call, however many
    records, so no consumer fetch can fall between a customer record and a snapshot of it."""
    feed = Feed(3, 40, date(2026, 3, 1), settings)
    events = list(feed.master_events()) + feed.published_day(date(2026, 3, 1))
    calls = []

    class Recording(MemoryBus):
        async def publish(self, messages):
            calls.append([decode_record(m.value, m.headers) for m in messages])
            await super().publish(messages)

    publisher = Publisher(Recording(), rate=1000)
    publisher.sleep = lambda seconds: asyncio.sleep(0)
    await publisher.publish(events)
    assert sum(len(c) for c in calls) == len(events) and len(calls) > 1
    instant = event_time(events[0])  # the master data's
    assert sum(1 for c in calls for e in c if event_time(e) == instant) == len(calls[0]) > publisher.batch
    for before, after in zip(calls, calls[1:]):
        assert event_time(before[-1]) != event_time(after[0])


def test_progress_bar_is_plain_text_when_not_a_terminal():
    out = io.StringIO()
    progress = Progress(10, out)
    progress.day(5, date(2026, 3, 6))
    progress.done()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[###############...............]  50%  2026-03-06")
    assert lines[-1].startswith("[" + "#" * 30 + "] 100%  done")
