"""What pricing reads and writes on the bus.

Postings come from ``strata.postings.tiered``, never from ``bank.postings``: tiering passes each
posting on with the tier in force right after it (see the package docstring for why).
"""

from shared.contracts import topics
from services.pricing import service

SUBSCRIPTIONS = {
    topics.POSTINGS_TIERED: service.on_posting_tiered,
    topics.TIERS: service.on_tier_changed,
    topics.CUSTOMERS: service.on_customer,
}
EMITS = (topics.FEES,)
