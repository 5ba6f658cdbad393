"""The assignment rules with plain values: tier correspondence, balance, claims, tier changes,
handover."""

from __future__ import annotations

import pytest

from shared.settings import get_settings
from services.assignment.domain import (
    ALREADY_ASSIGNED,
    BALANCED,
    BRANCH_MISMATCH,
    CAPACITY_AVAILABLE,
    CLAIM,
    HANDOVER,
    HOME_BRANCH_UNKNOWN,
    INACTIVE_RM,
    LEVEL_MISMATCH,
    NO_ELIGIBLE_RM,
    NOT_ABOVE_MASS,
    OVER_CAPACITY,
    PREVIOUS_PRIMARY,
    RETURNED_TO_POOL,
    TIER_CHANGE,
    UNKNOWN_CUSTOMER,
    UNKNOWN_RM,
    WAITING,
    Assignment,
    AssignmentRules,
    Book,
    Capacity,
    Pool,
    Rm,
)


@pytest.fixture(scope="module")
def rules() -> AssignmentRules:
    return AssignmentRules.from_settings(get_settings())


def rm(rm_id: str, level: str = "L1", branch: str = "BR-1", *, capacity: int | dict = 400,
       active: bool = True, book: dict | None = None, backups: dict | None = None) -> Rm:
    weights = get_settings().assignment.weights
    counts = book or {}
    return Rm(rm_id, branch, level, Capacity.parse(capacity), active,
              Book(counts, sum(weights[t] * n for t, n in counts.items())),
              Book(backups or {}, sum(weights[t] * n for t, n in (backups or {}).items())))


def customer(cid: str = "C1", tier: str = "gold", branch: str | None = "BR-1", primary=None, backup=None):
    return Assignment(cid, tier, branch, primary, backup)


# --- tier correspondence -------------------------------------------------------------------


@pytest.mark.parametrize("tier, level", [("gold", "L1"), ("platinum", "L2"), ("diamond", "L3"), ("private", "L4")])
def test_each_tier_gets_a_primary_of_its_level(rules, tier, level):
    pool = Pool([rm(f"R-{lv}", lv) for lv in ("L1", "L2", "L3", "L4")])
    placement = rules.place(customer(tier="mass"), pool, TIER_CHANGE, tier=tier)
    assert placement.after.primary == f"R-{level}"
    assert placement.changes[0].code == BALANCED and f"{tier} needs {level}" in placement.changes[0].detail


def test_mass_customers_need_no_named_rm(rules):
    placement = rules.place(customer(tier="mass"), Pool([rm("A")]))
    assert placement.after.primary is None and placement.changes == () and placement.waiting is None
    assert rules.standing(placement.after) == "pool"


@pytest.mark.parametrize("tier, backup_level", [
    ("gold", "L1"), ("platinum", "L2"), ("diamond", "L3"), ("private", "L4")])
def test_backup_is_of_the_same_level_first_and_never_the_primary(rules, tier, backup_level):
    pool = Pool([rm(f"{lv}-{i}", lv) for lv in ("L1", "L2", "L3", "L4") for i in (1, 2)])
    after = rules.place(customer(tier="mass"), pool, TIER_CHANGE, tier=tier).after
    assert after.primary.startswith(rules.levels_for(tier)[0])
    assert after.backup.startswith(backup_level) and after.backup != after.primary


def test_backup_falls_back_to_an_adjacent_level_when_the_primary_is_the_only_one_of_its_level(rules):
    pool = Pool([rm("P", "L2"), rm("Q", "L1"), rm("S", "L3")])
    after = rules.place(customer(tier="mass"), pool, TIER_CHANGE, tier="platinum").after
    assert (after.primary, after.backup) == ("P", "Q")  # platinum backups: L2, then L1, then L3


def test_backup_never_of_a_level_too_far_away(rules):
    after = rules.place(customer(tier="mass"), Pool([rm("P", "L4"), rm("G", "L1")]), tier="private").after
    assert (after.primary, after.backup) == ("P", None)


