"""Alerts through the single-process mode: events in, signals stored once, routed, announced."""

from __future__ import annotations

import json
import tempfile

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import event as sa_event

from shared.contracts.cloudevents import decode_record
from strata.registry import load
from strata.testing import Harness
from tests.conftest import private_strata, single_process_settings
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
        yield harness


async def signals(strata, customer_id: str, **params) -> list[dict]:
    """A customer's signals, oldest first."""
    response = await strata.get("/v1/signals", params={"customer_id": customer_id, "limit": 500, **params})
    assert response.status_code == 200, response.text
    return list(reversed(response.json()["items"]))


def kinds(items: list[dict]) -> list[tuple]:
    return [(i["signal_type"], i["rm_id"], i["status"]) for i in items]


async def feed(strata, *events) -> None:
    for event in events:  # one at a time: the order of a customer's events across topics matters
        await strata.publish(as_read(event))
        await strata.settle()


def counter(name: str, signal_type: str) -> float:
    return REGISTRY.get_sample_value(name, {"signal_type": signal_type}) or 0.0


def published_signals(strata, customer_id: str) -> list:
    records = [r for p in strata.runtime.bus.topics.get("strata.signals", []) for r in p.records]
    events = [decode_record(r.value, r.headers) for r in records]
    return [e for e in events if e.data.customer_id == customer_id]


# --- near upgrade ---------------------------------------------------------------------------


async def test_near_upgrade_reaches_the_primary_rm_once_within_30_days_and_again_after(strata):
    c = new_customer()
    await feed(strata, customer(c), assignment(c, "RM-N1", at("2026-11-01")),
               aum(c, "45000.00", at("2026-11-01")), aum(c, "46000.00", at("2026-11-15")),
               aum(c, "47000.00", at("2026-11-30")))
    items = await signals(strata, c)
    assert kinds(items) == [("near_upgrade", "RM-N1", "open")], "suppressed for 30 days"
    assert items[0]["branch_id"] == "BR-1" and items[0]["evidence"]["aum"] == "45000.00"
    await feed(strata, aum(c, "48000.00", at("2026-12-01")))
    assert [i["evidence"]["aum"] for i in await signals(strata, c)] == ["45000.00", "48000.00"]


async def test_near_gold_then_near_platinum_inside_the_window_are_two_signals(strata):
    c = new_customer()
    await feed(strata, aum(c, "46000.00", at("2026-11-01"), tier="mass"),
               tier_change(c, "upgrade", "mass", "gold", at("2026-11-03"), aum_="52000.00"),
               aum(c, "52000.00", at("2026-11-03"), tier="gold"),
               aum(c, "185000.00", at("2026-11-10"), tier="gold"),
               aum(c, "186000.00", at("2026-11-12"), tier="gold"))
    near = [(i["evidence"]["next_tier"], i["status"], i["evidence"]["aum"])
            for i in await signals(strata, c, signal_type="near_upgrade")]
    assert near == [("gold", "expired", "46000.00"), ("platinum", "open", "185000.00")], \
        "each target tier has its own 30 days"


async def test_near_two_tiers_on_one_day_is_two_signals(strata):
    c = new_customer()
    await feed(strata, aum(c, "46000.00", at("2026-11-01", "09:00:00"), tier="mass"),
               aum(c, "185000.00", at("2026-11-01", "11:00:00"), tier="gold"))
    assert sorted(i["evidence"]["next_tier"] for i in await signals(strata, c, signal_type="near_upgrade")) == \
        ["gold", "platinum"]


async def test_aum_below_ninety_percent_raises_nothing(strata):
    c = new_customer()
    await feed(strata, aum(c, "44999.99", at("2026-11-01")))
    assert await signals(strata, c) == []


async def test_near_upgrade_of_aum_that_jumped_past_a_floor_looks_at_the_tier_above(strata):
    c = new_customer()
    await feed(strata, aum(c, "185000.00", at("2026-11-02")))  # the tier event may come later
    [item] = await signals(strata, c)
    assert (item["evidence"]["tier"], item["evidence"]["next_tier"]) == ("gold", "platinum")


