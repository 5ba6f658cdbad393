"""GET /v1/customers/{id}/tier/explain: the rule behind each customer's tier, in zh-CN and en,
with the figures it compared: the lowest tier, a first placement, an upgrade, a watch, a
downgrade, a household tiered together."""

from __future__ import annotations

import pytest

from shared.contracts.events import CustomerV1, PostingV1
from tests.conftest import private_strata

_seq: dict[str, int] = {}


def balance(customer: str, value: str, at: str) -> PostingV1:
    seq = _seq[customer] = _seq.get(customer, 0) + 1
    return PostingV1(posting_id=f"{customer}-{seq}", customer_id=customer, account_id=f"{customer}-A",
                     account_seq=seq, product_type="demand_deposit", direction="credit", amount="1.00",
                     balance_after=value, currency="CNY", tx_type="transfer_in", channel="mobile",
                     branch_id="BR-1", posted_at=at)


@pytest.fixture(scope="module")
async def strata():
    async with private_strata(["tiering"]) as harness:
        await harness.publish(
            balance("XP-MASS", "30000.00", "2026-08-03T10:00:00+08:00"),
            balance("XP-PLACED", "60000.00", "2026-08-03T10:00:00+08:00"),
            balance("XP-UP", "10000.00", "2026-08-03T10:00:00+08:00"),
            balance("XP-UP", "250000.00", "2026-08-10T11:30:00+08:00"),
            balance("XP-WATCH", "60000.00", "2026-08-03T10:00:00+08:00"),
            balance("XP-WATCH", "10000.00", "2026-10-02T10:00:00+08:00"),
            balance("XP-DOWN", "60000.00", "2026-08-02T10:00:00+08:00"),
            balance("XP-DOWN", "10000.00", "2026-08-03T10:00:00+08:00"),
        )
        await harness.settle()
        for month in ("2026-08", "2026-09", "2026-10"):
            assert (await harness.post("/v1/admin/month-end-close", {"month": month})).status_code == 200
        yield harness


async def why(strata, customer: str, lang: str = "en") -> dict:
    response = await strata.get(f"/v1/customers/{customer}/tier/explain", params={"lang": lang})
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_mass_customer_is_in_the_lowest_tier_below_the_next_floor(strata):
    body = await why(strata, "XP-MASS")
    assert (body["tier"], body["rule"], body["placement"]) == ("mass", "lowest_tier", None)
    assert body["next_tier"] == {"tier": "gold", "floor": "50000.00", "gap": "20000.00"}
    assert body["summary"] == "mass: AUM 30,000.00 is below the gold floor 50,000.00."
    zh = await why(strata, "XP-MASS", "zh-CN")
    assert zh["summary"] == "大众客户：资产 30,000.00 低于金卡客户门槛 50,000.00。"
    assert "距金卡客户门槛 50,000.00 还差 20,000.00。" in zh["sentences"]


async def test_a_first_placement_says_the_aum_and_floor_it_compared(strata):
    body = await why(strata, "XP-PLACED")
    assert body["rule"] == "initial_placement"
    p = body["placement"]
    assert (p["change"], p["from"], p["to"], p["compared"], p["basis"], p["floor"]) == \
        ("initial_placement", "mass", "gold", "aum", "60000.00", "50000.00")
    assert body["summary"].startswith("Placed in gold at the first placement (2026-08-03 10:00)")
    assert (await why(strata, "XP-PLACED", "zh-CN"))["summary"].startswith("首次定级（2026-08-03 10:00）")


async def test_an_upgrade_happened_the_moment_the_aum_reached_the_floor(strata):
    body = await why(strata, "XP-UP")
    assert (body["tier"], body["rule"]) == ("platinum", "upgrade")
    assert (body["placement"]["basis"], body["placement"]["floor"]) == ("250000.00", "200000.00")
    assert body["summary"] == ("Upgraded from mass to platinum at 2026-08-10 11:30, the moment AUM 250,000.00 "
                               "reached the platinum floor 200,000.00.")
    assert body["next_tier"]["tier"] == "diamond" and body["next_tier"]["gap"] == "750000.00"
    zh = await why(strata, "XP-UP", "zh-CN")
    assert "即时由大众客户升为白金客户（快升）" in zh["summary"]