def test_customers_are_served_by_their_home_branch_only(rules):
    pool = Pool([rm("FAR", branch="BR-2"), rm("NEAR", branch="BR-1", book={"gold": 300})])
    assert rules.place(customer(tier="mass"), pool, tier="gold").after.primary == "NEAR"


def test_centre_serves_a_tier_instead_of_the_home_branch():
    settings = get_settings()
    rules = AssignmentRules([t.id for t in settings.tiers], settings.assignment.primary_levels,
                            settings.assignment.backup_levels, settings.assignment.weights,
                            centres={"private": "PB-CENTRE"})
    pool = Pool([rm("HOME", "L4", "BR-1"), rm("PB", "L4", "PB-CENTRE")])
    after = rules.place(customer(tier="mass"), pool, tier="private").after
    assert after.primary == "PB"
    assert rules.serving_branch("gold", "BR-1") == "BR-1"


def test_unknown_home_branch_leaves_the_customer_waiting_with_the_reason(rules):
    placement = rules.place(customer(tier="mass", branch=None), Pool([rm("A")]), tier="gold")
    assert placement.after.primary is None and "home branch" in placement.waiting
    assert rules.standing(placement.after) == WAITING


def test_settings_naming_an_unknown_tier_are_refused():
    with pytest.raises(ValueError, match="emerald"):
        AssignmentRules(["mass", "gold"], {"emerald": ["L1"]}, {}, {"emerald": 1})


# --- balanced distribution -----------------------------------------------------------------


def test_least_weighted_book_wins(rules):
    pool = Pool([rm("A", book={"gold": 5}), rm("B", book={"gold": 2}), rm("C", book={"gold": 4})])
    assert rules.choose_primary("gold", "BR-1", pool)[0].rm_id == "B"


def test_balance_is_by_weighted_book_not_by_count():
    settings = get_settings()
    primary = dict(settings.assignment.primary_levels, gold=["L2"])  # L2 serves gold and platinum
    rules = AssignmentRules([t.id for t in settings.tiers], primary, settings.assignment.backup_levels,
                            settings.assignment.weights)
    # A: 2 platinum customers (weight 4); B: 3 gold customers (weight 3)
    pool = Pool([rm("A", "L2", book={"platinum": 2}), rm("B", "L2", book={"gold": 3})])
    assert rules.choose_primary("gold", "BR-1", pool)[0].rm_id == "B"
    assert rules.book({"private": 1}).weight > rules.book({"gold": 1}).weight


def test_ties_go_to_the_lower_rm_id(rules):
    pool = Pool([rm("RM-B", book={"gold": 1}), rm("RM-A", book={"gold": 1}), rm("RM-C", book={"gold": 1})])
    assert rules.choose_primary("gold", "BR-1", pool)[0].rm_id == "RM-A"


def test_balance_over_unequal_books_fills_the_lightest_first(rules):
    pool = Pool([rm("A", book={"gold": 10}), rm("B", book={"gold": 4}), rm("C", book={"gold": 0})])
    chosen = []
    for i in range(14):
        placement = rules.place(customer(f"N{i:02d}", tier="mass"), pool, tier="gold")
        pool.apply(placement, rules.weights)
        chosen.append(placement.after.primary)
    books = {r.rm_id: r.book.weight for r in pool}
    assert chosen[:4] == ["C", "C", "C", "C"]  # C catches up with B before B gets any
    assert max(books.values()) - min(books.values()) <= 1 and sum(books.values()) == 28


def test_capacity_full_rm_is_skipped(rules):
    pool = Pool([rm("FULL", capacity=5, book={"gold": 5}), rm("ROOM", capacity=400, book={"gold": 50})])
    assert rules.choose_primary("gold", "BR-1", pool)[0].rm_id == "ROOM"


