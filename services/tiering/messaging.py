"""What tiering reads and writes on the bus.

Besides its public events, tiering passes each of them on to ``strata.tiering.changes`` (internal,
read by alerts), one ordered stream per customer (see :func:`services.tiering.service.to_alerts`).
"""

from shared.contracts import topics
from services.tiering import service

SUBSCRIPTIONS = {
    topics.POSTINGS: service.on_posting,
    topics.BALANCES: service.on_balance,
    topics.ACCOUNTS: service.on_account,
    topics.CUSTOMERS: service.on_customer,
}
EMITS = (topics.AUM, topics.TIERS, topics.POSTINGS_TIERED, topics.TIERING_CHANGES)
