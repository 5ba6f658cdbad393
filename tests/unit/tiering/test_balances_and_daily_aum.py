"""Balances by account_seq and snapshot time, and the month's average daily AUM."""

import random
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal as D
from zoneinfo import ZoneInfo

from shared.settings import get_settings
from services.tiering.domain import (
    AccountPosition,
    DailyAum,
    apply_posting,
    apply_snapshot,
    average,
    roll_to,
)
from shared.calendar import business_day

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 10, 10, 0, tzinfo=SH)


def test_newer_posting_sets_the_balance_after():
    pos = apply_posting(AccountPosition(), 1, D("100.00"), T0)
    assert (pos.balance, pos.seq, pos.posted_at) == (D("100.00"), 1, T0)


def test_a_higher_sequence_posted_earlier_still_sets_the_balance():
    pos = apply_posting(AccountPosition(), 1, D("100.00"), T0)
    after = apply_posting(pos, 2, D("40.00"), T0 - timedelta(hours=3))
    assert (after.balance, after.seq, after.posted_at) == (D("40.00"), 2, T0)


def test_a_snapshot_and_postings_order_by_time_whichever_arrives_first():
    snapshot_at = T0 + timedelta(hours=2)
    facts = [("posting", 1, D("100.00"), T0), ("posting", 2, D("150.00"), T0 + timedelta(hours=1)),
             ("snapshot", 0, D("900.00"), snapshot_at), ("posting", 3, D("120.00"), T0 + timedelta(hours=3))]
    outcomes = set()
    for order in ([0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1], [1, 3, 0, 2]):
        pos = AccountPosition()
        for i in order:
            kind, seq, amount, at = facts[i]
            pos = apply_posting(pos, seq, amount, at) if kind == "posting" else apply_snapshot(pos, amount, at)
        outcomes.add(pos.balance)
    assert outcomes == {D("120.00")}  # the last posting is after the snapshot


def test_a_snapshot_at_the_moment_of_a_posting_includes_it():
    pos = apply_posting(AccountPosition(), 4, D("10.00"), T0)
    assert apply_snapshot(pos, D("10.50"), T0).balance == D("10.50")
    assert apply_posting(apply_snapshot(AccountPosition(), D("10.50"), T0), 4, D("10.00"), T0).balance == D("10.50")


def test_duplicate_and_older_postings_never_move_the_balance_back():
    pos = apply_posting(AccountPosition(), 5, D("500.00"), T0)
    assert apply_posting(pos, 5, D("999.00"), T0) == pos
    assert apply_posting(pos, 4, D("400.00"), T0 - timedelta(minutes=1)) == pos


def test_out_of_order_postings_end_on_the_highest_sequence():
    seqs = list(range(1, 201))
    random.Random(3).shuffle(seqs)
    pos = AccountPosition()
    for seq in seqs:
        pos = apply_posting(pos, seq, D(seq) * 10, T0 + timedelta(seconds=seq))
    assert (pos.balance, pos.seq) == (D("2000"), 200)


def test_posting_older_than_the_snapshot_in_force_advances_the_sequence_only():
    pos = apply_snapshot(apply_posting(AccountPosition(), 3, D("10.00"), T0), D("800.00"), T0 + timedelta(hours=5))
    after = apply_posting(pos, 4, D("50.00"), T0 + timedelta(hours=1))
    assert after.balance == D("800.00") and after.seq == 4


def test_stale_or_equal_snapshot_is_ignored():
    pos = apply_snapshot(AccountPosition(), D("100.00"), T0)
    assert apply_snapshot(pos, D("1.00"), T0) == pos
    assert apply_snapshot(pos, D("1.00"), T0 - timedelta(days=1)) == pos
    assert apply_snapshot(pos, D("7.00"), T0 + timedelta(seconds=1)).balance == D("7.00")


def test_thousands_of_postings_stay_exact_to_the_cent():
    rng = random.Random(11)
    balance, pos = D("0.00"), AccountPosition()
    for seq in range(1, 5001):
        amount = D(rng.randint(1, 10_000_000)) / 100
        balance += amount if rng.random() < 0.6 or balance < amount else -amount
        pos = apply_posting(pos, seq, balance, T0 + timedelta(seconds=seq))
    assert pos.balance == balance and str(pos.balance).count(".") == 1


def test_rolling_within_the_month_adds_the_days_between_at_the_old_aum():
    state = DailyAum(date(2026, 11, 1), D("0.00"), D("300.00"))
    rolled, completed = roll_to(state, date(2026, 11, 4))
    assert rolled == DailyAum(date(2026, 11, 4), D("900.00"), D("300.00")) and completed == []


def test_rolling_into_the_next_month_completes_the_month_total():
    state = DailyAum(date(2026, 11, 29), D("100.00"), D("30.00"))
    rolled, completed = roll_to(state, date(2026, 12, 3))
    assert completed == [(date(2026, 11, 1), D("160.00"))]  # 100 + 30 on the 29th and 30th
    assert rolled == DailyAum(date(2026, 12, 3), D("60.00"), D("30.00"))


def test_months_without_activity_count_the_aum_every_day():
    state = DailyAum(date(2026, 1, 31), D("0.00"), D("10.00"))
    _, completed = roll_to(state, date(2026, 4, 2))
    assert completed == [(date(2026, 1, 1), D("10.00")), (date(2026, 2, 1), D("280.00")),
                         (date(2026, 3, 1), D("310.00"))]


def test_a_late_event_counts_on_the_current_day():
    state = DailyAum(date(2026, 11, 20), D("5.00"), D("1.00"))
    assert roll_to(state, date(2026, 11, 2)) == (state, [])


def test_month_to_date_average_counts_today_at_the_current_aum():
    state = DailyAum(date(2026, 11, 3), D("200.00"), D("100.00"))
    assert state.month_to_date_average() == D("100.00")
    assert state.month_total() == D("200.00") + D("100.00") * 28


def test_average_rounds_half_up_to_the_cent():
    assert average(D("100.00"), 3) == D("33.33")
    assert average(D("0.05"), 2) == D("0.03")


def test_business_day_is_taken_in_the_bank_time_zone():
    settings = get_settings()
    utc_evening = datetime(2026, 11, 30, 16, 30, tzinfo=timezone.utc)  # 00:30 on 1 Dec in Shanghai
    assert business_day(utc_evening, settings.zone) == date(2026, 12, 1)
    assert business_day(datetime(2026, 11, 30, 15, 59, tzinfo=timezone.utc), settings.zone) == date(2026, 11, 30)
