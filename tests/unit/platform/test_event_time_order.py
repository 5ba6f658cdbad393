"""``EventTimeOrder``: records of several topics released in event-time order per task, held
back while a partition lags or has just gone quiet, whatever order the fetches brought them."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from shared.bus.base import Record
from shared.runtime.order import EventTimeOrder, order_key

T0 = datetime(2026, 11, 10, 2, 0, tzinfo=timezone.utc)
TOPICS = ("bank.customers", "bank.accounts", "bank.balances", "bank.postings")


@dataclass
class Item:
    record: Record
    event: object
    key: tuple | None = None


def item(topic: str, partition: int, offset: int, minutes: int, name: str, seq: int = 0) -> Item:
    data = SimpleNamespace(posted_at=T0 + timedelta(minutes=minutes), account_seq=seq)
    event = SimpleNamespace(id=name, data=data, time=T0)
    it = Item(Record(topic, partition, offset, b"k", b"v"), event)
    it.key = order_key(event, TOPICS.index(topic), partition, offset)
    return it


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def names(released) -> list[str]:
    return [r.item.event.id for r in released]


def test_records_fetched_in_any_order_are_released_in_event_time_order():
    facts = [("bank.postings", 0, m, f"p{m}") for m in (1, 4, 6, 9)] + \
            [("bank.balances", 0, m, f"b{m}") for m in (2, 7)] + [("bank.accounts", 0, 5, "a5")]
    outcomes = set()
    for seed in range(20):
        rng = random.Random(seed)
        order = EventTimeOrder(TOPICS, 0.0)
        order.assign([(t, 0) for t in TOPICS])
        by_topic: dict[str, list] = {}
        for topic, p, minutes, name in facts:
            by_topic.setdefault(topic, []).append((topic, p, minutes, name))
        offsets = {t: 0 for t in TOPICS}
        fetched = {t: 0 for t in TOPICS}
        out = []
        while any(fetched[t] < len(by_topic.get(t, ())) for t in TOPICS):
            topic = rng.choice([t for t in TOPICS if fetched[t] < len(by_topic.get(t, ()))])
            t, p, minutes, name = by_topic[topic][fetched[topic]]
            order.add([item(t, p, offsets[t], minutes, name)])
            offsets[t] += 1
            fetched[topic] += 1
            lagging = lambda tp, part: fetched[tp] < len(by_topic.get(tp, ()))  # noqa: E731
            out += names(order.release(lagging, 100))
        out += names(order.release(lambda tp, part: False, 100))
        outcomes.add(tuple(out))
    assert outcomes == {("p1", "b2", "p4", "a5", "p6", "b7", "p9")}


def test_a_quiet_partition_holds_its_task_back_for_the_bound_then_no_longer():
    clock = Clock()
    order = EventTimeOrder(TOPICS, 2.0, clock=clock)
    order.assign([(t, 0) for t in TOPICS])
    order.add([item("bank.postings", 0, 0, 10, "p10")])
    caught_up = lambda topic, partition: False  # noqa: E731
    assert names(order.release(caught_up, 100)) == []  # the other topics just went quiet
    clock.now = 1.0
    order.add([item("bank.balances", 0, 0, 5, "b5")])  # a little behind: still in its place
    clock.now = 1.5
    assert names(order.release(caught_up, 100)) == []
    clock.now = 3.6
    assert names(order.release(caught_up, 100)) == ["b5", "p10"]


def test_a_record_beyond_the_bound_is_released_at_once_and_marked_late():
    clock = Clock()
    order = EventTimeOrder(TOPICS, 0.0, clock=clock)
    order.assign([(t, 0) for t in TOPICS])
    order.add([item("bank.postings", 0, 0, 10, "p10")])
    assert [(r.item.event.id, r.late) for r in order.release(lambda t, p: False, 100)] == [("p10", False)]
    order.add([item("bank.balances", 0, 0, 5, "b5")])
    assert [(r.item.event.id, r.late) for r in order.release(lambda t, p: False, 100)] == [("b5", True)]


def test_offsets_are_committed_only_past_what_was_released():
    order = EventTimeOrder(TOPICS, 0.0)
    order.assign([(t, 0) for t in TOPICS])
    order.add([item("bank.postings", 0, 0, 1, "p1"), item("bank.postings", 0, 1, 9, "p9")])
    order.add([item("bank.balances", 0, 0, 5, "b5")])
    lagging = lambda topic, partition: topic == "bank.balances"  # noqa: E731 - more balances to come
    assert names(order.release(lagging, 100)) == ["p1", "b5"]
    assert order.committable() == {("bank.postings", 0): 1, ("bank.balances", 0): 1}
    assert order.committable() == {}


def test_each_partition_number_is_its_own_task():
    order = EventTimeOrder(TOPICS, 0.0)
    order.assign([(t, p) for t in TOPICS for p in (0, 1)])
    order.add([item("bank.postings", 0, 0, 9, "p0-9"), item("bank.postings", 1, 0, 1, "p1-1")])
    lagging = lambda topic, partition: topic == "bank.balances" and partition == 0  # noqa: E731
    assert names(order.release(lagging, 100)) == ["p1-1"]  # task 0 waits for its balances


def test_after_a_rebalance_records_fetched_again_from_the_committed_offset_commit_to_the_end():
    """A rebalance takes every partition away and gives some back: the consumer then fetches
    them again from the group's committed offset, records it had buffered (some released, not
    committed) among them. The order forgets what it held, so nothing is held twice and the
    committed offset reaches the end of what was applied."""
    tp = ("bank.postings", 0)
    order = EventTimeOrder(TOPICS, 0.0)
    order.assign([tp], generation=1)
    order.add([item("bank.postings", 0, o, o, f"p{o}") for o in range(5)])
    first = order.release(lambda t, p: False, 3)
    assert names(first) == ["p0", "p1", "p2"]  # applied; the commit of offset 3 did not happen
    order.assign([tp], generation=2)  # revoked and assigned again: fetched again from offset 0
    order.add([item("bank.postings", 0, o, o, f"p{o}") for o in range(5)])
    again = order.release(lambda t, p: False, 100)
    assert names(again) == ["p0", "p1", "p2", "p3", "p4"]
    assert order.committable() == {tp: 5}
    assert order.buffered() == 0


def test_a_topic_quiet_since_start_up_still_holds_new_records_back_for_the_bound():
    """Core banking publishes one topic after the others: the customers' partition has been
    quiet since the service started, and a posting fetched later still waits ``max_lateness``
    for it, so a customer record published within the bound is applied first."""
    clock = Clock()
    order = EventTimeOrder(TOPICS, 20.0, clock=clock)
    order.assign([("bank.customers", 0), ("bank.postings", 0)])
    assert order.release(lambda t, p: False, 10) == []  # both quiet from the start
    clock.now = 100.0  # long after start-up the postings come
    order.add([item("bank.postings", 0, 0, 5, "p5")])
    assert order.release(lambda t, p: False, 10) == []
    clock.now = 106.0  # the customer record, earlier in event time, within the bound
    order.add([item("bank.customers", 0, 0, 1, "c1")])
    clock.now = 107.0
    assert names(order.release(lambda t, p: False, 10)) == ["c1"]  # the posting is later
    clock.now = 128.0  # the customers' partition quiet for the bound again
    assert names(order.release(lambda t, p: False, 10)) == ["p5"]


def test_a_fact_of_a_later_topic_waits_for_facts_of_the_same_instant_still_to_come_on_an_earlier_one():
    """Core banking publishes a day's master data at one instant. A fetch brings the first of
    the customer records, and the partition looks caught up for a moment (the rest is still
    being written). A balance snapshot of that same instant ranks after every customer record
    of it, so it waits: until the customers' partition moves past the instant, or is quiet for
    the bound, not merely until it has something of that instant."""
    clock = Clock()
    order = EventTimeOrder(TOPICS, 20.0, clock=clock)
    order.assign([(t, 0) for t in TOPICS])
    order.add([item("bank.accounts", 0, 0, 4, "a4"), item("bank.postings", 0, 0, 4, "p4")])
    order.add([item("bank.customers", 0, 0, 0, "c0"), item("bank.balances", 0, 0, 0, "b0")])
    caught_up = lambda topic, partition: False  # noqa: E731
    clock.now = 1.0
    assert names(order.release(caught_up, 10)) == ["c0"]
    order.add([item("bank.customers", 0, 1, 0, "c1")])  # the rest of that instant's records
    clock.now = 2.0
    assert names(order.release(caught_up, 10)) == ["c1"]
    order.add([item("bank.customers", 0, 2, 3, "c3")])  # the customers' partition moves on
    assert names(order.release(caught_up, 10)) == ["b0"]
    clock.now = 23.0  # every partition quiet for the bound
    assert names(order.release(caught_up, 10)) == ["c3", "a4", "p4"]


def test_a_stream_written_in_event_time_order_is_waited_for_the_bound_once_more_downstream():
    """Assignment orders tiering's stream, which tiering writes in its own order: tiering may
    hold one partition up to the bound behind another, so assignment waits twice the bound for
    a quiet partition of it, and ``stream_wait_s`` more (tiering writes its partitions in turns);
    tiering, reading core banking's topics, waits the bound."""
    from shared.runtime.consumer import ConsumerLoop
    from shared.settings import Settings
    from services.assignment import spec as assignment
    from services.tiering import spec as tiering

    settings = Settings(runtime={"max_lateness_s": 5.0, "stream_wait_s": 1.5})
    loops = {s.name: ConsumerLoop(s, None, None, settings) for s in (assignment(), tiering())}
    assert loops["tiering"].order.max_lateness == 5.0
    assert loops["assignment"].order.max_lateness == 11.5
    defaults = Settings().runtime
    default = ConsumerLoop(assignment(), None, None, Settings())
    assert default.order.max_lateness == 2 * defaults.max_lateness_s + defaults.stream_wait_s > 0


