"""Points (earn, offset, expiry, oldest first) and products by tier, with plain values."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest

from shared.settings import get_settings
from shared.settings.pricing import PricingSettings, Product
from strata.simulator.feed import Feed
from services.pricing.domain import (
    Transaction,
    expires_at,
    is_expired,
    last_valid_year,
    points_earned,
    points_offset,
    product_eligibility,
    take_oldest_first,
)

EARN = get_settings().pricing.points.earn
RANKS = {t.id: i for i, t in enumerate(get_settings().tiers)}


def tx(tx_type, amount, product_type="demand_deposit", direction="debit") -> Transaction:
    return Transaction(tx_type, D(amount), "mobile", product_type=product_type, direction=direction)


# --- earning ---------------------------------------------------------------------------------


@pytest.mark.parametrize("posting, points, rule", [
    (tx("wealth_purchase", "10000.00"), 100, "points.wealth"),
    (tx("fund_purchase", "250.00"), 2, "points.wealth"),          # whole 100s only
    (tx("fund_purchase", "99.99"), 0, None),
    (tx("deposit_placement", "50000.00", "time_deposit", "credit"), 50, "points.time_deposit"),
    (tx("deposit_placement", "49999.99", "time_deposit", "credit"), 0, None),        # below 50,000
    (tx("deposit_placement", "123456.00", "time_deposit", "credit"), 123, "points.time_deposit"),
    (tx("cash_deposit", "80000.00", "time_deposit", "credit"), 80, "points.time_deposit"),  # placed in cash
    (tx("transfer_in", "60000.00", "time_deposit", "credit"), 60, "points.time_deposit"),   # the product leg
    (tx("deposit_placement", "60000.00"), 0, None),                  # the demand deposit's leg: not again
    (tx("transfer_out", "60000.00", "time_deposit", "debit"), 0, None),
    (tx("cash_deposit", "80000.00", "demand_deposit", "credit"), 0, None),
    (tx("fund_purchase", "10000.00", "fund", "credit"), 0, None),   # the product's leg: not again
    (tx("card_spend", "1000.00"), 50, "points.card_spend"),
    (tx("pos_purchase", "39.99"), 1, "points.card_spend"),
    (tx("salary", "10000.00", direction="credit"), 0, None),
])
def test_points_earned_per_domain_rules(posting, points, rule):
    assert points_earned(posting, EARN) == (points, rule)


def test_a_purchase_sent_as_two_legs_earns_once():
    debit_leg = tx("fund_purchase", "10000.00", "demand_deposit", "debit")
    credit_leg = tx("fund_purchase", "10000.00", "fund", "credit")
    assert points_earned(debit_leg, EARN)[0] + points_earned(credit_leg, EARN)[0] == 100


def test_a_time_deposit_placed_from_the_current_account_earns_once_on_its_own_leg():
    demand_leg = tx("deposit_placement", "60000.00", "demand_deposit", "debit")
    product_leg = tx("transfer_in", "60000.00", "time_deposit", "credit")
    assert points_earned(demand_leg, EARN) == (0, None)
    assert points_earned(product_leg, EARN) == (60, "points.time_deposit")


def test_a_time_deposit_placed_in_cash_earns_on_its_only_leg():
    assert points_earned(tx("cash_deposit", "60000.00", "time_deposit", "credit"), EARN) == (60, "points.time_deposit")
    assert points_earned(tx("deposit_placement", "60000.00", "time_deposit", "credit"), EARN) == (60, "points.time_deposit")


def test_the_simulated_banks_placements_earn_once_each():
    """The simulator sends a placement as two legs: the demand deposit's debit
    (deposit_placement) and the time deposit's credit (transfer_in, channel internal)."""
    feed = Feed(11, 400, date(2026, 1, 1), get_settings())
    list(feed.master_events())
    postings = [e.data for day in range(62) for e in feed.day_events(date(2026, 1, 1) + timedelta(days=day))
                if e.type == "bank.posting.v1"]
    placements = [p for p in postings if p.tx_type == "deposit_placement"]
    assert len(placements) >= 3, "the feed placed time deposits"
    earned = {}
    for p in postings:
        points, rule = points_earned(Transaction.of(p), EARN)
        if rule == "points.time_deposit":
            earned[(p.customer_id, p.posted_at)] = earned.get((p.customer_id, p.posted_at), 0) + points
    expected = {(p.customer_id, p.posted_at): int(p.amount // 1000) for p in placements if p.amount >= 50000}
    assert earned == expected


def test_credit_card_spending_is_not_debit_card_spending():
    assert points_earned(tx("card_spend", "1000.00", "credit_card"), EARN) == (0, None)


# --- offsetting fees -----------------------------------------------------------------------


@pytest.mark.parametrize("left, spendable, per_yuan, expected", [
    ("4.00", 150, 100, (150, D("1.50"))),
    ("4.00", 400, 100, (400, D("4.00"))),
    ("4.00", 999, 100, (400, D("4.00"))),
    ("0.00", 999, 100, (0, D("0.00"))),
    ("1.00", 0, 100, (0, D("0.00"))),
    ("1.00", 3, 50, (3, D("0.06"))),      # 50 points a yuan: 3 points pay 0.06
    ("1.00", 5, 200, (4, D("0.02"))),     # 5 points pay 0.025: 0.02, and only the 4 it takes
    ("0.01", 1, 50, (1, D("0.01"))),
    ("1.00", 1, 1000, (0, D("0.00"))),    # one point is less than a cent: not spent
])
def test_points_offset(left, spendable, per_yuan, expected):
    assert points_offset(D(left), spendable, per_yuan) == expected


# --- expiry ----------------------------------------------------------------------------------


def test_points_earned_in_a_year_are_valid_through_the_next_and_expire_at_its_end():
    assert last_valid_year(2026, 2) == 2027
    assert not is_expired(2026, date(2027, 12, 31), 2)
    assert is_expired(2026, date(2028, 1, 1), 2)
    assert expires_at(2026, 2, ZoneInfo("Asia/Shanghai")) == datetime.fromisoformat("2028-01-01T00:00:00+08:00")


def test_expiry_years_are_configuration():
    assert is_expired(2026, date(2027, 1, 1), 1)
    assert not is_expired(2026, date(2028, 12, 31), 3)


def test_spending_takes_the_oldest_points_first():
    assert take_oldest_first({2027: 300, 2026: 100, 2025: 0}, 150) == {2026: 100, 2027: 50}
    with pytest.raises(ValueError):
        take_oldest_first({2026: 10}, 11)


# --- products by tier --------------------------------------------------------------------------


def product(code) -> Product:
    return next(p for p in get_settings().pricing.products if p.code == code)


def check(code, tier, risk="C3", on=date(2027, 3, 1)):
    return product_eligibility(product(code), tier, risk, on, RANKS)


def test_tier_and_risk_level_both_decide_eligibility():
    assert check("WM-GOLD-180", "gold", "C3").eligible
    assert check("WM-GOLD-180", "mass", "C3").reasons == ("needs tier gold or above",)
    assert check("WM-GOLD-180", "platinum", "C2").reasons == ("needs risk preference C3 or above",)
    assert check("WM-GOLD-180", "gold", None).reasons == ("risk preference not assessed",)
    assert check("TD-3Y", "mass", None).eligible


def test_private_only_product_is_for_private_banking_customers():
    assert check("PB-FAMILY-TRUST", "private", "C4").eligible
    assert not check("PB-FAMILY-TRUST", "diamond", "C5").eligible


def test_priority_window_lets_only_priority_tiers_buy_until_it_ends():
    during, after, before = date(2026, 12, 31), date(2027, 1, 1), date(2026, 10, 31)
    diamond = check("WM-HOT-365", "diamond", "C3", during)
    assert diamond.eligible and diamond.priority
    gold = check("WM-HOT-365", "gold", "C3", during)
    assert gold.reasons == ("priority purchase for diamond, private until 2026-12-31",)
    assert check("WM-HOT-365", "gold", "C3", after).eligible
    assert not check("WM-HOT-365", "gold", "C3", after).priority
    assert check("WM-HOT-365", "diamond", "C3", before).reasons == ("on sale from 2026-11-01",)


def test_settings_refuse_a_benefit_on_an_unknown_fee():
    data = get_settings().pricing.model_dump()
    data["benefits"]["gold"].append({"id": "gold.x", "fee": "no_such_fee", "kind": "waive"})
    with pytest.raises(ValueError, match="unknown fee"):
        PricingSettings.model_validate(data)


def test_settings_refuse_a_discount_without_a_percent():
    data = get_settings().pricing.model_dump()
    data["benefits"]["gold"].append({"id": "gold.y", "fee": "card_annual", "kind": "discount"})
    with pytest.raises(ValueError, match="needs percent"):
        PricingSettings.model_validate(data)
