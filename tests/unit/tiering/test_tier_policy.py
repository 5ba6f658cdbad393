"""The tier policy of docs/RULES.md, with plain values: fast up, slow down."""

from decimal import Decimal as D

import pytest

from shared.settings import get_settings
from services.tiering.domain import TierPolicy, TierState


@pytest.fixture(scope="module")
def policy() -> TierPolicy:
    return TierPolicy.from_rules(get_settings().tiers)


def close(policy, state, average, now=None, month="2026-11"):
    return policy.on_month_end(state, D(average), D(now if now is not None else average), month)


@pytest.mark.parametrize("aum, tier", [
    ("0.00", "mass"), ("49999.99", "mass"), ("50000.00", "gold"), ("199999.99", "gold"),
    ("200000.00", "platinum"), ("999999.99", "platinum"), ("1000000.00", "diamond"),
    ("5999999.99", "diamond"), ("6000000.00", "private"), ("90000000.00", "private"),
])
def test_tier_for_each_floor_edge(policy, aum, tier):
    assert policy.tier_for(D(aum)).id == tier


def test_upgrade_takes_effect_the_moment_aum_reaches_the_floor(policy):
    decision = policy.on_aum(TierState("mass"), D("50000.00"))
    assert (decision.state.tier, decision.change, decision.from_tier) == ("gold", "upgrade", "mass")
    assert "50000.00" in decision.reason


def test_upgrade_jumps_several_tiers_at_once(policy):
    decision = policy.on_aum(TierState("mass"), D("1200000.00"))
    assert decision.state.tier == "diamond" and decision.change == "upgrade"


def test_upgrade_clears_watch_and_the_months_below(policy):
    decision = policy.on_aum(TierState("gold", watch=True, months_below=2), D("250000.00"))
    assert decision.state == TierState("platinum", False, 0)


def test_falling_aum_never_downgrades_between_month_ends(policy):
    decision = policy.on_aum(TierState("diamond"), D("10.00"))
    assert decision.change is None and decision.state.tier == "diamond"


def test_first_month_end_below_floor_puts_the_customer_on_watch(policy):
    decision = close(policy, TierState("gold"), "49999.99")
    assert decision.state == TierState("gold", True, 1) and decision.change == "watch"


def test_downgrade_waits_three_month_ends(policy):
    state = TierState("platinum")
    changes = []
    for month in ("2026-09", "2026-10", "2026-11"):
        decision = close(policy, state, "120000.00", month=month)
        state = decision.state
        changes.append((decision.change, state.tier, state.months_below))
    assert changes == [("watch", "platinum", 1), ("watch", "platinum", 2), ("downgrade", "gold", 0)]
    assert state.watch is False


def test_private_downgrade_waits_six_month_ends(policy):
    state = TierState("private")
    for n in range(1, 6):
        state = close(policy, state, "5000000.00").state
        assert (state.tier, state.watch, state.months_below) == ("private", True, n)
    decision = close(policy, state, "5000000.00")
    assert (decision.change, decision.state.tier) == ("downgrade", "diamond")


def test_a_month_at_the_floor_resets_the_count(policy):
    state = close(policy, TierState("gold"), "10.00").state
    state = close(policy, state, "10.00").state
    decision = close(policy, state, "50000.00")
    assert decision.change == "watch_cleared" and decision.state == TierState("gold")
    after = close(policy, decision.state, "10.00").state
    assert after.months_below == 1, "the count starts again from zero"


def test_downgrade_goes_to_the_tier_the_last_month_average_matches_even_several_down(policy):
    state = TierState("diamond", True, 2)
    decision = close(policy, state, "30000.00")
    assert (decision.change, decision.state.tier) == ("downgrade", "mass")


def test_downgrade_stops_at_what_the_current_aum_qualifies_for(policy):
    state = TierState("diamond", True, 2)
    decision = close(policy, state, "30000.00", now="300000.00")
    assert decision.state.tier == "platinum"


def test_current_aum_still_at_the_floor_keeps_the_tier_and_clears_watch(policy):
    state = TierState("gold", True, 2)
    decision = close(policy, state, "40000.00", now="60000.00")
    assert decision.change == "watch_cleared" and decision.state == TierState("gold")


def test_a_good_month_without_watch_changes_nothing(policy):
    decision = close(policy, TierState("gold"), "80000.00")
    assert decision.change is None


def test_configured_tiers_replace_the_defaults():
    from shared.settings.tiers import TierRule

    policy = TierPolicy.from_rules([
        TierRule(id="basic", name="b", floor="0.00"),
        TierRule(id="vip", name="v", floor="100.00", downgrade_after_months=1),
    ])
    assert policy.on_aum(TierState("basic"), D("100.00")).state.tier == "vip"
    assert close(policy, TierState("vip"), "99.99").state.tier == "basic"
