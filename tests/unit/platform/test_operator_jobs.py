"""The operator's jobs (month-end close, daily scan) refuse the wrong day on the business clock,
and a dry run answers what the job would do without changing anything: no row, no event, no
metric."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from services.alerts.models import AlertsDailyScan, AlertsSignal
from services.tiering.models import TieringCustomer, TieringMonthClose, TieringMonthlyAum, TieringTierHistory
from shared.clock import SimulatedClock
from shared.contracts.events import AccountV1, CustomerV1
from shared.runtime.models import OutboxMessage
from tests.conftest import private_strata
from tests.unit.pricing.pricing_feed import Feed

ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=ZONE)


@pytest.fixture(scope="module")
async def strata():
    async with private_strata() as harness:
        harness.runtime.clock = SimulatedClock(ZONE, NOW)
        published = []
        publish = harness.runtime.bus.publish

        async def recording(messages):
            published.extend(messages)
            await publish(messages)

        harness.runtime.bus.publish = recording
        harness.published = published
        # OJ1 and OJ2 reach gold in October and fall below its floor for the rest of it: both
        # are put on watch at October's close. OJ3 has a time deposit maturing in five days.
        events = []
        for cid in ("OJ1", "OJ2"):
            feed = Feed(cid, branch_id="BR-OJ")
            events += [CustomerV1(customer_id=cid, name="客户", home_branch_id="BR-OJ",
                                  updated_at="2026-09-01T09:00:00+08:00"),
                       feed.salary("60000.00", at="2026-10-01T09:00:00+08:00"),
                       feed.post("transfer_out", "40000.00", at="2026-10-02T09:00:00+08:00",
                                 channel="mobile")]
        events += [CustomerV1(customer_id="OJ3", name="客户", home_branch_id="BR-OJ",
                              updated_at="2026-09-01T09:00:00+08:00"),
                   AccountV1(account_id="OJ3-TD", customer_id="OJ3", branch_id="BR-OJ",
                             product_type="time_deposit", product_code="TD-1Y", status="open",
                             opened_on="2025-12-03", maturity_date="2026-12-03")]
        await harness.publish(*events)
        await harness.settle()
        yield harness


def metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def count(strata, model, *where) -> int:
    async with strata.runtime.db.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def test_closing_a_month_that_has_not_ended_is_refused_naming_its_last_day_and_today(strata):
    for month, last in (("2026-11", "2026-11-30"), ("2027-01", "2027-01-31")):
        for dry_run in (False, True):
            response = await strata.post("/v1/admin/month-end-close", {"month": month, "dry_run": dry_run})
            assert response.status_code == 409, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert last in response.json()["detail"] and "2026-11-28" in response.json()["detail"]
    assert await count(strata, TieringMonthClose) == 0


async def test_scanning_a_date_after_today_is_refused_naming_it_and_today(strata):
    for dry_run in (False, True):
        response = await strata.post("/v1/admin/daily-scan", {"date": "2026-11-29", "dry_run": dry_run})
        assert response.status_code == 409, response.text
        detail = response.json()["detail"]
        assert "2026-11-29" in detail and "2026-11-28" in detail
    assert await count(strata, AlertsDailyScan) == 0


async def test_a_dry_run_close_previews_the_watch_and_changes_nothing(strata):
    await strata.settle()
    sent = len(strata.published)
    before = {"history": await count(strata, TieringTierHistory),
              "changes": metric("strata_tier_changes_total", change="watch", tier="gold"),
              "closes": metric("strata_month_closes_total")}
    response = await strata.post("/v1/admin/month-end-close", {"month": "2026-10", "dry_run": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dry_run"] is True and body["watch"] == 2 and body["downgrades"] == 0
    assert [p["customer_id"] for p in body["preview"]] == ["OJ1", "OJ2"]
    first = body["preview"][0]
    assert first["change"] == "watch" and first["from"] == "gold" and first["to"] == "gold"
    assert "50000" in first["reason"]

    await strata.settle()
    assert len(strata.published) == sent, "a dry run published an event"
    assert await count(strata, OutboxMessage) == 0
    assert await count(strata, TieringMonthClose) == 0
    assert await count(strata, TieringMonthlyAum, TieringMonthlyAum.month == "2026-10") == 0
    assert await count(strata, TieringTierHistory) == before["history"]
    assert await count(strata, TieringCustomer, TieringCustomer.watch) == 0
    assert metric("strata_tier_changes_total", change="watch", tier="gold") == before["changes"]
    assert metric("strata_month_closes_total") == before["closes"]

    real = (await strata.post("/v1/admin/month-end-close", {"month": "2026-10"})).json()
    assert (real["customers"], real["watch"], real["downgrades"]) == \
        (body["customers"], body["watch"], body["downgrades"])
    assert real["dry_run"] is False and real["already_closed"] is False and real["preview"] == []
    assert metric("strata_tier_changes_total", change="watch", tier="gold") == before["changes"] + 2
    again = (await strata.post("/v1/admin/month-end-close", {"month": "2026-10", "dry_run": True})).json()
    assert again["already_closed"] is True and again["preview"] == []


async def test_a_dry_run_scan_previews_the_signals_and_changes_nothing(strata):
    await strata.settle()  # what an earlier real job emitted
    sent = len(strata.published)
    raised_before = metric("strata_signals_raised_total", signal_type="maturity_due")
    scans_before = metric("strata_daily_scans_total")
    response = await strata.post("/v1/admin/daily-scan", {"date": "2026-11-28", "dry_run": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dry_run"] is True and body["raised"]["maturity_due"] == 1
    assert body["preview"] == [{"customer_id": "OJ3", "change": "maturity_due", "from": None, "to": None,
                                "reason": body["preview"][0]["reason"],
                                "evidence": body["preview"][0]["evidence"]}]
    assert "2026-12-03" in body["preview"][0]["reason"]

    await strata.settle()
    assert len(strata.published) == sent, "a dry run published an event"
    assert await count(strata, AlertsSignal, AlertsSignal.customer_id == "OJ3") == 0
    assert await count(strata, AlertsDailyScan) == 0
    assert metric("strata_signals_raised_total", signal_type="maturity_due") == raised_before
    assert metric("strata_daily_scans_total") == scans_before

    real = (await strata.post("/v1/admin/daily-scan", {"date": "2026-11-28"})).json()
    assert real["raised"] == body["raised"] and real["runs"] == 1 and real["dry_run"] is False
    assert await count(strata, AlertsSignal, AlertsSignal.customer_id == "OJ3") == 1
    assert metric("strata_daily_scans_total") == scans_before + 1
    again = (await strata.post("/v1/admin/daily-scan", {"date": "2026-11-28", "dry_run": True})).json()
    assert again["raised"]["maturity_due"] == 0 and again["preview"] == [] and again["runs"] == 2
    assert await count(strata, AlertsDailyScan) == 1
