"""The live feed of ``strata run`` in the single-process harness: tiers move, Ctrl-C stops it,
and the next run continues the same books without a duplicated or missing posting."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections import defaultdict
from datetime import date, timedelta
from types import SimpleNamespace

from sqlalchemy import func, select

from services.tiering.models import TieringAccount, TieringTierHistory
from shared.contracts.cloudevents import decode_record
from strata.simulator.live import LiveFeed, start_live_feed, story_dates
from strata.simulator.position import FILE_NAME, data_dir_of
from strata.simulator.screen import FeedStatus, Screen


def _args(tmp: str) -> SimpleNamespace:
    return SimpleNamespace(customers=120, seed=5, speed=86_400 * 20.0, quiet=True, data_dir=tmp,
                           history_months=1, host="127.0.0.1", port=8000)


async def _until(predicate, timeout: float = 600.0) -> None:
    """Wait for the live feed to reach a state. The feed runs on the wall clock (accelerated),
    so on a loaded machine it gets there later; the timeout only keeps a feed that never
    gets there from hanging the suite, it measures nothing."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "the live feed did not get there in time"
        await asyncio.sleep(0.2)


async def _stop(tasks) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def test_story_starts_months_back_and_goes_live_before_the_third_month_end():
    start, live = story_dates(date(2026, 11, 28), 3)
    assert (start, live) == (date(2026, 8, 1), date(2026, 10, 25))


async def test_live_feed_upgrades_customers_then_resumes_without_duplicates(fresh_strata):
    strata = fresh_strata
    runtime = strata.runtime
    published = []
    publish = runtime.bus.publish

    async def recording(messages):
        published.extend(messages)
        await publish(messages)

    runtime.bus.publish = recording
    directory = data_dir_of(strata.settings.database_url, ".")
    args = _args(str(directory))
    path = directory / FILE_NAME

    async def upgraded_mid_stream():
        async with runtime.db.sessions() as session:
            upgrades = await session.scalar(select(func.count()).select_from(TieringTierHistory)
                                            .where(TieringTierHistory.change.in_(("upgrade", "initial_placement"))))
        return upgrades > 0 and path.exists() and json.loads(path.read_text())["phase"] == "stream" \
            and json.loads(path.read_text())["day"] > json.loads(path.read_text())["start"]

    tasks = start_live_feed(strata.app, runtime, args, asyncio.Event())
    await _until(upgraded_mid_stream)
    await _stop(tasks)
    first = json.loads(path.read_text())
    count_first = len(published)

    async def moved_on():
        return len(published) > count_first + 200 and json.loads(path.read_text())["day"] > first["day"]

    tasks = start_live_feed(strata.app, runtime, args, asyncio.Event())
    await _until(moved_on)
    await _stop(tasks)
    await strata.settle(60)

    events = [decode_record(m.value, m.headers) for m in published]
    ids = [e.id for e in events]
    twice = sorted({(e.type, e.id) for e in events if ids.count(e.id) > 1})
    assert not twice, f"events published twice: {twice[:10]}"
    seqs = defaultdict(list)
    for e in events:
        if e.type == "bank.posting.v1":
            seqs[e.data.account_id].append(e.data.account_seq)
    assert seqs
    for account, numbers in seqs.items():
        assert numbers == list(range(1, len(numbers) + 1)), f"{account}: account_seq {numbers}"
    async with runtime.db.sessions() as session:
        applied = dict((await session.execute(select(TieringAccount.account_id, TieringAccount.seq))).all())
    assert all(applied[a] == n[-1] for a, n in seqs.items()), "tiering applied every posting"


async def test_summary_redraws_in_place_with_tiers_and_dashes_for_what_is_missing(fresh_strata):
    status = FeedStatus(customers=10, seed=1, phase="live", business_day="2026-11-02", speed=1440)
    out = io.StringIO()
    screen = Screen(fresh_strata.runtime, status, base_url="http://127.0.0.1:8000", tty=True, out=out)
    await screen.draw()
    await screen.draw()
    text = out.getvalue()
    assert text.startswith("\x1b[H") and text.count("\x1b[H") == 2
    assert "\x1b[2J" not in text, "no full clear on every refresh (it flickers)"
    assert "\x1b[K\n" in text and "business date    2026-11-02" in text
    assert "http://127.0.0.1:8000/docs" in text


