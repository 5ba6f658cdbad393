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
    FeeAdjustedV1,
    FeeAssessedV1,
    PostingV1,
    SignalV1,
    TierChangedV1,
    TieringChangeV1,
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
        return data.customer_id  # type: ignore[attr-defined]


CUSTOMERS = "bank.customers"
ACCOUNTS = "bank.accounts"
POSTINGS = "bank.postings"
BALANCES = "bank.balances"
AUM = "strata.aum"
TIERS = "strata.tiers"
SIGNALS = "strata.signals"
FEES = "strata.fees"
FEE_ADJUSTMENTS = "strata.fee_adjustments"
ASSIGNMENTS = "strata.assignments"
CONTACTS = "strata.contacts"
TIERING_CHANGES = "strata.tiering.changes"
"""Internal: every fact tiering applies to a customer (posting, snapshot, customer or account
record, month-end decision) with the customer's tier and AUM right after it, one record each,
in the order tiering applied them, keyed by customer: pricing, alerts and assignment read a
customer's facts in one order from it (``shared.contracts.events.TieringChangeV1``)."""

EVENT_TYPES: tuple[EventType, ...] = (
    EventType(CUSTOMERS, "bank.customer.v1", CustomerV1, inbound=True),
    EventType(ACCOUNTS, "bank.account.v1", AccountV1, inbound=True),
    EventType(POSTINGS, "bank.posting.v1", PostingV1, inbound=True),
    EventType(BALANCES, "bank.balance.v1", BalanceV1, inbound=True),
    EventType(AUM, "strata.aum.v1", AumV1, inbound=False),
    EventType(TIERS, "strata.tier_changed.v1", TierChangedV1, inbound=False),
    EventType(SIGNALS, "strata.signal.v1", SignalV1, inbound=False),
    EventType(FEES, "strata.fee_assessed.v1", FeeAssessedV1, inbound=False),
    EventType(FEE_ADJUSTMENTS, "strata.fee_adjusted.v1", FeeAdjustedV1, inbound=False),
    EventType(ASSIGNMENTS, "strata.assignment_changed.v1", AssignmentChangedV1, inbound=False),
    EventType(CONTACTS, "strata.contact_logged.v1", ContactLoggedV1, inbound=False, public=False),
    EventType(TIERING_CHANGES, "strata.tiering.change.v1", TieringChangeV1, inbound=False, public=False),
)

BY_CE_TYPE: dict[str, EventType] = {t.ce_type: t for t in EVENT_TYPES}
BY_TOPIC: dict[str, tuple[EventType, ...]] = {
    topic: tuple(t for t in EVENT_TYPES if t.topic == topic) for topic in dict.fromkeys(t.topic for t in EVENT_TYPES)
}
"""The event types each topic carries (one each)."""
BY_MODEL: dict[type[BaseModel], EventType] = {}
"""A model's own event type, the first registered for it (its public one); another topic that
carries the same model is named when emitting (:func:`event_type_on`)."""
for _t in EVENT_TYPES:
    BY_MODEL.setdefault(_t.model, _t)


def event_type_on(topic: str, model: type[BaseModel]) -> EventType:
    """The event type that carries ``model`` on ``topic``."""
    for etype in BY_TOPIC.get(topic, ()):
        if etype.model is model:
            return etype
    raise KeyError(f"{topic} carries no {model.__name__}")


def dead_letter_topic(topic: str) -> str:
    """Where events of ``topic`` that cannot be processed go, with the reason in a header."""
    return f"{topic}.dlq"


def all_topics() -> list[str]:
    """Every topic Strata reads or writes, with their dead-letter topics."""
    topics = list(BY_TOPIC)
    return topics + [dead_letter_topic(t) for t in topics]
