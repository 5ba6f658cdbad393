"""The posting stream: deterministic, exact books, and every kind of business the services need."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

from shared.contracts.cloudevents import decode_record, encode_binary
from shared.contracts.types import AUM_PRODUCT_TYPES
from strata.simulator.feed import Feed

START = date(2026, 1, 1)


def _days(feed, first, count):
    out = []
    for n in range(count):
        out += list(feed.day_events(first + timedelta(days=n)))
    return out


def _fingerprint(events):
    return [(e.id, e.type, e.time, e.data.model_dump_json()) for e in events]


def test_same_seed_gives_the_same_events_ids_included(settings):
    runs = []
    for _ in range(2):
        feed = Feed(3, 400, START, settings)
        runs.append(_fingerprint(list(feed.master_events()) + _days(feed, START, 12)))
    assert runs[0] == runs[1]
    other = Feed(4, 400, START, settings)
    assert _fingerprint(list(other.master_events()))[:50] != runs[0][:50]


def test_postings_carry_consecutive_account_seq_and_the_exact_balance_after(four_months):
    feed, master, stream, _ = four_months
    balance = {e.data.account_id: e.data.balance for e in master if e.type == "bank.balance.v1"}
    seq: dict[str, int] = defaultdict(int)
    last_time = {}
    postings = 0
    for event in stream:
        data = event.data
        if event.type == "bank.balance.v1":
            assert event.time > last_time.get(data.account_id, event.time - timedelta(seconds=1))
            balance[data.account_id] = data.balance
            last_time[data.account_id] = event.time
            continue
        if event.type != "bank.posting.v1":
            continue
        postings += 1
        assert data.account_seq == seq[data.account_id] + 1, data
        seq[data.account_id] = data.account_seq
        liability = data.product_type not in AUM_PRODUCT_TYPES
        sign = (1 if data.direction == "credit" else -1) * (-1 if liability else 1)
        expected = balance.get(data.account_id, Decimal("0.00")) + sign * data.amount
        assert data.balance_after == expected, data
        assert data.balance_after >= 0
        assert data.posted_at >= last_time.get(data.account_id, data.posted_at)
        balance[data.account_id] = expected
        last_time[data.account_id] = data.posted_at
    assert postings > 50_000


def test_stream_events_are_valid_contract_events(four_months):
    _, _, stream, _ = four_months
    for event in stream[:3000] + stream[-3000:]:
        key, value, headers = encode_binary(event)
        assert decode_record(value, headers).data == event.data


def test_stream_has_every_kind_of_business(four_months, settings):
    _, _, stream, _ = four_months
    postings = [e.data for e in stream if e.type == "bank.posting.v1"]
    kinds = {p.tx_type for p in postings}
    assert {"salary", "card_spend", "pos_purchase", "atm_withdrawal", "transfer_out", "transfer_in",
            "cash_deposit", "wealth_purchase", "wealth_redemption", "fund_purchase", "fund_redemption",
            "deposit_placement", "deposit_maturity", "interest", "sms_monthly", "card_annual",
            "small_account"} <= kinds
    atm = [p for p in postings if p.tx_type == "atm_withdrawal"]
    assert any(p.counterparty_bank == "OTHER" for p in atm)
    assert any(p.cross_region and p.counterparty_bank is None for p in atm)
    counter_out = [p for p in postings if p.tx_type == "transfer_out" and p.channel == "counter"]
    assert any(p.counterparty_bank == "OTHER" for p in counter_out)
    assert any(p.channel == "mobile" for p in postings if p.tx_type == "transfer_out")
    assert any(p.amount >= 50_000 for p in postings if p.tx_type == "deposit_placement")
    large = settings.signals.vip_outflow.large_outflow
    assert any(p.amount >= large and p.counterparty_bank == "OTHER" for p in postings if p.tx_type == "transfer_out")


def test_salaries_are_paid_on_paydays_or_the_friday_before(four_months):
    _, _, stream, _ = four_months
    days = {e.data.posted_at.date() for e in stream if e.type == "bank.posting.v1" and e.data.tx_type == "salary"}
    for day in days:
        assert day.day in (10, 15, 25) or (day.weekday() == 4 and day.day in (8, 9, 13, 14, 23, 24))


def test_periodic_fees_come_monthly_yearly_and_quarterly(four_months, settings):
    _, _, stream, _ = four_months
    fees = defaultdict(list)
    for e in stream:
        if e.type == "bank.posting.v1" and e.data.tx_type in ("sms_monthly", "card_annual", "small_account"):
            fees[(e.data.tx_type, e.data.customer_id)].append(e.data.posted_at.date())
    sms = [d for (t, _), d in fees.items() if t == "sms_monthly"]
    assert sms and all(len({(x.year, x.month) for x in days}) == len(days) for days in sms)
    assert all(len(days) == 1 for (t, _), days in fees.items() if t in ("card_annual", "small_account"))
    assert all(d.month == 3 and d.day == 20 for (t, _), days in fees.items() if t == "small_account" for d in days)
    amounts = {e.data.tx_type: e.data.amount for e in stream if e.type == "bank.posting.v1"}
    configured = {f.id: f.amount for f in settings.pricing.fees}
    assert amounts["sms_monthly"] == configured["sms_monthly"]


def test_month_end_valuations_move_funds_gold_and_insurance_by_snapshot(four_months):
    _, _, stream, _ = four_months
    snapshots = [e.data for e in stream if e.type == "bank.balance.v1"]
    assert {s.product_type for s in snapshots} == {"fund", "precious_metal", "insurance"}
    assert all((s.as_of + timedelta(days=1)).day == 1 for s in snapshots)


def test_maturities_close_the_account_and_new_placements_open_one(four_months):
    _, _, stream, _ = four_months
    accounts = [e.data for e in stream if e.type == "bank.account.v1"]
    assert any(a.status == "closed" and a.product_type == "time_deposit" for a in accounts)
    assert any(a.status == "closed" and a.product_type == "wealth_product" for a in accounts)
    opened = [a for a in accounts if a.status == "open" and a.maturity_date and a.opened_on >= START]
    assert opened and all(a.maturity_date > a.opened_on for a in opened)
    renewed = [a for a in accounts if a.status == "open" and a.card_expiry]
    assert renewed, "cards close to expiry are renewed"


def test_customers_cross_floors_up_during_a_month_and_some_are_downgraded_after_closes(four_months):
    feed, _, _, expected = four_months
    opening_upgrades = sum(1 for c in range(feed.customers) if expected.rank[c] > 0)
    assert expected.changes["upgrade"] > opening_upgrades * 0.3 + 20 or expected.changes["upgrade"] > opening_upgrades
    assert expected.changes["watch"] >= 5
    assert expected.changes["downgrade"] >= 1


def test_history_days_carry_fewer_everyday_transactions_for_the_same_money(settings):
    light = Feed(3, 600, START, settings, light_until=START + timedelta(days=40), history_intensity=0.2)
    full = Feed(3, 600, START, settings)
    light_events = _days(light, START, 30)
    full_events = _days(full, START, 30)
    spend = lambda events: [e.data.amount for e in events if e.type == "bank.posting.v1" and e.data.tx_type == "card_spend"]
    assert len(spend(light_events)) < len(spend(full_events)) * 0.4
    assert sum(spend(light_events)) > sum(spend(full_events)) / 2