async def test_without_a_terminal_the_summary_is_one_compact_line(fresh_strata):
    status = FeedStatus(customers=10, seed=1, phase="history", business_day="2026-09-03")
    out = io.StringIO()
    screen = Screen(fresh_strata.runtime, status, base_url="http://x", tty=False, out=out)
    await screen.draw()
    line = out.getvalue()
    assert line.count("\n") == 1 and "\x1b" not in line
    assert line.startswith("[simulator] 2026-09-03 history")


def test_live_feed_keeps_its_position_beside_the_sqlite_database(tmp_path):
    runtime = SimpleNamespace(settings=SimpleNamespace(database_url=f"sqlite+aiosqlite:///{tmp_path}/db/strata.db"))
    (tmp_path / "db").mkdir()
    feed = LiveFeed(None, runtime, _args("unused"), asyncio.Event())
    assert feed.path == tmp_path / "db" / FILE_NAME


async def test_scheduler_registers_rms_scans_and_closes_through_the_apps_own_routes(fresh_strata):
    import httpx

    from strata.simulator.bank import SyntheticBank
    from strata.simulator.scheduler import BankScheduler, routes_of

    app = fresh_strata.app
    routes = routes_of(app)
    assert ("POST", "/v1/admin/month-end-close") in routes
    rms = SyntheticBank(5, 1000, date(2026, 5, 1), fresh_strata.settings).rms()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://in") as client:
        scheduler = BankScheduler(client, fresh_strata.settings, routes)
        if ("PUT", "/v1/rms/{rm_id}") in routes:
            assert await scheduler.register_rms(rms) == len(rms)
            listed = (await fresh_strata.get("/v1/rms", params={"limit": 500})).json()["items"]
            assert {r.rm_id for r in rms} <= {r["rm_id"] for r in listed}
        if ("POST", "/v1/admin/daily-scan") in routes:
            assert await scheduler.daily_scan(date(2026, 5, 2))
        summary = await scheduler.close_month("2026-04")
        assert summary is not None and summary["month"] == "2026-04"
        assert scheduler.last["month_end"].startswith("2026-04 closed")


async def test_the_business_clock_is_the_simulated_bank_s_day(fresh_strata):
    strata = fresh_strata
    runtime = strata.runtime
    directory = data_dir_of(strata.settings.database_url, ".")
    path = directory / FILE_NAME
    tasks = start_live_feed(strata.app, runtime, _args(str(directory)), asyncio.Event())
    try:
        start = date.fromisoformat(json.loads(path.read_text())["start"])
        first = (await strata.get("/v1/clock", role="analyst")).json()
        assert first["simulated"] is True and first["today"] == start.isoformat()

        async def days_later():
            saved = json.loads(path.read_text())
            return saved["phase"] == "stream" and date.fromisoformat(saved["day"]) > start + timedelta(days=3)

        await _until(days_later)
        before = date.fromisoformat(json.loads(path.read_text())["day"])
        today = date.fromisoformat((await strata.get("/v1/clock", role="analyst")).json()["today"])
        after = date.fromisoformat(json.loads(path.read_text())["day"])
        assert before - timedelta(days=1) <= today <= after, (before, today, after)
    finally:
        await _stop(tasks)


async def test_scheduler_never_asks_for_a_job_before_its_day(fresh_strata):
    import httpx

    from shared.clock import SimulatedClock
    from strata.simulator.scheduler import BankScheduler, routes_of

    fresh_strata.runtime.clock = SimulatedClock(fresh_strata.settings.zone, date(2026, 5, 2))
    sent = []

    async def record(request):
        if request.method == "POST":
            sent.append(json.loads(request.content))

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fresh_strata.app), base_url="http://in",
                                 event_hooks={"request": [record]}) as client:
        scheduler = BankScheduler(client, fresh_strata.settings, routes_of(fresh_strata.app))
        assert await scheduler.daily_scan(date(2026, 5, 3)) is False
        assert "2026-05-03 not scanned" in scheduler.last["daily_scan"]
        assert await scheduler.close_month("2026-05") is None
        assert "2026-05-31" in scheduler.last["month_end"] and "2026-05-02" in scheduler.last["month_end"]
        assert sent == [], "a job was asked for on the wrong day"
        assert await scheduler.daily_scan(date(2026, 5, 2)) is True
        assert await scheduler.close_month("2026-04") is not None
        assert sent == [{"date": "2026-05-02"}, {"month": "2026-04"}]


