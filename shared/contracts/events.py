"""The data of every event of the outside contract (README.md: Topics), as strict pydantic models.

Inbound models refuse what core banking must never send (unknown fields, floats for money,
naive times, negative asset balances, numbers or booleans spelt as strings: pydantic's lax mode
would read ``"17"`` as 17 and ``"yes"`` as true); outbound models are what Strata promises to emit.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.contracts.types import (
    AUM_PRODUCT_TYPES,
    Amount,
    BankDate,
    Currency,
    Identifier,
    Money,
    NoNul,
    NonNegativeMoney,
    PositiveAmount,
    PositiveMoney,
    ProductType,
    RiskLevel,
    ShortText,
    Tags,
    Timestamp,
    TxType,
)


def built(model: type[BaseModel], **values: Any) -> Any:
    """An instance of ``model`` from values Strata made itself (an event it emits), without
    validating them again: what ``model_construct`` does, at a fraction of its cost (every
    field must be given, by its field name). A test checks the two serialize alike."""
    instance = model.__new__(model)
    values = {name: values[name] for name in model.model_fields}  # in the model's order
    object.__setattr__(instance, "__dict__", values)
    object.__setattr__(instance, "__pydantic_fields_set__", set(values))
    object.__setattr__(instance, "__pydantic_extra__", None)
    object.__setattr__(instance, "__pydantic_private__", None)
    return instance


class ContractModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


# --- inbound, from core banking -------------------------------------------------------------

AttributeValue = Annotated[str, NoNul] | int | bool | None


class CustomerV1(ContractModel):
    """``bank.customer.v1``: an upsert of a customer's master data from one source.

    Core banking (``source: core``) sends the full record; other sources (social security, tax,
    card system...) may send only ``attributes``, which are kept per source with provenance.
    """

    customer_id: Identifier
    name: ShortText | None = None
    id_number: str | None = Field(default=None, pattern=r"^[0-9]{17}[0-9Xx]$|^[A-Za-z0-9]{6,20}$")
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9\-]{5,20}$")
    birth_date: BankDate | None = None
    gender: Literal["F", "M", "U"] | None = None
    home_branch_id: Identifier | None = None
    household_id: Identifier | None = None
    household_role: Literal["head", "spouse", "child", "parent", "member"] | None = None
    risk_level: RiskLevel | None = None
    tags: Tags = Field(default_factory=list)
    auto_points_offset: bool = Field(default=False, strict=True)
    attributes: dict[str, AttributeValue] = Field(default_factory=dict, max_length=100)
    source: Identifier = "core"
    updated_at: Timestamp

    @model_validator(mode="after")
    def _core_record_is_complete(self) -> CustomerV1:
        if self.source == "core" and (self.name is None or self.home_branch_id is None):
            raise ValueError("a core-banking customer record needs name and home_branch_id")
        return self


class AccountV1(ContractModel):
    """``bank.account.v1``: an upsert of an account or product holding."""

    account_id: Identifier
    customer_id: Identifier
    branch_id: Identifier
    product_type: ProductType
    product_code: Identifier
    status: Literal["open", "closed", "dormant", "frozen"]
    opened_on: BankDate
    maturity_date: BankDate | None = None
    card_expiry: BankDate | None = None


class PostingV1(ContractModel):
    """``bank.posting.v1``: one posted transaction on one account."""

    posting_id: Identifier
    customer_id: Identifier
    account_id: Identifier
    account_seq: int = Field(ge=1, le=2**62, strict=True)
    product_type: ProductType
    direction: Literal["debit", "credit"]
    amount: PositiveAmount
    balance_after: Amount
    currency: Currency
    tx_type: TxType
    channel: Identifier
    counterparty_bank: Identifier | None = None
    cross_region: bool = Field(default=False, strict=True)
    branch_id: Identifier
    posted_at: Timestamp

    @model_validator(mode="after")
    def _asset_balance_not_negative(self) -> PostingV1:
        if self.product_type in AUM_PRODUCT_TYPES and self.balance_after < 0:
            raise ValueError(f"balance_after of a {self.product_type} cannot be negative")
        return self


class BalanceV1(ContractModel):
    """``bank.balance.v1``: a balance or market-value snapshot of one account."""

    customer_id: Identifier
    account_id: Identifier
    product_type: ProductType
    balance: Amount
    currency: Currency
    as_of: Timestamp

    @model_validator(mode="after")
    def _asset_balance_not_negative(self) -> BalanceV1:
        if self.product_type in AUM_PRODUCT_TYPES and self.balance < 0:
            raise ValueError(f"balance of a {self.product_type} cannot be negative")
        return self


# --- outbound, from Strata ------------------------------------------------------------------


class AumV1(ContractModel):
    """``strata.aum.v1``: a customer's AUM changed."""

    customer_id: Identifier
    aum: NonNegativeMoney
    mtd_average_daily_aum: NonNegativeMoney
    by_product_type: dict[str, Money]
    liabilities: dict[str, Money] = Field(default_factory=dict)
    business_date: date
    as_of: Timestamp
    tier: str | None = Field(default=None, description=(
        "the tier in force for the customer right after this AUM change (absent from events "
        "emitted before it was added)"))
    placement: bool = Field(default=False, description=(
        "part of the customer's first placement (the first AUM Strata sees of them, at go-live "
        "or in a backfill): their holdings, not money that flowed in"))
    balances: dict[str, Money] = Field(default_factory=dict, description=(
        "the balance now of each account this change moved, by account id"))
    changed_at: Timestamp | None = Field(default=None, description=(
        "when the change happened: the time of the posting or snapshot that moved the AUM, earlier "
        "than as_of when it arrived after later ones; its date in the bank's zone is the business "
        "day the change belongs to, which may be before business_date (absent from events emitted "
        "before it was added)"))