def test_everyone_full_leaves_the_customer_waiting_and_says_why(rules):
    pool = Pool([rm("A", capacity=2, book={"gold": 2}), rm("B", capacity=2, book={"gold": 2})])
    placement = rules.place(customer(tier="mass"), pool, tier="gold")
    assert placement.after.primary is None
    assert "at capacity" in placement.waiting
    assert rules.standing(placement.after) == WAITING


def test_weighted_capacity_counts_the_new_customers_weight(rules):
    pool = Pool([rm("A", "L4", capacity=20, book={"private": 2})])  # 16 of 20: a private (8) does not fit
    assert rules.choose_primary("private", "BR-1", pool)[0] is None


def test_capacity_by_tier_counts_customers_of_that_tier(rules):
    pool = Pool([rm("A", "L1", capacity={"gold": 2}, book={"gold": 2}), rm("B", "L1", capacity={"gold": 3},
                                                                             book={"gold": 2})])
    assert rules.choose_primary("gold", "BR-1", pool)[0].rm_id == "B"
    assert not Capacity(by_tier={"gold": 3}).admits(Book({}), "platinum", 2)


def test_inactive_rm_is_never_chosen(rules):
    pool = Pool([rm("OFF", active=False), rm("ON", book={"gold": 9})])
    assert rules.choose_primary("gold", "BR-1", pool)[0].rm_id == "ON"


# --- familiarity claims --------------------------------------------------------------------


def test_claim_accepted_outranks_balance_and_keeps_the_previous_primary_as_backup(rules):
    pool = Pool([rm("BUSY", book={"gold": 100}), rm("IDLE"), rm("OLD", book={"gold": 1})])
    verdict = rules.claim(customer(primary="OLD", backup="IDLE"), pool.get("BUSY"), pool, "school friend")
    assert verdict.accepted and verdict.code == "accepted"
    assert (verdict.placement.after.primary, verdict.placement.after.backup) == ("BUSY", "OLD")
    codes = {c.role: c.code for c in verdict.placement.changes}
    assert codes == {"primary": CLAIM, "backup": PREVIOUS_PRIMARY}
    assert "school friend" in verdict.placement.changes[0].detail


def test_claim_of_a_waiting_customer_assigns_them(rules):
    pool = Pool([rm("A")])
    verdict = rules.claim(customer(), pool.get("A"), pool)
    assert verdict.accepted and verdict.placement.after.primary == "A"


@pytest.mark.parametrize("case, code", [
    ("unknown customer", UNKNOWN_CUSTOMER),
    ("mass customer", NOT_ABOVE_MASS),
    ("unknown rm", UNKNOWN_RM),
    ("inactive rm", INACTIVE_RM),
    ("already theirs", ALREADY_ASSIGNED),
    ("wrong level", LEVEL_MISMATCH),
    ("home branch unknown", HOME_BRANCH_UNKNOWN),
    ("other branch", BRANCH_MISMATCH),
    ("full book", OVER_CAPACITY),
])
def test_claim_refused_for_each_reason(rules, case, code):
    gold = customer(primary="OTHER")
    claimant = rm("A")
    if case == "unknown customer":
        gold = None
    elif case == "mass customer":
        gold = customer(tier="mass")
    elif case == "unknown rm":
        claimant = None
    elif case == "inactive rm":
        claimant = rm("A", active=False)
    elif case == "already theirs":
        gold = customer(primary="A")
    elif case == "wrong level":
        claimant = rm("A", "L3")
    elif case == "home branch unknown":
        gold = customer(branch=None)
    elif case == "other branch":
        claimant = rm("A", branch="BR-9")
    elif case == "full book":
        claimant = rm("A", capacity=10, book={"gold": 10})
    pool = Pool([claimant, rm("OTHER")] if claimant else [rm("OTHER")])
    verdict = rules.claim(gold, claimant, pool)
    assert (verdict.accepted, verdict.code) == (False, code)
    assert verdict.placement is None and verdict.reason


def test_claim_refusal_reasons_say_what_is_wrong(rules):
    pool = Pool([rm("A", "L1")])
    verdict = rules.claim(customer(tier="private"), pool.get("A"), pool)
    assert verdict.reason == "RM A is L1; a private customer needs L4"


