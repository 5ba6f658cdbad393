"""Pricing's tables. Money columns are integer cents (``MoneyType``); points are integers."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, Date, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, BigId, MoneyType, UtcDateTime


class PricingCustomer(Base):
    """What pricing keeps of a customer: the tier now (for quotes and products), the master
    data that changes prices (automatic points offset, risk preference) and the points balance."""

    __tablename__ = "pricing_customers"

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tier: Mapped[str | None] = mapped_column(String(32), nullable=True)
    tier_as_of: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    """When tiering decided ``tier`` (the time of its event): the latest decision wins."""
    aum: Mapped[Decimal] = mapped_column(MoneyType, default=Decimal("0.00"))
    average_aum_12m: Mapped[Decimal] = mapped_column(MoneyType, default=Decimal("0.00"))
    risk_level: Mapped[str | None] = mapped_column(String(2), nullable=True)
    auto_points_offset: Mapped[bool] = mapped_column(Boolean, default=False)
    master_updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    points_balance: Mapped[int] = mapped_column(BigInteger, default=0)
    points_oldest_year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The earn year of the oldest lot with points left (None: no points), so a posting knows
    without a query whether any points have expired."""
    redeem_allowance: Mapped[int] = mapped_column(BigInteger, default=0)
    """Points the customer asked to spend on their next fees (without automatic offset)."""
    priced_through: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    """The latest ``posted_at`` priced: an upgrade effective at or after it re-prices nothing,
    so pricing reads no fees back for it."""


class PricingFee(Base):
    """A priced posting: what it was, what it was priced on, and the price with its rules.
    ``posting_id`` is unique: a posting is priced once, however often it arrives."""

    __tablename__ = "pricing_fees"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    posting_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[str] = mapped_column(String(64))
    tx_type: Mapped[str] = mapped_column(String(40))
    product_type: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(64))
    counterparty_bank: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cross_region: Mapped[bool] = mapped_column(Boolean, default=False)
    amount: Mapped[Decimal] = mapped_column(MoneyType)
    posted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    month: Mapped[str] = mapped_column(String(7))
    tier: Mapped[str] = mapped_column(String(32))
    fee_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    use_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    base: Mapped[Decimal] = mapped_column(MoneyType)
    waived: Mapped[Decimal] = mapped_column(MoneyType)
    discount: Mapped[Decimal] = mapped_column(MoneyType)
    points_used: Mapped[int] = mapped_column(BigInteger, default=0)
    points_value: Mapped[Decimal] = mapped_column(MoneyType)
    net: Mapped[Decimal] = mapped_column(MoneyType)
    points_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    points_balance: Mapped[int] = mapped_column(BigInteger, default=0)
    rules: Mapped[str] = mapped_column(Text)
    """JSON list of rule ids in the order applied."""
    breakdown: Mapped[str] = mapped_column(Text)
    """JSON list of steps: rule, effect, amount, note."""
    average_aum_12m: Mapped[Decimal] = mapped_column(MoneyType)
    fees_paid: Mapped[Decimal] = mapped_column(MoneyType)
    """Fees paid in the contribution window before this posting."""
    contribution_score: Mapped[Decimal] = mapped_column(MoneyType)
    aum: Mapped[Decimal | None] = mapped_column(MoneyType, nullable=True)
    """The customer's AUM right after the posting, as tiering passed it on (None: priced before
    it was kept): the basis a tier-policy simulation works out the tier at the posting from."""
    priced_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("posting_id", name="uq_pricing_fees_posting_id"),
        Index("ix_pricing_fees_customer", "customer_id", "id"),
        Index("ix_pricing_fees_posted_at", "posted_at"),
    )


