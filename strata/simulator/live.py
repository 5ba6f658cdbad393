"""The simulated bank feeding ``strata run``: events published to the process's in-memory bus in
accelerated business time, the bank's scheduler calling the admin API through the app itself,
and a live summary on the terminal.

The first run starts the bank's story on the first day of the month ``HISTORY_MONTHS`` before
today's, and replays it as fast as the services absorb it (with fewer, larger everyday
transactions) up to the ``LIVE_FROM_DAY`` of the month before today's: two month-end closes happen
during the replay and the third a few business days into live time, so watch flags and
downgrades are seen within minutes. From then on business time runs at ``--speed``. The position
is saved in the data directory and the next run continues from it: the RMs are registered and the
master data published once per data directory, so a restart never undoes what an admin changed
since (an RM renamed, deactivated, a book handed over).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, select

from shared.bus.base import Message
from shared.clock import SimulatedClock
from shared.contracts.cloudevents import Event, encode_binary
from shared.runtime.models import OutboxMessage
from strata.simulator.feed import Feed
from strata.simulator.position import FILE_NAME, Position, data_dir_of
from strata.simulator.scheduler import BankScheduler, routes_of
from strata.simulator.screen import FeedStatus, Screen

log = logging.getLogger(__name__)

HISTORY_MONTHS = 3
LIVE_FROM_DAY = 25
HISTORY_INTENSITY = 0.15
MAX_PENDING = 1_000
"""Events the services may have waiting before the feed pauses business time."""
CHUNK = 200
TICK = 0.2
SAVE_EVERY = 10.0
IDLE_TIMEOUT = 120.0
STOP_DRAIN = 10.0


def start_live_feed(app, runtime, args, stop: asyncio.Event) -> list[asyncio.Task]:
    """Start the simulated bank and its summary; the tasks stop cleanly when cancelled."""
    feed = LiveFeed(app, runtime, args, stop)
    feed.install_clock()
    tty = sys.stdout.isatty() and not getattr(args, "quiet", False)
    base = f"http://{getattr(args, 'host', '127.0.0.1')}:{getattr(args, 'port', 8000)}"
    screen = Screen(runtime, feed.status, base_url=base, tty=tty)
    return [asyncio.create_task(feed.run(), name="simulator"),
            asyncio.create_task(screen.run(), name="simulator-summary")]


def story_dates(today: date, months_back: int = HISTORY_MONTHS) -> tuple[date, date]:
    """The first day of the bank's story, and the day live business time begins."""
    month = today.year * 12 + today.month - 1 - months_back
    start = date(month // 12, month % 12 + 1, 1)
    month += max(0, months_back - 1)
    return start, date(month // 12, month % 12 + 1, LIVE_FROM_DAY if months_back else 1)


class LiveFeed:
    def __init__(self, app, runtime, args, stop: asyncio.Event) -> None:
        self.app = app
        self.runtime = runtime
        self.settings = runtime.settings
        self.args = args
        self.stop = stop
        self.speed = float(getattr(args, "speed", 1440.0))
        directory = data_dir_of(self.settings.database_url, getattr(args, "data_dir", "strata-data"))
        directory.mkdir(parents=True, exist_ok=True)
        self.path: Path = directory / FILE_NAME
        self.status = FeedStatus(speed=self.speed)
        self.position: Position | None = None
        self.feed: Feed | None = None
        self.clock: SimulatedClock | None = None
        self._saved_at = 0.0

    def install_clock(self) -> None:
        """Make the process's business clock this bank's simulated time, from the saved
        position (or the first day of a new story), before the first request is answered."""
        try:
            self.position = self._open_position()
        except Exception:  # told by the run itself, which opens the position again
            log.exception("the simulated bank's position cannot be read")
            return
        pos = self.position
        self.clock = SimulatedClock(self.settings.zone, pos.day or pos.start)
        self.runtime.clock = self.clock

    def _advance(self, to: datetime | date) -> None:
        if self.clock is not None:
            self.clock.advance(to)

    # --- the whole run ----------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            await self._wind_down()
            raise
        except Exception as exc:
            log.exception("the simulated bank stopped")
            self.status.phase = f"stopped: {exc}"[:100]
            self._save()

    async def _run(self) -> None:
        if self.position is None:
            self.install_clock()
        if self.position is None:
            self.position = self._open_position()  # raises what install_clock logged
        pos = self.position
        self.status.customers, self.status.seed = pos.customers, pos.seed
        self.status.live_from = pos.live_from.isoformat()
        self.status.phase = "building the bank"
        self.feed = await asyncio.to_thread(
            Feed, pos.seed, pos.customers, pos.start, self.settings,
            light_until=pos.live_from, history_intensity=HISTORY_INTENSITY)
        if pos.books is not None and pos.day is not None:
            self.feed.restore(pos.books, pos.day)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                     base_url="http://strata.internal", timeout=120) as client:
            self.scheduler = BankScheduler(client, self.settings, routes_of(self.app))
            self.status.scheduler = self.scheduler.last
            if not pos.rms_registered:
                await self.scheduler.register_rms(self.feed.bank.rms())
                pos.rms_registered = True
                self._save()
            if pos.phase == "master":
                await self._publish_master()
            while True:
                await self._run_day()

    def _open_position(self) -> Position:
        saved = Position.load(self.path)
        if saved is not None:
            wanted = getattr(self.args, "customers", saved.customers)
            if wanted != saved.customers or getattr(self.args, "seed", saved.seed) != saved.seed:
                self.status.notes.append(
                    f"continuing the bank in {self.path.parent} ({saved.customers:,} customers, seed "
                    f"{saved.seed}); remove that directory for a new one")
            return saved
        today = datetime.now(self.settings.zone).date()
        start, live_from = story_dates(today, getattr(self.args, "history_months", HISTORY_MONTHS))
        position = Position(seed=getattr(self.args, "seed", 7), customers=getattr(self.args, "customers", 2000),
                            start=start, live_from=live_from)
        position.save(self.path)
        return position

    async def _publish_master(self) -> None:
        pos, feed = self.position, self.feed
        self.status.phase = "opening the bank: customers, accounts, opening balances"
        self.status.business_day = pos.start.isoformat()
        self._advance(pos.start)
        events = feed.master_events()
        skipped = 0
        while skipped < pos.published:
            next(events)
            skipped += 1
        batch: list[Event] = []
        for event in events:
            batch.append(event)
            if len(batch) >= CHUNK:
                await self._publish(batch)
                batch = []
        await self._publish(batch)
        await self._wait_idle()
        pos.phase, pos.day, pos.published, pos.books = "stream", pos.start, 0, feed.state()
        self._save()

    async def _run_day(self) -> None:
        pos, feed = self.position, self.feed
        day = pos.day
        self.status.business_day = day.isoformat()
        self._advance(day)
        history = day < pos.live_from
        self.status.phase = "history" if history else "live"
        if pos.published == 0:
            await self._start_of_day(day)
        events = await asyncio.to_thread(feed.published_day, day)
        done = pos.published
        if history:
            while done < len(events):
                await self._publish(events[done:done + CHUNK])
                done = pos.published
        else:
            await self._pace(day, events)
        pos.day, pos.published, pos.books = day + timedelta(days=1), 0, feed.state()
        self._save()

    async def _start_of_day(self, day: date) -> None:
        """What the bank's scheduler does each morning once the services have caught up: close
        the month that just ended, then ask for the day's date-based signals."""
        pos = self.position
        if day.day == 1 and day > pos.start:
            month = f"{(day - timedelta(days=1)):%Y-%m}"
            if pos.closed_through is None or pos.closed_through < month:
                await self._wait_idle()
                await self.scheduler.close_month(month)
                pos.closed_through = month
        if self.scheduler.serves("POST", "/v1/admin/daily-scan"):
            await self._wait_idle()
            await self.scheduler.daily_scan(day)

    async def _pace(self, day: date, events: list[Event]) -> None:
        """Publish the day's events as business time reaches them: ``speed`` business seconds
        per real second, paused while the services are behind."""
        pos = self.position
        midnight = self.feed.bank.at(day)
        clock = (events[pos.published - 1].time - midnight).total_seconds() if pos.published else 0.0
        last = time.monotonic()
        while True:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            if await self._pending() < MAX_PENDING:
                clock += min(now - last, 1.0) * self.speed
            last = now
            self._advance(midnight + timedelta(seconds=min(clock, 86_399)))
            due = pos.published
            while due < len(events) and (events[due].time - midnight).total_seconds() <= clock:
                due += 1
            if due > pos.published:
                await self._publish(events[pos.published:due])
            if clock >= 86_400 and pos.published >= len(events):
                return

    # --- the bus --------------------------------------------------------------------------

    async def _publish(self, events: list[Event]) -> None:
        if not events:
            return
        while await self._pending() > MAX_PENDING:
            await asyncio.sleep(0.05)
        messages = []
        for event in events:
            key, value, headers = encode_binary(event)
            messages.append(Message(event.topic, key, value, headers))
        handing_over = asyncio.ensure_future(self.runtime.bus.publish(messages))
        try:
            await asyncio.shield(handing_over)
        except asyncio.CancelledError:
            # stopped while the bus takes the batch: let it finish and count it, so the position
            # saved on the way out skips it and a resume never publishes it twice
            await handing_over
            self._count(events)
            raise
        self._count(events)

    def _count(self, events: list[Event]) -> None:
        self._advance(max(e.time for e in events))
        self.position.published += len(events)
        self.status.published += len(events)
        if time.monotonic() - self._saved_at > SAVE_EVERY:
            self._save()

    async def _pending(self) -> int:
        bus = self.runtime.bus
        total = 0
        for loop in self.runtime.loops.values():
            total += await bus.pending(loop.group, loop.topics)
        return total

    async def _wait_idle(self, timeout: float = IDLE_TIMEOUT) -> bool:
        """Wait until every service has consumed everything and published its outbox."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while quiet < 2:
            if time.monotonic() > deadline:
                return False
            if await self._pending() == 0 and await self._outbox_empty():
                quiet += 1
            else:
                quiet = 0
            await asyncio.sleep(0.05)
        return True

    async def _outbox_empty(self) -> bool:
        async with self.runtime.db.sessions() as session:
            return not await session.scalar(select(func.count()).select_from(OutboxMessage))

    # --- stopping -------------------------------------------------------------------------

    async def _wind_down(self) -> None:
        """On Ctrl-C: let the services consume what was published (the in-memory bus forgets
        the rest at exit), then save the position."""
        if self.position is None:
            return
        self.status.phase = "stopping"
        try:
            await asyncio.wait_for(self._wait_idle(STOP_DRAIN), STOP_DRAIN + 1)
        except Exception:
            pass
        self._save()

    def _save(self) -> None:
        """Save the position; ``books`` are always those of the start of ``day``, which is
        produced again on resume and its first ``published`` events skipped."""
        if self.position is not None:
            self.position.save(self.path)
            self._saved_at = time.monotonic()