# --- tier changes -------------------------------------------------------------------------


def test_upgrade_that_needs_a_new_level_moves_and_keeps_the_old_rm_as_backup(rules):
    pool = Pool([rm("G1", "L1", book={"gold": 1}), rm("G2", "L1"), rm("P1", "L2"), rm("P2", "L2", book={"platinum": 1})])
    placement = rules.place(customer(primary="G1", backup="G2"), pool, TIER_CHANGE, tier="platinum")
    assert (placement.after.primary, placement.after.backup) == ("P1", "G1")
    primary, backup = placement.changes
    assert (primary.role, primary.from_rm, primary.to_rm, primary.code) == ("primary", "G1", "P1", TIER_CHANGE)
    assert "RM G1 is L1; a platinum customer needs L2" in primary.detail
    assert (backup.from_rm, backup.to_rm, backup.code) == ("G2", "G1", PREVIOUS_PRIMARY)


def test_upgrade_two_levels_up_releases_the_old_rm_where_levels_do_not_allow_a_backup(rules):
    pool = Pool([rm("G1", "L1"), rm("D1", "L3"), rm("D2", "L3")])
    after = rules.place(customer(primary="G1"), pool, TIER_CHANGE, tier="diamond").after
    assert (after.primary, after.backup) == ("D1", "D2")  # diamond backups are L3/L2/L4, not L1


def test_tier_change_that_leaves_the_level_right_moves_no_one():
    settings = get_settings()
    primary = dict(settings.assignment.primary_levels, platinum=["L2", "L1"])
    rules = AssignmentRules([t.id for t in settings.tiers], primary, settings.assignment.backup_levels,
                            settings.assignment.weights)
    pool = Pool([rm("G1", "L1", book={"gold": 1}), rm("G2", "L1"), rm("P1", "L2")])
    placement = rules.place(customer(primary="G1", backup="G2"), pool, TIER_CHANGE, tier="platinum")
    assert placement.changes == ()
    assert (placement.after.primary, placement.after.backup, placement.after.tier) == ("G1", "G2", "platinum")


def test_watch_keeps_the_assignment(rules):
    pool = Pool([rm("G1", book={"gold": 1}), rm("G2")])
    placement = rules.place(customer(primary="G1", backup="G2"), pool, TIER_CHANGE, tier="gold")
    assert placement.changes == ()


def test_downgrade_that_needs_a_new_level_moves_down(rules):
    pool = Pool([rm("P1", "L2", book={"platinum": 1}), rm("G1", "L1"), rm("G2", "L1")])
    placement = rules.place(customer(tier="platinum", primary="P1", backup="G1"), pool, TIER_CHANGE, tier="gold")
    # the current backup G1 (L1) becomes primary; the old L2 primary may back up a gold customer
    assert (placement.after.primary, placement.after.backup) == ("G1", "P1")


def test_downgrade_to_mass_returns_the_customer_to_the_branch_pool(rules):
    pool = Pool([rm("G1", book={"gold": 1}), rm("G2", backups={"gold": 1})])
    placement = rules.place(customer(primary="G1", backup="G2"), pool, TIER_CHANGE, tier="mass")
    assert (placement.after.primary, placement.after.backup) == (None, None)
    assert [(c.role, c.from_rm, c.to_rm, c.code) for c in placement.changes] == [
        ("primary", "G1", None, RETURNED_TO_POOL), ("backup", "G2", None, RETURNED_TO_POOL)]
    pool.apply(placement, rules.weights)
    assert pool.get("G1").book.weight == 0 and pool.get("G2").backups.weight == 0


def test_upgrade_with_no_rm_of_the_new_level_leaves_the_customer_waiting_with_the_old_rm_as_backup(rules):
    pool = Pool([rm("G1", "L1", book={"gold": 1})])
    placement = rules.place(customer(primary="G1"), pool, TIER_CHANGE, tier="platinum")
    assert (placement.after.primary, placement.after.backup) == (None, "G1")
    assert placement.changes[0].code == NO_ELIGIBLE_RM and placement.waiting