# --- vip outflow ----------------------------------------------------------------------------


async def test_a_vip_falling_to_80_percent_of_the_30_day_high_is_signalled_once_a_week(strata):
    c = new_customer()
    await feed(strata, assignment(c, "RM-V1", at("2026-11-01")),
               tier_change(c, "upgrade", "mass", "platinum", at("2026-11-01", "09:00:00"), aum_="500000.00"),
               aum(c, "500000.00", at("2026-11-01")),
               aum(c, "400000.01", at("2026-11-03")),
               aum(c, "400000.00", at("2026-11-05")),
               aum(c, "300000.00", at("2026-11-11")),
               aum(c, "290000.00", at("2026-11-12")))
    outflows = [i for i in await signals(strata, c) if i["signal_type"] == "vip_outflow"]
    assert [i["evidence"]["aum"] for i in outflows] == ["400000.00", "290000.00"]
    assert outflows[0]["evidence"]["high"] == "500000.00" and outflows[0]["rm_id"] == "RM-V1"
    assert outflows[0]["expires_on"] == "2026-11-11"


async def test_a_high_that_left_the_30_day_window_no_longer_counts(strata):
    c = new_customer()
    await feed(strata, tier_change(c, "upgrade", "mass", "platinum", at("2026-10-01", "09:00:00")),
               aum(c, "500000.00", at("2026-10-01")), aum(c, "450000.00", at("2026-10-02")),
               aum(c, "390000.00", at("2026-11-01")))
    assert await signals(strata, c, signal_type="vip_outflow") == [], \
        "the high is 450,000, held until 1 Nov; 390,000 is 87 % of it"
    await feed(strata, aum(c, "360000.00", at("2026-11-01", "11:00:00")))
    [item] = await signals(strata, c, signal_type="vip_outflow")
    assert item["evidence"]["high"] == "450000.00"


async def test_a_gold_customer_falling_by_half_is_not_a_vip_outflow(strata):
    c = new_customer()
    await feed(strata, aum(c, "170000.00", at("2026-11-01")), aum(c, "60000.00", at("2026-11-02")))
    assert [i["signal_type"] for i in await signals(strata, c)] == []


@pytest.mark.parametrize("amount, bank, raised", [
    ("100000.00", "OTHER", True),
    ("99999.99", "OTHER", False),
    ("100000.00", None, False),
])
async def test_one_large_outflow_to_another_bank_is_a_vip_outflow(strata, amount, bank, raised):
    c = new_customer()
    book = Postings(c, balance="900000.00")
    posting = book.debit(amount, at("2026-11-03"), bank=bank)
    await feed(strata, tiered(posting, "diamond", str(book.balance)))
    items = [i for i in await signals(strata, c) if i["signal_type"] == "vip_outflow"]
    assert len(items) == (1 if raised else 0)
    if raised:
        evidence = items[0]["evidence"]
        assert (evidence["trigger"], evidence["amount"], evidence["counterparty_bank"]) == \
            ("large_outflow", amount, bank)
        assert (evidence["tier"], evidence["aum"]) == ("diamond", str(book.balance)), \
            "the tier and AUM tiering passed on with the posting"


async def test_a_large_outflow_to_a_code_of_the_bank_itself_is_no_vip_outflow():
    async with private_strata(["alerts"], pricing={"own_bank_codes": ["ICBC-NC"]}) as strata:
        own, other = new_customer(), new_customer()
        for c, bank in ((own, "ICBC-NC"), (other, "CCB")):
            book = Postings(c, balance="900000.00")
            await feed(strata, tiered(book.debit("300000.00", at("2026-11-03"), bank=bank), "diamond",
                                      str(book.balance)))
        assert await signals(strata, own, signal_type="vip_outflow") == [], "pricing.own_bank_codes: this bank"
        assert len(await signals(strata, other, signal_type="vip_outflow")) == 1


