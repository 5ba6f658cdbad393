"""The rule engine with plain values: every row of the fee and benefit tables of docs/RULES.md, with the
edges (free uses, percentage bounds, contribution after the tier benefit, points offset)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest

from shared.banks import is_other_bank
from shared.contracts.types import KNOWN_TX_TYPES
from shared.settings import get_settings
from shared.settings.pricing import ContributionSettings, PricingSettings
from services.pricing import domain
from services.pricing.domain import (
    ChargedPosting,
    FeeSchedule,
    PricingContext,
    PricingEngine,
    Transaction,
    Usage,
    base_fee,
    business_day,
    contribution_score,
    month_key,
    reprice_after_upgrade,
    window_start,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def engine() -> PricingEngine:
    return PricingEngine(get_settings().pricing, KNOWN_TX_TYPES)


def interbank_atm(amount="300.00") -> Transaction:
    return Transaction("atm_withdrawal", D(amount), "atm", "OTHER")


def cross_region_atm(amount) -> Transaction:
    return Transaction("atm_withdrawal", D(amount), "atm", None, cross_region=True)


def counter_transfer(amount) -> Transaction:
    return Transaction("transfer_out", D(amount), "counter", "OTHER")


def periodic(tx_type) -> Transaction:
    return Transaction(tx_type, D("1.00"), "batch")


def price(engine, tx, tier="mass", **ctx):
    return engine.price(tx, PricingContext(tier, **ctx))


# --- the base schedule ---------------------------------------------------------------------


@pytest.mark.parametrize("tx, fee_id, base", [
    (interbank_atm(), "atm_interbank", "4.00"),
    (cross_region_atm("1000.00"), "atm_cross_region", "5.00"),
    (counter_transfer("3000.00"), "transfer_interbank_counter", "15.00"),
    (Transaction("transfer_out", D("3000.00"), "mobile", "OTHER"), "transfer_online", "0.00"),
    (Transaction("transfer_out", D("3000.00"), "online", None), "transfer_online", "0.00"),
    (periodic("sms_monthly"), "sms_monthly", "2.00"),
    (periodic("card_annual"), "card_annual", "10.00"),
    (periodic("small_account"), "small_account", "3.00"),
])
def test_mass_customer_pays_the_base_schedule(engine, tx, fee_id, base):
    priced = price(engine, tx)
    assert (priced.fee_id, priced.base, priced.net) == (fee_id, D(base), D(base))
    assert priced.rules[0] == f"fee.{fee_id}"


def test_periodic_fee_is_priced_from_the_schedule_not_the_posting_amount(engine):
    priced = price(engine, Transaction("card_annual", D("99.00"), "batch"))
    assert priced.net == D("10.00")


def test_own_atm_in_home_region_costs_nothing_and_says_why(engine):
    priced = price(engine, Transaction("atm_withdrawal", D("300.00"), "atm", None))
    assert (priced.fee_id, priced.net, priced.rules) == (None, D("0.00"), ["no_fee"])


def test_a_bank_code_listed_as_own_is_not_another_bank():
    pricing = get_settings().pricing.model_copy(update={"own_bank_codes": ["ICBC-NC"]})
    engine = PricingEngine(pricing, KNOWN_TX_TYPES)
    assert price(engine, Transaction("atm_withdrawal", D("1.00"), "atm", "ICBC-NC")).fee_id is None
    assert price(engine, Transaction("atm_withdrawal", D("1.00"), "atm", "CCB")).fee_id == "atm_interbank"


@pytest.mark.parametrize("counterparty, own, other", [
    (None, [], False),                  # no counterparty bank: this bank
    ("ICBC-NC", ["ICBC-NC"], False),    # one of the bank's own codes: this bank
    ("CCB", ["ICBC-NC"], True),
    ("CCB", [], True),
])
def test_another_bank_is_a_counterparty_that_is_not_one_of_the_banks_own_codes(counterparty, own, other):
    assert is_other_bank(counterparty, own) is other


def test_the_fee_schedule_asks_the_one_another_bank_rule(monkeypatch):
    asked = []
    monkeypatch.setattr(domain, "is_other_bank", lambda bank, own: asked.append((bank, own)) or True)
    schedule = FeeSchedule(get_settings().pricing.fees, ["ICBC-NC"])
    assert schedule.match(Transaction("atm_withdrawal", D("1.00"), "atm", "ICBC-NC")).id == "atm_interbank"
    assert asked == [("ICBC-NC", frozenset({"ICBC-NC"}))]


def test_unknown_tx_type_is_priced_at_zero_with_its_rule(engine):
    priced = price(engine, Transaction("crypto_swap", D("500.00"), "mobile"))
    assert (priced.fee_id, priced.base, priced.net, priced.rules) == (None, D("0.00"), D("0.00"),
                                                                      ["unknown_tx_type"])


@pytest.mark.parametrize("amount, expected, bound", [
    ("100.00", "2.00", "minimum"),       # 0.50 is below the minimum
    ("398.00", "2.00", "minimum"),       # 1.99 is below the minimum
    ("399.99", "2.00", None),            # 1.99995 rounds half up to 2.00 itself
    ("400.00", "2.00", None),            # exactly the minimum
    ("1234.50", "6.17", None),           # 6.1725 rounds half up to 6.17
    ("1235.00", "6.18", None),           # 6.175 rounds half up to 6.18
    ("10000.00", "50.00", None),         # exactly the maximum
    ("10001.00", "50.00", "maximum"),
    ("2000000.00", "50.00", "maximum"),
])
def test_percentage_fee_rounds_half_up_and_stays_between_min_and_max(engine, amount, expected, bound):
    fee = engine.schedule.by_id["atm_cross_region"]
    assert base_fee(fee, D(amount)) == (D(expected), bound)
    priced = price(engine, cross_region_atm(amount))
    assert priced.net == D(expected)
    assert (f"fee.atm_cross_region.{bound}" in priced.rules) == (bound is not None)


# --- tier benefits -------------------------------------------------------------------------


def gold_month(uses: int) -> dict:
    """A gold customer's interbank withdrawals so far this month, all as gold."""
    return {"atm_interbank": Usage(uses, min(uses, 3))}