def test_pool_accounting_moves_weight_between_tiers_of_the_same_rm(rules):
    pool = Pool([rm("A", "L1", book={"gold": 1})])
    placement = rules.place(customer(primary="A"), pool, TIER_CHANGE, tier="gold")
    pool.apply(placement, rules.weights)
    assert pool.get("A").book.weight == 1


# --- waiting customers ----------------------------------------------------------------------


def test_pick_up_serves_the_highest_tier_first_when_room_is_short(rules):
    pool = Pool([rm("NEW", "L1", capacity=1), rm("NEW2", "L2", capacity=2)])
    waiting = [customer("C-GOLD"), customer("C-PLAT", tier="platinum"), customer("C-GOLD2")]
    placements = rules.pick_up(waiting, pool)
    assert [(p.after.customer_id, p.after.primary) for p in placements if p.after.primary] == [
        ("C-PLAT", "NEW2"), ("C-GOLD", "NEW")]
    assert all(p.changes[0].code == CAPACITY_AVAILABLE for p in placements if p.after.primary)


# --- handover -----------------------------------------------------------------------------


def test_handover_spreads_a_book_of_300_over_3_rms_within_one_customer(rules):
    book = [customer(f"C{i:03d}", primary="LEAVING", backup="T1" if i % 2 else "T2") for i in range(300)]
    pool = Pool([rm("LEAVING", book={"gold": 300}), rm("T1", backups={"gold": 150}), rm("T2", backups={"gold": 150}),
                 rm("T3")])
    plan = rules.hand_over("LEAVING", book, pool, why="retires")
    assert plan.unplaced == () and plan.moved == 300
    counts = {t: sum(1 for p in plan.placements if p.after.primary == t) for t in ("T1", "T2", "T3")}
    assert max(counts.values()) - min(counts.values()) <= 1 and sum(counts.values()) == 300
    assert all(p.after.primary != p.after.backup for p in plan.placements)
    assert all(c.code in (HANDOVER, PREVIOUS_PRIMARY) or c.role == "backup"
               for p in plan.placements for c in p.changes)
    assert "retires" in plan.placements[0].changes[0].detail


def test_handover_over_unequal_books_evens_them_out(rules):
    book = [customer(f"C{i:02d}", primary="LEAVING") for i in range(30)]
    pool = Pool([rm("LEAVING", book={"gold": 30}), rm("T1", book={"gold": 20}), rm("T2", book={"gold": 0})])
    plan = rules.hand_over("LEAVING", book, pool)
    assert pool.get("T1").book.weight == 25 and pool.get("T2").book.weight == 25


def test_handover_to_named_rms_only(rules):
    book = [customer(f"C{i}", primary="LEAVING") for i in range(4)]
    pool = Pool([rm("LEAVING", book={"gold": 4}), rm("T1"), rm("T2"), rm("IDLE")])
    plan = rules.hand_over("LEAVING", book, pool, to=["T1", "T2"])
    assert {p.after.primary for p in plan.placements} == {"T1", "T2"}


def test_handover_lists_customers_nobody_can_take(rules):
    book = [customer("C1", primary="LEAVING"), customer("C2", primary="LEAVING")]
    pool = Pool([rm("LEAVING", book={"gold": 2}), rm("T1", capacity=1)])
    plan = rules.hand_over("LEAVING", book, pool)
    assert plan.unplaced == ("C2",) and plan.moved == 1


def test_handover_replaces_the_leaving_rm_as_backup(rules):
    book = [customer("C1", primary="P", backup="LEAVING")]
    pool = Pool([rm("LEAVING"), rm("P", book={"gold": 1}), rm("B")])
    plan = rules.hand_over("LEAVING", book, pool)
    assert plan.moved == 0 and plan.placements[0].after.backup == "B"
