"""Profile's tables: the customer base and the customer 360 read model. Money columns are
integer cents (``MoneyType``); JSON held as text so both databases read it alike."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, Date, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, MoneyType, UtcDateTime


class ProfileCustomer(Base):
    """One row per customer: master data from core banking and the latest of every Strata
    topic, so the customer 360 and segment queries read one indexed row."""

    __tablename__ = "profile_customers"

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # master data (bank.customers, source core)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    id_number: Mapped[str | None] = mapped_column(String(32), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    birth_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    gender: Mapped[str | None] = mapped_column(String(1), nullable=True)
    home_branch_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    household_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    household_role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    risk_level: Mapped[str | None] = mapped_column(String(2), nullable=True)
    tags: Mapped[str] = mapped_column(Text, default="[]")
    auto_points_offset: Mapped[bool] = mapped_column(Boolean, default=False)
    master_updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # strata.aum
    aum: Mapped[Decimal] = mapped_column(MoneyType, default=Decimal("0.00"))
    mtd_average_daily_aum: Mapped[Decimal] = mapped_column(MoneyType, default=Decimal("0.00"))
    aum_by_product_type: Mapped[str] = mapped_column(Text, default="{}")
    liabilities: Mapped[str] = mapped_column(Text, default="{}")
    aum_business_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    aum_as_of: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # the latest strata.aum's balance of each product type of the contract, as columns so that a
    # branch report sums them in one pass (``BALANCE_COLUMNS``)
    balance_demand_deposit: Mapped[Decimal] = mapped_column(MoneyType, default=Decimal("0.00"))
    balance_time_deposit: Mapped[Decimal] = mapped_column(MoneyType, default=Decimal("0.00"))
    balance_wealth_product: Mapped[Decimal] = mapped_column(MoneyType, default=Decimal("0.00"))
    balance_fund: Mapped[Decimal] = mapped_column(MoneyType, default=Decimal("0.00"))
    balance_insurance: Mapped[Decimal] = mapped_column(MoneyType, default=Decimal("0.00"))
    balance_precious_metal: Mapped[Decimal] = mapped_column(MoneyType, default=Decimal("0.00"))
    balance_loan: Mapped[Decimal] = mapped_column(MoneyType, default=Decimal("0.00"))
    balance_credit_card: Mapped[Decimal] = mapped_column(MoneyType, default=Decimal("0.00"))
    # strata.tiers
    tier: Mapped[str] = mapped_column(String(32))
    watch: Mapped[bool] = mapped_column(Boolean, default=False)
    tier_effective_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # strata.assignments
    primary_rm: Mapped[str | None] = mapped_column(String(64), nullable=True)
    primary_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    backup_rm: Mapped[str | None] = mapped_column(String(64), nullable=True)
    backup_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # strata.signals and strata.fees
    open_signals: Mapped[int] = mapped_column(Integer, default=0)
    points_balance: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    points_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    fees_charged: Mapped[Decimal] = mapped_column(MoneyType, default=Decimal("0.00"))
    fees_priced: Mapped[int] = mapped_column(Integer, default=0)
    last_contact_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    __table_args__ = (
        Index("ix_profile_customers_home_branch_tier", "home_branch_id", "tier"),
        Index("ix_profile_customers_household_id", "household_id"),
        Index("ix_profile_customers_tier_aum", "tier", "aum"),
        Index("ix_profile_customers_primary_rm", "primary_rm"),
    )


class ProfileAttribute(Base):
    """The latest value of one attribute from one source (core, social security, tax...)."""

    __tablename__ = "profile_attributes"

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ProfileTag(Base):
    """A customer's tag, one row each, so segments find tags through an index."""

    __tablename__ = "profile_tags"

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tag: Mapped[str] = mapped_column(String(40), primary_key=True)

    __table_args__ = (Index("ix_profile_tags_tag", "tag"),)


class ProfileAccount(Base):
    """An account or product holding (bank.accounts) and its balance now (strata.aum).

    A balance may name an account before its record arrives (the two topics are read in no
    fixed order): the row then holds the owner and the balance only, and the record's columns
    are NULL (``event_at`` among them) until the record fills them in. Holdings are the rows
    with a record; ``status != 'closed'`` leaves the others out too."""

    __tablename__ = "profile_accounts"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    branch_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    product_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    product_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    opened_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    maturity_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    card_expiry: Mapped[date | None] = mapped_column(Date, nullable=True)
    event_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    """The time of the record applied; NULL while the row holds only a balance."""
    balance: Mapped[Decimal | None] = mapped_column(MoneyType, nullable=True)
    """The balance now, from the latest strata.aum that named the account; NULL until one did."""

    __table_args__ = (
        Index("ix_profile_accounts_customer_id", "customer_id"),
        Index("ix_profile_accounts_branch_id", "branch_id", "status"),
    )


class ProfileSignal(Base):
    """A signal raised for an RM, by id; open until a status change closes it."""

    __tablename__ = "profile_signals"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    signal_type: Mapped[str] = mapped_column(String(64))
    rm_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    branch_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime)
    evidence: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_profile_signals_customer_status", "customer_id", "status"),)


class ProfileFeePosting(Base):
    """A priced posting, once per posting id whatever the event id it came under."""

    __tablename__ = "profile_fee_postings"

    posting_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    fee_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    net: Mapped[Decimal] = mapped_column(MoneyType)
    points_used: Mapped[int] = mapped_column(BigInteger)
    posted_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_profile_fee_postings_customer_posted", "customer_id", "posted_at"),)


class ProfileTierChange(Base):
    """A tier or watch change, once per customer, time, kind of change and the tiers it moved
    between: two upgrades of one instant (mass to gold, then gold to platinum on balances as of
    one moment) are two changes."""

    __tablename__ = "profile_tier_changes"

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    effective_at: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    change: Mapped[str] = mapped_column(String(32), primary_key=True)
    from_tier: Mapped[str] = mapped_column(String(32), primary_key=True)
    to_tier: Mapped[str] = mapped_column(String(32), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_profile_tier_changes_effective_at", "effective_at"),)


class ProfileCustomerFlow(Base):
    """A customer's net AUM change on one business day: the sum of the changes of every applied
    strata.aum event of that business date, kept per customer so that a branch report sums the
    flows of whoever its members are when it is asked (``services.profile.domain.flow_of_day``).
    The key (customer, day) is also the index the report's join reads."""

    __tablename__ = "profile_customer_flows"

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    net: Mapped[Decimal] = mapped_column(MoneyType)


class ProfileSegment(Base):
    """A segment template stored by an analyst (shipped ones live in settings)."""

    __tablename__ = "profile_segments"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str] = mapped_column(Text)
    filter: Mapped[str] = mapped_column(Text)
    parameters: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


BALANCE_COLUMNS: dict[str, str] = {
    t: f"balance_{t}" for t in ("demand_deposit", "time_deposit", "wealth_product", "fund", "insurance",
                                "precious_metal", "loan", "credit_card")
}
"""Product type -> the customer column holding its balance (every product type of the contract)."""