@pytest.mark.parametrize("uses_before, net, rules", [
    (0, "0.00", ["fee.atm_interbank", "gold.atm_interbank.free3"]),
    (2, "0.00", ["fee.atm_interbank", "gold.atm_interbank.free3"]),   # the 3rd is free
    (3, "4.00", ["fee.atm_interbank"]),                               # the 4th is charged
    (7, "4.00", ["fee.atm_interbank"]),
])
def test_gold_third_interbank_withdrawal_is_free_and_the_fourth_is_charged(engine, uses_before, net, rules):
    priced = price(engine, interbank_atm(), "gold", usage=gold_month(uses_before))
    assert (priced.net, priced.rules, priced.use_number) == (D(net), rules, uses_before + 1)
    assert priced.waived == D("4.00") - D(net)
    assert priced.free_use == (net == "0.00")


def test_uses_paid_before_an_upgrade_do_not_eat_the_new_tiers_free_uses(engine):
    paid_as_mass = {"atm_interbank": Usage(uses=2, free=0)}
    priced = price(engine, interbank_atm(), "gold", usage=paid_as_mass)
    assert (priced.net, priced.use_number, priced.free_use) == (D("0.00"), 3, True)


def test_free_uses_had_as_gold_count_towards_platinums_ten(engine):
    assert price(engine, interbank_atm(), "platinum", usage={"atm_interbank": Usage(12, 9)}).net == D("0.00")
    assert price(engine, interbank_atm(), "platinum", usage={"atm_interbank": Usage(12, 10)}).net == D("4.00")


def test_free_uses_of_one_fee_do_not_count_another(engine):
    priced = price(engine, interbank_atm(), "gold", usage={"sms_monthly": Usage(5, 5)})
    assert priced.net == D("0.00")


