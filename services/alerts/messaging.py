"""What alerts reads and writes on the bus.

Postings come from ``strata.postings.tiered``, never from ``bank.postings``: tiering passes each
posting on with the tier and AUM right after it, so a large outflow is judged by its own place in
the customer's ordered stream (see :func:`services.alerts.service.on_posting_tiered`).
"""

from shared.contracts import topics
from services.alerts import service

SUBSCRIPTIONS = {
    topics.AUM: service.on_aum,
    topics.TIERS: service.on_tier,
    topics.POSTINGS_TIERED: service.on_posting_tiered,
    topics.ACCOUNTS: service.on_account,
    topics.CUSTOMERS: service.on_customer,
    topics.ASSIGNMENTS: service.on_assignment,
}
EMITS = (topics.SIGNALS,)