class PricingFeeAdjustment(Base):
    """A correction of an assessed fee (which is never rewritten): what the posting costs after
    an upgrade decided late, and why. The latest of a posting's is what it costs now."""

    __tablename__ = "pricing_fee_adjustments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    adjustment_id: Mapped[str] = mapped_column(String(64))
    """Derived from the posting and the tier decision (the ``strata.fee_adjusted.v1``'s id)."""
    posting_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(64))
    month: Mapped[str] = mapped_column(String(7))
    fee_id: Mapped[str] = mapped_column(String(64))
    posted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    tier_before: Mapped[str] = mapped_column(String(32))
    tier_after: Mapped[str] = mapped_column(String(32))
    waived: Mapped[Decimal] = mapped_column(MoneyType)
    discount: Mapped[Decimal] = mapped_column(MoneyType)
    points_used: Mapped[int] = mapped_column(BigInteger)
    points_value: Mapped[Decimal] = mapped_column(MoneyType)
    net_before: Mapped[Decimal] = mapped_column(MoneyType)
    net_after: Mapped[Decimal] = mapped_column(MoneyType)
    difference: Mapped[Decimal] = mapped_column(MoneyType)
    """``net_after - net_before``: negative, refunded."""
    points_returned: Mapped[int] = mapped_column(BigInteger, default=0)
    reason: Mapped[str] = mapped_column(Text)
    rules: Mapped[str] = mapped_column(Text)
    """JSON list of the rule ids that price the posting now."""
    breakdown: Mapped[str] = mapped_column(Text)
    effective_at: Mapped[datetime] = mapped_column(UtcDateTime)
    """When the upgrade took effect."""
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("adjustment_id", name="uq_pricing_fee_adjustments_adjustment_id"),
        Index("ix_pricing_fee_adjustments_customer", "customer_id", "month"),
    )


class PricingUsage(Base):
    """A customer's uses of one fee in one calendar month (Asia/Shanghai), and what they were
    charged and paid for it: the free-use counters and the fees of the contribution score."""

    __tablename__ = "pricing_usage"

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    fee_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    free_uses: Mapped[int] = mapped_column(Integer, default=0)
    """Of ``uses``, those a tier's free-use benefit paid: what the tier's free uses count against."""
    charged: Mapped[Decimal] = mapped_column(MoneyType, default=Decimal("0.00"))
    paid: Mapped[Decimal] = mapped_column(MoneyType, default=Decimal("0.00"))


class PricingPointsLot(Base):
    """The points a customer earned in one calendar year, and what became of them."""

    __tablename__ = "pricing_points_lots"

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    earned: Mapped[int] = mapped_column(BigInteger, default=0)
    spent: Mapped[int] = mapped_column(BigInteger, default=0)
    expired: Mapped[int] = mapped_column(BigInteger, default=0)

    @property
    def remaining(self) -> int:
        return self.earned - self.spent - self.expired


class PricingPointsLedger(Base):
    """Every earn, spend and expiry of points, with the posting (or request) that caused it."""

    __tablename__ = "pricing_points_ledger"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))
    points: Mapped[int] = mapped_column(BigInteger)
    """Signed: earned points are positive, spent and expired ones negative."""
    balance_after: Mapped[int] = mapped_column(BigInteger)
    lot_year: Mapped[int] = mapped_column(Integer)
    rule: Mapped[str] = mapped_column(String(64))
    posting_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    """The business moment: the posting's time, or the moment the lot expired."""
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    note: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_pricing_points_ledger_customer", "customer_id", "id"),)


class PricingRedemption(Base):
    """A customer's request to pay their next fees with points (idempotent by request id)."""

    __tablename__ = "pricing_redemptions"

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    points: Mapped[int] = mapped_column(BigInteger)
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PricingExpiryRun(Base):
    """The daily points-expiry runs: when each business date was swept and what expired."""

    __tablename__ = "pricing_expiry_runs"

    business_date: Mapped[date] = mapped_column(Date, primary_key=True)
    first_run_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_run_at: Mapped[datetime] = mapped_column(UtcDateTime)
    customers: Mapped[int] = mapped_column(BigInteger, default=0)
    points: Mapped[int] = mapped_column(BigInteger, default=0)