async def test_a_large_outflow_posted_below_the_vip_tiers_raises_nothing(strata):
    c = new_customer()
    book = Postings(c, balance="190000.00")
    await feed(strata, tier_change(c, "upgrade", "gold", "diamond", at("2026-11-01", "09:00:00")),
               tiered(book.debit("150000.00", at("2026-11-03"), bank="OTHER"), "gold", "40000.00"))
    assert await signals(strata, c, signal_type="vip_outflow") == [], \
        "judged with the tier of the posting, not the tier alerts last read"


async def test_the_same_large_posting_under_another_event_id_is_judged_once(strata):
    c = new_customer()
    posting = tiered(Postings(c, balance="900000.00").debit("250000.00", at("2026-11-03"), bank="OTHER"),
                     "private", "650000.00")
    suppressed_before = counter("strata_signals_suppressed_total", "vip_outflow")
    await feed(strata, posting, posting)  # each publish is a new event id
    assert len(await signals(strata, c, signal_type="vip_outflow")) == 1
    assert counter("strata_signals_suppressed_total", "vip_outflow") == suppressed_before + 1


# --- tier changes ---------------------------------------------------------------------------


async def test_tier_events_are_signals_and_close_the_signals_they_make_moot(strata):
    c = new_customer()
    await feed(strata, aum(c, "46000.00", at("2026-11-02")),
               tier_change(c, "upgrade", "mass", "gold", at("2026-11-03"), aum_="52000.00"),
               tier_change(c, "watch", "gold", "gold", at("2026-12-01", "00:00:00")),
               tier_change(c, "watch", "gold", "gold", at("2027-01-01", "00:00:00")),
               tier_change(c, "downgrade", "gold", "mass", at("2027-02-01", "00:00:00")))
    assert [(t, s) for t, _, s in kinds(await signals(strata, c))] == [
        ("near_upgrade", "expired"),
        ("tier_upgraded", "open"),
        ("downgrade_watch", "expired"),
        ("downgrade_watch", "expired"),
        ("tier_downgraded", "open"),
    ]


async def test_a_near_upgrade_closes_itself_with_the_reason_once_its_tier_is_reached(strata):
    c = new_customer()
    await feed(strata, aum(c, "46000.00", at("2026-11-02")),
               tier_change(c, "upgrade", "mass", "gold", at("2026-11-03"), aum_="52000.00"))
    near = (await signals(strata, c, signal_type="near_upgrade"))[0]
    assert (near["status"], near["acted_by"], near["closed_reason"]) == \
        ("expired", "strata", "reached gold on 2026-11-03")
    assert (await strata.get(f"/v1/signals/{near['id']}")).json()["closed_reason"] == "reached gold on 2026-11-03"
    announced = [(e.data.status, e.data.closed_reason) for e in published_signals(strata, c) if e.data.id == near["id"]]
    assert announced == [("open", None), ("expired", "reached gold on 2026-11-03")]


async def test_a_near_upgrade_closes_itself_when_the_aum_falls_away_from_its_tier(strata):
    c = new_customer()
    await feed(strata, assignment(c, "RM-FA", at("2026-11-01")), aum(c, "48000.00", at("2026-11-02")),
               aum(c, "45000.00", at("2026-11-03")))
    [near] = await signals(strata, c)
    assert (near["status"], near["closed_reason"]) == ("open", None), "still 90 % of the gold floor"
    assert (await strata.post(f"/v1/signals/{near['id']}/ack", role="rm", rm_id="RM-FA")).status_code == 200
    await feed(strata, aum(c, "44999.99", at("2026-11-04")))
    [near] = await signals(strata, c)
    assert (near["status"], near["closed_reason"]) == \
        ("expired", "AUM 44999.99 fell below 45000.00, 0.90 of the gold floor")
    open_list = await strata.get("/v1/signals", role="rm", rm_id="RM-FA", params={"status": ["open", "acknowledged"]})
    assert open_list.json()["items"] == [], "the RM's list holds only what is still worth acting on"


