"""Tiering passes every fact it applies on to ``strata.tiering.changes`` (internal): one record
per fact, in the customer's order, with the tier, watch and AUM right after it and the tier
decisions it caused. Pricing, alerts and assignment read that one stream."""

from __future__ import annotations

import itertools

import pytest

from shared.contracts import topics
from shared.contracts.cloudevents import Event, decode_record
from shared.contracts.events import AccountFact, AccountV1, BalanceV1, CustomerFact, CustomerV1, PostingFact, PostingV1
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


def facts(stream: list[Event]) -> list[tuple]:
    return [(e.data.fact, e.data.tier, str(e.data.aum), [c.change for c in e.data.tier_changes]) for e in stream]


async def test_each_posting_is_one_record_with_the_tier_and_aum_right_after_it(strata):
    c = new_customer()
    await strata.publish(posting(c, 1, "30000.00"), posting(c, 2, "60000.00", at="2026-11-10T11:00:00+08:00"))
    await strata.settle()
    stream = emitted(strata, STREAM, c)
    assert facts(stream) == [("posting", "mass", "30000.00", []), ("posting", "gold", "60000.00", ["upgrade"])]
    first, second = (e.data for e in stream)
    assert isinstance(second.posting, PostingFact) and second.posting.account_seq == 2
    assert (first.placement, second.placement, str(second.aum_before)) == (True, False, "30000.00")
    upgrade = second.tier_changes[0]
    assert (upgrade.from_, upgrade.to, str(upgrade.basis)) == ("mass", "gold", "60000.00")
    [public] = [e for e in emitted(strata, topics.TIERS, c)]
    assert (public.data.change, public.data.to) == ("upgrade", "gold")
    assert len(emitted(strata, topics.AUM, c)) == 2


async def test_the_first_aum_seen_places_the_customer_without_an_upgrade(strata):
    c = new_customer()
    at = "2026-11-01T00:00:00+08:00"
    await strata.publish(  # one instant: the event ids break the tie
        strata.event(BalanceV1(customer_id=c, account_id=f"{c}-DD", product_type="demand_deposit",
                               balance="30000.00", currency="CNY", as_of=at), id=f"{c}-1"),
        strata.event(BalanceV1(customer_id=c, account_id=f"{c}-F", product_type="fund", balance="230000.00",
                               currency="CNY", as_of=at), id=f"{c}-2"),
        posting(c, 1, "1030000.00", at="2026-11-02T10:00:00+08:00", account=f"{c}-DD"))
    await strata.settle()
    assert facts(emitted(strata, STREAM, c)) == [
        ("balance", "mass", "30000.00", []), ("balance", "platinum", "260000.00", ["initial_placement"]),
        ("posting", "diamond", "1260000.00", ["upgrade"])]
    aum = emitted(strata, topics.AUM, c)
    assert [e.data.placement for e in aum] == [True, True, False]
    assert aum[1].data.balances == {f"{c}-F": __import__("decimal").Decimal("230000.00")}
    view = (await strata.get(f"/v1/customers/{c}/tier")).json()
    assert [(h["from"], h["to"], h["change"]) for h in view["history"]] == [
        ("mass", "platinum", "initial_placement"), ("platinum", "diamond", "upgrade")]


async def test_a_loan_posting_passes_on_without_moving_aum(strata):
    c = new_customer()
    await strata.publish(posting(c, 1, "60000.00"),
                         posting(c, 1, "-500000.00", product_type="loan", at="2026-11-10T11:00:00+08:00"))
    await strata.settle()
    assert facts(emitted(strata, STREAM, c)) == [
        ("posting", "gold", "60000.00", ["initial_placement"]), ("posting", "gold", "60000.00", [])]


async def test_a_posting_sent_again_under_another_event_id_is_passed_on_once(strata):
    c = new_customer()
    event = strata.event(posting(c, 1, "60000.00"))
    await strata.publish(event)
    await strata.settle()
    await strata.publish(event, strata.event(posting(c, 1, "60000.00")))  # redelivered; resent
    await strata.settle()
    assert len(emitted(strata, STREAM, c)) == 1


async def test_an_older_posting_is_passed_on_marked_stale_and_moves_nothing(strata):
    c = new_customer()
    await strata.publish(posting(c, 2, "60000.00"))
    await strata.settle()
    await strata.publish(posting(c, 1, "10.00", at="2026-11-10T09:00:00+08:00"))
    await strata.settle()
    stream = emitted(strata, STREAM, c)
    assert [(e.data.posting.account_seq, e.data.stale, str(e.data.aum)) for e in stream] == [
        (2, False, "60000.00"), (1, True, "60000.00")]


async def test_master_data_goes_on_the_stream_for_the_other_services(strata):
    c = new_customer()
    await strata.publish(
        CustomerV1(customer_id=c, name="王芳", home_branch_id="BR-1", birth_date="1988-07-15",
                   auto_points_offset=True, updated_at="2026-11-01T09:00:00+08:00"),
        AccountV1(account_id=f"{c}-TD", customer_id=c, branch_id="BR-1", product_type="time_deposit",
                  product_code="TD-3Y", status="open", opened_on="2026-11-01", maturity_date="2029-11-01"))
    await strata.settle()
    stream = emitted(strata, STREAM, c)
    assert [e.data.fact for e in stream] == ["customer", "account"]
    customer, account = stream[0].data.customer, stream[1].data.account
    assert isinstance(customer, CustomerFact) and (customer.name, customer.auto_points_offset) == ("王芳", True)
    assert isinstance(account, AccountFact) and str(account.maturity_date) == "2029-11-01"


async def test_the_month_end_close_puts_its_decisions_on_the_stream():
    async with private_strata(["tiering"]) as strata:
        c = new_customer()
        await strata.publish(posting(c, 1, "250000.00", at="2026-11-01T09:00:00+08:00"),
                             posting(c, 2, "100000.00", at="2026-11-16T09:00:00+08:00"))
        await strata.settle()
        response = await strata.post("/v1/admin/month-end-close", {"month": "2026-11"})
        assert response.status_code == 200, response.text
        await strata.settle()
        last = emitted(strata, STREAM, c)[-1].data
        assert (last.fact, last.watch, [ch.change for ch in last.tier_changes]) == ("month_end", True, ["watch"])
        assert last.at.isoformat() == "2026-12-01T00:00:00+08:00"


async def test_a_household_members_upgrade_goes_to_the_members_own_stream():
    async with private_strata(["tiering"], tiering={"household_aggregation": True}) as strata:
        head, spouse = new_customer(), new_customer()
        for cid, role in ((head, "head"), (spouse, "spouse")):
            await strata.publish(CustomerV1(
                customer_id=cid, name="n", home_branch_id="BR-1", household_id="H-S",
                household_role=role, updated_at="2026-11-01T09:00:00+08:00"))
        await strata.publish(posting(head, 1, "30000.00"))
        await strata.settle()
        await strata.publish(posting(spouse, 1, "25000.00", at="2026-11-10T11:00:00+08:00"))
        await strata.settle()
        assert facts(emitted(strata, STREAM, spouse))[-1] == ("posting", "gold", "25000.00", ["initial_placement"])
        last = emitted(strata, STREAM, head)[-1]
        assert (last.data.fact, last.data.tier, [ch.change for ch in last.data.tier_changes]) == \
            ("household", "gold", ["upgrade"])