def test_gold_sms_half_price_and_no_card_fee_benefit(engine):
    sms = price(engine, periodic("sms_monthly"), "gold")
    assert (sms.base, sms.discount, sms.net, sms.rules) == (
        D("2.00"), D("1.00"), D("1.00"), ["fee.sms_monthly", "gold.sms_monthly.half"])
    assert price(engine, periodic("card_annual"), "gold").net == D("10.00")


@pytest.mark.parametrize("uses_before, net", [(9, "0.00"), (10, "4.00")])
def test_platinum_ten_free_interbank_withdrawals(engine, uses_before, net):
    usage = {"atm_interbank": Usage(uses_before, uses_before)}
    assert price(engine, interbank_atm(), "platinum", usage=usage).net == D(net)


@pytest.mark.parametrize("tx_type", ["sms_monthly", "card_annual", "small_account"])
def test_platinum_periodic_fees_are_waived(engine, tx_type):
    priced = price(engine, periodic(tx_type), "platinum")
    assert (priced.waived, priced.net, priced.rules[-1]) == (priced.base, D("0.00"), f"platinum.{tx_type}.waive")


def test_platinum_counter_transfer_half_price_after_the_minimum(engine):
    priced = price(engine, counter_transfer("100.00"), "platinum")
    assert (priced.base, priced.discount, priced.net) == (D("2.00"), D("1.00"), D("1.00"))
    assert priced.rules == ["fee.transfer_interbank_counter", "fee.transfer_interbank_counter.minimum",
                            "platinum.transfer_interbank_counter.half"]


def test_zero_fee_still_names_the_rule_that_made_it_zero(engine):
    priced = price(engine, Transaction("transfer_out", D("5000.00"), "mobile", "OTHER"), "platinum")
    assert (priced.net, priced.rules) == (D("0.00"), ["fee.transfer_online"])


@pytest.mark.parametrize("tx", [
    interbank_atm(), cross_region_atm("20000.00"), counter_transfer("3000.00"),
    periodic("sms_monthly"), periodic("card_annual"), periodic("small_account"),
])
@pytest.mark.parametrize("tier, rule", [("diamond", "diamond.domestic.waive"), ("private", "private.all.waive")])
def test_diamond_and_private_customers_pay_nothing(engine, tx, tier, rule):
    priced = price(engine, tx, tier, usage={"atm_interbank": Usage(50, 0)})
    assert priced.net == D("0.00") and priced.waived == priced.base > 0
    assert priced.rules[-1] == rule


def test_diamond_waiver_covers_domestic_fees_only():
    pricing = get_settings().pricing.model_dump()
    pricing["fees"].append({"id": "atm_overseas", "name": "Overseas ATM", "kind": "fixed",
                            "amount": "15.00", "domestic": False,
                            "match": {"tx_types": ["atm_withdrawal"], "channels": ["atm_overseas"]}})
    engine = PricingEngine(PricingSettings.model_validate(pricing), KNOWN_TX_TYPES)
    overseas = Transaction("atm_withdrawal", D("100.00"), "atm_overseas", "OTHER")
    assert price(engine, overseas, "diamond").net == D("15.00")
    assert price(engine, overseas, "private").net == D("0.00")


def test_partial_waiver_goes_to_waived_and_discount_to_discount():
    pricing = get_settings().pricing.model_dump()
    pricing["benefits"]["gold"] = [{"id": "gold.card.quarter", "fee": "card_annual", "kind": "waive", "percent": "25"},
                                   {"id": "gold.card.10off", "fee": "card_annual", "kind": "discount", "percent": "10"}]
    engine = PricingEngine(PricingSettings.model_validate(pricing), KNOWN_TX_TYPES)
    priced = price(engine, periodic("card_annual"), "gold")
    assert (priced.waived, priced.discount, priced.net) == (D("2.50"), D("0.75"), D("6.75"))


# --- contribution ---------------------------------------------------------------------------


def test_contribution_score_is_one_percent_of_average_aum_plus_fees_paid():
    rules = ContributionSettings()
    assert contribution_score(D("1950000.00"), D("500.00"), rules) == D("20000.00")


