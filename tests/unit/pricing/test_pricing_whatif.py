"""The pricing what-if changes only what the proposal names: a fee it names (the fields given),
the tiers whose benefits it names, the contribution settings it gives; everything else is
priced as configured, and the answer says what it priced with. Unknown fee or tier ids are
refused by name. A quote is for a customer pricing knows."""

from __future__ import annotations

import pytest

from tests.conftest import private_strata
from tests.unit.pricing.pricing_feed import Feed, customer

NOV = "2026-11-{:02d}T10:00:00+08:00".format
WINDOW = {"from": "2026-11-01", "to": "2026-11-30"}


@pytest.fixture(scope="module")
async def strata():
    async with private_strata(["tiering", "pricing"]) as harness:
        gold, platinum = Feed("WIF-GOLD"), Feed("WIF-PLAT")
        await harness.publish(
            gold.salary("60000.00", NOV(1)), *[gold.interbank_atm(NOV(2 + i)) for i in range(5)], gold.sms(NOV(20)),
            platinum.salary("250000.00", NOV(1)), *[platinum.interbank_atm(NOV(2 + i)) for i in range(12)],
            platinum.sms(NOV(20)))
        await harness.settle()
        yield harness


def items(result: dict) -> dict[tuple[str, str], dict]:
    return {(i["tier"], i["fee_id"]): i for i in result["items"]}


async def simulate(strata, **proposal) -> dict:
    response = await strata.post("/v1/pricing/simulate", {**WINDOW, **proposal}, role="analyst")
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_fee_proposal_changes_that_fee_only(strata):
    result = await simulate(strata, fees=[{"id": "atm_interbank", "amount": "5.00"}])
    schedule = {f["id"]: f for f in result["schedule"]}
    assert schedule["atm_interbank"]["amount"] == "5.00"
    assert schedule["atm_interbank"]["match"]["counterparty"] == "other", "the fields not given stay"
    assert schedule["sms_monthly"]["amount"] == "2.00" and len(schedule) > 2
    priced = items(result)
    assert priced[("gold", "sms_monthly")]["new"] == priced[("gold", "sms_monthly")]["old"]
    assert priced[("gold", "atm_interbank")]["new"]["income"] == "10.00"   # 2 charged uses at 5.00
    assert result["changed"] == {"fees": ["atm_interbank"], "tiers": [], "contribution": False}


async def test_a_benefits_proposal_changes_the_tiers_it_names_only(strata):
    gold = [{"id": "gold.atm.free5", "fee": "atm_interbank", "kind": "free_uses", "count": 5}]
    result = await simulate(strata, benefits={"gold": gold})
    assert [b["id"] for b in result["benefits"]["gold"]] == ["gold.atm.free5"]
    schedule = (await strata.get("/v1/pricing/schedule")).json()
    assert result["benefits"]["platinum"] == schedule["benefits"]["platinum"]
    assert set(result["benefits"]) == {"mass", "gold", "platinum", "diamond", "private"}
    priced = items(result)
    for fee in ("atm_interbank", "sms_monthly"):
        assert priced[("platinum", fee)]["new"] == priced[("platinum", fee)]["old"], fee
    assert priced[("gold", "atm_interbank")]["new"]["income"] == "0.00"
    assert result["changed"]["tiers"] == ["gold"]


async def test_a_contribution_proposal_keeps_what_it_does_not_give(strata):
    result = await simulate(strata, contribution={"discount_percent": "30"})
    configured = (await strata.get("/v1/pricing/schedule")).json()["contribution"]
    assert result["contribution"] == {**configured, "discount_percent": "30"}
    assert result["changed"]["contribution"] is True


@pytest.mark.parametrize(("proposal", "names"), [
    ({"fees": [{"id": "atm_interbank", "amount": "1.00"}, {"id": "no_such_fee", "amount": "1.00"}]},
     ["no_such_fee"]),
    ({"benefits": {"gold": [], "titanium": [], "copper": []}}, ["copper", "titanium"]),
])
async def test_unknown_fee_or_tier_ids_are_refused_naming_them(strata, proposal, names):
    response = await strata.post("/v1/pricing/simulate", {**WINDOW, **proposal}, role="analyst")
    assert response.status_code == 422, response.text
    for name in names:
        assert name in response.json()["detail"]


async def test_a_quote_for_a_customer_pricing_does_not_know_is_404(strata):
    request = {"tx_type": "atm_withdrawal", "amount": "100.00", "channel": "atm", "counterparty_bank": "OTHER"}
    missing = await strata.post("/v1/pricing/quote", {**request, "customer_id": "WIF-NOBODY"})
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    await strata.publish(customer("WIF-NEW"))
    await strata.settle()
    assert (await strata.post("/v1/pricing/quote", {**request, "customer_id": "WIF-NEW"})).status_code == 200