class TierChangedV1(ContractModel):
    """``strata.tier_changed.v1``: tier or watch state changed."""

    customer_id: Identifier
    from_: str = Field(alias="from")
    to: str
    reason: str
    effective_at: Timestamp
    change: Literal["upgrade", "downgrade", "watch", "watch_cleared", "initial_placement"]
    watch: bool
    aum: NonNegativeMoney
    basis: Money = Field(description="the amount the decision was made on (AUM or monthly average)")
    months_below: int | None = Field(default=None, ge=0, description=(
        "consecutive month-ends below the tier's floor counted so far (the watch's progress)"))


class SignalV1(ContractModel):
    """``strata.signal.v1``: a signal for an RM."""

    id: str
    signal_type: str
    customer_id: Identifier
    rm_id: str | None
    branch_id: str | None
    status: Literal["open", "acknowledged", "done", "expired"]
    raised_at: Timestamp
    evidence: dict[str, Any]


class FeeAssessedV1(ContractModel):
    """``strata.fee_assessed.v1``: a posting was priced."""

    posting_id: Identifier
    customer_id: Identifier
    fee_id: str | None
    tier: str
    base: Money
    waived: Money
    discount: Money
    points_used: int = Field(ge=0)
    net: Money
    rules: list[str]
    posted_at: Timestamp
    points_earned: int = Field(default=0, ge=0)
    points_balance: int | None = Field(default=None, ge=0)


class FeeAdjustedV1(ContractModel):
    """``strata.fee_adjusted.v1``: a fee already assessed is corrected in the customer's favour.

    An assessed fee has gone to core banking for collection and is never rewritten; when tiering
    decides, late, an upgrade effective before postings already priced at a lower tier in the
    same calendar month, each such fee is corrected by one of these: collect ``difference``
    (negative: refund it) and give back ``points_returned``. One per posting and decision."""

    adjustment_id: str
    posting_id: Identifier
    customer_id: Identifier
    fee_id: str
    tier_before: str
    tier_after: str
    net_before: Money
    net_after: Money
    difference: Money = Field(description="net_after - net_before: negative, the amount refunded")
    points_returned: int = Field(default=0, ge=0, description="points that paid the fee, given back")
    reason: str
    rules: list[str] = Field(description="the rules that price the posting now, in order")
    posted_at: Timestamp
    effective_at: Timestamp = Field(description="when the upgrade took effect")


