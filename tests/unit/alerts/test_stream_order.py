"""Alerts judge what tiering tells them in one order: each customer's tiered postings, tier
changes and AUM events on ``strata.tiering.changes``, in the order tiering emitted them (a
posting, then the tier changes and the AUM event it caused). Kafka keeps that order within the
customer's partition, so how the stream is batched, redelivered or read after a backlog cannot
change the signals; and the two triggers of ``vip_outflow``, which share one suppression window,
raise the signal of whichever came first in the stream, whatever the days between them."""

from __future__ import annotations

import json

import pytest
from prometheus_client import REGISTRY

from tests.conftest import private_strata
from tests.unit.alerts.alerts_feed import Postings, as_read, assignment, at, aum, new_customer, tier_change, tiered


@pytest.fixture(scope="module")
async def strata():
    async with private_strata(["alerts"]) as harness:
        yield harness


async def feed(strata, *events) -> None:
    for event in events:  # one at a time, each settled: the order read is the order given
        await strata.publish(as_read(event))
        await strata.settle()


async def signals(strata, customer_id: str, **params) -> list[dict]:
    response = await strata.get("/v1/signals", params={"customer_id": customer_id, "limit": 500, **params})
    assert response.status_code == 200, response.text
    return list(reversed(response.json()["items"]))


def outcome(items: list[dict], customer_id: str) -> list[tuple]:
    """What the signals say, with the customer id blanked so that customers compare."""
    return sorted((i["signal_type"], i["status"], i["rm_id"], i["raised_at"],
                   json.dumps(i["evidence"], sort_keys=True).replace(customer_id, "C")) for i in items)


def suppressed() -> float:
    return REGISTRY.get_sample_value("strata_signals_suppressed_total", {"signal_type": "vip_outflow"}) or 0.0


def nov(day: int, clock: str = "10:00:00") -> str:
    return at(f"2026-11-{day:02d}", clock)


def tiering_stream(c: str) -> list:
    """One customer's stream as tiering emits it: each posting passed on with the tier and AUM
    right after it, then the tier change it caused, then the AUM event."""
    book = Postings(c)
    first = book.credit("46000.00", nov(1))
    second = book.credit("554000.00", nov(2))
    first_large = book.debit("150000.00", nov(5), bank="OTHER")
    within = book.debit("300000.00", nov(20))
    second_large = book.debit("120000.00", nov(22), bank="OTHER")
    late_large = book.debit("10000.00", at("2026-12-03"), bank="OTHER")
    return [
        tiered(first, "mass", "46000.00"), aum(c, "46000.00", nov(1), tier="mass"),       # near gold
        tiered(second, "platinum", "600000.00"),
        tier_change(c, "upgrade", "mass", "platinum", nov(2), aum_="600000.00"),
        aum(c, "600000.00", nov(2), tier="platinum"),
        tiered(first_large, "platinum", "450000.00"),                                     # a large outflow
        aum(c, "450000.00", nov(5), tier="platinum"),                                     # and its drop
        tiered(within, "platinum", "150000.00"), aum(c, "150000.00", nov(20), tier="platinum"),  # a drop
        tiered(second_large, "platinum", "30000.00"),                                     # two days later
        aum(c, "30000.00", nov(22), tier="platinum"),
        tier_change(c, "downgrade", "platinum", "gold", at("2026-12-01", "00:00:00"), aum_="30000.00"),
        tiered(late_large, "gold", "20000.00"), aum(c, "20000.00", at("2026-12-03"), tier="gold"),
    ]


EXPECTED = [
    ("near_upgrade", "expired", "2026-11-01"),
    ("tier_downgraded", "open", "2026-12-01"),  # 1 December 00:00 in Shanghai
    ("tier_upgraded", "open", "2026-11-02"),
    ("vip_outflow", "open", "2026-11-05"),
    ("vip_outflow", "open", "2026-11-20"),
]


async def test_a_customers_stream_raises_the_same_signals_however_it_is_delivered(strata):
    outcomes = {}
    for delivery in ("one by one", "one batch", "redelivered", "in two batches"):
        c = new_customer("XO")
        stream = [as_read(e, event_id=f"{c}-{n}") for n, e in enumerate(tiering_stream(c))]
        await feed(strata, assignment(c, "RM-S", nov(1, "08:00:00")))
        if delivery == "one by one":
            await feed(strata, *stream)
        elif delivery == "one batch":  # a backlog read at once (e.g. after a restart)
            await strata.publish(*stream)
            await strata.settle()
        elif delivery == "redelivered":  # the first half again, under the same event ids
            await feed(strata, *stream[:8], *stream[:8], *stream[8:], *stream[:3])
        else:
            for part in (stream[:5], stream[5:]):
                await strata.publish(*part)
                await strata.settle()
        outcomes[delivery] = outcome(await signals(strata, c), c)

    reference = outcomes["one by one"]
    assert [(t, s, rm, r[:10]) for t, s, rm, r, _ in reference] == [(t, s, "RM-S", r) for t, s, r in EXPECTED]
    outflows = [json.loads(e) for t, _, _, _, e in reference if t == "vip_outflow"]
    assert [(e["trigger"], e["tier"], e["aum"]) for e in outflows] == [
        ("large_outflow", "platinum", "450000.00"), ("aum_drop", "platinum", "150000.00")], \
        "the first trigger in the stream raises the signal; the next, inside its week, is suppressed"
    different = {delivery: got for delivery, got in outcomes.items() if got != reference}
    assert not different, f"one by one: {reference}\nbut: {different}"


