"""Assignment's tables. Money columns are integer cents (``MoneyType``)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Boolean, Date, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, BigId, MoneyType, UtcDateTime


class AssignmentRm(Base):
    """The RM registry. ``capacity`` is JSON: an integer (weighted book) or a mapping tier ->
    customers; NULL means the level's default from settings."""

    __tablename__ = "assignment_rms"

    rm_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    branch_id: Mapped[str] = mapped_column(String(64), index=True)
    level: Mapped[str] = mapped_column(String(16))
    capacity: Mapped[str | None] = mapped_column(Text, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str] = mapped_column(String(200))


class AssignmentBook(Base):
    """How many customers of each tier an RM holds in each role, kept as customers move, so a
    decision reads an RM's weighted book in one row per tier instead of counting customers."""

    __tablename__ = "assignment_books"

    rm_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    tier: Mapped[str] = mapped_column(String(32), primary_key=True)
    customers: Mapped[int] = mapped_column(Integer)


class AssignmentCustomer(Base):
    """Who serves one customer, with what the worklist shows of them."""

    __tablename__ = "assignment_customers"

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tier: Mapped[str] = mapped_column(String(32))
    tier_rank: Mapped[int] = mapped_column(Integer)
    home_branch_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    branch_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    serving_branch: Mapped[str | None] = mapped_column(String(64), nullable=True)
    standing: Mapped[str] = mapped_column(String(16))
    primary_rm: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    backup_rm: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    primary_since: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    backup_since: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    waiting_since: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    aum: Mapped[Decimal] = mapped_column(MoneyType)
    aum_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    watch: Mapped[bool] = mapped_column(Boolean)
    months_below: Mapped[int] = mapped_column(Integer)
    last_contact: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    next_contact: Mapped[date | None] = mapped_column(Date, nullable=True)

    __table_args__ = (
        Index("ix_assignment_customers_serving_standing", "serving_branch", "standing"),
        Index("ix_assignment_customers_standing", "standing"),
    )


class AssignmentChange(Base):
    """The audit trail: every change of a customer's primary or backup RM."""

    __tablename__ = "assignment_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))
    from_rm: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    to_rm: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    reason: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))
    cause: Mapped[str] = mapped_column(String(250))
    tier: Mapped[str] = mapped_column(String(32))
    branch_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AssignmentSignal(Base):
    """Signals raised for customers, with their latest status, for the worklist's count."""

    __tablename__ = "assignment_signals"

    signal_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    signal_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_assignment_signals_customer_status", "customer_id", "status"),)


class AssignmentFollowUp(Base):
    """A contact an RM logged with a customer (跟踪记录)."""

    __tablename__ = "assignment_follow_ups"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    rm_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    author: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(64))
    next_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    contacted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
