"""GET /v1/customers/{id}/fees/{posting_id}/explain: every rule that could change a posting's
price, whether it applied and why, in zh-CN and en."""

from __future__ import annotations

import pytest

from tests.conftest import private_strata
from tests.unit.pricing.pricing_feed import Feed, customer

GOLD, MASS, POINTS = Feed("FE-GOLD"), Feed("FE-MASS"), Feed("FE-POINTS")
POSTINGS: dict[str, str] = {}


@pytest.fixture(scope="module")
async def strata():
    async with private_strata(["tiering", "pricing"], pricing={"contribution": {"threshold": "3.00"}}) as harness:
        await harness.publish(customer(GOLD.customer_id), customer(MASS.customer_id),
                              customer(POINTS.customer_id, auto_points_offset=True))
        october = [GOLD.salary("60000.00", "2026-10-01T08:00:00+08:00")]
        for n in range(4):
            atm = GOLD.interbank_atm(f"2026-10-0{n + 2}T10:00:00+08:00")
            october.append(atm)
            POSTINGS[f"gold-atm-{n + 1}"] = atm.posting_id
        november = [GOLD.sms("2026-11-02T09:00:00+08:00"), MASS.salary("1000.00", "2026-11-02T08:00:00+08:00"),
                    MASS.interbank_atm("2026-11-02T10:00:00+08:00"), MASS.card_spend("50.00", "2026-11-02T11:00:00+08:00"),
                    POINTS.salary("9000.00", "2026-11-02T08:00:00+08:00"),
                    POINTS.card_spend("3000.00", "2026-11-02T09:00:00+08:00"),
                    POINTS.interbank_atm("2026-11-02T10:00:00+08:00")]
        POSTINGS.update({"gold-sms": november[0].posting_id, "mass-atm": november[2].posting_id,
                         "mass-spend": november[3].posting_id, "points-atm": november[6].posting_id,
                         "points-spend": november[5].posting_id})
        await harness.publish(*october, *november)
        await harness.settle()
        yield harness


async def why(strata, owner: Feed, posting: str, lang: str = "en") -> dict:
    response = await strata.get(f"/v1/customers/{owner.customer_id}/fees/{POSTINGS[posting]}/explain",
                                params={"lang": lang})
    assert response.status_code == 200, response.text
    return response.json()


def rule(body: dict, rule_id: str) -> dict:
    return next(r for r in body["rules"] if r["rule"] == rule_id)


async def test_a_free_use_says_which_of_the_months_free_uses_it_was(strata):
    body = await why(strata, GOLD, "gold-atm-2")
    free = rule(body, "gold.atm_interbank.free3")
    assert (free["applied"], free["amount"]) == (True, "4.00")
    assert free["why"] == "Free use 2 of 3 this month for gold: 1 given before this posting."
    assert body["figures"]["free_uses_before"] == 1 and body["net"] == "0.00"
    assert rule(body, "tier")["why"] == "Priced as gold: the customer's tier right after the posting."
    assert rule(body, "points.offset")["why"] == "Nothing was left to pay with points."


async def test_the_fourth_withdrawal_says_the_free_uses_were_used_up(strata):
    body = await why(strata, GOLD, "gold-atm-4")
    free = rule(body, "gold.atm_interbank.free3")
    assert (free["applied"], free["why"]) == (False, "All 3 free uses of this month for gold were given before this posting.")
    assert body["net"] == "4.00" and body["figures"]["free_uses_before"] == 3
    assert rule(body, "fee.atm_interbank")["why"].startswith("The schedule's fee for atm_withdrawal via atm:")
    zh = await why(strata, GOLD, "gold-atm-4", "zh-CN")
    assert rule(zh, "gold.atm_interbank.free3")["why"] == "本月金卡客户的 3 次免费已在此前用完。"
    assert zh["summary"] == "费用 4.00 − 减免 0.00 − 折扣 0.00 − 积分抵扣 0.00 = 实收 4.00，按金卡客户定价。"


async def test_the_contribution_discount_says_the_score_against_its_threshold(strata):
    body = await why(strata, GOLD, "gold-sms")
    assert rule(body, "gold.sms_monthly.half")["why"] == "gold takes 50% off what was left: 1.00."
    contribution = rule(body, "contribution.discount")
    assert contribution["applied"] is True and contribution["amount"] == "0.20"
    assert contribution["why"].startswith("Contribution score 4.00 reaches the threshold 3.00: 20% off what was left, 0.20")
    assert "plus 1× the fees paid 4.00" in contribution["why"]
    assert body["net"] == "0.80" and body["figures"]["contribution_threshold"] == "3.00"


async def test_a_mass_customer_hears_why_no_discount_and_no_points_applied(strata):
    body = await why(strata, MASS, "mass-atm")
    contribution = rule(body, "contribution.discount")
    assert contribution["applied"] is False and contribution["why"].startswith(
        "Contribution score 0.00 is below the threshold 3.00")
    points = rule(body, "points.offset")
    assert points["applied"] is False and points["why"].startswith("No points paid it: points pay a fee only with "
                                                                   "automatic offset or a redemption request")
    zh = await why(strata, MASS, "mass-atm", "zh-CN")
    assert rule(zh, "contribution.discount")["why"].startswith("贡献度 0.00 低于门槛 3.00")
    assert rule(zh, "tier")["why"] == "按大众客户定价：入账后客户所在的层级。"


async def test_points_offset_says_how_many_points_paid_and_how(strata):
    body = await why(strata, POINTS, "points-atm")
    points = rule(body, "points.offset")
    assert points["applied"] is True
    assert points["why"] == "150 points paid 1.50 (automatic offset, 100 points per 1.00)."
    earned = await why(strata, POINTS, "points-spend")
    assert rule(earned, "points.card_spend")["why"] == "150 points earned on 3,000.00."


async def test_a_posting_without_a_fee_says_no_fee_applies(strata):
    body = await why(strata, MASS, "mass-spend")
    assert body["fee_id"] is None
    assert rule(body, "no_fee")["why"] == "No fee of the schedule applies to card_spend via pos."


async def test_a_posting_of_another_customer_is_not_found(strata):
    response = await strata.get(f"/v1/customers/{MASS.customer_id}/fees/{POSTINGS['gold-sms']}/explain")
    assert response.status_code == 404 and response.headers["content-type"] == "application/problem+json"
