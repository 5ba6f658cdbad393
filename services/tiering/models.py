"""Tiering's tables. Money columns are integer cents (``MoneyType``)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, BigInteger, Boolean, Date, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, BigId, MoneyType, UtcDateTime


class TieringAccount(Base):
    __tablename__ = "tiering_accounts"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    product_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="open")
    balance: Mapped[Decimal] = mapped_column(MoneyType, default=Decimal("0.00"))
    """The balance in force, derived from the two below (``domain.AccountPosition.balance``)."""
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    posting_balance: Mapped[Decimal] = mapped_column(MoneyType, default=Decimal("0.00"))
    """``balance_after`` of the posting with the highest ``seq``."""
    posted_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    """The latest ``posted_at`` of the postings applied."""
    snapshot_balance: Mapped[Decimal] = mapped_column(MoneyType, default=Decimal("0.00"))
    snapshot_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    seen: Mapped[str] = mapped_column(Text, default="")
    """The ``account_seq`` values applied, as ranges (``domain.SeqRanges``)."""


class TieringCustomer(Base):
    """A customer's AUM, tier and the running sum of the month's daily AUM."""

    __tablename__ = "tiering_customers"

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    household_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    aum: Mapped[Decimal] = mapped_column(MoneyType, default=Decimal("0.00"))
    liabilities: Mapped[Decimal] = mapped_column(MoneyType, default=Decimal("0.00"))
    holdings: Mapped[dict] = mapped_column(JSON, default=dict)
    """Balance in cents per product type, kept with every balance change, so the AUM event
    needs no query over the customer's accounts."""
    tier: Mapped[str] = mapped_column(String(32))
    watch: Mapped[bool] = mapped_column(Boolean, default=False)
    months_below: Mapped[int] = mapped_column(Integer, default=0)
    tier_since: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    mtd_day: Mapped[date] = mapped_column(Date)
    """The latest business day with activity (``domain.DailyAum.day``)."""
    mtd_sum: Mapped[Decimal] = mapped_column(MoneyType, default=Decimal("0.00"))
    """End-of-day AUM summed over the month's days before ``mtd_day``."""
    day_high: Mapped[Decimal] = mapped_column(MoneyType, default=Decimal("0.00"))
    """The highest AUM of ``mtd_day``."""
    average_aum_12m: Mapped[Decimal] = mapped_column(MoneyType, default=Decimal("0.00"))
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    """The latest time of a fact that moved the AUM."""
    placed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    """The time of the customer's first AUM: facts of that instant are their first placement."""
    master_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    """``updated_at`` of the latest customer record applied."""
    recent_averages: Mapped[str] = mapped_column(Text, default="")
    """The last twelve closed months' averages (``close.RecentAverages``), ``average_aum_12m``'s basis."""

    __table_args__ = (Index("ix_tiering_customers_tier", "tier"),)


class TieringHousehold(Base):
    __tablename__ = "tiering_households"

    household_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    aum: Mapped[Decimal] = mapped_column(MoneyType, default=Decimal("0.00"))


class TieringMonthlyAum(Base):
    """A month's sum of end-of-day AUM and, once the month is closed, its average."""

    __tablename__ = "tiering_monthly_aum"

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    total: Mapped[Decimal] = mapped_column(MoneyType)
    average: Mapped[Decimal | None] = mapped_column(MoneyType, nullable=True)

    __table_args__ = (Index("ix_tiering_monthly_aum_month", "month"),)


class TieringTierHistory(Base):
    __tablename__ = "tiering_tier_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    from_tier: Mapped[str] = mapped_column(String(32))
    to_tier: Mapped[str] = mapped_column(String(32))
    change: Mapped[str] = mapped_column(String(32))
    watch: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text)
    basis: Mapped[Decimal] = mapped_column(MoneyType)
    effective_at: Mapped[datetime] = mapped_column(UtcDateTime)


class TieringDailyAum(Base):
    """A customer's AUM at the end of a business day with activity, and the day's highest."""

    __tablename__ = "tiering_daily_aum"

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    aum: Mapped[Decimal] = mapped_column(MoneyType)
    high: Mapped[Decimal] = mapped_column(MoneyType)

    __table_args__ = (Index("ix_tiering_daily_aum_day", "day"),)


class TieringMonthClose(Base):
    __tablename__ = "tiering_month_closes"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    closed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    summary: Mapped[str] = mapped_column(Text)
    history_through: Mapped[date | None] = mapped_column(Date, nullable=True)
    """The latest business day tiering had applied facts of when the close ran (the next
    month's first day, say, when the close ran after it): a tier-policy simulation replays the
    history up to it before it closes the month, as the close did."""


class TieringSimulation(Base):
    """A tier-policy simulation: what was asked, how far it has got, and its answer."""

    __tablename__ = "tiering_simulations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    """``queued``, ``running``, ``done`` or ``failed``."""
    request: Mapped[str] = mapped_column(Text)
    """JSON: the candidate policy (in full) and the months."""
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    """Written with each chunk: a running simulation whose heartbeat stopped was interrupted."""
    customers_total: Mapped[int] = mapped_column(BigInteger, default=0)
    customers_done: Mapped[int] = mapped_column(BigInteger, default=0)
    result: Mapped[str | None] = mapped_column(Text, nullable=True)
    """JSON: the answer, once done."""
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class TieringSimulationCustomer(Base):
    """One customer's outcome of a simulation at the end of its period: the tier, watch and
    months below under today's policy and under the candidate, both replayed from the history."""

    __tablename__ = "tiering_simulation_customers"

    simulation_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    today_tier: Mapped[str] = mapped_column(String(32))
    today_watch: Mapped[bool] = mapped_column(Boolean)
    today_months_below: Mapped[int] = mapped_column(Integer)
    candidate_tier: Mapped[str] = mapped_column(String(32))
    candidate_watch: Mapped[bool] = mapped_column(Boolean)
    candidate_months_below: Mapped[int] = mapped_column(Integer)
    aum: Mapped[Decimal] = mapped_column(MoneyType)
    """The AUM at the end of the period."""
