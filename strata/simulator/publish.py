"""``strata simulate``: publish the simulated bank's feed to Kafka, at a given rate or as fast as
possible, with a progress bar on stderr, and print the distribution it produced.

With ``--api-url`` (a running deployment, e.g. the gateway) it also does what the bank's
scheduler would: registers the RMs, and at each business-date boundary waits for the services
to catch up, then asks for the daily scan and closes each month.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Awaitable, Callable, Iterable, TextIO

import httpx

from shared.access import ACCESS_TOPICS
from shared.bus.base import Bus, BusUnavailable, Message
from shared.bus.kafka import KafkaBus
from shared.contracts.cloudevents import Event, encode_binary
from shared.contracts.topics import all_topics
from shared.logs import configure_logging
from shared.runtime.order import event_time
from shared.settings import Settings
from strata.simulator.expected import ExpectedTiers
from strata.simulator.feed import Feed
from strata.simulator.report import render
from strata.simulator.scheduler import BankScheduler

BATCH = 1_000
CATCH_UP_TIMEOUT = 300.0
STALLED_AFTER = 15.0


def simulate_command(args) -> int:
    settings = Settings()
    configure_logging("WARNING")
    try:
        start = date.fromisoformat(args.start) if args.start else datetime.now(settings.zone).date().replace(day=1)
    except ValueError:
        print(f"strata simulate: --start {args.start!r} is not a date (YYYY-MM-DD)", file=sys.stderr)
        return 2
    if args.customers < 1 or args.days < 0 or args.rate < 0:
        print("strata simulate: --customers must be at least 1, --days and --rate not negative", file=sys.stderr)
        return 2
    try:
        feed, elapsed, expected = asyncio.run(_simulate(args, settings, start))
    except KeyboardInterrupt:
        print("\nstrata simulate: interrupted", file=sys.stderr)
        return 130
    except BusUnavailable as exc:
        print(f"\nstrata simulate: Kafka is not reachable: {exc}", file=sys.stderr)
        return 1
    total = sum(v for k, v in feed.counts.items() if "." in k)
    print(f"Published {total:,} events in {elapsed:,.1f} s ({total / max(elapsed, 1e-9):,.0f}/s): "
          f"{feed.customers:,} customers, {args.days} business days from {start}, seed {args.seed}.")
    print(render(feed, expected))
    return 0


async def _simulate(args, settings: Settings, start: date):
    feed = await asyncio.to_thread(Feed, args.seed, args.customers, start, settings)
    expected = ExpectedTiers(feed.customers, settings)
    feed.observer = expected
    kafka = settings.kafka
    bus = KafkaBus(kafka.bootstrap_servers, client_id=f"{kafka.client_id}-simulator",
                   replication_factor=kafka.replication_factor, topic_prefix=kafka.topic_prefix)
    await bus.start()
    client = httpx.AsyncClient(base_url=args.api_url, timeout=300) if getattr(args, "api_url", None) else None
    try:
        await bus.ensure_topics(all_topics(), kafka.partitions)
        scheduler = BankScheduler(client, settings) if client else None
        if scheduler:
            await scheduler.register_rms(feed.bank.rms())
        progress = Progress(args.days, sys.stderr)
        publisher = Publisher(bus, args.rate, progress)
        began = time.monotonic()
        await publisher.publish(feed.master_events())
        for n in range(args.days):
            day = start + timedelta(days=n)
            progress.day(n, day)
            if scheduler:
                await _start_of_day(scheduler, bus, settings, feed, expected, day)
            await publisher.publish(feed.published_day(day))
        end = start + timedelta(days=args.days)
        if scheduler and args.days and end.day == 1:
            await _start_of_day(scheduler, bus, settings, feed, expected, end, scan=False)
        progress.done()
        return feed, time.monotonic() - began, expected.by_tier()
    finally:
        if client is not None:
            await client.aclose()
        await bus.stop()


async def _start_of_day(scheduler: BankScheduler, bus: Bus, settings: Settings, feed: Feed,
                        expected: ExpectedTiers, day: date, *, scan: bool = True) -> None:
    if day.day == 1 and day > feed.start:
        month = f"{day - timedelta(days=1):%Y-%m}"
        await wait_for_services(bus, settings)
        if await scheduler.close_month(month) is not None:
            expected.close_month(month)
    if scan and scheduler.serves("POST", "/v1/admin/daily-scan"):
        await wait_for_services(bus, settings)
        await scheduler.daily_scan(day)


async def wait_for_services(bus: Bus, settings: Settings, timeout: float = CATCH_UP_TIMEOUT) -> None:
    """Wait until each service's consumer group has read everything, or has stopped moving
    (a service that is not deployed never will)."""
    from strata.registry import available, load

    groups = []
    for name in available():
        spec = load(name)
        topics = list(dict.fromkeys(list(spec.subscriptions) + (list(ACCESS_TOPICS) if spec.keeps_access else [])))
        groups.append((f"{settings.kafka.group_prefix}.{name}", topics))
    deadline = time.monotonic() + timeout
    last: dict[str, tuple[int, float]] = {}
    while time.monotonic() < deadline:
        waiting = False
        for group, topics in groups:
            pending = await bus.pending(group, topics)
            seen = last.get(group)
            if seen is None or seen[0] != pending:
                last[group] = (pending, time.monotonic())
            stalled = time.monotonic() - last[group][1] > STALLED_AFTER
            waiting = waiting or (pending > 0 and not stalled)
        if not waiting:
            return
        await asyncio.sleep(0.5)


@dataclass
class Progress:
    """A plain-text progress bar on stderr (a line every few seconds when not a terminal)."""

    days: int
    out: TextIO
    width: int = 30
    events: int = 0
    current: str = "opening balances"
    fraction: float = 0.0
    began: float = field(default_factory=time.monotonic)
    _drawn: float = 0.0

    def day(self, index: int, day: date) -> None:
        self.fraction = index / self.days if self.days else 1.0
        self.current = day.isoformat()
        self.draw()

    def add(self, n: int) -> None:
        self.events += n
        if time.monotonic() - self._drawn > (0.2 if self.out.isatty() else 5.0):
            self.draw()

    def line(self) -> str:
        filled = int(self.fraction * self.width)
        rate = self.events / max(time.monotonic() - self.began, 1e-9)
        return (f"[{'#' * filled}{'.' * (self.width - filled)}] {self.fraction:4.0%}  {self.current}  "
                f"{self.events:,} events  {rate:,.0f}/s")

    def draw(self) -> None:
        self._drawn = time.monotonic()
        if self.out.isatty():
            self.out.write("\r" + self.line() + "\x1b[K")
        else:
            self.out.write(self.line() + "\n")
        self.out.flush()

    def done(self) -> None:
        self.fraction, self.current = 1.0, "done"
        self.draw()
        if self.out.isatty():
            self.out.write("\n")


class Publisher:
    """Publishes events in batches, no faster than ``rate`` events a second (0: no limit)."""

    def __init__(self, bus: Bus, rate: float, progress: Progress | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.bus = bus
        self.rate = rate
        self.progress = progress
        self.sent = 0
        self.clock = clock
        self.sleep = sleep
        self.began = clock()
        self.batch = BATCH if rate <= 0 else max(1, min(BATCH, int(rate / 10)))

    async def publish(self, events: Iterable[Event]) -> None:
        """In batches of about ``self.batch``, never splitting one instant's facts: a batch ends
        only where the event time changes, so facts of one instant (a day's master data) reach
        the bus in one call, as core banking's file of that instant would."""
        batch: list[Message] = []
        last = None
        for event in events:
            at = event_time(event)
            if len(batch) >= self.batch and at != last:
                await self._send(batch)
                batch = []
            key, value, headers = encode_binary(event)
            batch.append(Message(event.topic, key, value, headers))
            last = at
        await self._send(batch)

    async def _send(self, batch: list[Message]) -> None:
        if not batch:
            return
        await self.bus.publish(batch)
        self.sent += len(batch)
        if self.progress is not None:
            self.progress.add(len(batch))
        if self.rate > 0:
            ahead = self.sent / self.rate - (self.clock() - self.began)
            if ahead > 0:
                await self.sleep(ahead)
        else:
            await asyncio.sleep(0)
