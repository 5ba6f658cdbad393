"""What tiering reads and writes on the bus.

Tiering reads a customer's facts from four topics and applies them in event-time order across
them (``ORDERED``; ``shared.runtime.order``): master data, accounts, snapshots and postings of
one instant in that order. Every fact it applies goes on, with what it changed, to
``strata.tiering.changes`` (internal): the one ordered stream per customer that pricing, alerts
and assignment read. Its public events are ``strata.aum`` and ``strata.tiers``.
"""

from shared.contracts import topics
from services.tiering import service

ORDERED = (topics.CUSTOMERS, topics.ACCOUNTS, topics.BALANCES, topics.POSTINGS)
SUBSCRIPTIONS = {
    topics.POSTINGS: service.on_posting,
    topics.BALANCES: service.on_balance,
    topics.ACCOUNTS: service.on_account,
    topics.CUSTOMERS: service.on_customer,
}
EMITS = (topics.AUM, topics.TIERS, topics.TIERING_CHANGES)
