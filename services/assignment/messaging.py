"""What assignment reads and writes on the bus."""

from shared.contracts import topics
from services.assignment import service

SUBSCRIPTIONS = {
    topics.TIERS: service.on_tier_changed,
    topics.CUSTOMERS: service.on_customer,
    topics.AUM: service.on_aum,
    topics.SIGNALS: service.on_signal,
}
EMITS = (topics.ASSIGNMENTS, topics.CONTACTS)