def test_a_record_waits_until_the_broker_has_answered_for_the_quiet_partitions_since_it_came():
    """Core banking sends a posting and a balance snapshot of a moment before it in one produce
    request; the broker appends them one partition after the other, and a fetch in between
    brings the posting while the snapshot's partition still looks caught up. Even with no
    lateness allowed, the posting waits until the broker has answered for that partition again
    (the next fetch): the snapshot then comes with it, or the partition really was empty."""
    caught_up = lambda topic, partition: False  # noqa: E731
    for snapshot_too in (True, False):
        clock = Clock()
        order = EventTimeOrder(TOPICS, 0.0, clock=clock)
        order.assign([("bank.balances", 0), ("bank.postings", 0)])
        answered = {"bank.balances": 9.0, "bank.postings": 9.0}
        refreshed = lambda topic, partition: answered[topic]  # noqa: E731
        clock.now = 10.0
        order.add([item("bank.postings", 0, 0, 5, "p5")])
        assert names(order.release(caught_up, 10, refreshed)) == []  # answered before it came
        clock.now = 10.1
        answered["bank.balances"] = 10.1  # the next fetch
        if snapshot_too:
            order.add([item("bank.balances", 0, 0, 4, "b4")])
            assert names(order.release(caught_up, 10, refreshed)) == ["b4", "p5"]
        else:
            assert names(order.release(caught_up, 10, refreshed)) == ["p5"]
