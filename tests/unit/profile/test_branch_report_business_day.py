"""A branch report asked without a date is today's on the business clock, and its flows are
those of the postings and snapshots of that business date: the simulated bank's days are
replayed through tiering and profile as the live feed publishes them, and every branch's inflow
and outflow today and month to date are recomputed from the events themselves (each customer's
net AUM change of a day)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest

from shared.calendar import business_day
from shared.clock import SimulatedClock
from shared.contracts.events import BalanceV1, CustomerV1, PostingV1
from shared.contracts.types import AUM_PRODUCT_TYPES
from shared.settings import Settings
from strata.simulator.feed import Feed
from tests.conftest import private_strata

START = date(2026, 11, 1)
TODAY = date(2026, 11, 4)


def expected_flows(events, zone) -> dict[str, dict[str, Decimal]]:
    """Per home branch: inflow and outflow of TODAY and of the month to date, from the events.
    A customer's first placement (the balances of the first instant that moved their AUM, the
    go-live load) is what they held already, no flow."""
    home, balance, placed = {}, defaultdict(Decimal), {}
    net: dict[tuple[str, date], Decimal] = defaultdict(Decimal)
    for event in events:
        data = event.data
        if isinstance(data, CustomerV1):
            home[data.customer_id] = data.home_branch_id
            continue
        if not isinstance(data, (PostingV1, BalanceV1)) or data.product_type not in AUM_PRODUCT_TYPES:
            continue
        after = data.balance_after if isinstance(data, PostingV1) else data.balance
        at = data.posted_at if isinstance(data, PostingV1) else data.as_of
        moved = after - balance[data.account_id]
        balance[data.account_id] = after
        if moved and placed.setdefault(data.customer_id, at) != at:
            net[(data.customer_id, business_day(at, zone))] += moved
    figures: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for (customer, day), amount in net.items():
        branch = figures[home[customer]]
        if day == TODAY:
            branch["inflow_today"] += max(amount, Decimal(0))
            branch["outflow_today"] += max(-amount, Decimal(0))
        branch["inflow_mtd"] += max(amount, Decimal(0))
        branch["outflow_mtd"] += max(-amount, Decimal(0))
    return figures


@pytest.fixture(scope="module")
async def replayed():
    settings = Settings()
    feed = Feed(5, 150, START, settings)
    # as the live feed publishes: the master data, then day by day, the services catching up
    # before each morning (the scheduler's scan waits for them)
    published = [list(feed.master_events())]
    day = START
    while day <= TODAY:
        published.append(sorted(feed.day_events(day), key=lambda e: e.time))
        day += timedelta(days=1)
    async with private_strata(["tiering", "profile"]) as strata:
        strata.runtime.clock = SimulatedClock(settings.zone, datetime.combine(TODAY, time(18), settings.zone))
        for events in published:
            for start in range(0, len(events), 500):
                await strata.publish(*events[start:start + 500])
            await strata.settle(180)
        yield strata, expected_flows([e for events in published for e in events], settings.zone)


async def test_todays_flows_are_those_of_the_business_date_s_postings(replayed):
    strata, expected = replayed
    assert len(expected) > 1 and any(f["inflow_today"] for f in expected.values())
    for branch, figures in sorted(expected.items()):
        response = await strata.get(f"/v1/branches/{branch}/report", role="analyst")
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["business_date"] == TODAY.isoformat()
        got = {k: Decimal(report[k]) for k in ("inflow_today", "outflow_today", "inflow_mtd", "outflow_mtd")}
        assert got == {k: figures[k] for k in got}, branch


async def test_an_unknown_branch_is_404(replayed):
    strata, _ = replayed
    response = await strata.get("/v1/branches/BR-NOWHERE/report", role="analyst")
    assert response.status_code == 404 and response.headers["content-type"] == "application/problem+json"
    manager = await strata.get("/v1/branches/BR-NOWHERE/report", role="branch_manager", branch_id="BR-NOWHERE")
    assert manager.status_code == 404


async def test_every_figure_of_the_report_is_described_in_the_openapi(replayed):
    strata, _ = replayed
    schemas = (await strata.client.get("/openapi.json")).json()["components"]["schemas"]
    for name in ("BranchReport", "BranchView", "TierFigures", "ProductFigures", "Deposits", "TierChanges"):
        undocumented = [field for field, schema in schemas[name]["properties"].items()
                        if not schema.get("description")]
        assert not undocumented, f"{name}: {undocumented}"

