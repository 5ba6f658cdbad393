"""A small bank shared by the simulator's tests: building and running it once keeps them fast."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from shared.settings import Settings
from strata.simulator.expected import ExpectedTiers
from strata.simulator.feed import Feed

START = date(2026, 1, 1)
CUSTOMERS = 1500
MONTHS_RUN = 4


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def four_months(settings):
    """1,500 customers over four months with month-end closes: (feed, master events, stream
    events, expected tiers)."""
    feed = Feed(11, CUSTOMERS, START, settings)
    expected = ExpectedTiers(feed.customers, settings)
    feed.observer = expected
    master = list(feed.master_events())
    stream = []
    day = START
    while day < date(2026, 1 + MONTHS_RUN, 1):
        if day.day == 1 and day > START:
            expected.close_month(f"{day - timedelta(days=1):%Y-%m}")
        stream += list(feed.day_events(day))
        day += timedelta(days=1)
    return feed, master, stream, expected
