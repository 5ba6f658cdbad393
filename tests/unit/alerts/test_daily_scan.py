"""The daily scan through the single-process mode: maturities, birthdays, card expiries, expiry.

The scan covers every customer, so each test uses its own years and month-days: a scan of one
test never finds the accounts or birthdays of another.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select

from services.alerts.models import AlertsOutflow
from services.alerts.scan import OUTFLOWS_MARGIN_DAYS
from shared.clock import SimulatedClock
from tests.conftest import private_strata
from tests.unit.alerts.alerts_feed import (
    Postings,
    as_read,
    account,
    assignment,
    at,
    aum,
    customer,
    new_customer,
    tier_change,
    tiered,
)


@pytest.fixture(scope="module")
async def strata():
    async with private_strata(["alerts"]) as harness:
        # the scans below run dates years ahead; the business clock must have reached them
        harness.runtime.clock = SimulatedClock(harness.settings.zone, date(2199, 12, 31))
        yield harness


async def feed(strata, *events) -> None:
    for event in events:
        await strata.publish(as_read(event))
        await strata.settle()


async def scan(strata, day: date | str) -> dict:
    response = await strata.post("/v1/admin/daily-scan", {"date": str(day)})
    assert response.status_code == 200, response.text
    await strata.settle()
    return response.json()


async def signals(strata, customer_id: str, **params) -> list[dict]:
    response = await strata.get("/v1/signals", params={"customer_id": customer_id, "limit": 500, **params})
    return list(reversed(response.json()["items"]))


async def test_a_maturity_scanned_every_day_gets_the_30_day_and_the_7_day_reminder_once_each(strata):
    c = new_customer()
    maturity = date(2030, 6, 30)
    await feed(strata, customer(c, birth=None), assignment(c, "RM-M", at("2030-01-01")),
               account(c, f"{c}-TD", "time_deposit", maturity=str(maturity), code="TD-1Y"))
    for offset in range(35, -1, -1):
        await scan(strata, maturity - timedelta(days=offset))
    items = await signals(strata, c)
    assert [(i["evidence"]["days_ahead"], i["evidence"]["days_left"], i["raised_at"][:10]) for i in items] == [
        (30, 30, "2030-05-31"), (7, 7, "2030-06-23")], "raised at 00:00 on the scanned business date"
    assert {i["rm_id"] for i in items} == {"RM-M"}
    assert items[0]["evidence"]["product_code"] == "TD-1Y"


async def test_a_second_run_of_a_date_raises_nothing_and_says_so(strata):
    c = new_customer()
    await feed(strata, account(c, f"{c}-WM", "wealth_product", maturity="2031-03-31"))
    first = await scan(strata, "2031-03-24")
    again = await scan(strata, "2031-03-24")
    assert first["raised"]["maturity_due"] >= 1
    assert again["raised"] == {"maturity_due": 0, "birthday": 0, "card_expiry": 0}
    assert again["runs"] == first["runs"] + 1
    assert len(await signals(strata, c)) == 1


async def test_a_product_first_seen_inside_7_days_gets_only_the_7_day_reminder(strata):
    c = new_customer()
    await feed(strata, account(c, f"{c}-TD", "time_deposit", maturity="2032-04-05"))
    await scan(strata, "2032-04-01")
    await scan(strata, "2032-04-02")
    assert [i["evidence"]["days_ahead"] for i in await signals(strata, c)] == [7]


async def test_a_demand_deposit_or_a_closed_product_has_no_maturity_reminder(strata):
    c = new_customer()
    await feed(strata, account(c, f"{c}-DD", "demand_deposit", maturity="2033-05-10"),
               account(c, f"{c}-TD", "time_deposit", maturity="2033-05-10", status="closed"))
    await scan(strata, "2033-05-01")
    assert await signals(strata, c) == []


async def test_a_reminder_expires_after_its_day_and_when_its_account_closes(strata):
    c, d = new_customer(), new_customer()
    await feed(strata, account(c, f"{c}-TD", "time_deposit", maturity="2034-07-10"),
               account(d, f"{d}-TD", "time_deposit", maturity="2034-07-12"))
    await scan(strata, "2034-07-05")
    await feed(strata, account(d, f"{d}-TD", "time_deposit", maturity="2034-07-12", status="closed"))
    assert [i["status"] for i in await signals(strata, d)] == ["expired"]
    await scan(strata, "2034-07-10")
    assert [i["status"] for i in await signals(strata, c)] == ["open"], "due today: still worth a call"
    summary = await scan(strata, "2034-07-11")
    assert summary["expired"] >= 1
    assert [i["status"] for i in await signals(strata, c)] == ["expired"]


async def test_a_leap_day_birthday_of_a_gold_customer_is_signalled_on_28_february_once(strata):
    gold, mass = new_customer(), new_customer()
    await feed(strata, customer(gold, birth="1992-02-29"), customer(mass, birth="1992-02-29"),
               tier_change(gold, "upgrade", "mass", "gold", at("2026-11-01")),
               assignment(gold, "RM-B1", at("2026-11-01")))
    await scan(strata, "2035-02-20")
    assert await signals(strata, gold, signal_type="birthday") == [], "28 Feb is 8 days after 20 Feb"
    for day in range(21, 29):
        await scan(strata, f"2035-02-{day:02d}")
    await scan(strata, "2035-03-01")
    [item] = await signals(strata, gold, signal_type="birthday")
    assert item["rm_id"] == "RM-B1"
    assert item["evidence"]["celebrated_on"] == "2035-02-28" and item["evidence"]["days_left"] == 7
    assert await signals(strata, mass) == [], "mass customers get no birthday reminder"


async def test_a_birthday_is_signalled_again_the_next_year(strata):
    c = new_customer()
    await feed(strata, customer(c, birth="1975-09-03"), aum(c, "60000.00", at("2026-11-01")))
    await scan(strata, "2036-08-30")
    await scan(strata, "2037-08-30")
    assert [i["evidence"]["celebrated_on"] for i in await signals(strata, c, signal_type="birthday")] == [
        "2036-09-03", "2037-09-03"]


async def test_a_debit_card_expiring_within_60_days_is_signalled_once_per_card(strata):
    c = new_customer()
    await feed(strata, customer(c, branch="BR-CARD", birth=None),
               account(c, f"{c}-DD", "demand_deposit", card_expiry="2038-10-31"))
    await scan(strata, "2038-08-31")
    assert await signals(strata, c) == [], "61 days ahead"
    await scan(strata, "2038-09-01")
    await scan(strata, "2038-09-02")
    await feed(strata, account(c, f"{c}-DD", "demand_deposit", card_expiry="2041-10-31"))
    await scan(strata, "2041-09-01")
    items = await signals(strata, c)
    assert [(i["signal_type"], i["evidence"]["card_expiry"]) for i in items] == [
        ("card_expiry", "2038-10-31"), ("card_expiry", "2041-10-31")]
    assert (items[0]["rm_id"], items[0]["branch_id"]) == (None, "BR-CARD"), "no RM: the branch's queue"


async def test_the_scan_is_a_few_statements_per_rule_and_page_whatever_the_number_of_customers(strata):
    ids = [new_customer() for _ in range(40)]
    await strata.publish(*[as_read(account(c, f"{c}-TD", "time_deposit", maturity="2039-01-20")) for c in ids])
    await strata.settle()
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    engine = strata.runtime.db.engine.sync_engine
    sa_event.listen(engine, "before_cursor_execute", count)
    try:
        summary = await scan(strata, "2039-01-13")
    finally:
        sa_event.remove(engine, "before_cursor_execute", count)
    assert summary["raised"]["maturity_due"] == 40
    candidates = [s for s in statements if s.lstrip().upper().startswith("SELECT")
                  and ("FROM alerts_accounts" in s or "birth_md BETWEEN" in s)]
    assert len(candidates) == 4, "one candidate query per rule (two maturity bands, cards, birthdays)"
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO ALERTS_SIGNALS")]
    assert len(inserts) == 1, "the 40 reminders are stored in one statement"


async def test_near_upgrade_expires_when_its_window_ends(strata):
    c = new_customer()
    await feed(strata, aum(c, "46000.00", at("2040-03-01")))
    await scan(strata, "2040-03-30")
    assert [i["status"] for i in await signals(strata, c)] == ["open"]
    await scan(strata, "2040-03-31")
    assert [i["status"] for i in await signals(strata, c)] == ["expired"]


async def test_a_vip_outflow_nobody_acknowledges_lapses_after_seven_days_and_an_acknowledged_one_stays(strata):
    ignored, seen = new_customer(), new_customer()
    for c in (ignored, seen):
        book = Postings(c, balance="900000.00")
        await feed(strata, assignment(c, "RM-L", at("2043-03-01")),
                   tiered(book.debit("150000.00", at("2043-03-10"), bank="OTHER"), "diamond", "750000.00"))
    [taken] = await signals(strata, seen)
    assert taken["expires_on"] == "2043-03-16", "open seven days, the day raised the first"
    acked = await strata.post(f"/v1/signals/{taken['id']}/ack", role="rm", rm_id="RM-L")
    assert acked.json()["expires_on"] is None
    await scan(strata, "2043-03-16")
    assert [i["status"] for i in await signals(strata, ignored)] == ["open"]
    await scan(strata, "2043-03-17")
    [lapsed] = await signals(strata, ignored)
    assert (lapsed["status"], lapsed["acted_by"], lapsed["closed_reason"]) == \
        ("expired", "strata", "not acknowledged by 2043-03-16")
    await scan(strata, "2043-06-01")
    assert [i["status"] for i in await signals(strata, seen)] == ["acknowledged"], "until the RM is done"


async def test_a_tier_notice_nobody_acknowledges_lapses_after_thirty_days(strata):
    c = new_customer()
    await feed(strata, tier_change(c, "upgrade", "mass", "gold", at("2044-04-01")),
               tier_change(c, "downgrade", "gold", "mass", at("2044-08-01", "00:00:00")))
    upgraded, downgraded = await signals(strata, c)
    assert (upgraded["expires_on"], downgraded["expires_on"]) == ("2044-04-30", "2044-08-30")
    await scan(strata, "2044-05-01")
    upgraded, downgraded = await signals(strata, c)
    assert (upgraded["status"], upgraded["closed_reason"]) == ("expired", "not acknowledged by 2044-04-30")
    assert downgraded["status"] == "open"


async def test_a_lapse_is_configured_per_type():
    async with private_strata(["alerts"], signals={"expires_after_days": {"tier_upgraded": None}}) as strata:
        strata.runtime.clock = SimulatedClock(strata.settings.zone, date(2199, 12, 31))
        c = new_customer()
        await feed(strata, tier_change(c, "upgrade", "mass", "gold", at("2045-04-01")))
        await scan(strata, "2046-04-01")
        [item] = await signals(strata, c)
        assert (item["status"], item["expires_on"]) == ("open", None), "a type set to null stays until done"


async def judged_outflows(strata, customer_id: str) -> list[str]:
    async with strata.runtime.db.sessions() as session:
        return list((await session.execute(
            select(AlertsOutflow.posting_id).where(AlertsOutflow.customer_id == customer_id))).scalars())


async def test_the_scan_forgets_large_outflows_judged_before_their_window_and_a_margin(strata):
    c = new_customer()
    posted = date(2042, 5, 10)
    outflow = tiered(Postings(c, balance="900000.00").debit("250000.00", at(str(posted)), bank="OTHER"),
                     "diamond", "650000.00")
    await feed(strata, outflow)
    kept = 7 + OUTFLOWS_MARGIN_DAYS  # vip_outflow.suppress_days, then the margin
    await scan(strata, posted + timedelta(days=kept))
    assert await judged_outflows(strata, c) == [outflow.posting.posting_id]
    await scan(strata, posted + timedelta(days=kept + 1))
    assert await judged_outflows(strata, c) == []
    await feed(strata, outflow)  # resent under another event id, long after
    assert len(await signals(strata, c, signal_type="vip_outflow")) == 1, \
        "judged again, it falls in the window of the signal it raised"


async def test_only_an_admin_runs_the_scan_and_the_date_must_be_a_date(strata):
    assert (await strata.post("/v1/admin/daily-scan", {"date": "2026-11-28"}, role="rm", rm_id="R")).status_code == 403
    assert (await strata.post("/v1/admin/daily-scan", {"date": "28/11/2026"})).status_code == 422


async def test_a_scan_larger_than_a_page_raises_every_due_signal_once():
    async with private_strata(["alerts"], signals={"scan_page_size": 7}) as small_pages:
        small_pages.runtime.clock = SimulatedClock(small_pages.settings.zone, date(2199, 12, 31))
        ids = [new_customer() for _ in range(25)]
        await small_pages.publish(
            *[as_read(account(c, f"{c}-TD", "time_deposit", maturity="2030-01-20")) for c in ids],
            *[as_read(account(c, f"{c}-DD", "demand_deposit", card_expiry="2030-02-28")) for c in ids[:9]])
        await small_pages.settle()
        first = await scan(small_pages, "2030-01-13")
        again = await scan(small_pages, "2030-01-13")
        assert first["raised"] == {"maturity_due": 25, "birthday": 0, "card_expiry": 9}
        assert again["raised"]["maturity_due"] == 0
        listed = await small_pages.get("/v1/signals", params={"limit": 500})
        assert len(listed.json()["items"]) == 34


async def test_a_scanned_signal_carries_the_priority_of_its_type_and_tier_and_the_customers_name(strata):
    gold, diamond = new_customer(), new_customer()
    await feed(strata, customer(gold, birth="1970-04-10", name="赵一"), customer(diamond, birth="1970-04-10", name="钱二"),
               aum(gold, "60000.00", at("2026-11-01"), tier="gold"),
               aum(diamond, "1200000.00", at("2026-11-01"), tier="diamond"))
    await scan(strata, "2143-04-05")
    found = [(i["priority"], i["customer_name"]) for c in (gold, diamond)
             for i in await signals(strata, c, signal_type="birthday")]
    assert found == [(4, "赵一"), (3, "钱二")], "a diamond customer's birthday is one step more urgent"