async def test_clearing_a_watch_raises_nothing_and_expires_the_watch(strata):
    c = new_customer()
    await feed(strata, tier_change(c, "watch", "gold", "gold", at("2026-12-01", "00:00:00")),
               tier_change(c, "watch_cleared", "gold", "gold", at("2027-01-01", "00:00:00")))
    assert [(t, s) for t, _, s in kinds(await signals(strata, c))] == [("downgrade_watch", "expired")]
    assert (await signals(strata, c))[0]["closed_reason"] == "the watch was cleared on 2027-01-01"


async def test_the_same_tier_event_under_another_event_id_is_one_signal(strata):
    c = new_customer()
    upgrade = tier_change(c, "upgrade", "mass", "gold", at("2026-11-03"))
    await feed(strata, upgrade, upgrade, strata.event(upgrade, id="replayed-upgrade-" + c))
    assert len(await signals(strata, c)) == 1


# --- routing --------------------------------------------------------------------------------


async def test_without_an_rm_a_signal_waits_in_the_branch_queue_and_follows_the_rm_assigned(strata):
    c = new_customer()
    await feed(strata, customer(c, branch="BR-Q"),
               tier_change(c, "upgrade", "mass", "gold", at("2026-11-03")),
               aum(c, "185000.00", at("2026-11-04")))
    assert [(t, rm) for t, rm, _ in kinds(await signals(strata, c))] == [
        ("tier_upgraded", None), ("near_upgrade", None)]
    queue = await strata.get("/v1/signals", role="branch_manager", branch_id="BR-Q",
                             params={"unassigned": "true"})
    assert {i["customer_id"] for i in queue.json()["items"]} == {c}
    first = (await signals(strata, c))[0]["id"]
    assert (await strata.post(f"/v1/signals/{first}/done", role="branch_manager", branch_id="BR-Q")).status_code == 200
    await feed(strata, assignment(c, "RM-R1", at("2026-11-05")))
    assert kinds(await signals(strata, c)) == [("tier_upgraded", None, "done"),
                                              ("near_upgrade", "RM-R1", "open")]


async def test_a_new_primary_rm_takes_over_open_and_acknowledged_signals_as_they_are(strata):
    c = new_customer()
    await feed(strata, customer(c), assignment(c, "RM-A", at("2026-11-01")),
               tier_change(c, "upgrade", "mass", "gold", at("2026-11-03")),
               aum(c, "185000.00", at("2026-11-04")))
    upgraded, near = await signals(strata, c)
    assert (await strata.post(f"/v1/signals/{upgraded['id']}/ack", role="rm", rm_id="RM-A")).status_code == 200
    await feed(strata, assignment(c, "RM-B", at("2026-11-10"), from_="RM-A"),
               assignment(c, "RM-A", at("2026-11-09"), from_=None),  # older: changes nothing
               assignment(c, "RM-X", at("2026-11-11"), role="backup"))  # a backup routes nothing
    assert kinds(await signals(strata, c)) == [("tier_upgraded", "RM-B", "acknowledged"),
                                              ("near_upgrade", "RM-B", "open")]
    await feed(strata, aum(c, "140000.00", at("2026-11-12")),
               tier_change(c, "upgrade", "gold", "platinum", at("2026-11-20")))
    assert kinds(await signals(strata, c))[-1] == ("tier_upgraded", "RM-B", "open")
    announced = [(e.data.status, e.data.rm_id) for e in published_signals(strata, c)
                 if e.data.id == upgraded["id"]]
    assert announced == [("open", "RM-A"), ("acknowledged", "RM-A"), ("acknowledged", "RM-B")]
    assert (await strata.post(f"/v1/signals/{upgraded['id']}/done", role="rm", rm_id="RM-A")).status_code == 403
    assert (await strata.post(f"/v1/signals/{upgraded['id']}/done", role="rm", rm_id="RM-B")).status_code == 200


