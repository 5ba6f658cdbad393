"""The simulated bank through real Kafka into tiering on PostgreSQL: every customer ends in the
tier the simulator itself expects from the AUM path it produced."""

from __future__ import annotations

import os
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from services.tiering.models import TieringAccount, TieringCustomer
from strata.simulator.expected import ExpectedTiers
from strata.simulator.feed import Feed
from strata.simulator.publish import Publisher
from tests.integration.conftest import distributed

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("integration_env")]

CUSTOMERS = int(os.environ.get("STRATA_TEST_SIM_CUSTOMERS", "400"))
DAYS = int(os.environ.get("STRATA_TEST_SIM_DAYS", "12"))
START = date(2026, 3, 1)


async def test_simulated_feed_through_kafka_ends_in_the_tiers_the_simulator_expects():
    async with distributed(["tiering"]) as strata:
        feed = Feed(21, CUSTOMERS, START, strata.settings)
        expected = ExpectedTiers(feed.customers, strata.settings)
        feed.observer = expected
        publisher = Publisher(strata.runtime.bus, rate=0)
        # Opening balances first: Kafka orders nothing across topics, and a posting overtaking
        # its account's opening snapshot would make a different (if equally valid) AUM path.
        await publisher.publish(feed.master_events())
        await strata.settle(120)
        for n in range(DAYS):
            await publisher.publish(feed.day_events(START + timedelta(days=n)))
        await strata.settle(120)

        async with strata.runtime.db.sessions() as session:
            tiers = dict((await session.execute(select(TieringCustomer.customer_id, TieringCustomer.tier))).all())
            balances = dict((await session.execute(select(TieringAccount.account_id, TieringAccount.balance))).all())
        wanted = {feed.bank.customer_id(c): expected.tier(c) for c in range(feed.customers)}
        assert tiers == wanted
        assert len({t for t in tiers.values()}) >= 3
        assert expected.changes["upgrade"] > 0
        ledger = feed.ledger
        for account in range(len(ledger.owner)):
            if ledger.generation[account]:
                account_id = feed.bank.account_id(ledger.owner[account], ledger.slot[account], ledger.generation[account])
                if account_id in balances:
                    assert balances[account_id] * 100 == ledger.balance[account], account_id
