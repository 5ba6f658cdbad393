"""``GET /v1/signals/summary``: open and acknowledged signals by type, within the caller's scope."""

from __future__ import annotations

import pytest

from tests.conftest import private_strata
from tests.unit.alerts.alerts_feed import as_read, assignment, at, customer, new_customer, tier_change


@pytest.fixture(scope="module")
async def strata():
    async with private_strata(["alerts"]) as harness:
        yield harness


async def feed(strata, *events) -> None:
    for event in events:
        await strata.publish(as_read(event))
        await strata.settle()


@pytest.fixture(scope="module")
async def book(strata):
    """RM-S1 (branch BR-S1) has two upgrades, one acknowledged; RM-S2 (branch BR-S2) one downgrade."""
    one, two, three = new_customer(), new_customer(), new_customer()
    await feed(strata, customer(one, branch="BR-S1"), customer(two, branch="BR-S1"),
               customer(three, branch="BR-S2"),
               assignment(one, "RM-S1", at("2026-11-01")), assignment(two, "RM-S1", at("2026-11-01")),
               assignment(three, "RM-S2", at("2026-11-01")),
               tier_change(one, "upgrade", "mass", "gold", at("2026-11-03")),
               tier_change(two, "upgrade", "mass", "gold", at("2026-11-03")),
               tier_change(three, "downgrade", "platinum", "gold", at("2026-11-03")))
    listed = await strata.get("/v1/signals", params={"customer_id": one})
    [first] = listed.json()["items"]
    assert (await strata.post(f"/v1/signals/{first['id']}/ack", role="rm", rm_id="RM-S1")).status_code == 200
    return {"one": one, "two": two, "three": three}


async def test_an_rm_counts_only_their_own_signals_by_type_and_status(strata, book):
    body = (await strata.get("/v1/signals/summary", role="rm", rm_id="RM-S1")).json()
    assert (body["open"], body["acknowledged"]) == (1, 1)
    assert body["by_type"]["tier_upgraded"] == {"open": 1, "acknowledged": 1}
    assert body["by_type"]["tier_downgraded"] == {"open": 0, "acknowledged": 0}


async def test_a_branch_manager_counts_the_branch_and_may_not_ask_for_another(strata, book):
    body = (await strata.get("/v1/signals/summary", role="branch_manager", branch_id="BR-S2")).json()
    assert (body["open"], body["acknowledged"]) == (1, 0)
    assert body["by_type"]["tier_downgraded"]["open"] == 1
    other = await strata.get("/v1/signals/summary", role="branch_manager", branch_id="BR-S2",
                             params={"branch_id": "BR-S1"})
    assert other.status_code == 403


async def test_head_office_narrows_the_counts_by_rm(strata, book):
    body = (await strata.get("/v1/signals/summary", role="analyst", params={"rm_id": "RM-S2"})).json()
    assert (body["open"], body["acknowledged"]) == (1, 0)
