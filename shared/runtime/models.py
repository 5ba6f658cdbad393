"""The runtime's own tables: which events each consumer has processed, and the outbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, BigId, UtcDateTime


class ProcessedEvent(Base):
    """An event id a consumer group has applied; a redelivery finds it here and does nothing."""

    __tablename__ = "runtime_processed_events"

    consumer: Mapped[str] = mapped_column(String(100), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_runtime_processed_events_age", "consumer", "processed_at"),)


class OutboxMessage(Base):
    """A message written in the same transaction as the state that caused it; the relay
    publishes it and then deletes it."""

    __tablename__ = "runtime_outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    service: Mapped[str] = mapped_column(String(50))
    topic: Mapped[str] = mapped_column(String(200))
    key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_runtime_outbox_service_id", "service", "id"),)
