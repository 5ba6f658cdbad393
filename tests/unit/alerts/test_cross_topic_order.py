"""Alerts raise the same signals, with the same evidence, whatever the order in which the topics of
one customer are read: Kafka orders ``strata.aum``, ``strata.tiers`` and
``strata.postings.tiered`` each within a partition, never across them. The events below are what
tiering emits for one customer; only the interleaving of the topics changes."""

from __future__ import annotations

import itertools
import json

import pytest

from tests.conftest import private_strata
from tests.unit.alerts.alerts_feed import Postings, at, aum, new_customer, tier_change, tiered


@pytest.fixture(scope="module")
async def strata():
    async with private_strata(["alerts"]) as harness:
        yield harness


async def feed(strata, *events) -> None:
    for event in events:  # one at a time, each settled: the order read is the order given
        await strata.publish(event)
        await strata.settle()


async def signals(strata, customer_id: str) -> list[dict]:
    response = await strata.get("/v1/signals", params={"customer_id": customer_id, "limit": 500})
    assert response.status_code == 200, response.text
    return list(reversed(response.json()["items"]))


def outcome(items: list[dict], customer_id: str) -> list[tuple]:
    """What the signals say, with the customer id blanked so that customers compare."""
    return sorted((i["signal_type"], i["status"], i["raised_at"],
                   json.dumps(i["evidence"], sort_keys=True).replace(customer_id, "C")) for i in items)


def tiering_stream(c: str) -> list[tuple[str, object]]:
    """One customer's events as tiering emits them, each with its topic, in tiering's order."""
    book = Postings(c)
    nov = lambda day, clock="10:00:00": at(f"2026-11-{day:02d}", clock)  # noqa: E731
    book.credit("46000.00", nov(1))
    book.credit("554000.00", nov(2))
    first_large = book.debit("150000.00", nov(5), bank="OTHER")
    second_large = book.debit("300000.00", nov(20), bank="OTHER")
    late_large = book.debit("120000.00", at("2026-12-03"), bank="OTHER")
    return [
        ("aum", aum(c, "46000.00", nov(1), tier="mass")),                      # near gold
        ("tiers", tier_change(c, "upgrade", "mass", "platinum", nov(2), aum_="600000.00")),
        ("aum", aum(c, "600000.00", nov(2), tier="platinum")),
        ("aum", aum(c, "450000.00", nov(5), tier="platinum")),                 # 75 % of the high
        ("postings", tiered(first_large, "platinum", "450000.00")),            # and a large outflow
        ("aum", aum(c, "150000.00", nov(20), tier="platinum")),
        ("postings", tiered(second_large, "platinum", "150000.00")),
        ("tiers", tier_change(c, "downgrade", "platinum", "gold", at("2026-12-01", "00:00:00"),
                              aum_="150000.00")),
        ("aum", aum(c, "30000.00", at("2026-12-03"), tier="gold")),
        ("postings", tiered(late_large, "gold", "30000.00")),                  # no VIP any more
    ]


def by_topics(stream: list[tuple[str, object]], order: tuple[str, ...]) -> list[object]:
    """Each topic read to its end before the next, each in its own order."""
    return [event for topic in order for t, event in stream if t == topic]


ORDERS = ["as emitted"] + [" ".join(o) for o in itertools.permutations(("tiers", "aum", "postings"))]


async def test_a_customers_events_raise_the_same_signals_whichever_topic_is_read_first(strata):
    outcomes = {}
    for order in ORDERS:
        c = new_customer("XO")
        stream = tiering_stream(c)
        events = [e for _, e in stream] if order == "as emitted" else by_topics(stream, tuple(order.split()))
        await feed(strata, *events)
        outcomes[order] = outcome(await signals(strata, c), c)

    emitted = outcomes["as emitted"]
    assert [(t, s, r[:10]) for t, s, r, _ in emitted] == [
        ("near_upgrade", "expired", "2026-11-01"),
        ("tier_downgraded", "open", "2026-11-30"),  # 1 December 00:00 in Shanghai
        ("tier_upgraded", "open", "2026-11-02"),
        ("vip_outflow", "open", "2026-11-05"),
        ("vip_outflow", "open", "2026-11-20"),
    ]
    outflows = [json.loads(e) for t, _, _, e in emitted if t == "vip_outflow"]
    assert [(e["trigger"], e["tier"], e["aum"]) for e in outflows] == [
        ("large_outflow", "platinum", "450000.00"), ("large_outflow", "platinum", "150000.00")], \
        "a large outflow and the AUM drop it causes: the day's signal names the posting"
    different = {order: got for order, got in outcomes.items() if got != emitted}
    assert not different, f"read as emitted: {emitted}\nbut: {different}"


