"""Alerts behind tiering in one process: postings in, the signals docs/RULES.md promises out."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.contracts.cloudevents import decode_record
from tests.conftest import private_strata
from tests.unit.alerts.alerts_feed import Postings, assignment, at, customer, new_customer


@pytest.fixture(scope="module")
async def strata():
    async with private_strata(["tiering", "alerts"]) as harness:
        yield harness


async def feed(strata, *events) -> None:
    for event in events:
        await strata.publish(event)
        await strata.settle()


async def signals(strata, customer_id: str) -> list[tuple[str, str | None, str]]:
    response = await strata.get("/v1/signals", params={"customer_id": customer_id, "limit": 500})
    return [(i["signal_type"], i["rm_id"], i["status"]) for i in reversed(response.json()["items"])]


async def test_salary_near_the_gold_floor_then_across_it(strata):
    c = new_customer("TA")
    book = Postings(c)
    await feed(strata, customer(c), assignment(c, "RM-1", at("2026-11-01")),
               book.credit("46000.00", at("2026-11-02")), book.credit("5000.00", at("2026-11-09")))
    assert await signals(strata, c) == [("near_upgrade", "RM-1", "expired"),
                                        ("tier_upgraded", "RM-1", "open")]


async def test_a_platinum_customer_wiring_150000_to_another_bank_is_one_vip_outflow(strata):
    c = new_customer("TA")
    book = Postings(c)
    await feed(strata, customer(c), book.credit("600000.00", at("2026-11-02")),
               assignment(c, "RM-2", at("2026-11-02", "11:00:00")),
               book.debit("150000.00", at("2026-11-05"), bank="OTHER"),
               book.debit("20000.00", at("2026-11-06"), bank="OTHER"))
    # 600,000 was the first AUM seen: the customer is placed at platinum, no upgrade to tell of;
    # 430,000 left on 6 Nov is also below 80 % of the high, inside the week already signalled
    assert await signals(strata, c) == [("vip_outflow", "RM-2", "open")]
    listed = await strata.get("/v1/signals", params={"customer_id": c, "signal_type": "vip_outflow"})
    [outflow] = listed.json()["items"]
    evidence = outflow["evidence"]
    assert (evidence["trigger"], evidence["tier"], evidence["aum"], evidence["amount"]) == \
        ("large_outflow", "platinum", "450000.00", "150000.00"), \
        "the posting's own tier and AUM; at its instant the large outflow, not the AUM drop it causes"


async def test_aum_events_carry_the_tier_in_force_right_after_them():
    c = new_customer("TA")
    book = Postings(c)
    async with private_strata(["tiering"]) as tiering:  # no reader of strata.aum trims it
        await feed(tiering, book.credit("46000.00", at("2026-11-02")), book.credit("5000.00", at("2026-11-09")))
        records = [r for p in tiering.runtime.bus.topics["strata.aum"] for r in p.records]
    mine = [e.data for e in (decode_record(r.value, r.headers) for r in records) if e.data.customer_id == c]
    assert [(a.aum, a.tier) for a in mine] == [(Decimal("46000.00"), "mass"), (Decimal("51000.00"), "gold")]


async def test_a_month_below_the_floor_is_a_downgrade_watch_at_the_month_end_close(strata):
    c = new_customer("TA")
    book = Postings(c)
    await feed(strata, customer(c), book.credit("100.00", at("2026-11-01")), book.credit("54900.00", at("2026-11-29")))
    response = await strata.post("/v1/admin/month-end-close", {"month": "2026-11"})
    assert response.status_code == 200, response.text
    await strata.settle()
    assert [t for t, _, _ in await signals(strata, c)] == ["tier_upgraded", "downgrade_watch"]


@pytest.mark.parametrize("outflow_first", [True, False], ids=["outflow-then-drop", "drop-then-outflow"])
async def test_the_first_of_two_vip_outflow_triggers_two_days_apart_is_the_one_signal(strata, outflow_first):
    c = new_customer("TA")
    book = Postings(c)
    await feed(strata, customer(c), book.credit("600000.00", at("2026-11-02")))
    if outflow_first:  # 500,000 left (83 %): no drop yet; 400,000 two days on, inside the bank
        first = book.debit("100000.00", at("2026-11-05"), bank="OTHER")
        second = book.debit("100000.00", at("2026-11-07"))
    else:  # 450,000 left (75 %), inside the bank; then 100,000 to another bank two days on
        first = book.debit("150000.00", at("2026-11-05"))
        second = book.debit("100000.00", at("2026-11-07"), bank="OTHER")
    await feed(strata, first, second)
    listed = await strata.get("/v1/signals", params={"customer_id": c, "signal_type": "vip_outflow"})
    [signal] = listed.json()["items"]
    assert (signal["raised_at"][:10], signal["evidence"]["trigger"]) == \
        ("2026-11-05", "large_outflow" if outflow_first else "aum_drop")
