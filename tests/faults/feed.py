"""The seeded feed every fault test sends: the simulated bank's master data, opening balances and
postings, with the untidiness of a real core-banking feed mixed in at seeded positions:

- the same event sent again (same ``ce_id``), a little later in the stream;
- the same posting sent again under a second ``ce_id`` (core banking's retry after a timeout);
- stale balance snapshots (``as_of`` before the opening balances) that must change nothing;
- at the end, a pair of snapshots of one account sent newest first, the older one second.

Everything is a function of the seed, event ids included, so a reference run and a faulted run
send byte-identical streams.

The feed is sent in phases, each settled before the next: core banking sends customers and
accounts before the balances that refer to them, and a stream whose phases interleave at
random would make a different (equally valid) history. Within the stream phase nothing is held
back: postings, accounts and balances go out in the simulator's order with the duplicates in.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from shared.contracts.cloudevents import Event, new_event
from shared.contracts.events import BalanceV1
from shared.settings import Settings
from strata.simulator.feed import Feed

START = date(2026, 3, 2)
RESEND_SAME_ID = 0.03
"""Chance that an event of the stream is sent a second time with the same ``ce_id``."""
RESEND_NEW_ID = 0.02
"""Chance that a posting is sent a second time under another ``ce_id``."""
STALE_SNAPSHOT = 0.01
"""Chance, per event of the stream, of a stale balance snapshot of an account seen so far."""
LATE_PAIRS = 12
"""Accounts that get a newer and then an older snapshot once the stream is in."""


@dataclass
class FaultFeed:
    seed: int
    customers: int
    rms: list[dict]
    """The RMs to register before the feed (bodies of ``PUT /v1/rms/{rm_id}``)."""
    phases: list[tuple[str, list[Event]]]
    postings: set[str] = field(default_factory=set)
    """Every distinct ``posting_id`` of the feed."""
    duplicates: dict[str, int] = field(default_factory=dict)

    @property
    def events(self) -> int:
        return sum(len(events) for _name, events in self.phases)


@functools.lru_cache(maxsize=4)
def build_feed(seed: int, customers: int, postings: int) -> FaultFeed:
    """About ``postings`` postings (cut at exactly that many) over ``customers`` customers."""
    settings = Settings()
    sim = Feed(seed, customers, START, settings)
    master = list(sim.master_events())
    phases = [
        ("master data", [e for e in master if e.topic != "bank.balances"]),
        ("opening balances", [e for e in master if e.topic == "bank.balances"]),
    ]
    stream: list[Event] = []
    count = 0
    day = START
    while count < postings:
        for event in sim.day_events(day):
            if event.topic == "bank.postings":
                if count == postings:
                    break
                count += 1
            stream.append(event)
        day += timedelta(days=1)
    opened = {e.data.account_id: e.data for e in phases[1][1]}
    untidy, seen, duplicates = _untidy(stream, opened, random.Random(seed * 7919 + 1), settings)
    phases.append(("stream", untidy))
    phases.append(("late snapshots", _late_pairs(seen, day, random.Random(seed * 7919 + 2), settings)))
    return FaultFeed(
        seed=seed, customers=customers, rms=_one_rm_per_level(sim), phases=phases,
        postings={e.data.posting_id for e in stream if e.topic == "bank.postings"},
        duplicates=duplicates,
    )


def _untidy(stream: list[Event], opened: dict[str, BalanceV1], rng: random.Random, settings: Settings):
    """The stream with duplicates and stale snapshots inserted up to 150 positions after their
    original (never before it: a copy cannot overtake what it copies).

    A stale snapshot is of an account with an opening balance, dated before it: whichever topic
    is read first, it is older than what the account holds and must change nothing."""
    targets = sorted(opened)
    due: dict[int, list[Event]] = {}
    seen: dict[str, Event] = {}  # account_id -> its latest posting
    counts = {"same ce_id": 0, "posting under a new ce_id": 0, "stale snapshot": 0}
    stale_at = datetime.combine(START - timedelta(days=1), time(12), settings.zone)
    out: list[Event] = []

    def later(index: int, event: Event) -> None:
        due.setdefault(index + rng.randint(1, 150), []).append(event)

    for index, event in enumerate(stream):
        out.extend(due.pop(index, ()))
        out.append(event)
        if rng.random() < RESEND_SAME_ID:
            later(index, event)
            counts["same ce_id"] += 1
        if event.topic == "bank.postings":
            seen[event.data.account_id] = event
            if rng.random() < RESEND_NEW_ID:
                later(index, new_event(event.data, event.source, id=f"{event.id}:retry", time=event.time))
                counts["posting under a new ce_id"] += 1
        if targets and rng.random() < STALE_SNAPSHOT:
            known = opened[rng.choice(targets)]
            stale = known.model_copy(update={"balance": Decimal(rng.randrange(0, 10**8)) / 100,
                                             "as_of": stale_at})
            later(index, new_event(stale, "core-banking-simulator", id=f"stale:{index}", time=stale_at))
            counts["stale snapshot"] += 1
    for index in sorted(due):
        out.extend(due[index])
    return out, seen, counts


def _late_pairs(seen: dict[str, Event], after: date, rng: random.Random, settings: Settings) -> list[Event]:
    """For a few demand accounts: a snapshot 100.00 above the last posting's balance, then one
    ten minutes older saying 1.00, which must be ignored."""
    demand = sorted(a for a, e in seen.items() if e.data.product_type == "demand_deposit")
    newer_at = datetime.combine(after, time(0, 30), settings.zone)
    older_at = newer_at - timedelta(minutes=10)
    events = []
    for account_id in rng.sample(demand, min(LATE_PAIRS, len(demand))):
        p = seen[account_id].data
        for at, balance in ((newer_at, p.balance_after + 100), (older_at, Decimal("1.00"))):
            data = BalanceV1(customer_id=p.customer_id, account_id=account_id, product_type=p.product_type,
                             balance=balance, currency=p.currency, as_of=at)
            event_id = f"late:{account_id}:{at.isoformat()}"
            events.append(new_event(data, "core-banking-simulator", id=event_id, time=at))
    return events


def _one_rm_per_level(sim: Feed) -> list[dict]:
    """The simulator's RMs, one per branch and level, with room for every customer.

    Balanced distribution between two equal RMs rightly depends on which customer arrives first,
    and Kafka orders nothing across partitions; with one RM per branch and level every placement
    is forced, so two runs must agree on every assignment whatever the interleaving."""
    kept: dict[tuple[str, str], dict] = {}
    for rm in sim.bank.rms():
        body = rm.as_json()
        body["capacity"] = 10 * sim.customers * 8  # never the limit: capacity is not under test
        kept.setdefault((rm.branch_id, rm.level), body)
    return list(kept.values())