async def test_a_new_home_branch_takes_over_the_branch_queue(strata):
    c = new_customer()
    await feed(strata, customer(c, branch="BR-OLD"), tier_change(c, "upgrade", "mass", "gold", at("2026-11-03")),
               customer(c, branch="BR-NEW", updated="2026-11-05T09:00:00+08:00"),
               customer(c, branch="BR-STALE", updated="2026-11-04T09:00:00+08:00"))
    [item] = await signals(strata, c)
    assert (item["rm_id"], item["branch_id"]) == (None, "BR-NEW")


# --- what is announced and counted ----------------------------------------------------------


async def test_each_signal_and_each_change_of_it_is_announced_once_on_strata_signals(strata):
    c = new_customer()
    raised_before = counter("strata_signals_raised_total", "tier_upgraded")
    await feed(strata, assignment(c, "RM-E", at("2026-11-01")),
               tier_change(c, "upgrade", "mass", "gold", at("2026-11-03"), aum_="50000.00"))
    [item] = await signals(strata, c)
    await strata.post(f"/v1/signals/{item['id']}/done", role="rm", rm_id="RM-E")
    await strata.post(f"/v1/signals/{item['id']}/done", role="rm", rm_id="RM-E")  # no change
    await strata.settle()
    events = published_signals(strata, c)
    assert [(e.data.signal_type, e.data.status, e.data.rm_id) for e in events] == [
        ("tier_upgraded", "open", "RM-E"), ("tier_upgraded", "done", "RM-E")]
    assert len({e.id for e in events}) == 2
    assert events[0].data.evidence["to"] == "gold" and events[0].subject == c
    assert counter("strata_signals_raised_total", "tier_upgraded") == raised_before + 1
    latency = REGISTRY.get_sample_value("strata_signal_latency_seconds_count", {"signal_type": "tier_upgraded"})
    assert latency and latency >= 1


# --- the API --------------------------------------------------------------------------------


async def test_an_rm_sees_and_acts_only_on_their_own_signals(strata):
    mine, theirs = new_customer(), new_customer()
    await feed(strata, assignment(mine, "RM-OWN", at("2026-11-01")),
               assignment(theirs, "RM-OTHER", at("2026-11-01")),
               tier_change(mine, "upgrade", "mass", "gold", at("2026-11-03")),
               tier_change(theirs, "upgrade", "mass", "gold", at("2026-11-03")))
    listed = await strata.get("/v1/signals", role="rm", rm_id="RM-OWN")
    assert {i["customer_id"] for i in listed.json()["items"]} == {mine}
    forbidden = await strata.get("/v1/signals", role="rm", rm_id="RM-OWN", params={"rm_id": "RM-OTHER"})
    assert forbidden.status_code == 403 and forbidden.headers["content-type"] == "application/problem+json"
    [other] = await signals(strata, theirs)
    assert (await strata.get(f"/v1/signals/{other['id']}", role="rm", rm_id="RM-OWN")).status_code == 403
    assert (await strata.post(f"/v1/signals/{other['id']}/ack", role="rm", rm_id="RM-OWN")).status_code == 403
    assert (await strata.post(f"/v1/signals/{other['id']}/ack", role="analyst")).status_code == 403
    assert (await signals(strata, theirs))[0]["status"] == "open"


async def test_a_branch_manager_sees_only_the_branchs_signals(strata):
    here, there = new_customer(), new_customer()
    await feed(strata, customer(here, branch="BR-H"), customer(there, branch="BR-T"),
               tier_change(here, "upgrade", "mass", "gold", at("2026-11-03")),
               tier_change(there, "upgrade", "mass", "gold", at("2026-11-03")))
    listed = await strata.get("/v1/signals", role="branch_manager", branch_id="BR-H")
    assert {i["customer_id"] for i in listed.json()["items"]} == {here}
    other = await strata.get("/v1/signals", role="branch_manager", branch_id="BR-H",
                             params={"branch_id": "BR-T"})
    assert other.status_code == 403


