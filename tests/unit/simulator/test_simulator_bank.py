"""The synthetic bank: deterministic, and as varied as a real bank's master data."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date

from shared.contracts.cloudevents import decode_record, encode_binary
from shared.settings import Settings
from strata.simulator.bank import SyntheticBank
from strata.simulator.catalogue import BRANCHES, PRODUCT_TYPES, id_check_digit

START = date(2026, 1, 1)


def test_same_seed_gives_the_same_customers_and_another_seed_other_ones(settings):
    first = [p.master for p in SyntheticBank(5, 300, START, settings).population()]
    again = [p.master for p in SyntheticBank(5, 300, START, settings).population()]
    other = [p.master for p in SyntheticBank(6, 300, START, settings).population()]
    assert first == again
    assert sum(a != b for a, b in zip(first, other)) > 250


def test_a_customer_is_the_same_whatever_the_size_of_the_bank(settings):
    small = list(SyntheticBank(5, 50, START, settings).population())
    large = list(SyntheticBank(5, 500, START, settings).population())
    assert [p.master for p in small[:40]] == [p.master for p in large[:40]]


def test_identity_numbers_are_valid_eighteen_digit_numbers_matching_birth_date_and_gender(settings):
    for plan in SyntheticBank(5, 400, START, settings).population():
        number, master = plan.master.id_number, plan.master
        assert re.fullmatch(r"\d{17}[\dX]", number)
        assert number[17] == id_check_digit(number[:17])
        assert number[6:14] == f"{master.birth_date:%Y%m%d}"
        assert int(number[16]) % 2 == (1 if master.gender == "M" else 0)
        assert number[:6] in {b.area_code for b in BRANCHES}


def test_check_digit_of_a_known_number():
    assert id_check_digit("11010519491231002") == "X"


def test_households_have_two_to_four_members_with_one_head_and_known_roles(settings):
    members: dict[str, list] = {}
    for plan in SyntheticBank(5, 3000, START, settings).population():
        if plan.master.household_id:
            members.setdefault(plan.master.household_id, []).append(plan.master)
    sizes = Counter(len(m) for m in members.values())
    assert set(sizes) == {2, 3, 4}
    for people in members.values():
        roles = [p.household_role for p in people]
        assert roles.count("head") == 1 and roles[0] == "head"
        assert set(roles) <= {"head", "spouse", "child", "parent", "member"}


def test_birthdays_include_the_29th_of_february_and_risk_levels_all_five(settings):
    masters = [p.master for p in SyntheticBank(5, 3000, START, settings).population()]
    assert any((m.birth_date.month, m.birth_date.day) == (2, 29) for m in masters)
    assert {m.risk_level for m in masters} == {"C1", "C2", "C3", "C4", "C5"}
    assert sum(bool(m.tags) for m in masters) > 1500


def test_every_product_type_is_held_with_maturities_and_card_expiries_close_to_the_start(settings):
    bank = SyntheticBank(5, 3000, START, settings)
    accounts = [(p, a) for p in bank.population() for a in p.accounts if a.open]
    events = [bank.account_event(p.index, a) for p, a in accounts]
    assert {e.product_type for e in events} == set(PRODUCT_TYPES)
    maturities = [(e.maturity_date - START).days for e in events if e.maturity_date]
    assert any(d <= 7 for d in maturities) and any(7 < d <= 30 for d in maturities)
    expiries = [(e.card_expiry - START).days for e in events
                if e.card_expiry and e.product_type == "demand_deposit"]
    assert any(d <= 60 for d in expiries)
    assert all(d > 0 for d in maturities + expiries)


def test_master_events_are_valid_contract_events(settings):
    from strata.simulator.feed import Feed

    feed = Feed(5, 200, START, settings)
    for event in feed.master_events():
        key, value, headers = encode_binary(event)
        assert decode_record(value, headers).data == event.data
        assert key.decode() == event.subject


def test_rms_of_every_level_at_every_branch_and_private_bankers_at_the_centre():
    settings = Settings(assignment={"centres": {"private": "PB-CENTRE"}})
    rms = SyntheticBank(5, 20_000, START, settings).rms()
    places = {(r.branch_id, r.level) for r in rms}
    for branch in BRANCHES:
        assert {lvl for b, lvl in places if b == branch.branch_id} == {"L1", "L2", "L3", "L4"}
    assert ("PB-CENTRE", "L4") in places
    assert len({r.rm_id for r in rms}) == len(rms)
    by_level = Counter(r.level for r in rms)
    assert by_level["L1"] > len(BRANCHES), "a large bank needs more than one outlet RM per branch"
    assert all(r.as_json()["capacity"] == settings.assignment.default_capacity for r in rms)