@pytest.mark.parametrize("score, net", [("19999.99", "1.00"), ("20000.00", "0.80"), ("500000.00", "0.80")])
def test_contribution_discount_comes_after_the_tier_benefit(engine, score, net):
    priced = price(engine, periodic("sms_monthly"), "gold", contribution_score=D(score))
    assert priced.net == D(net)
    if priced.net == D("0.80"):
        assert priced.rules == ["fee.sms_monthly", "gold.sms_monthly.half", "contribution.discount"]
        assert priced.discount == D("1.20")


def test_contribution_discount_has_nothing_to_take_from_a_waived_fee(engine):
    priced = price(engine, interbank_atm(), "gold", contribution_score=D("90000.00"))
    assert priced.rules == ["fee.atm_interbank", "gold.atm_interbank.free3"]


# --- points offset --------------------------------------------------------------------------


def test_points_offset_leaves_a_fee_partly_paid(engine):
    priced = price(engine, interbank_atm(), "mass", spendable_points=150)
    assert (priced.points_used, priced.points_value, priced.net) == (150, D("1.50"), D("2.50"))
    assert priced.rules == ["fee.atm_interbank", "points.offset"]


def test_points_pay_a_whole_fee_and_no_more(engine):
    priced = price(engine, interbank_atm(), "mass", spendable_points=10_000)
    assert (priced.points_used, priced.net) == (400, D("0.00"))


def test_points_pay_what_is_left_after_benefit_and_contribution(engine):
    priced = price(engine, periodic("sms_monthly"), "gold", contribution_score=D("20000.00"),
                   spendable_points=1000, points_rule="points.redeem")
    assert (priced.points_used, priced.net) == (80, D("0.00"))
    assert priced.rules == ["fee.sms_monthly", "gold.sms_monthly.half", "contribution.discount", "points.redeem"]


def test_no_points_are_spent_on_a_free_use(engine):
    priced = price(engine, interbank_atm(), "gold", spendable_points=500)
    assert priced.points_used == 0


# --- months in the bank's zone ---------------------------------------------------------------


@pytest.mark.parametrize("instant, month", [
    ("2026-11-30T23:59:59+08:00", "2026-11"),
    ("2026-11-30T16:00:00+00:00", "2026-12"),   # already 1 December in Asia/Shanghai
    ("2026-11-30T15:59:59+00:00", "2026-11"),
])
def test_usage_month_is_the_calendar_month_in_asia_shanghai(instant, month):
    assert month_key(business_day(datetime.fromisoformat(instant), SHANGHAI)) == month


def test_contribution_window_is_the_month_and_the_eleven_before():
    assert window_start("2026-11", 12) == "2025-12"
    assert window_start("2026-01", 12) == "2025-02"
    assert window_start("2026-03", 1) == "2026-03"


def test_a_late_upgrade_re_prices_the_months_later_postings_in_order_and_recounts_the_month(engine):
    at = "2026-11-10T{}:00+08:00".format

    def charged(pid, when, tier, net, free_use=False) -> ChargedPosting:
        return ChargedPosting(pid, datetime.fromisoformat(at(when)), interbank_atm(), "atm_interbank", tier,
                              D(net), D(net), 0, "points.offset", free_use, D("0.00"))

    month = [charged("P3", "11:00", "platinum", "0.00", free_use=True),   # a later upgrade, in order
             charged("P1", "08:30", "mass", "4.00"),                       # before the late upgrade
             charged("P2", "10:00", "mass", "4.00")]
    ranks = {"mass": 0, "gold": 1, "platinum": 2}
    corrections, counted = reprice_after_upgrade(engine, month, "gold", datetime.fromisoformat(at("09:00")),
                                                 ranks.__getitem__)
    assert [(c.before.posting_id, c.after.net, c.after.rules[-1]) for c in corrections] == [
        ("P2", D("0.00"), "gold.atm_interbank.free3")]
    u = counted["atm_interbank"]
    assert (u.uses, u.free_uses, u.charged, u.paid) == (3, 2, D("4.00"), D("4.00"))
