"""The customer mix looks like a real bank's (9 % of customers, most of the assets)."""

from __future__ import annotations

from datetime import date

from strata.simulator.feed import Feed
from strata.simulator.report import distribution, render


def test_the_50k_to_1m_band_is_about_9_percent_of_customers_and_most_of_the_aum(settings):
    for seed in (1, 2, 3):
        dist = distribution(Feed(seed, 5000, date(2026, 1, 1), settings))
        assert 0.06 <= dist.reference_customers <= 0.12
        assert dist.reference_aum > 0.50
        bands = {b.tier: b for b in dist.bands}
        assert bands["mass"].customers > 0.85 * dist.customers
        assert bands["private"].customers <= 0.002 * dist.customers


def test_the_private_tail_is_thin_but_there(settings):
    dist = distribution(Feed(1, 20_000, date(2026, 1, 1), settings))
    private = {b.tier: b for b in dist.bands}["private"]
    assert 1 <= private.customers <= 20


def test_the_report_names_each_band_the_reference_share_and_the_events(four_months):
    feed, *_ = four_months
    text = render(feed, {"mass": 1, "gold": 2})
    for word in ("mass", "gold", "platinum", "diamond", "private", "50,000–1,000,000",
                 "bank.posting.v1", "salary", "Tiers the feed leads to"):
        assert word in text