async def test_ack_then_done_and_a_done_signal_cannot_be_acknowledged(strata):
    c = new_customer()
    await feed(strata, assignment(c, "RM-T", at("2026-11-01")),
               tier_change(c, "upgrade", "mass", "gold", at("2026-11-03")))
    [item] = await signals(strata, c)
    acked = await strata.post(f"/v1/signals/{item['id']}/ack", role="rm", rm_id="RM-T")
    assert acked.json()["status"] == "acknowledged" and acked.json()["acted_by"] == "RM-T"
    assert (await strata.post(f"/v1/signals/{item['id']}/done", role="rm", rm_id="RM-T")).json()["status"] == "done"
    refused = await strata.post(f"/v1/signals/{item['id']}/ack", role="rm", rm_id="RM-T")
    assert refused.status_code == 409
    assert (await strata.post("/v1/signals/no-such-signal/ack")).status_code == 404


async def test_signals_filter_by_type_status_and_raised_date_and_page_with_a_cursor(strata):
    c = new_customer()
    await feed(strata, assignment(c, "RM-F", at("2026-11-01")),
               *[tier_change(c, "watch", "gold", "gold", at(f"2027-0{m}-01", "00:00:00")) for m in range(1, 6)],
               tier_change(c, "upgrade", "gold", "platinum", at("2027-06-15")))
    watches = await strata.get("/v1/signals", role="rm", rm_id="RM-F",
                               params={"signal_type": "downgrade_watch", "limit": 2})
    page1 = watches.json()
    assert len(page1["items"]) == 2 and page1["next"]
    seen = [i["raised_at"] for i in page1["items"]]
    cursor = page1["next"]
    while cursor:
        page = (await strata.get("/v1/signals", role="rm", rm_id="RM-F",
                                 params={"signal_type": "downgrade_watch", "limit": 2, "cursor": cursor})).json()
        seen += [i["raised_at"] for i in page["items"]]
        cursor = page["next"]
    assert len(seen) == 5 and seen == sorted(seen, reverse=True)
    by_type = await strata.get("/v1/signals", params={"customer_id": c, "type": "tier_upgraded"})
    assert [i["signal_type"] for i in by_type.json()["items"]] == ["tier_upgraded"]
    expired = await strata.get("/v1/signals", params={"customer_id": c, "status": "expired"})
    assert len(expired.json()["items"]) == 5, "the upgrade ended the last watch"
    march = await strata.get("/v1/signals", params={"customer_id": c, "from": "2027-02-15", "to": "2027-04-01"})
    assert [i["raised_at"][:7] for i in march.json()["items"]] == ["2027-04", "2027-03"], \
        "raised at 00:00 in Shanghai: 1 April counts on 1 April, 1 March on 1 March"
    bad = await strata.get("/v1/signals", params={"status": "forgotten"})
    assert bad.status_code == 422


async def test_signals_need_a_token(strata):
    response = await strata.client.get("/v1/signals")
    assert response.status_code == 401


# --- restarts -------------------------------------------------------------------------------


async def test_suppression_windows_hold_across_a_restart():
    c = new_customer()
    with tempfile.TemporaryDirectory(prefix="strata-alerts-") as tmp:
        for day in ("2026-11-01", "2026-11-20"):
            harness = await Harness(single_process_settings(tmp), [load("alerts")]).start()
            try:
                await harness.publish(as_read(aum(c, "46000.00", at(day), tier="mass")))
                await harness.settle()
                items = (await harness.get("/v1/signals", params={"customer_id": c})).json()["items"]
            finally:
                await harness.stop()
        assert [i["evidence"]["aum"] for i in items] == ["46000.00"]
        assert json.dumps(items[0]["evidence"]).count("2026-11-01") == 1


