"""What alerts reads and writes on the bus.

Everything tiering tells alerts comes from one internal topic, ``strata.tiering.changes``: each
customer's tiered postings, tier changes and AUM events in the order tiering made them (see
:func:`services.tiering.service.to_alerts`). Kafka orders one partition of one topic, never
across topics, so alerts reads none of ``strata.aum``, ``strata.tiers`` and
``strata.postings.tiered``: read from three topics, the same events could raise different
signals depending on which topic was read first (e.g. after a restart with a backlog).
Accounts, customers and assignments carry master data and RM routing, which no signal rule
judges in order with tiering's changes.
"""

from shared.contracts import topics
from services.alerts import service

SUBSCRIPTIONS = {
    topics.TIERING_CHANGES: service.on_tiering_change,
    topics.ACCOUNTS: service.on_account,
    topics.CUSTOMERS: service.on_customer,
    topics.ASSIGNMENTS: service.on_assignment,
}
EMITS = (topics.SIGNALS,)
