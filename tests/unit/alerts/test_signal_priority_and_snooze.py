"""Each signal's priority and customer name, and an RM snoozing one: through the single-process mode."""

from __future__ import annotations

from datetime import date

import pytest

from shared.clock import SimulatedClock
from shared.contracts.cloudevents import decode_record
from shared.settings.signals import Priority
from tests.conftest import private_strata
from tests.unit.alerts.alerts_feed import Postings, as_read, assignment, at, aum, customer, new_customer, tiered

TODAY = date(2026, 11, 20)


@pytest.fixture(scope="module")
async def strata():
    async with private_strata(["alerts"]) as harness:
        harness.runtime.clock = SimulatedClock(harness.settings.zone, TODAY)
        yield harness


async def feed(strata, *events) -> None:
    for event in events:
        await strata.publish(as_read(event))
        await strata.settle()


async def signals(strata, customer_id: str, **params) -> list[dict]:
    response = await strata.get("/v1/signals", params={"customer_id": customer_id, "limit": 500, **params})
    assert response.status_code == 200, response.text
    return list(reversed(response.json()["items"]))


def announced(strata, signal_id: str) -> list:
    records = [r for p in strata.runtime.bus.topics.get("strata.signals", []) for r in p.records]
    return [e.data for e in (decode_record(r.value, r.headers) for r in records) if e.data.id == signal_id]


def test_priority_is_the_types_moved_by_the_tier_within_one_to_five():
    p = Priority()
    assert (p.of("vip_outflow", "private"), p.of("vip_outflow", "platinum")) == (1, 1), "never above 1"
    assert (p.of("near_upgrade", "mass"), p.of("near_upgrade", "diamond")) == (2, 1)
    assert (p.of("birthday", "gold"), p.of("birthday", "private")) == (4, 3)
    assert Priority(by_type={"birthday": 5}, by_tier={"mass": 2}).of("birthday", "mass") == 5, "never below 5"


def test_a_priority_outside_one_to_five_or_for_an_unknown_type_is_refused():
    with pytest.raises(ValueError):
        Priority(by_type={"birthday": 0})
    with pytest.raises(ValueError):
        Priority(by_type={"birthdays": 2})


async def test_a_signal_carries_its_priority_and_the_customers_name(strata):
    c = new_customer()
    await feed(strata, customer(c, name="王小明"), aum(c, "46000.00", at("2026-11-01"), tier="mass"))
    [near] = await signals(strata, c)
    assert (near["signal_type"], near["priority"], near["customer_name"]) == ("near_upgrade", 2, "王小明")
    assert (await strata.get(f"/v1/signals/{near['id']}")).json()["priority"] == 2
    [event] = announced(strata, near["id"])
    assert (event.priority, event.customer_name) == (2, "王小明")


async def test_a_private_customers_outflow_is_the_most_urgent(strata):
    c = new_customer()
    book = Postings(c, balance="9000000.00")
    await feed(strata, tiered(book.debit("300000.00", at("2026-11-03"), bank="OTHER"), "private", str(book.balance)))
    [vip] = await signals(strata, c, signal_type="vip_outflow")
    assert (vip["priority"], vip["customer_name"]) == (1, None), "no customer record seen: no name"


async def test_a_new_name_reaches_the_customers_open_signals(strata):
    c = new_customer()
    await feed(strata, customer(c, name="李四"), aum(c, "46000.00", at("2026-11-01"), tier="mass"),
               customer(c, name="李思", updated="2026-11-02T09:00:00+08:00"))
    [near] = await signals(strata, c)
    assert near["customer_name"] == "李思"
    assert [e.customer_name for e in announced(strata, near["id"])] == ["李四", "李思"]


async def test_a_snoozed_signal_is_acknowledged_and_asleep_until_its_day(strata):
    c = new_customer()
    await feed(strata, assignment(c, "RM-Z1", at("2026-10-30")), aum(c, "46000.00", at("2026-11-01"), tier="mass"))
    [near] = await signals(strata, c)
    response = await strata.post(f"/v1/signals/{near['id']}/snooze", {"until": "2026-11-25"}, role="rm", rm_id="RM-Z1")
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["snoozed_until"]) == ("acknowledged", "2026-11-25")
    assert await signals(strata, c, awake="true") == []
    assert [i["id"] for i in await signals(strata, c)] == [near["id"]], "without awake: all of them"
    assert announced(strata, near["id"])[-1].snoozed_until == date(2026, 11, 25)
    strata.runtime.clock = SimulatedClock(strata.settings.zone, date(2026, 11, 25))
    try:
        assert [i["id"] for i in await signals(strata, c, awake="true")] == [near["id"]], "its day: awake again"
    finally:
        strata.runtime.clock = SimulatedClock(strata.settings.zone, TODAY)


@pytest.mark.parametrize("until", ["2026-11-20", "2026-11-19"])
async def test_a_snooze_until_today_or_before_is_refused(strata, until):
    c = new_customer()
    await feed(strata, aum(c, "46000.00", at("2026-11-01"), tier="mass"))
    [near] = await signals(strata, c)
    response = await strata.post(f"/v1/signals/{near['id']}/snooze", {"until": until})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert (await signals(strata, c))[0]["status"] == "open"


async def test_a_done_signal_cannot_be_snoozed_and_another_rms_is_not_yours(strata):
    c = new_customer()
    await feed(strata, assignment(c, "RM-Z2", at("2026-10-30")), aum(c, "46000.00", at("2026-11-01"), tier="mass"))
    [near] = await signals(strata, c)
    other = await strata.post(f"/v1/signals/{near['id']}/snooze", {"until": "2026-11-25"}, role="rm", rm_id="RM-Z3")
    assert other.status_code == 403
    assert (await strata.post(f"/v1/signals/{near['id']}/done", role="rm", rm_id="RM-Z2")).status_code == 200
    done = await strata.post(f"/v1/signals/{near['id']}/snooze", {"until": "2026-11-25"}, role="rm", rm_id="RM-Z2")
    assert done.status_code == 409
    assert (await strata.post("/v1/signals/no-such/snooze", {"until": "2026-11-25"})).status_code == 404
