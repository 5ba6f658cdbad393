"""Which event type travels on which topic: the one registry every service reads."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from shared.contracts.events import (
    AccountV1,
    AssignmentChangedV1,
    AumV1,
    BalanceV1,
    ContactLoggedV1,
    CustomerV1,
    FeeAssessedV1,
    PostingTieredV1,
    PostingV1,
    SignalV1,
    TierChangedV1,
)


@dataclass(frozen=True)
class EventType:
    topic: str
    ce_type: str
    model: type[BaseModel]
    inbound: bool
    public: bool = True

    def key_of(self, data: BaseModel) -> str:
        """The Kafka key: the customer id, so each customer's events stay in order."""
        customer_id = getattr(data, "customer_id", None)
        if customer_id is None:
            customer_id = data.posting.customer_id  # type: ignore[attr-defined]
        return customer_id


CUSTOMERS = "bank.customers"
ACCOUNTS = "bank.accounts"
POSTINGS = "bank.postings"
BALANCES = "bank.balances"
AUM = "strata.aum"
TIERS = "strata.tiers"
SIGNALS = "strata.signals"
FEES = "strata.fees"
ASSIGNMENTS = "strata.assignments"
POSTINGS_TIERED = "strata.postings.tiered"
CONTACTS = "strata.contacts"

EVENT_TYPES: tuple[EventType, ...] = (
    EventType(CUSTOMERS, "bank.customer.v1", CustomerV1, inbound=True),
    EventType(ACCOUNTS, "bank.account.v1", AccountV1, inbound=True),
    EventType(POSTINGS, "bank.posting.v1", PostingV1, inbound=True),
    EventType(BALANCES, "bank.balance.v1", BalanceV1, inbound=True),
    EventType(AUM, "strata.aum.v1", AumV1, inbound=False),
    EventType(TIERS, "strata.tier_changed.v1", TierChangedV1, inbound=False),
    EventType(SIGNALS, "strata.signal.v1", SignalV1, inbound=False),
    EventType(FEES, "strata.fee_assessed.v1", FeeAssessedV1, inbound=False),
    EventType(ASSIGNMENTS, "strata.assignment_changed.v1", AssignmentChangedV1, inbound=False),
    EventType(POSTINGS_TIERED, "strata.posting_tiered.v1", PostingTieredV1, inbound=False, public=False),
    EventType(CONTACTS, "strata.contact_logged.v1", ContactLoggedV1, inbound=False, public=False),
)

BY_CE_TYPE: dict[str, EventType] = {t.ce_type: t for t in EVENT_TYPES}
BY_TOPIC: dict[str, EventType] = {t.topic: t for t in EVENT_TYPES}
BY_MODEL: dict[type[BaseModel], EventType] = {t.model: t for t in EVENT_TYPES}


def dead_letter_topic(topic: str) -> str:
    """Where events of ``topic`` that cannot be processed go, with the reason in a header."""
    return f"{topic}.dlq"


def all_topics() -> list[str]:
    """Every topic Strata reads or writes, with their dead-letter topics."""
    topics = [t.topic for t in EVENT_TYPES]
    return topics + [dead_letter_topic(t) for t in topics]