async def test_a_customer_on_watch_learns_what_ends_it_and_when_the_tier_would_fall(strata):
    body = await why(strata, "XP-WATCH")
    assert (body["tier"], body["watch"], body["months_below"], body["rule"]) == ("gold", True, 1, "watch")
    assert body["placement"]["change"] == "initial_placement", "the placing rule stays said beside the watch"
    w = body["watch_detail"]
    assert (w["since_close_of"], w["floor"], w["months_below"], w["downgrade_after_months"], w["months_left"],
            w["downgrade_to"]) == ("2026-10", "50000.00", 1, 3, 2, "mass")
    assert float(w["month_average"]) < 50000
    sentence = body["sentences"][1]
    assert sentence.startswith("On watch since the close of 2026-10: the month's average daily AUM")
    assert "A month whose average daily AUM is at or above 50,000.00 ends the watch" in sentence
    assert "2 more month(s) below lower the tier to mass" in sentence
    zh = (await why(strata, "XP-WATCH", "zh-CN"))["sentences"][1]
    assert "任一月日均资产达到或超过 50,000.00 即解除观察" in zh and "将降为大众客户" in zh


async def test_a_downgrade_says_the_months_below_and_the_average_that_matched(strata):
    body = await why(strata, "XP-DOWN")
    assert (body["tier"], body["watch"], body["rule"]) == ("mass", False, "downgrade")
    p = body["placement"]
    assert (p["from"], p["to"], p["compared"], p["floor"], p["month"], p["months_below"]) == \
        ("gold", "mass", "month_average", "50000.00", "2026-10", 3)
    assert body["summary"].startswith("Lowered to mass at the close of 2026-10: 3 consecutive months below "
                                      "the gold floor 50,000.00")
    assert (await why(strata, "XP-DOWN", "zh-CN"))["summary"].startswith("2026-10 月末评估降为大众客户：连续 3 个月低于金卡客户门槛")


async def test_an_unknown_customer_is_404_and_an_unknown_language_422(strata):
    assert (await strata.get("/v1/customers/XP-NOBODY/tier/explain")).status_code == 404
    assert (await strata.get("/v1/customers/XP-MASS/tier/explain", params={"lang": "fr"})).status_code == 422


async def test_with_household_aggregation_the_members_counted_are_named():
    async with private_strata(["tiering"], tiering={"household_aggregation": True}) as strata:
        for cid, role in (("XP-HEAD", "head"), ("XP-SPOUSE", "spouse")):
            await strata.publish(CustomerV1(customer_id=cid, name="n", home_branch_id="BR-1", household_id="XP-H",
                                            household_role=role, updated_at="2026-11-01T09:00:00+08:00"))
        await strata.settle()
        await strata.publish(balance("XP-HEAD", "30000.00", "2026-11-02T10:00:00+08:00"),
                             balance("XP-SPOUSE", "25000.00", "2026-11-03T10:00:00+08:00"))
        await strata.settle()
        body = await why(strata, "XP-HEAD")
        zh = await why(strata, "XP-HEAD", "zh-CN")
    assert (body["tier"], body["basis"], body["aum"]) == ("gold", "55000.00", "30000.00")
    assert body["household"] == {"household_id": "XP-H", "aum": "55000.00", "aggregation": True, "members": [
        {"customer_id": "XP-HEAD", "aum": "30000.00"}, {"customer_id": "XP-SPOUSE", "aum": "25000.00"}]}
    assert body["placement"]["basis"] == "55000.00"
    assert ("Tiered on household XP-H's combined AUM 55,000.00 (household aggregation): XP-HEAD 30,000.00, "
            "XP-SPOUSE 25,000.00.") in body["sentences"]
    assert "按家庭 XP-H 的合并资产 55,000.00 定级（家庭合并）：XP-HEAD 30,000.00、XP-SPOUSE 25,000.00。" in zh["sentences"]
    assert body["next_tier"]["gap"] == "145000.00"