async def test_a_restart_keeps_what_an_admin_changed_in_the_rm_registry(fresh_strata, monkeypatch):
    strata = fresh_strata
    runtime = strata.runtime
    directory = data_dir_of(strata.settings.database_url, ".")
    path = directory / FILE_NAME
    args = _args(str(directory))
    puts = []

    async def streaming():
        return path.exists() and json.loads(path.read_text())["phase"] == "stream"

    tasks = start_live_feed(strata.app, runtime, args, asyncio.Event())
    await _until(streaming)
    await _stop(tasks)
    await strata.settle(60)
    rms = (await strata.get("/v1/rms", params={"limit": 500})).json()["items"]
    idle = next(r for r in rms if r["customers"] == 0 and r["backup_customers"] == 0)
    changed = {"name": "改名的客户经理", "branch_id": idle["branch_id"], "level": idle["level"],
               "capacity": 7, "active": False}
    response = await strata.client.put(f"/v1/rms/{idle['rm_id']}", json=changed, headers=strata.token("admin"))
    assert response.status_code == 200, response.text

    from strata.simulator.scheduler import BankScheduler

    call = BankScheduler._call

    async def recording_call(self, method, route, url, body):
        if method == "PUT":
            puts.append(url)
        return await call(self, method, route, url, body)

    monkeypatch.setattr(BankScheduler, "_call", recording_call)
    day = json.loads(path.read_text())["day"]
    published = []
    publish = runtime.bus.publish

    async def recording(messages):
        published.extend(messages)
        await publish(messages)

    runtime.bus.publish = recording

    async def next_day():
        return json.loads(path.read_text())["day"] > day

    tasks = start_live_feed(strata.app, runtime, args, asyncio.Event())
    await _until(next_day)
    await _stop(tasks)
    assert puts == [], "the restart registered the RMs again"
    after = (await strata.get(f"/v1/rms/{idle['rm_id']}")).json()
    assert (after["name"], after["capacity"], after["active"]) == ("改名的客户经理", 7, False)
    assert not [m for m in published if m.topic == "bank.customers"
                and decode_record(m.value, m.headers).data.source == "core"
                and decode_record(m.value, m.headers).time.date() < date.fromisoformat(day)], \
        "the restart published master data again"


async def test_a_batch_the_bus_was_taking_when_the_feed_stopped_counts_as_published(tmp_path):
    """Stopped (Ctrl-C, a restart) while the bus takes a batch: the batch goes out and counts,
    so the saved position skips it and the next run does not publish it a second time."""
    from shared.contracts.cloudevents import new_event
    from shared.contracts.events import PostingV1
    from strata.simulator.position import Position

    taking, release, sent = asyncio.Event(), asyncio.Event(), []

    async def publish(messages):
        taking.set()
        await release.wait()
        sent.extend(messages)

    async def nothing_pending(group, topics):
        return 0

    feed = LiveFeed.__new__(LiveFeed)
    feed.runtime = SimpleNamespace(bus=SimpleNamespace(publish=publish, pending=nothing_pending), loops={})
    feed.position = Position(seed=1, customers=1, start=date(2026, 11, 1), live_from=date(2026, 11, 2))
    feed.status, feed.clock, feed._saved_at, feed.path = FeedStatus(speed=1.0), None, time.monotonic(), tmp_path / "p"
    posting = PostingV1.model_validate({
        "posting_id": "P1", "customer_id": "C1", "account_id": "A1", "account_seq": 1,
        "product_type": "demand_deposit", "direction": "credit", "amount": "1.00", "balance_after": "1.00",
        "currency": "CNY", "tx_type": "deposit", "channel": "counter", "branch_id": "BR-1",
        "posted_at": "2026-11-01T10:00:00+08:00"})
    events = [new_event(posting, "test", id=f"e{i}") for i in range(3)]
    task = asyncio.create_task(feed._publish(events))
    await taking.wait()
    task.cancel()
    await asyncio.sleep(0)
    release.set()
    try:
        await task
    except asyncio.CancelledError:
        pass
    assert len(sent) == 3
    assert feed.position.published == 3, "what went out is counted, so a resume skips it"
