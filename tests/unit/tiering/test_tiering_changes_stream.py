"""Tiering passes every public event it emits on to ``strata.tiering.changes`` (internal, read by
alerts), one ordered stream per customer: a posting's tiered posting first, then the tier changes
it caused, then the AUM event; the same data and time as the public event, under an id derived
from the public event's, so a re-run or a replay emits no new id."""

from __future__ import annotations

import itertools

import pytest

from shared.contracts import topics
from shared.contracts.cloudevents import Event, decode_record
from shared.contracts.events import AumV1, BalanceV1, CustomerV1, PostingTieredV1, PostingV1, TierChangedV1
from shared.runtime.unit_of_work import derived_event_id
from tests.conftest import private_strata

_ids = itertools.count(1)
STREAM = topics.TIERING_CHANGES


def new_customer() -> str:
    return f"TS{next(_ids):05d}"


def posting(customer: str, seq: int, balance: str, *, product_type: str = "demand_deposit",
            at: str = "2026-11-10T10:00:00+08:00", account: str | None = None) -> PostingV1:
    account = account or f"{customer}-{product_type}"
    return PostingV1(
        posting_id=f"{account}-{seq}", customer_id=customer, account_id=account, account_seq=seq,
        product_type=product_type, direction="credit", amount="1.00", balance_after=balance,
        currency="CNY", tx_type="transfer_in", channel="mobile", branch_id="BR-1", posted_at=at,
    )


@pytest.fixture(scope="module")
async def strata():
    async with private_strata(["tiering"]) as harness:  # nothing reads the topics: none is trimmed
        yield harness


def emitted(strata, topic: str, customer: str) -> list[Event]:
    """One customer's events on ``topic``, in the order of its partition."""
    records = [r for p in strata.runtime.bus.topics.get(topic, []) for r in p.records]
    events = [decode_record(r.value, r.headers) for r in records]
    return [e for e in events if e.subject == customer]


def kinds(events: list[Event]) -> list[str]:
    return [e.type for e in events]


def public(strata, customer: str) -> dict[str, Event]:
    """The customer's public events by id."""
    return {e.id: e for topic in (topics.POSTINGS_TIERED, topics.TIERS, topics.AUM)
            for e in emitted(strata, topic, customer)}


async def test_a_posting_across_a_floor_is_its_tiered_posting_then_the_upgrade_then_the_aum(strata):
    c = new_customer()
    await strata.publish(posting(c, 1, "30000.00"), posting(c, 2, "60000.00"))
    await strata.settle()
    stream = emitted(strata, STREAM, c)
    assert kinds(stream) == [
        "strata.tiering.posting_tiered.v1", "strata.tiering.aum.v1",
        "strata.tiering.posting_tiered.v1", "strata.tiering.tier_changed.v1", "strata.tiering.aum.v1"]
    assert [type(e.data) for e in stream] == [PostingTieredV1, AumV1, PostingTieredV1, TierChangedV1, AumV1]
    tiered, upgrade, after = (e.data for e in stream[2:])
    assert (tiered.tier, str(tiered.aum), upgrade.to, after.tier, str(after.aum)) == \
        ("gold", "60000.00", "gold", "gold", "60000.00")

    published = public(strata, c)
    assert len(published) == len(stream)
    by_id = {derived_event_id("tiering", f"changes:{event_id}"): e for event_id, e in published.items()}
    for event in stream:
        original = by_id[event.id]
        assert (event.data, event.time, event.source) == (original.data, original.time, original.source)
        assert original.topic != STREAM


async def test_a_loan_posting_is_only_its_tiered_posting_and_a_snapshot_only_its_aum(strata):
    c = new_customer()
    await strata.publish(posting(c, 1, "-500000.00", product_type="loan"),
                         BalanceV1(customer_id=c, account_id=f"{c}-F", product_type="fund", balance="250000.00",
                                   currency="CNY", as_of="2026-11-10T15:00:00+08:00"))
    await strata.settle()
    assert kinds(emitted(strata, STREAM, c)) == [
        "strata.tiering.posting_tiered.v1", "strata.tiering.tier_changed.v1", "strata.tiering.aum.v1"]
    assert emitted(strata, STREAM, c)[1].data.to == "platinum"


async def test_a_posting_delivered_again_or_under_another_event_id_adds_nothing_to_the_stream(strata):
    c = new_customer()
    event = strata.event(posting(c, 1, "60000.00"))
    await strata.publish(event)
    await strata.settle()
    once = [e.id for e in emitted(strata, STREAM, c)]
    await strata.publish(event, strata.event(posting(c, 1, "60000.00")))  # redelivered; replayed
    await strata.settle()
    again = [e.id for e in emitted(strata, STREAM, c)]
    assert len(once) == 3
    assert again[:3] == once and set(again) == set(once), \
        "the replayed posting's tiered posting has the same stable id; it moves no balance"


async def test_the_month_end_close_puts_its_tier_changes_on_the_stream():
    async with private_strata(["tiering"]) as strata:
        c = new_customer()
        await strata.publish(posting(c, 1, "250000.00", at="2026-11-01T09:00:00+08:00"),
                             posting(c, 2, "100000.00", at="2026-11-16T09:00:00+08:00"))
        await strata.settle()
        response = await strata.post("/v1/admin/month-end-close", {"month": "2026-11"})
        assert response.status_code == 200, response.text
        await strata.settle()
        stream = emitted(strata, STREAM, c)
        assert kinds(stream)[-1] == "strata.tiering.tier_changed.v1"
        assert (stream[-1].data.change, stream[-1].data.watch) == ("watch", True)
        [watch] = [e for e in emitted(strata, topics.TIERS, c) if e.data.change == "watch"]
        assert stream[-1].id == derived_event_id("tiering", f"changes:{watch.id}")


async def test_a_household_members_upgrade_goes_to_the_members_own_stream():
    async with private_strata(["tiering"], tiering={"household_aggregation": True}) as strata:
        head, spouse = new_customer(), new_customer()
        for cid, role in ((head, "head"), (spouse, "spouse")):
            await strata.publish(CustomerV1(
                customer_id=cid, name="n", home_branch_id="BR-1", household_id="H-S",
                household_role=role, updated_at="2026-11-01T09:00:00+08:00"))
        await strata.publish(posting(head, 1, "30000.00"))
        await strata.settle()
        await strata.publish(posting(spouse, 1, "25000.00"))
        await strata.settle()
        assert kinds(emitted(strata, STREAM, spouse)) == [
            "strata.tiering.posting_tiered.v1", "strata.tiering.tier_changed.v1", "strata.tiering.aum.v1"]
        head_stream = emitted(strata, STREAM, head)
        assert [type(e.data) for e in head_stream] == [PostingTieredV1, AumV1, TierChangedV1]
        assert (head_stream[-1].data.to, head_stream[-1].subject) == ("gold", head)
