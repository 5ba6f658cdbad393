"""Alerts end to end on the real Kafka broker and PostgreSQL: a month of simulated core-banking
events through tiering and alerts, an RM change, a restart in the middle of the month with
redeliveries and a replayed posting, daily scans every morning and a month-end close. The
signals that come out are compared with the ones worked out by hand from docs/RULES.md."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

import pytest
from aiokafka import AIOKafkaConsumer

from shared.contracts.cloudevents import Event, decode_record
from tests.integration.conftest import KAFKA, distributed
from tests.unit.alerts.alerts_feed import Postings, account, as_read, assignment, at, customer

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("integration_env")]

COHORTS = int(os.environ.get("STRATA_ALERTS_IT_COHORTS", "3"))
"""Five customers per cohort, one per story below; raise it for a soak run."""
MONTH = [date(2026, 11, d) for d in range(1, 31)]
RESTART_AFTER = date(2026, 11, 15)


@dataclass
class Month:
    """The month's events by day (day 0: master data and first assignments), the RM actions by
    day, and the signals expected at the end: ``(customer, type, rm, status)``."""

    events: dict[date | None, list] = field(default_factory=dict)
    actions: dict[date, list[tuple[str, str, str]]] = field(default_factory=dict)
    expected: list[tuple] = field(default_factory=list)

    def on(self, day: date | None, *events) -> None:
        self.events.setdefault(day, []).extend(events)


def nov(day: int, clock: str = "10:00:00") -> str:
    return at(f"2026-11-{day:02d}", clock)


def cohort(month: Month, k: int) -> None:
    branch = f"BR-{k}"
    n, v, t, m, w = (f"IT{k}{s}" for s in "NVTMW")
    month.on(None, *[customer(c, branch=branch, birth="1980-06-15") for c in (n, v, w)],
             customer(t, branch=branch, birth="1985-11-25"), customer(m, branch=branch, birth="1990-11-20"),
             account(t, f"{t}-TD", "time_deposit", maturity="2026-12-10", branch=branch),
             account(t, f"{t}-DD", "demand_deposit", card_expiry="2027-01-15", branch=branch),
             account(m, f"{m}-TD", "time_deposit", maturity="2026-11-25", branch=branch),
             assignment(n, f"RM-A{k}", nov(1, "08:00:00")), assignment(v, f"RM-V{k}", nov(1, "08:00:00")),
             assignment(t, f"RM-T{k}", nov(1, "08:00:00")), assignment(w, f"RM-W{k}", nov(1, "08:00:00")))

    # N: near the gold floor on the 2nd (suppressed on the 10th and, after the restart, on the
    # 16th), handed from RM-A to RM-B on the 15th, over the floor on the 20th; November's
    # average daily AUM is still below the gold floor: watch at the close.
    book = Postings(n)
    month.on(MONTH[1], book.credit("46000.00", nov(2)))
    month.on(MONTH[9], book.credit("1000.00", nov(10)))
    month.on(MONTH[14], assignment(n, f"RM-B{k}", nov(15, "09:00:00"), from_=f"RM-A{k}"))
    month.on(MONTH[15], book.credit("1000.00", nov(16)))
    month.on(MONTH[19], book.credit("5000.00", nov(20)))
    month.expected += [(n, "near_upgrade", f"RM-B{k}", "expired"), (n, "tier_upgraded", f"RM-B{k}", "open"),
                       (n, "downgrade_watch", f"RM-B{k}", "open")]

    # V: platinum on the 1st (the first AUM seen of V: a placement, no upgrade to tell of); 150,000 to another bank on the 5th (the RM closes it on the 6th);
    # 350,000 on the 8th is inside the week; 300,000 on the 14th is below 80 % of 600,000 again;
    # 99,999.99 to another bank on the 18th is neither large nor outside the week.
    book = Postings(v)
    month.on(MONTH[0], book.credit("600000.00", nov(1)))
    large = book.debit("150000.00", nov(5), bank="OTHER")
    month.on(MONTH[4], large)
    month.actions.setdefault(MONTH[5], []).append((v, "vip_outflow", "done"))
    month.on(MONTH[7], book.debit("100000.00", nov(8)))
    month.on(MONTH[13], book.debit("50000.00", nov(14)))
    month.on(MONTH[16], book.debit("99999.99", nov(18), bank="OTHER"), large)  # and the replayed posting
    month.expected += [(v, "vip_outflow", f"RM-V{k}", "done"), (v, "vip_outflow", f"RM-V{k}", "expired")]

    # T: gold on the 1st; time deposit maturing 10 Dec (30-day reminder on 10 Nov), card expiring
    # 15 Jan (60 days ahead on 16 Nov), birthday on the 25th (7 days ahead on the 18th, expired
    # on the 26th); RM-T hands over to RM-T2 on the 20th.
    book = Postings(t)
    month.on(MONTH[0], book.credit("80000.00", nov(1)))
    month.on(MONTH[19], assignment(t, f"RM-T2{k}", nov(20, "09:00:00"), from_=f"RM-T{k}"))
    month.expected += [(t, "maturity_due", f"RM-T2{k}", "open"),
                       (t, "card_expiry", f"RM-T2{k}", "open"), (t, "birthday", f"RM-T2{k}", "expired")]

    # M: a mass customer without an RM: no birthday reminder; a deposit maturing on the 25th gets
    # the 30-day reminder on the 1st and the 7-day one on the 18th, in the branch's queue.
    book = Postings(m)
    month.on(MONTH[0], book.credit("10000.00", nov(1)))
    month.expected += [(m, "maturity_due", None, "expired"), (m, "maturity_due", None, "expired")]

    # W: gold on the 28th, but November's average is far below the floor: watch at the close.
    book = Postings(w)
    month.on(MONTH[27], book.credit("55000.00", nov(28)))
    month.expected += [(w, "downgrade_watch", f"RM-W{k}", "open")]


async def play(strata, month: Month, days: list[date], sent: list[Event]) -> None:
    for day in days:
        events = [strata.event(e) for e in month.events.get(day, [])]
        if events:
            sent.extend(events)
            await strata.publish(*events)
            await strata.settle(60)
        response = await strata.post("/v1/admin/daily-scan", {"date": day.isoformat()})
        assert response.status_code == 200, response.text
        for customer_id, signal_type, action in month.actions.get(day, []):
            await act(strata, customer_id, signal_type, action)


async def act(strata, customer_id: str, signal_type: str, action: str) -> None:
    listed = await strata.get("/v1/signals", params={"customer_id": customer_id, "signal_type": signal_type,
                                                     "status": "open"})
    item = listed.json()["items"][0]
    response = await strata.post(f"/v1/signals/{item['id']}/{action}", role="rm", rm_id=item["rm_id"])
    assert response.status_code == 200, response.text


async def all_signals(strata) -> list[dict]:
    items, cursor = [], None
    while True:
        page = (await strata.get("/v1/signals", params={"limit": 500, **({"cursor": cursor} if cursor else {})})).json()
        items += page["items"]
        cursor = page["next"]
        if not cursor:
            return items


async def read_signal_events(topic: str, expect: int, timeout: float = 120.0) -> list[Event]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=KAFKA, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    records = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(records) < expect and asyncio.get_running_loop().time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
        for batch in (await consumer.getmany(timeout_ms=500)).values():
            records.extend(batch)
    finally:
        await consumer.stop()
    records.sort(key=lambda r: (r.partition, r.offset))
    return [decode_record(r.value, r.headers) for r in records]


async def test_a_month_of_events_raises_each_expected_signal_once_to_the_right_rm_across_a_restart():
    month = Month()
    for k in range(COHORTS):
        cohort(month, k)
    first_half = [d for d in MONTH if d <= RESTART_AFTER]
    sent: list[Event] = []
    async with distributed(["tiering", "alerts"]) as strata:
        url, prefix = strata.settings.database_url, strata.settings.kafka.topic_prefix
        await strata.publish(*[strata.event(e) for e in month.events[None]])
        await strata.settle(60)
        await play(strata, month, first_half, sent)

    async with distributed(["tiering", "alerts"], database_url=url, prefix=prefix) as strata:
        await strata.publish(*sent[: len(sent) // 2])  # redelivered after the restart: same ids
        await play(strata, month, [d for d in MONTH if d > RESTART_AFTER], sent)
        again = await strata.post("/v1/admin/daily-scan", {"date": "2026-11-18"})
        assert again.json()["raised"] == {"maturity_due": 0, "birthday": 0, "card_expiry": 0}
        dry = (await strata.post("/v1/admin/daily-scan", {"date": "2026-11-18", "dry_run": True})).json()
        assert (dry["raised"], dry["runs"], dry["preview"]) == (again.json()["raised"], again.json()["runs"] + 1, [])
        rerun = (await strata.post("/v1/admin/daily-scan", {"date": "2026-11-18"})).json()
        assert rerun["runs"] == again.json()["runs"] + 1, "the dry run on PostgreSQL recorded no run"
        close = await strata.post("/v1/admin/month-end-close", {"month": "2026-11"})
        assert close.status_code == 200, close.text
        await strata.settle(60)

        items = await all_signals(strata)
        got = Counter((i["customer_id"], i["signal_type"], i["rm_id"], i["status"]) for i in items)
        assert got == Counter(month.expected), (
            f"missing: {Counter(month.expected) - got}; unexpected or duplicated: {got - Counter(month.expected)}")

        announced = await read_signal_events(prefix + "strata.signals", expect=len(items))
        last: dict[str, tuple] = {}
        for event in announced:
            last[event.data.id] = (event.data.status, event.data.rm_id)
        assert last == {i["id"]: (i["status"], i["rm_id"]) for i in items}, \
            "what consumers of strata.signals saw last is each signal as stored"

        branch_queue = await strata.get("/v1/signals", role="branch_manager", branch_id="BR-0",
                                        params={"unassigned": "true"})
        assert {(i["customer_id"], i["signal_type"]) for i in branch_queue.json()["items"]} == {
            ("IT0M", "maturity_due")}
        rm_view = await strata.get("/v1/signals", role="rm", rm_id="RM-B0")
        assert sorted(i["signal_type"] for i in rm_view.json()["items"]) == [
            "downgrade_watch", "near_upgrade", "tier_upgraded"]
        assert (await strata.get("/v1/signals", role="rm", rm_id="RM-B0",
                                 params={"rm_id": "RM-A0"})).status_code == 403



RACE_CUSTOMERS = int(os.environ.get("STRATA_ALERTS_IT_RACE_CUSTOMERS", "200"))


async def test_a_daily_scan_racing_an_rm_handover_routes_every_signal_to_the_new_rm():
    ids = [f"RACE{i:05d}" for i in range(RACE_CUSTOMERS)]
    async with distributed(["alerts"], signals={"scan_page_size": 25}) as strata:
        await strata.publish(*[as_read(customer(c, branch="BR-R")) for c in ids],
                             *[as_read(account(c, f"{c}-TD", "time_deposit", maturity="2026-12-20")) for c in ids])
        await strata.settle(60)
        await strata.publish(*[assignment(c, "RM-OLD", nov(1)) for c in ids])
        await strata.settle(60)
        handover = strata.publish(*[assignment(c, "RM-NEW", nov(25), from_="RM-OLD") for c in ids])
        scan = strata.post("/v1/admin/daily-scan", {"date": "2026-11-25"})
        _, response = await asyncio.gather(handover, scan)
        assert response.status_code == 200, response.text
        await strata.settle(60)
        items = await all_signals(strata)
        assert len(items) == RACE_CUSTOMERS
        assert Counter(i["rm_id"] for i in items) == Counter({"RM-NEW": RACE_CUSTOMERS}), \
            "a signal raised while its customer changed RM went to the old RM"
