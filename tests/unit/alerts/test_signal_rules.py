"""The signal rules with plain values: each rule's edges, as docs/RULES.md sets the defaults."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal as D

import pytest

from services.alerts.domain import (
    AumHighs,
    TransitionRefused,
    birthday,
    birthday_month_days,
    card_expiry,
    celebration,
    closed_by_tier_change,
    expiry_reason,
    is_large_interbank_outflow,
    lapses_on,
    maturity_bands,
    maturity_due,
    maturity_threshold,
    month_day,
    near_upgrade,
    no_longer_near,
    suppressed,
    tier_signal,
    track_high,
    transition,
    vip_drop,
    vip_large_outflow,
)
from shared.settings import Settings

SETTINGS = Settings()
LADDER = SETTINGS.tier_ladder
RULES = SETTINGS.signals
DAY = date(2026, 11, 10)


def near(tier: str, aum: str):
    return near_upgrade(LADDER, tier, D(aum), RULES.near_upgrade.ratio, customer_id="C1", day=DAY,
                        suppress_days=RULES.near_upgrade.suppress_days)


def drop(tier: str, aum: str, highs: AumHighs):
    vip = RULES.vip_outflow
    return vip_drop(LADDER, tier, D(aum), highs, min_tier=vip.min_tier, drop_ratio=vip.drop_ratio,
                    window_days=vip.window_days, customer_id="C1", day=DAY,
                    suppress_days=vip.suppress_days)


def highs(*amounts: tuple[date, str]) -> AumHighs:
    h = AumHighs()
    for day, amount in amounts:
        h = h.observe(day, D(amount))
    return h


# --- near upgrade ---------------------------------------------------------------------------


def test_exactly_ninety_percent_of_the_next_floor_is_near_an_upgrade():
    finding = near("mass", "45000.00")
    assert finding is not None and finding.signal_type == "near_upgrade"
    assert finding.evidence["next_tier"] == "gold" and finding.evidence["threshold"] == "45000.00"
    assert finding.evidence["gap"] == "5000.00"


def test_a_cent_below_ninety_percent_is_not_near_an_upgrade():
    assert near("mass", "44999.99") is None


def test_at_the_next_floor_the_customer_is_no_longer_near_it():
    assert near("mass", "49999.99") is not None
    assert near("mass", "50000.00") is None


def test_near_upgrade_looks_at_the_tier_above_the_current_one():
    assert near("platinum", "900000.00").evidence["next_tier"] == "diamond"
    assert near("gold", "900000.00") is None, "gold's next floor is platinum (200,000), already passed"
    assert near("private", "99000000.00") is None, "there is no tier above private"


# --- vip outflow: the fall from the 30-day high ---------------------------------------------


def test_exactly_eighty_percent_of_the_30_day_high_is_an_outflow():
    h = highs((DAY - timedelta(days=3), "500000.00"))
    finding = drop("platinum", "400000.00", h)
    assert finding is not None and finding.evidence["high"] == "500000.00"
    assert finding.evidence["trigger"] == "aum_drop" and finding.evidence["drop"] == "100000.00"
    assert drop("platinum", "400000.01", h) is None


def test_a_fall_below_eighty_percent_of_a_gold_customer_is_not_a_vip_outflow():
    h = highs((DAY, "190000.00"))
    assert drop("gold", "100000.00", h) is None
    assert drop("diamond", "100000.00", h) is not None


def test_the_high_is_the_best_day_of_the_window_not_the_latest():
    h = highs((date(2026, 11, 1), "500000.00"), (date(2026, 11, 2), "450000.00"),
              (date(2026, 11, 3), "300000.00"))
    assert h.high == (date(2026, 11, 1), D("500000.00"))
    assert len(h.entries) == 3, "each later, lower day could become the high once earlier ones leave"
    h = h.observe(date(2026, 11, 4), D("460000.00"))
    assert [a for _, a in h.entries] == [D("500000.00"), D("460000.00")], "lower earlier days dropped"


def test_a_high_older_than_the_window_is_forgotten_but_the_amount_held_since_counts():
    start = date(2026, 10, 1)
    h = track_high(AumHighs(), start, D("0.00"), D("500000.00"), 30)
    h = track_high(h, start + timedelta(days=1), D("500000.00"), D("450000.00"), 30)
    day_31 = start + timedelta(days=31)
    h = track_high(h, day_31, D("450000.00"), D("390000.00"), 30)
    assert h.high == (day_31, D("450000.00")), "450,000 was held up to day 31; 500,000 left the window"


def test_the_window_holds_at_most_one_entry_per_day_whatever_the_number_of_events():
    h = AumHighs()
    for i in range(200):
        h = track_high(h, DAY + timedelta(days=i // 5), D(1000 - i), D(999 - i), 30)
    assert len(h.entries) <= 30


def test_the_daily_highs_survive_their_compact_text_form():
    h = highs((date(2026, 11, 1), "500000.00"), (date(2026, 11, 5), "420000.55"))
    assert h.encode() == "20261101:50000000,20261105:42000055"
    assert AumHighs.decode(h.encode()) == h
    assert AumHighs.decode("") == AumHighs()


# --- vip outflow: one large outflow to another bank -----------------------------------------


@pytest.mark.parametrize("amount, bank, expected", [
    ("99999.99", "OTHER", False),
    ("100000.00", "OTHER", True),
    ("100000.00", "ICBC", True),
    ("99999.99", None, False),
    ("100000.00", None, False),
])
def test_a_large_outflow_is_a_debit_of_at_least_100000_to_another_bank(amount, bank, expected):
    assert is_large_interbank_outflow("debit", bank, D(amount), "demand_deposit",
                                      RULES.vip_outflow.large_outflow) is expected


def test_a_large_outflow_to_one_of_the_banks_own_codes_stays_in_the_bank():
    threshold = RULES.vip_outflow.large_outflow
    assert not is_large_interbank_outflow("debit", "ICBC-NC", D("500000.00"), "demand_deposit", threshold,
                                          ["ICBC-NC"])
    assert is_large_interbank_outflow("debit", "CCB", D("500000.00"), "demand_deposit", threshold, ["ICBC-NC"])


def test_a_large_outflow_asks_the_one_another_bank_rule(monkeypatch):
    from services.alerts import domain

    asked = []
    monkeypatch.setattr(domain, "is_other_bank", lambda bank, own: asked.append((bank, own)) or False)
    assert not is_large_interbank_outflow("debit", "CCB", D("500000.00"), "demand_deposit",
                                          RULES.vip_outflow.large_outflow, ["ICBC-NC"])
    assert asked == [("CCB", ["ICBC-NC"])]


def test_money_coming_in_or_leaving_a_loan_is_not_an_aum_outflow():
    threshold = RULES.vip_outflow.large_outflow
    assert not is_large_interbank_outflow("credit", "OTHER", D("500000.00"), "demand_deposit", threshold)
    assert not is_large_interbank_outflow("debit", "OTHER", D("500000.00"), "loan", threshold)


def test_a_large_outflow_of_a_gold_customer_is_not_a_vip_outflow():
    vip = RULES.vip_outflow
    args = dict(min_tier=vip.min_tier, large_outflow=vip.large_outflow, customer_id="C1", day=DAY,
                suppress_days=vip.suppress_days, posting={"posting_id": "P1"})
    assert vip_large_outflow(LADDER, "gold", **args) is None
    finding = vip_large_outflow(LADDER, "platinum", **args)
    assert finding.evidence["trigger"] == "large_outflow" and finding.evidence["posting_id"] == "P1"


# --- suppression windows --------------------------------------------------------------------


def test_a_suppression_window_ends_on_its_last_day_and_not_before():
    finding = near("mass", "46000.00")
    assert finding.suppress_until == DAY + timedelta(days=30)
    assert suppressed(finding.suppress_until, DAY + timedelta(days=29))
    assert not suppressed(finding.suppress_until, DAY + timedelta(days=30))
    assert not suppressed(None, DAY)


def test_a_rolling_signal_expires_the_day_before_a_new_one_may_come():
    finding = drop("platinum", "1.00", highs((DAY, "500000.00")))
    assert finding.suppress_until == DAY + timedelta(days=7)
    assert finding.expires_on == DAY + timedelta(days=6)


def test_the_same_rolling_signal_on_the_same_day_has_the_same_id():
    assert near("mass", "46000.00").id == near("mass", "47000.00").id
    later = near_upgrade(LADDER, "mass", D("46000.00"), D("0.90"), customer_id="C1",
                         day=DAY + timedelta(days=30), suppress_days=30)
    assert later.id != near("mass", "46000.00").id


def test_a_near_upgrade_is_suppressed_per_target_tier():
    gold, platinum = near("mass", "46000.00"), near("gold", "185000.00")
    assert (gold.window, platinum.window) == ("gold", "platinum")
    assert gold.id != platinum.id, "near two tiers on one day is two signals"
    assert drop("platinum", "1.00", highs((DAY, "500000.00"))).window == "", "vip_outflow: one window"


# --- tier changes ---------------------------------------------------------------------------


def tier(change: str, at: datetime = datetime(2026, 12, 1, tzinfo=timezone.utc), to: str = "gold"):
    return tier_signal(change, customer_id="C1", from_tier="platinum", to_tier=to, effective_at=at,
                       evidence={})


def test_each_tier_event_is_a_signal_of_its_kind_and_clearing_a_watch_is_not():
    assert tier("upgrade").signal_type == "tier_upgraded"
    assert tier("downgrade").signal_type == "tier_downgraded"
    assert tier("watch").signal_type == "downgrade_watch"
    assert tier("watch_cleared") is None


def test_two_watches_a_month_apart_are_two_signals_and_one_watch_twice_is_one():
    assert tier("watch").id == tier("watch").id
    assert tier("watch").id != tier("watch", datetime(2027, 1, 1, tzinfo=timezone.utc)).id


BEFORE, AT = datetime(2026, 11, 2, tzinfo=timezone.utc), datetime(2026, 11, 6, tzinfo=timezone.utc)


def closing(signal_type: str, change: str, to: str, *, near: str = "gold", raised_at: datetime = BEFORE,
            from_: str = "mass"):
    return closed_by_tier_change(signal_type, {"next_tier": near}, raised_at, change=change, from_tier=from_,
                                 to_tier=to, effective_at=AT, day=AT.date(), ladder=LADDER)


def test_reaching_the_tier_a_near_upgrade_was_near_closes_it_saying_so():
    assert closing("near_upgrade", "upgrade", "gold") == "reached gold on 2026-11-06"
    assert closing("near_upgrade", "upgrade", "platinum") == "reached platinum on 2026-11-06, above gold"
    assert closing("near_upgrade", "upgrade", "gold", raised_at=AT) == "reached gold on 2026-11-06", \
        "raised at the very instant the tier is reached"


def test_reaching_a_tier_below_the_one_a_near_upgrade_is_near_leaves_it_open():
    assert closing("near_upgrade", "upgrade", "gold", near="platinum") is None
    assert closing("near_upgrade", "upgrade", "gold", raised_at=AT + timedelta(days=1)) is None, \
        "an older decision, replayed, closes nothing raised after it"


def test_a_downgrade_closes_a_near_upgrade_and_any_later_decision_replaces_a_watch():
    assert closing("near_upgrade", "downgrade", "mass", near="platinum", from_="gold") == \
        "downgraded from gold to mass on 2026-11-06"
    assert closing("downgrade_watch", "watch", "gold") == "replaced by the watch of 2026-11-06"
    assert closing("downgrade_watch", "watch_cleared", "gold") == "the watch was cleared on 2026-11-06"
    assert closing("downgrade_watch", "watch", "gold", raised_at=AT) is None, "the watch it raised itself"
    assert closing("tier_upgraded", "downgrade", "mass") is None


def test_a_near_upgrade_falls_away_below_ninety_percent_of_the_floor_it_was_near():
    ratio = RULES.near_upgrade.ratio
    assert no_longer_near({"next_tier": "gold"}, D("45000.00"), LADDER, ratio) is None
    assert no_longer_near({"next_tier": "gold"}, D("44999.99"), LADDER, ratio) == \
        "AUM 44999.99 fell below 45000.00, 0.90 of the gold floor"
    assert no_longer_near({"next_tier": "platinum"}, D("150000.00"), LADDER, ratio) is not None
    assert no_longer_near({"next_tier": "no-such-tier"}, D("1.00"), LADDER, ratio) is None


def test_a_signal_that_lapses_is_worth_acting_on_for_its_days_the_day_raised_first():
    assert lapses_on(DAY, 7) == DAY + timedelta(days=6)
    assert lapses_on(DAY, 1) == DAY
    assert lapses_on(DAY, None) is None
    assert expiry_reason("tier_upgraded", DAY, lapsing=True) == "not acknowledged by 2026-11-10"
    assert expiry_reason("maturity_due", DAY, lapsing=False) == "its last day, 2026-11-10, has passed"


def test_lapsing_days_name_only_the_types_that_lapse():
    assert RULES.lapses_after("vip_outflow") == 7 and RULES.lapses_after("tier_downgraded") == 30
    assert RULES.lapses_after("maturity_due") is None
    with pytest.raises(ValueError, match="expires_after_days names"):
        Settings(signals={"expires_after_days": {"birthday": 3}})
    with pytest.raises(ValueError, match="at least 1"):
        Settings(signals={"expires_after_days": {"vip_outflow": 0}})


# --- maturities -----------------------------------------------------------------------------


def due(maturity: date, day: date = DAY):
    return maturity_due(account_id="T1", customer_id="C1", product_type="time_deposit",
                        product_code="TD-1Y", maturity_date=maturity, day=day,
                        days_ahead=RULES.maturity_due.days_ahead)


def test_maturity_exactly_30_days_ahead_is_the_30_day_reminder_and_31_is_nothing():
    assert due(DAY + timedelta(days=30)).threshold == 30
    assert due(DAY + timedelta(days=31)) is None


def test_maturity_exactly_7_days_ahead_is_the_7_day_reminder_and_8_still_the_30_day_one():
    assert due(DAY + timedelta(days=7)).threshold == 7
    assert due(DAY + timedelta(days=8)).threshold == 30


def test_maturing_today_is_still_due_and_yesterday_is_not():
    assert due(DAY).threshold == 7
    assert due(DAY - timedelta(days=1)) is None


def test_each_product_and_threshold_is_one_signal_whichever_day_finds_it():
    maturity = DAY + timedelta(days=20)
    assert due(maturity).id == due(maturity, DAY + timedelta(days=1)).id
    assert due(maturity).id != due(maturity, maturity - timedelta(days=7)).id
    assert due(maturity).expires_on == maturity


def test_bands_give_each_days_left_the_tightest_threshold():
    assert maturity_bands([30, 7]) == [(7, 0, 7), (30, 8, 30)]
    assert [maturity_threshold(d, [30, 7]) for d in (-1, 0, 7, 8, 30, 31)] == [None, 7, 7, 30, 30, None]


# --- birthdays ------------------------------------------------------------------------------


def bday(birth: date, day: date, tier_id: str = "gold", leap_day: str = "02-28"):
    return birthday(customer_id="C1", birth_date=birth, tier=tier_id, ladder=LADDER, min_tier="gold",
                    day=day, days_ahead=RULES.birthday.days_ahead, leap_day=leap_day)


def test_birthday_exactly_7_days_ahead_is_due_and_8_is_not():
    birth = date(1988, 7, 15)
    assert bday(birth, date(2026, 7, 8)).evidence["days_left"] == 7
    assert bday(birth, date(2026, 7, 7)) is None
    assert bday(birth, date(2026, 7, 15)).evidence["age"] == 38


def test_birthdays_of_mass_customers_are_not_signalled():
    assert bday(date(1988, 7, 15), date(2026, 7, 10), tier_id="mass") is None


def test_29_february_is_celebrated_on_28_february_in_a_common_year_by_default():
    leapling = date(1992, 2, 29)
    assert celebration(leapling, 2027, "02-28") == date(2027, 2, 28)
    assert celebration(leapling, 2027, "03-01") == date(2027, 3, 1)
    assert celebration(leapling, 2028, "02-28") == date(2028, 2, 29)
    assert bday(leapling, date(2027, 2, 21)).evidence["celebrated_on"] == "2027-02-28"
    assert bday(leapling, date(2027, 2, 20)) is None


def test_29_february_on_1_march_when_the_bank_says_so():
    leapling = date(1992, 2, 29)
    assert bday(leapling, date(2027, 2, 21), leap_day="03-01") is None
    assert bday(leapling, date(2027, 2, 22), leap_day="03-01").evidence["celebrated_on"] == "2027-03-01"


def test_the_birthday_query_ranges_include_29_february_only_when_it_is_celebrated_in_the_window():
    assert birthday_month_days(date(2027, 2, 21), 7, "02-28") == [(221, 229)]
    assert birthday_month_days(date(2027, 2, 20), 7, "02-28") == [(220, 227)]
    assert birthday_month_days(date(2027, 3, 1), 7, "03-01") == [(229, 308)]
    assert birthday_month_days(date(2027, 3, 1), 7, "02-28") == [(301, 308)]
    assert birthday_month_days(date(2028, 2, 25), 7, "02-28") == [(225, 303)]


def test_a_window_across_new_year_is_two_ranges_and_the_birthday_is_next_years():
    assert birthday_month_days(date(2026, 12, 28), 7, "02-28") == [(101, 104), (1228, 1231)]
    finding = bday(date(1990, 1, 2), date(2026, 12, 28))
    assert finding.evidence["celebrated_on"] == "2027-01-02"
    assert finding.id == bday(date(1990, 1, 2), date(2027, 1, 1)).id, "one signal for the year 2027"


def test_birthdays_are_stored_as_sortable_month_days():
    assert month_day(date(1988, 7, 15)) == 715 and month_day(date(1992, 2, 29)) == 229


# --- cards ----------------------------------------------------------------------------------


def card(expiry: date, day: date = DAY):
    return card_expiry(account_id="D1", customer_id="C1", product_code="DEBIT", expiry=expiry, day=day,
                       days_ahead=RULES.card_expiry.days_ahead)


def test_a_card_expiring_exactly_60_days_ahead_is_due_and_61_is_not():
    assert card(DAY + timedelta(days=60)).evidence["days_left"] == 60
    assert card(DAY + timedelta(days=61)) is None


def test_a_renewed_card_is_a_new_signal_and_the_same_card_is_one():
    expiry = DAY + timedelta(days=30)
    assert card(expiry).id == card(expiry, DAY + timedelta(days=5)).id
    assert card(expiry).id != card(expiry + timedelta(days=365 * 3), expiry + timedelta(days=365 * 3 - 10)).id


# --- what an RM does ------------------------------------------------------------------------


def test_ack_then_done_and_repeating_either_changes_nothing():
    assert transition("open", "ack") == "acknowledged"
    assert transition("acknowledged", "ack") == "acknowledged"
    assert transition("acknowledged", "done") == "done"
    assert transition("done", "done") == "done"


@pytest.mark.parametrize("status, action", [("done", "ack"), ("expired", "ack"), ("expired", "done")])
def test_a_closed_signal_cannot_be_acknowledged_or_done_again(status, action):
    with pytest.raises(TransitionRefused):
        transition(status, action)



def test_a_signal_tier_that_is_not_a_tier_is_refused():
    # refused when the settings load, before any event could reach a rule
    with pytest.raises(ValueError, match="vip_outflow.min_tier names unknown tier"):
        Settings(signals={"vip_outflow": {"min_tier": "platinium"}})


# --- the rules as docs/RULES.md explains them -----------------------------------------------


def test_the_rules_page_says_what_each_signal_means_when_it_closes_and_its_priority():
    from pathlib import Path

    from shared.settings.signals import SIGNAL_TYPES

    rules = (Path(__file__).resolve().parents[3] / "docs" / "RULES.md").read_text()
    section = rules[rules.index("## Signals"):rules.index("## Fees and tier benefits")]
    meaning = section[section.index("### What each type means"):section.index("### When Strata closes")]
    closing = section[section.index("### When Strata closes"):section.index("### Priority")]
    priority = section[section.index("### Priority"):section.index("### What an RM does")]
    for signal_type in SIGNAL_TYPES:
        assert f"`{signal_type}`" in meaning, f"{signal_type}: what it means and when it opens"
        assert f"`{signal_type}`" in closing, f"{signal_type}: when Strata closes it"
        assert f"`{signal_type}`" in priority, f"{signal_type}: its priority"
    for reason in ("reached gold on", "fell below", "not acknowledged by", "has passed", "closed"):
        assert reason in closing, reason
    lapses = ", ".join(str(RULES.expires_after_days[t]) for t in
                       ("vip_outflow", "tier_upgraded", "tier_downgraded", "downgrade_watch"))
    assert f"`expires_after_days` ({lapses};" in closing, "the expiry defaults"
    assert "`snooze`" in section and "awake=true" in section