class AssignmentChangedV1(ContractModel):
    """``strata.assignment_changed.v1``: a customer's primary or backup RM changed."""

    customer_id: Identifier
    role: Literal["primary", "backup"]
    from_: str | None = Field(alias="from")
    to: str | None
    reason: str
    changed_at: Timestamp
    tier: str | None = None
    branch_id: str | None = None


# --- internal, between Strata's own services -----------------------------------------------


class ContactLoggedV1(ContractModel):
    """``strata.contact_logged.v1`` (internal): an RM logged a contact with a customer, so the
    customer 360 and the segment templates know the last contact."""

    follow_up_id: str
    customer_id: Identifier
    rm_id: str | None
    channel: str
    outcome: str
    contacted_at: Timestamp
    next_contact: BankDate | None = None


# --- what tiering tells the other services, in each customer's order -------------------------
# Internal: written and read by Strata's own services only. The models take plain types (a
# Decimal, a datetime) with no validators of their own, so a reader decodes an event once, at
# the speed of pydantic's core, without checking again what tiering checked when the facts came
# in. Their fields are those of the contract models they carry (a test keeps them so).


Cents = Annotated[Decimal, Field(decimal_places=2)]
"""An amount as Strata writes it (two places at most), checked by pydantic's core alone."""


class Trusted(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)


class PostingFact(Trusted):
    """A ``bank.posting.v1`` as tiering applied it."""

    posting_id: str
    customer_id: str
    account_id: str
    account_seq: int
    product_type: str
    direction: str
    amount: Cents
    balance_after: Cents
    currency: str
    tx_type: str
    channel: str
    counterparty_bank: str | None = None
    cross_region: bool = False
    branch_id: str
    posted_at: datetime


class CustomerFact(Trusted):
    """A core-banking ``bank.customer.v1`` as tiering applied it (the master data the other
    services' rules use; identity numbers and phones stay with profile)."""

    customer_id: str
    name: str | None = None
    birth_date: date | None = None
    gender: str | None = None
    home_branch_id: str | None = None
    household_id: str | None = None
    household_role: str | None = None
    risk_level: str | None = None
    auto_points_offset: bool = False
    updated_at: datetime


class AccountFact(Trusted):
    """A ``bank.account.v1`` as tiering applied it."""

    account_id: str
    customer_id: str
    branch_id: str
    product_type: str
    product_code: str
    status: str
    opened_on: date
    maturity_date: date | None = None
    card_expiry: date | None = None


class TierChange(Trusted):
    """A tier decision, as in ``strata.tier_changed.v1``."""

    from_: str = Field(alias="from")
    to: str
    change: str
    reason: str
    effective_at: datetime
    watch: bool
    months_below: int = 0
    basis: Cents


class TieringChangeV1(Trusted):
    """``strata.tiering.change.v1`` (internal): one fact of a customer as tiering applied it, in
    the customer's order, with the customer's tier, watch and AUM right after it and the tier
    decisions it caused. Pricing, alerts and assignment read this one stream, so every decision
    they make about a customer sees the customer's facts in one order, the order tiering applied
    them in (Kafka orders one partition of one topic, never across topics)."""

    customer_id: str
    fact: Literal["posting", "balance", "customer", "account", "month_end", "household"]
    at: datetime
    """The fact's own time (``posted_at``, ``as_of``, ``updated_at``; a month-end close: the
    first instant of the next month). ``household``: another member's fact moved the household's
    AUM, and with it this customer's tier (household aggregation)."""
    posting: PostingFact | None = None
    customer: CustomerFact | None = None
    account: AccountFact | None = None
    tier: str
    watch: bool = False
    months_below: int = 0
    aum: Cents
    aum_before: Cents
    """The AUM before this fact (equal to ``aum`` when it moved none)."""
    average_aum_12m: Cents = Decimal("0.00")
    business_date: date
    placement: bool = False
    """Part of the customer's first placement (see ``strata.aum.v1``)."""
    stale: bool = False
    """A posting older than one applied to its account (a lower ``account_seq``): it happened,
    so it is priced, but it moved no balance."""
    tier_changes: list[TierChange] = Field(default_factory=list)
