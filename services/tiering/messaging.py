"""What tiering reads and writes on the bus."""

from shared.contracts import topics
from services.tiering import service

SUBSCRIPTIONS = {
    topics.POSTINGS: service.on_posting,
    topics.BALANCES: service.on_balance,
    topics.ACCOUNTS: service.on_account,
    topics.CUSTOMERS: service.on_customer,
}
EMITS = (topics.AUM, topics.TIERS, topics.POSTINGS_TIERED)
