"""Reading the services' numbers for the summary, whatever exists."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from strata.simulator.screen import fees_summary, read_metrics, signals_raised


def test_signals_are_read_from_the_raised_counter_by_type():
    registry = CollectorRegistry()
    raised = Counter("strata_signals_raised_total", "x", ["signal_type"], registry=registry)
    suppressed = Counter("strata_signals_suppressed_total", "x", ["signal_type"], registry=registry)
    raised.labels("birthday").inc(3)
    raised.labels("near_upgrade").inc(2)
    suppressed.labels("birthday").inc(50)
    total, by_type = signals_raised(read_metrics(registry))
    assert total == 5 and by_type == {"birthday": 3, "near_upgrade": 2}


def test_fees_charged_and_waived_by_name_or_by_outcome_label():
    registry = CollectorRegistry()
    Counter("strata_fees_charged_total", "x", ["fee"], registry=registry).labels("atm").inc(4)
    Counter("strata_fees_waived_cny_total", "x", ["fee"], registry=registry).labels("sms").inc(6)
    fees = fees_summary(read_metrics(registry))
    assert fees["charged"] == 4 and fees["waived_cny"] == 6 and fees["waived"] is None
    other = CollectorRegistry()
    Counter("strata_pricing_fees_total", "x", ["outcome"], registry=other).labels("waived").inc(2)
    assert fees_summary(read_metrics(other))["waived"] == 2


def test_nothing_to_read_gives_none_so_the_screen_shows_a_dash():
    metrics = read_metrics(CollectorRegistry())
    assert signals_raised(metrics) is None and fees_summary(metrics) is None
