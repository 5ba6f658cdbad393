"""One business clock per process: ``GET /v1/clock`` tells it, and every default date of the
API (a branch report's date, a quote's moment, a customer's age, a segment's "today", the
eligible products' date, a follow-up's contact time, the daily scan's date) is read from it.

The simulated clock here stands days before the machine's date, so a default taken from the
wall clock instead shows in every answer."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from shared.clock import BusinessClock, SimulatedClock
from shared.contracts.events import AccountV1, CustomerV1
from tests.conftest import private_strata
from tests.unit.pricing.pricing_feed import Feed

ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 28, 10, 15, 2, tzinfo=ZONE)
CID = "CLK001"


@pytest.fixture(scope="module")
async def simulated():
    async with private_strata() as harness:
        harness.runtime.clock = SimulatedClock(ZONE, NOW)
        feed = Feed(CID, branch_id="BR-CLK")
        await harness.publish(
            CustomerV1(customer_id=CID, name="王芳", birth_date="1988-11-29", home_branch_id="BR-CLK",
                       risk_level="C3", updated_at="2026-11-01T09:00:00+08:00"),
            AccountV1(account_id=f"{CID}-TD", customer_id=CID, branch_id="BR-CLK",
                      product_type="time_deposit", product_code="TD-1Y", status="open",
                      opened_on="2025-11-29", maturity_date="2026-11-29"),
            feed.salary("80000.00", at="2026-11-20T09:00:00+08:00"),
        )
        await harness.settle()
        yield harness


def test_the_wall_clock_reads_now_in_the_bank_zone():
    clock = BusinessClock(ZONE)
    now = clock.now()
    assert now.utcoffset() == timedelta(hours=8)
    assert abs((now - datetime.now(timezone.utc)).total_seconds()) < 3600  # the same instant, not a fixed one
    assert clock.today() == now.date() and clock.simulated is False


def test_a_simulated_clock_only_moves_forward():
    clock = SimulatedClock(ZONE, date(2026, 11, 28))
    assert clock.now() == datetime(2026, 11, 28, tzinfo=ZONE)
    clock.advance(datetime(2026, 11, 28, 2, 0, tzinfo=timezone.utc))
    assert clock.now().isoformat() == "2026-11-28T10:00:00+08:00"
    clock.advance(date(2026, 11, 27))
    assert clock.today() == date(2026, 11, 28)


async def test_clock_endpoint_tells_the_wall_clock_by_default():
    async with private_strata(["tiering"]) as harness:
        body = (await harness.get("/v1/clock", role="rm", rm_id="RM-X")).json()
        assert body["zone"] == "Asia/Shanghai" and body["simulated"] is False
        assert body["now"].endswith("+08:00")
        assert body["today"] == datetime.now(ZONE).date().isoformat() or \
            body["today"] == (datetime.now(ZONE) - timedelta(seconds=5)).date().isoformat()
        assert (await harness.client.get("/v1/clock")).status_code == 401


async def test_clock_endpoint_tells_the_simulated_business_time(simulated):
    body = (await simulated.get("/v1/clock", role="analyst")).json()
    assert body == {"today": "2026-11-28", "now": "2026-11-28T10:15:02+08:00", "zone": "Asia/Shanghai",
                    "simulated": True}


async def test_branch_report_defaults_to_the_business_date(simulated):
    body = (await simulated.get("/v1/branches/BR-CLK/report")).json()
    assert body["business_date"] == "2026-11-28" and body["month"] == "2026-11"


async def test_customer_age_is_counted_on_the_business_date(simulated):
    body = (await simulated.get(f"/v1/customers/{CID}")).json()
    assert body["profile"]["age"] == 37  # 38 on 2026-11-29


async def test_segment_dates_are_counted_from_the_business_date(simulated):
    response = await simulated.get("/v1/segments/products-maturing-7d/members")
    assert response.status_code == 200, response.text
    assert CID in [m["customer_id"] for m in response.json()["items"]]


async def test_quote_is_priced_at_the_business_time(simulated):
    response = await simulated.post("/v1/pricing/quote", {
        "customer_id": CID, "tx_type": "atm_withdrawal", "amount": "100.00", "channel": "atm",
        "counterparty_bank": "OTHER"})
    assert response.status_code == 200, response.text
    assert response.json()["at"] == "2026-11-28T10:15:02+08:00"


async def test_eligible_products_default_to_the_business_date(simulated):
    body = (await simulated.get(f"/v1/customers/{CID}/eligible-products")).json()
    assert body["date"] == "2026-11-28"


async def test_follow_up_is_dated_on_the_business_clock(simulated):
    ok = await simulated.post(f"/v1/customers/{CID}/follow-ups",
                              {"channel": "phone", "outcome": "interested", "next_date": "2026-11-28"})
    assert ok.status_code == 201, ok.text
    assert ok.json()["contacted_at"] == "2026-11-28T10:15:02+08:00"
    early = await simulated.post(f"/v1/customers/{CID}/follow-ups",
                                 {"channel": "phone", "outcome": "interested", "next_date": "2026-11-27"})
    assert early.status_code == 422 and "before the contact" in early.json()["detail"]


async def test_daily_scan_defaults_to_the_business_date(simulated):
    response = await simulated.post("/v1/admin/daily-scan", {})
    assert response.status_code == 200, response.text
    assert response.json()["date"] == "2026-11-28"
