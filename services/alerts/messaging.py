"""What alerts reads and writes on the bus."""

from shared.contracts import topics
from services.alerts import service

SUBSCRIPTIONS = {
    topics.AUM: service.on_aum,
    topics.TIERS: service.on_tier,
    topics.POSTINGS: service.on_posting,
    topics.ACCOUNTS: service.on_account,
    topics.CUSTOMERS: service.on_customer,
    topics.ASSIGNMENTS: service.on_assignment,
}
EMITS = (topics.SIGNALS,)