async def test_a_large_outflow_and_the_aum_drop_it_causes_are_one_signal_naming_the_posting(strata):
    c = new_customer("XO")
    book = Postings(c, balance="600000.00")
    when = at("2026-11-05")
    outflow = tiered(book.debit("150000.00", when, bank="OTHER"), "platinum", "450000.00")
    before = suppressed()
    await feed(strata, aum(c, "600000.00", at("2026-11-02"), tier="platinum"),
               outflow, aum(c, "450000.00", when, tier="platinum"))  # tiering's order
    [item] = await signals(strata, c)
    assert (item["signal_type"], item["status"], item["evidence"]["trigger"]) == \
        ("vip_outflow", "open", "large_outflow")
    assert item["evidence"]["posting_id"] == outflow.posting.posting_id
    assert suppressed() == before + 1, "the drop it causes, the same day, is suppressed"


async def test_a_large_outflow_on_day_one_suppresses_an_aum_drop_on_day_three(strata):
    c = new_customer("XO")
    book = Postings(c, balance="600000.00")
    outflow = book.debit("100000.00", at("2026-11-05"), bank="OTHER")
    within = book.debit("100000.00", at("2026-11-07"))  # inside the bank: no outflow, a drop
    before = suppressed()
    await feed(strata, aum(c, "600000.00", at("2026-11-02"), tier="platinum"),
               tiered(outflow, "platinum", "500000.00"),
               aum(c, "500000.00", at("2026-11-05"), tier="platinum"),   # 83 % of the high: no drop
               tiered(within, "platinum", "400000.00"),
               aum(c, "400000.00", at("2026-11-07"), tier="platinum"))   # 67 %: a drop, two days on
    [item] = await signals(strata, c)
    assert (item["signal_type"], item["raised_at"][:10], item["evidence"]["trigger"],
            item["evidence"]["posting_id"]) == ("vip_outflow", "2026-11-05", "large_outflow", outflow.posting_id)
    assert suppressed() == before + 1


async def test_an_aum_drop_on_day_one_suppresses_a_large_outflow_on_day_three(strata):
    c = new_customer("XO")
    book = Postings(c, balance="600000.00")
    within = book.debit("150000.00", at("2026-11-05"))
    outflow = book.debit("100000.00", at("2026-11-07"), bank="OTHER")
    before = suppressed()
    await feed(strata, aum(c, "600000.00", at("2026-11-02"), tier="platinum"),
               tiered(within, "platinum", "450000.00"),
               aum(c, "450000.00", at("2026-11-05"), tier="platinum"),   # 75 % of the high
               tiered(outflow, "platinum", "350000.00"),                 # large, two days on
               aum(c, "350000.00", at("2026-11-07"), tier="platinum"))   # and its own drop
    [item] = await signals(strata, c)
    assert (item["signal_type"], item["raised_at"][:10], item["evidence"]["trigger"], item["evidence"]["aum"]) == \
        ("vip_outflow", "2026-11-05", "aum_drop", "450000.00")
    assert suppressed() == before + 2, "the large outflow and the drop it causes"


async def test_an_earlier_aum_drop_of_the_day_keeps_the_days_signal(strata):
    c = new_customer("XO")
    book = Postings(c, balance="600000.00")
    within = book.debit("150000.00", at("2026-11-05", "09:00:00"))
    outflow = book.debit("150000.00", at("2026-11-05", "15:00:00"), bank="OTHER")
    await feed(strata, aum(c, "600000.00", at("2026-11-02"), tier="platinum"),
               tiered(within, "platinum", "450000.00"), aum(c, "450000.00", at("2026-11-05", "09:00:00"), tier="platinum"),
               tiered(outflow, "platinum", "300000.00"), aum(c, "300000.00", at("2026-11-05", "15:00:00"), tier="platinum"))
    [item] = await signals(strata, c)
    assert (item["evidence"]["trigger"], item["raised_at"][11:16]) == ("aum_drop", "09:00"), \
        "the first trigger of the day (09:00 in Shanghai)"


async def test_a_near_upgrade_is_made_moot_by_the_upgrade_after_it_in_the_stream(strata):
    c = new_customer("XO")
    await feed(strata, aum(c, "46000.00", at("2026-11-04"), tier="mass"),
               tier_change(c, "upgrade", "mass", "gold", at("2026-11-06"), aum_="52000.00"),
               aum(c, "52000.00", at("2026-11-06"), tier="gold"))
    items = await signals(strata, c)
    assert sorted((i["signal_type"], i["status"], i["evidence"].get("tier")) for i in items) == [
        ("near_upgrade", "expired", "mass"), ("tier_upgraded", "open", None)]
