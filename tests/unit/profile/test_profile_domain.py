"""Profile's rules with plain values: masking per role, ages, flows, signals, ordered values."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from services.profile.domain import (
    Identity,
    age_on,
    born_after_for_age,
    born_on_or_before_for_age,
    combined_aum,
    flow_of_day,
    identity_for,
    is_newer,
    month_bounds,
    ranked,
    signal_status_after,
    start_of_day,
)

FULL = Identity("360102198807150023", "13800000000")
T = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
D = Decimal


# --- masking per role -----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["rm", "branch_manager", "analyst"])
def test_identity_is_masked_for_roles_not_configured_as_unmasked(role):
    shown = identity_for(role, ["admin"], FULL)
    assert shown == Identity("3601**********0023", "138****0000")


def test_admin_sees_identity_in_full_by_default():
    assert identity_for("admin", ["admin"], FULL) == FULL


def test_a_bank_may_unmask_another_role_and_mask_admin():
    assert identity_for("analyst", ["analyst"], FULL) == FULL
    assert identity_for("admin", ["analyst"], FULL).phone == "138****0000"


def test_missing_identity_stays_missing_when_masked():
    assert identity_for("rm", ["admin"], Identity(None, None)) == Identity(None, None)


def test_short_identity_values_are_masked_entirely():
    shown = identity_for("rm", ["admin"], Identity("AB1234", "12345"))
    assert shown == Identity("******", "*****")


# --- newer wins -----------------------------------------------------------------------------


def test_an_older_record_does_not_overwrite_a_newer_one():
    assert not is_newer(T.replace(hour=8), T)


def test_a_record_of_the_same_time_or_later_applies():
    assert is_newer(T, T) and is_newer(T.replace(hour=10), T) and is_newer(T, None)


# --- ages -----------------------------------------------------------------------------------


def test_age_counts_whole_years_completed():
    assert age_on(date(1966, 11, 28), date(2026, 11, 28)) == 60
    assert age_on(date(1966, 11, 29), date(2026, 11, 28)) == 59


def test_a_leap_day_birthday_completes_on_the_first_of_march_in_a_common_year():
    assert age_on(date(2000, 2, 29), date(2026, 2, 28)) == 25
    assert age_on(date(2000, 2, 29), date(2026, 3, 1)) == 26


@pytest.mark.parametrize("today", [date(2026, 11, 28), date(2026, 2, 28), date(2024, 2, 29), date(2026, 3, 1)])
@pytest.mark.parametrize("age", [0, 1, 17, 60])
def test_birth_date_limits_agree_with_age_on_every_nearby_day(today, age):
    at_least = born_on_or_before_for_age(today, age)
    after = born_after_for_age(today, age)
    for offset in range(-400, 400):
        birth = date.fromordinal(at_least.toordinal() + offset)
        assert (age_on(birth, today) >= age) == (birth <= at_least)
        birth = date.fromordinal(after.toordinal() + offset)
        assert (age_on(birth, today) <= age) == (birth > after)


def test_month_bounds_cross_the_year():
    assert month_bounds(date(2026, 12, 5)) == (date(2026, 12, 1), date(2027, 1, 1))


def test_start_of_day_is_midnight_in_the_banks_zone():
    assert start_of_day(date(2026, 11, 28), ZoneInfo("Asia/Shanghai")) == \
        datetime(2026, 11, 27, 16, 0, tzinfo=timezone.utc)


# --- flows ----------------------------------------------------------------------------------


def test_a_day_that_ends_higher_is_inflow_only():
    assert flow_of_day(D("30000.00")) == (D("30000.00"), D("0.00"))


def test_a_day_that_ends_lower_is_outflow_only():
    assert flow_of_day(D("-500.00")) == (D("0.00"), D("500.00"))


def test_moving_money_between_own_products_is_no_flow():
    # 20,000 out of a deposit and into a wealth product the same day: the day's net is zero
    assert flow_of_day(D("-20000.00") + D("20000.00")) == (D("0.00"), D("0.00"))


def test_a_days_flow_is_taken_on_the_net_not_on_each_change():
    # 1,000 in, then 1,500 out: 500 of outflow, not 1,000 in and 1,500 out
    assert flow_of_day(D("1000.00") + D("-1500.00")) == (D("0.00"), D("500.00"))


# --- signals --------------------------------------------------------------------------------


def test_a_new_signal_takes_its_status():
    assert signal_status_after(None, "open") == "open"


def test_any_other_status_closes_an_open_signal():
    for status in ("acknowledged", "done", "expired"):
        assert signal_status_after("open", status) == status


def test_a_closed_signal_never_reopens_and_a_repeated_open_changes_nothing():
    assert signal_status_after("done", "open") is None
    assert signal_status_after("open", "open") is None


# --- ordered values and households ----------------------------------------------------------

TIERS = ("mass", "gold", "platinum", "diamond", "private")


@pytest.mark.parametrize("op,value,expected", [
    ("eq", "gold", ("gold",)),
    ("ne", "gold", ("mass", "platinum", "diamond", "private")),
    ("lt", "platinum", ("mass", "gold")),
    ("lte", "platinum", ("mass", "gold", "platinum")),
    ("gt", "diamond", ("private",)),
    ("gte", "platinum", ("platinum", "diamond", "private")),
    ("between", ("gold", "diamond"), ("gold", "platinum", "diamond")),
])
def test_ranked_comparisons_follow_the_configured_order(op, value, expected):
    assert ranked(TIERS, op, value) == expected


def test_combined_aum_sums_the_members():
    assert combined_aum([D("1.50"), D("2.25")]) == D("3.75")
    assert combined_aum([]) == D("0.00")
