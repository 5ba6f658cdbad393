"""Alerts' tables: what it knows of each customer and their products, the signals, the rolling
suppression windows, the large outflows already judged and the daily scans run."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, MoneyType, UtcDateTime


class AlertsCustomer(Base):
    """A customer as the signal rules see them: tier, current AUM and the per-day highs of the
    AUM window, who their primary RM is, their branch and birthday."""

    __tablename__ = "alerts_customers"

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tier: Mapped[str] = mapped_column(String(32))
    tier_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    """When the latest tier change read took effect."""
    aum: Mapped[Decimal] = mapped_column(MoneyType, default=Decimal("0.00"))
    aum_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    aum_highs: Mapped[str] = mapped_column(Text, default="")
    """The monotonic deque of daily AUM highs (``domain.AumHighs.encode``)."""
    primary_rm: Mapped[str | None] = mapped_column(String(64), nullable=True)
    primary_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    branch_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    master_data_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    birth_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    birth_md: Mapped[int | None] = mapped_column(Integer, nullable=True)
    name: Mapped[str | None] = mapped_column(Text, nullable=True)
    """The birthday as ``MMDD`` (``domain.month_day``), so a date window is a range scan."""

    __table_args__ = (
        Index("ix_alerts_customers_birth_md", "birth_md"),
        Index("ix_alerts_customers_primary_rm", "primary_rm"),
    )


class AlertsAccount(Base):
    """An account or product holding: its maturity date and card expiry drive the daily scan."""

    __tablename__ = "alerts_accounts"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    branch_id: Mapped[str] = mapped_column(String(64))
    product_type: Mapped[str] = mapped_column(String(32))
    product_code: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    maturity_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    card_expiry: Mapped[date | None] = mapped_column(Date, nullable=True)

    __table_args__ = (
        Index("ix_alerts_accounts_customer_id", "customer_id"),
        Index("ix_alerts_accounts_maturity_date", "maturity_date"),
        Index("ix_alerts_accounts_card_expiry", "card_expiry"),
    )


class AlertsSignal(Base):
    """One signal, stored once: its id is derived from the business fact it is about."""

    __tablename__ = "alerts_signals"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    signal_type: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[str] = mapped_column(String(64))
    rm_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    branch_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime)
    """When the triggering fact happened (or the scanned business day began): replays agree."""
    evidence: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(String(64))
    """What the signal is about: the customer, or the account of a maturity or card."""
    occurs_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    """The day the signal is about (maturity, expiry, birthday, or the day raised)."""
    threshold: Mapped[int] = mapped_column(Integer, default=0)
    expires_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    """The last business day the signal is worth acting on; the daily scan expires it after."""
    version: Mapped[int] = mapped_column(Integer, default=1)
    """Counts the signal's changes; each change is one ``strata.signal.v1`` with a stable id."""
    trigger_event_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status_at: Mapped[datetime] = mapped_column(UtcDateTime)
    acted_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    closed_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=3)
    """1 (most urgent) to 5, from the type and the customer's tier when raised."""
    customer_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    snoozed_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    """Acknowledged and hidden from the awake list until this business date."""
    """Why Strata closed (expired) the signal itself, in words; null while active or when an RM
    closed it."""

    __table_args__ = (
        Index("ix_alerts_signals_rm_status", "rm_id", "status", "raised_at"),
        Index("ix_alerts_signals_branch_status", "branch_id", "status", "raised_at"),
        Index("ix_alerts_signals_customer_status", "customer_id", "status"),
        Index("ix_alerts_signals_type_subject", "signal_type", "subject", "occurs_on"),
        Index("ix_alerts_signals_status_type", "status", "signal_type"),
        Index("ix_alerts_signals_status_expires", "status", "expires_on"),
        Index("ix_alerts_signals_raised_at", "raised_at"),
    )


class AlertsSuppression(Base):
    """A rolling suppression window (near_upgrade, vip_outflow): the type is not raised again
    for the customer (and, for near_upgrade, the target tier) before ``until``."""

    __tablename__ = "alerts_suppressions"

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    signal_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    target_tier: Mapped[str] = mapped_column(String(32), primary_key=True, default="")
    """near_upgrade: the tier it was near; "" for vip_outflow (one window per customer)."""
    raised_on: Mapped[date] = mapped_column(Date)
    until: Mapped[date] = mapped_column(Date)
    signal_id: Mapped[str] = mapped_column(String(64))


class AlertsOutflow(Base):
    """A large outflow to another bank already judged, by posting id: the same posting under
    another event id is not judged twice. The daily scan forgets those posted before their
    suppression window and a margin (``scan.OUTFLOWS_MARGIN_DAYS``)."""

    __tablename__ = "alerts_outflows"

    posting_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    posted_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AlertsDailyScan(Base):
    """A business date scanned, with the last run's counts (a re-run raises nothing new)."""

    __tablename__ = "alerts_daily_scans"

    business_date: Mapped[date] = mapped_column(Date, primary_key=True)
    first_run_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_run_at: Mapped[datetime] = mapped_column(UtcDateTime)
    runs: Mapped[int] = mapped_column(Integer, default=1)
    summary: Mapped[str] = mapped_column(Text)
