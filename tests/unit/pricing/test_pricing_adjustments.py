"""An upgrade decided late (a fact that came after the event-time order had moved past it)
corrects the fees already assessed at the lower tier, in the customer's favour only, once."""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal as D

import pytest

from shared.contracts.cloudevents import decode_record
from shared.contracts.events import BalanceV1, TierChange, TieringChangeV1
from tests.conftest import private_strata
from tests.unit.pricing.pricing_feed import Feed, customer

_ids = itertools.count(1)
DAY = "2026-11-10T{:02d}:00:00+08:00".format


@pytest.fixture(scope="module")
async def strata():
    async with private_strata(["tiering", "pricing"]) as harness:
        yield harness


def new_customer() -> str:
    return f"PA{next(_ids):05d}"


def fund_snapshot(customer_id: str, balance: str, at: str) -> BalanceV1:
    return BalanceV1(customer_id=customer_id, account_id=f"{customer_id}-FUND", product_type="fund",
                     balance=balance, currency="CNY", as_of=at)


async def fees_of(strata, customer_id: str) -> dict:
    response = await strata.get(f"/v1/customers/{customer_id}/fees", params={"limit": 500})
    assert response.status_code == 200, response.text
    return response.json()


def published(strata, topic: str, customer_id: str) -> list:
    return [decode_record(r.value, r.headers) for part in strata.runtime.bus.topics.get(topic, [])
            for r in part.records if r.key == customer_id.encode()]


async def test_a_late_snapshot_that_lifts_the_customer_before_a_priced_posting_refunds_its_fee_once(strata):
    c = Feed(new_customer())
    salary = c.salary("10000.00", DAY(8))
    atm = c.interbank_atm(DAY(11))
    await strata.publish(salary, atm)
    await strata.settle()
    assert {f["posting_id"]: (f["tier"], f["net"]) for f in (await fees_of(strata, c.customer_id))["items"]}[
        atm.posting_id] == ("mass", "4.00")

    late = fund_snapshot(c.customer_id, "60000.00", DAY(9))   # before the withdrawal: gold from 09:00
    await strata.publish(late)
    await strata.settle()
    view = await fees_of(strata, c.customer_id)
    [adjustment] = view["adjustments"]
    assert (adjustment["posting_id"], adjustment["fee_id"]) == (atm.posting_id, "atm_interbank")
    assert (adjustment["tier_before"], adjustment["tier_after"]) == ("mass", "gold")
    assert (adjustment["net_before"], adjustment["net_after"], adjustment["difference"]) == ("4.00", "0.00", "-4.00")
    assert adjustment["rules"] == ["fee.atm_interbank", "gold.atm_interbank.free3"]
    assert "4.00 refunded" in adjustment["reason"] and "decided after it was priced at mass" in adjustment["reason"]
    fee = next(f for f in view["items"] if f["posting_id"] == atm.posting_id)
    assert (fee["tier"], fee["net"]) == ("mass", "4.00")   # the assessed fee is never rewritten
    [event] = published(strata, "strata.fee_adjustments", c.customer_id)
    assert (event.type, event.id, event.data.difference) == ("strata.fee_adjusted.v1", adjustment["adjustment_id"],
                                                              D("-4.00"))

    await strata.publish(late)   # the same snapshot again
    at = datetime.fromisoformat(DAY(9))
    await strata.publish(TieringChangeV1(   # and tiering's decision again, under another event id
        customer_id=c.customer_id, fact="balance", at=at, tier="gold", aum="69996.00", aum_before="9996.00",
        business_date=at.date(), tier_changes=[TierChange(
            from_="mass", to="gold", change="upgrade", reason="again", effective_at=at, watch=False,
            basis="69996.00")]))
    await strata.settle()
    assert len((await fees_of(strata, c.customer_id))["adjustments"]) == 1
    assert len(published(strata, "strata.fee_adjustments", c.customer_id)) == 1


async def test_free_uses_are_counted_again_in_posting_order_after_a_late_upgrade(strata):
    c = Feed(new_customer())
    salary = c.salary("10000.00", DAY(8))
    before = c.interbank_atm("2026-11-10T08:30:00+08:00")        # before the upgrade: stays mass
    after = [c.interbank_atm(DAY(10 + i)) for i in range(4)]     # gold's 3 free uses, then charged
    await strata.publish(salary, before, *after)
    await strata.settle()
    await strata.publish(fund_snapshot(c.customer_id, "60000.00", DAY(9)))
    await strata.settle()
    view = await fees_of(strata, c.customer_id)
    refunded = {a["posting_id"]: a["difference"] for a in view["adjustments"]}
    assert refunded == {p.posting_id: "-4.00" for p in after[:3]}
    nxt = c.interbank_atm(DAY(15))
    await strata.publish(nxt)
    await strata.settle()
    fee = next(f for f in (await fees_of(strata, c.customer_id))["items"] if f["posting_id"] == nxt.posting_id)
    assert (fee["tier"], fee["use_number"], fee["net"]) == ("gold", 6, "4.00")   # the free uses are spent


async def test_points_that_paid_a_corrected_fee_are_given_back(strata):
    c = Feed(new_customer())
    await strata.publish(customer(c.customer_id, auto_points_offset=True))
    earned = [c.salary("10000.00", DAY(8)), c.card_spend("3000.00", DAY(8))]   # 150 points
    atm = c.interbank_atm(DAY(11))
    await strata.publish(*earned, atm)
    await strata.settle()
    paid = next(f for f in (await fees_of(strata, c.customer_id))["items"] if f["posting_id"] == atm.posting_id)
    assert (paid["points_used"], paid["net"]) == (150, "2.50")
    await strata.publish(fund_snapshot(c.customer_id, "60000.00", DAY(9)))
    await strata.settle()
    view = await fees_of(strata, c.customer_id)
    [adjustment] = view["adjustments"]
    assert (adjustment["difference"], adjustment["points_returned"]) == ("-2.50", 150)
    assert view["points_balance"] == 150
    refund = view["points_ledger"][0]
    assert (refund["kind"], refund["points"], refund["posting_id"], refund["balance_after"]) == (
        "refund", 150, atm.posting_id, 150)


async def test_a_downgrade_or_an_upgrade_in_order_never_re_prices_what_was_charged(strata):
    c = Feed(new_customer())
    salary = c.salary("60000.00", DAY(8))
    await strata.publish(salary, *[c.interbank_atm(DAY(9 + i)) for i in range(4)])   # gold: 3 free, 1 at 4.00
    await strata.settle()
    at = datetime.fromisoformat(DAY(9))
    downgrade = TieringChangeV1(
        customer_id=c.customer_id, fact="month_end", at=at, tier="mass", aum="60000.00", aum_before="60000.00",
        business_date=at.date(), tier_changes=[TierChange(
            from_="gold", to="mass", change="downgrade", reason="test", effective_at=at, watch=False,
            basis="0.00")])
    await strata.publish(downgrade)
    await strata.settle()
    assert (await fees_of(strata, c.customer_id))["adjustments"] == []
    d = Feed(new_customer())   # an upgrade in order: the withdrawal before it was rightly mass
    await strata.publish(d.salary("10000.00", DAY(8)), d.interbank_atm(DAY(9)), d.salary("60000.00", DAY(10)))
    await strata.settle()
    assert (await fees_of(strata, d.customer_id))["adjustments"] == []