async def test_a_large_outflow_is_judged_with_the_tier_of_its_posting_after_a_later_downgrade_was_read(strata):
    c = new_customer("XO")
    book = Postings(c, balance="600000.00")
    outflow = tiered(book.debit("150000.00", at("2026-11-05"), bank="OTHER"), "platinum", "450000.00")
    await feed(strata, tier_change(c, "downgrade", "platinum", "gold", at("2026-12-01", "00:00:00")),
               aum(c, "20000.00", at("2026-12-02"), tier="gold"),
               outflow)
    [item] = [i for i in await signals(strata, c) if i["signal_type"] == "vip_outflow"]
    evidence = item["evidence"]
    assert (evidence["trigger"], evidence["tier"], evidence["posting_id"]) == \
        ("large_outflow", "platinum", outflow.posting.posting_id)
    assert evidence["aum"] == "450000.00", "the AUM right after the posting, not the latest AUM read"


@pytest.mark.parametrize("tier_event_first", [False, True], ids=["aum-first", "tier-first"])
async def test_an_aum_event_is_judged_with_its_own_tier_after_a_later_upgrade_was_read(strata, tier_event_first):
    c = new_customer("XO")
    near = aum(c, "46000.00", at("2026-11-04"), tier="mass")
    upgrade = tier_change(c, "upgrade", "mass", "gold", at("2026-11-06"), aum_="52000.00")
    await feed(strata, *([upgrade, near] if tier_event_first else [near, upgrade]),
               aum(c, "52000.00", at("2026-11-06"), tier="gold"))
    items = await signals(strata, c)
    assert sorted((i["signal_type"], i["status"], i["evidence"].get("tier")) for i in items) == [
        ("near_upgrade", "expired", "mass"), ("tier_upgraded", "open", None)], \
        "near gold on the 4th, made moot by the upgrade on the 6th, whichever was read first"


@pytest.mark.parametrize("posting_first", [False, True], ids=["aum-first", "posting-first"])
async def test_a_large_outflow_and_the_aum_drop_it_causes_are_one_signal_naming_the_posting(strata, posting_first):
    c = new_customer("XO")
    book = Postings(c, balance="600000.00")
    when = at("2026-11-05")
    drop = aum(c, "450000.00", when, tier="platinum")
    outflow = tiered(book.debit("150000.00", when, bank="OTHER"), "platinum", "450000.00")
    await feed(strata, aum(c, "600000.00", at("2026-11-02"), tier="platinum"),
               *([outflow, drop] if posting_first else [drop, outflow]))
    [item] = await signals(strata, c)
    assert (item["signal_type"], item["status"], item["evidence"]["trigger"]) == \
        ("vip_outflow", "open", "large_outflow")
    assert item["evidence"]["posting_id"] == outflow.posting.posting_id


async def test_an_earlier_aum_drop_of_the_day_keeps_the_days_signal_when_read_after_a_large_outflow(strata):
    c = new_customer("XO")
    book = Postings(c, balance="600000.00")
    await feed(strata, aum(c, "600000.00", at("2026-11-02"), tier="platinum"),
               tiered(book.debit("150000.00", at("2026-11-05", "15:00:00"), bank="OTHER"),
                      "platinum", "300000.00"),
               aum(c, "450000.00", at("2026-11-05", "09:00:00"), tier="platinum"))
    [item] = await signals(strata, c)
    assert (item["evidence"]["trigger"], item["raised_at"][11:16]) == ("aum_drop", "01:00"), \
        "the first trigger of the day (09:00 in Shanghai), as if the topics had been read in time order"


async def test_a_signal_taken_over_by_an_earlier_trigger_is_taken_over_in_profile_and_assignment_too():
    """Profile's 360 and assignment's worklist read the signal from ``strata.signals``: the
    re-announcement of a taken-over signal must move them to the earlier trigger as well."""
    from sqlalchemy import select

    from services.assignment.models import AssignmentSignal
    from services.profile.models import ProfileSignal

    async with private_strata(["alerts", "profile", "assignment"]) as strata:
        c = new_customer("XP")
        book = Postings(c, balance="600000.00")
        outflow = tiered(book.debit("150000.00", at("2026-11-05", "09:00:00"), bank="OTHER"), "platinum", "450000.00")
        await feed(strata, aum(c, "600000.00", at("2026-11-02"), tier="platinum"),
                   aum(c, "400000.00", at("2026-11-05", "15:00:00"), tier="platinum"),  # read first
                   outflow)
        [item] = await signals(strata, c)
        assert item["evidence"]["trigger"] == "large_outflow"
        async with strata.runtime.db.sessions() as session:
            profile = (await session.execute(select(ProfileSignal).where(ProfileSignal.customer_id == c))).scalar_one()
            assignment = (await session.execute(
                select(AssignmentSignal).where(AssignmentSignal.customer_id == c))).scalar_one()
        assert json.loads(profile.evidence)["posting_id"] == outflow.posting.posting_id
        assert profile.raised_at.isoformat()[:19] == assignment.raised_at.isoformat()[:19] == "2026-11-05T01:00:00"
