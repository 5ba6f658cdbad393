"""What alerts reads and writes on the bus.

Everything alerts judges comes from one internal topic, ``strata.tiering.changes``: each
customer's facts in the order tiering applied them (customer and account records, postings
with the tier and AUM right after them, tier decisions; see
``shared.contracts.events.TieringChangeV1``). Kafka orders one partition of one topic, never
across topics: read from several, the same facts could raise different signals depending on
which topic was read first (e.g. after a restart with a backlog). Assignments only route
signals to RMs, and an active signal follows the customer's RM whenever it changes.
"""

from shared.contracts import topics
from services.alerts import service

SUBSCRIPTIONS = {
    topics.TIERING_CHANGES: service.on_tiering_change,
    topics.ASSIGNMENTS: service.on_assignment,
}
EMITS = (topics.SIGNALS,)