async def test_a_watch_delivered_again_under_another_event_id_stays_open(strata):
    c = new_customer()
    watch = tier_change(c, "watch", "gold", "gold", at("2026-12-01", "00:00:00"))
    await feed(strata, watch, strata.event(watch, id="replayed-watch-" + c))
    assert kinds(await signals(strata, c)) == [("downgrade_watch", None, "open")]


async def test_a_near_upgrade_raised_with_the_upgrade_it_follows_stays_open(strata):
    c = new_customer()
    # AUM jumps to 185,000: gold at once, and near platinum; the tier event arrives second
    await feed(strata, aum(c, "185000.00", at("2026-11-04")),
               tier_change(c, "upgrade", "mass", "gold", at("2026-11-04"), aum_="185000.00"))
    assert sorted((t, s) for t, _, s in kinds(await signals(strata, c))) == [("near_upgrade", "open"),
                                                                              ("tier_upgraded", "open")]


async def test_a_near_upgrade_of_the_instant_its_tier_is_reached_closes_saying_so(strata):
    # two accounts' balances as of one instant: AUM 48,000 after the first (near gold), 73,000
    # after the second (gold), and the upgrade it leads to, dated that instant too, which
    # tiering emits before the AUM event that carries the new tier
    c = new_customer()
    when = at("2026-11-06", "00:00:00")
    await feed(strata, aum(c, "48000.00", when, tier="mass"),
               tier_change(c, "upgrade", "mass", "gold", when, aum_="73000.00"),
               aum(c, "73000.00", when, tier="gold"))
    found = sorted((i["signal_type"], i["status"], i["evidence"].get("next_tier"), i["closed_reason"])
                   for i in await signals(strata, c))
    assert found == [("near_upgrade", "expired", "gold", "reached gold on 2026-11-06"),
                     ("tier_upgraded", "open", None, None)]


async def test_a_signal_raised_before_the_branch_is_known_joins_the_branch_queue_later(strata):
    c = new_customer()
    await feed(strata, tier_change(c, "upgrade", "mass", "gold", at("2026-11-03")))
    assert (await signals(strata, c))[0]["branch_id"] is None
    await feed(strata, account(c, f"{c}-DD", "demand_deposit", branch="BR-ACC"))
    assert (await signals(strata, c))[0]["branch_id"] == "BR-ACC"


# --- the batch ------------------------------------------------------------------------------


async def test_a_batch_of_many_customers_facts_is_a_few_statements_not_one_per_event(strata):
    ids = [new_customer("BS") for _ in range(30)]
    events = []
    for c in ids:
        book = Postings(c, balance="600000.00")
        events += [customer(c), account(c, f"{c}-DD", "demand_deposit"), assignment(c, f"RM-{c}", at("2026-11-01")),
                   aum(c, "600000.00", at("2026-11-02"), tier="platinum"),
                   tiered(book.debit("150000.00", at("2026-11-05"), bank="OTHER"), "platinum", "450000.00"),
                   aum(c, "450000.00", at("2026-11-05"), tier="platinum"),
                   tier_change(c, "downgrade", "platinum", "gold", at("2026-12-01", "00:00:00"), aum_="450000.00"),
                   assignment(c, f"RM-{c}-2", at("2026-12-02"))]
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        if "alerts_" in statement and "GROUP BY" not in statement:  # not the backlog gauge
            statements.append(statement)

    loop = strata.runtime.loops["alerts"]
    batches = loop.batches
    engine = strata.runtime.db.engine.sync_engine
    sa_event.listen(engine, "before_cursor_execute", count)
    try:
        await strata.publish(*[as_read(e) for e in events])
        await strata.settle()
    finally:
        sa_event.remove(engine, "before_cursor_execute", count)
    batches = loop.batches - batches
    assert [t for t, _, _ in kinds(await signals(strata, ids[-1]))] == ["vip_outflow", "tier_downgraded"]
    assert batches <= 3, f"{len(events)} events in {batches} batches"
    assert len(statements) <= 12 * batches, \
        f"{len(statements)} statements on alerts' tables for {len(events)} events in {batches} batches"
