"""Money from outside is bounded (``limits.max_amount``, 10^12 CNY by default) and written in
ASCII digits: over HTTP an amount beyond it, or spelt otherwise, is a 422 naming the field. And
an overflow deeper down is a fault of the data, never reported as an outage (503)."""

from __future__ import annotations

import pytest

from shared.contracts.events import AumV1, CustomerV1
from tests.conftest import private_strata

TOO_MUCH = "1000000000000.01"


@pytest.mark.parametrize("amount", [TOO_MUCH, "１２３.00", "١٢٣.٠٠", " 123.00"])
async def test_a_quote_for_an_amount_beyond_the_limit_or_not_in_ascii_digits_is_refused(strata, amount):
    response = await strata.post("/v1/pricing/quote", {
        "customer_id": "ANYONE", "tx_type": "atm_withdrawal", "amount": amount, "channel": "atm"})
    assert response.status_code == 422, response.text
    assert "amount" in response.json()["detail"]


async def test_a_proposed_fee_beyond_the_limit_is_refused(strata):
    schedule = (await strata.get("/v1/pricing/schedule")).json()
    fee = {**schedule["fees"][0], "amount": TOO_MUCH}
    response = await strata.post("/v1/pricing/simulate", {"from": "2026-11-01", "to": "2026-11-02", "fees": [fee]},
                                 role="analyst")
    assert response.status_code == 422 and "above the largest amount" in response.json()["detail"]


async def test_a_segment_filter_amount_beyond_the_limit_is_refused(strata):
    template = {"name": "too-rich", "filter": {"field": "aum", "op": "gte", "value": TOO_MUCH}}
    response = await strata.post("/v1/segments", template, role="analyst")
    assert response.status_code == 422 and "above the largest amount" in response.json()["detail"]


async def test_an_overflow_while_answering_is_a_fault_not_an_outage():
    """Figures the database cannot sum (SQLite's 64-bit SUM): a 500 that is logged, never a 503
    telling the client to retry what will never work."""
    async with private_strata(["profile"]) as strata:
        branch = "BR-OVERFLOW"
        richest = "999999999999999.00"  # the largest AUM the contract can carry, 10^17 cents
        events = []
        for n in range(100):
            cid = f"OVF{n:03d}"
            events += [CustomerV1(customer_id=cid, name="客户", home_branch_id=branch,
                                  updated_at="2026-11-01T09:00:00+08:00"),
                       AumV1(customer_id=cid, aum=richest, mtd_average_daily_aum=richest,
                             by_product_type={"fund": richest}, business_date="2026-11-20",
                             as_of="2026-11-20T10:00:00+08:00")]
        await strata.publish(*events)
        await strata.settle()
        import httpx

        # as a server answers: the error that ASGI hands back after the 500 is not raised here
        transport = httpx.ASGITransport(app=strata.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://strata.test") as client:
            response = await client.get(f"/v1/branches/{branch}/report", params={"date": "2026-11-20"},
                                        headers=strata.token("admin"))
        assert response.status_code == 500, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "Retry-After" not in response.headers
