"""The database: SQLAlchemy 2 async over asyncpg (PostgreSQL) or aiosqlite (single-process mode).

Money columns hold integer cents (:class:`MoneyType`) so that sums stay exact in both databases.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, AsyncIterator

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from shared.money import from_cents, to_cents

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Every service's tables hang off this one metadata; each table name starts with its
    service's name, and each service migrates only its own tables."""

    metadata = MetaData(naming_convention=NAMING)


BigId = BigInteger().with_variant(Integer, "sqlite")
"""An auto-incrementing 64-bit key (SQLite only auto-increments INTEGER PRIMARY KEY)."""


class MoneyType(TypeDecorator):
    """A two-place Decimal in code, integer cents in the database."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Any) -> int | None:
        return None if value is None else to_cents(Decimal(value))

    def process_result_value(self, value: int | None, dialect: Any) -> Decimal | None:
        return None if value is None else from_cents(value)


class UtcDateTime(TypeDecorator):
    """An aware datetime, stored in UTC; SQLite (which keeps no offset) gets it back aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: Strata stores only aware times")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def insert_for(session_or_conn: Any):
    """The dialect's INSERT, which has ``on_conflict_do_update``/``do_nothing`` on both
    PostgreSQL and SQLite."""
    name = session_or_conn.get_bind().dialect.name if hasattr(session_or_conn, "get_bind") else \
        session_or_conn.dialect.name
    return postgresql.insert if name == "postgresql" else sqlite.insert


class Database:
    """One engine and session factory per process."""

    def __init__(self, url: str, pool_size: int = 10, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            _ensure_sqlite_dir(url)
            self.engine: AsyncEngine = create_async_engine(
                url, echo=echo, connect_args={"timeout": 60}, pool_size=5, max_overflow=5
            )
            _make_sqlite_transactional(self.engine)
        else:
            self.engine = create_async_engine(
                url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=False,
                pool_recycle=1800,
            )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self.sessions() as session:
            async with session.begin():
                yield session

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def dispose(self) -> None:
        await self.engine.dispose()


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split(":///", 1)[-1]
    if path and path != ":memory:":
        Path(path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def _make_sqlite_transactional(engine: AsyncEngine) -> None:
    """Give SQLite real transactions: pysqlite's own BEGIN handling is off, and every transaction
    starts with BEGIN IMMEDIATE so that concurrent writers wait for each other (busy timeout)
    instead of failing when a read transaction tries to become a write one."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_conn, _record):  # pragma: no cover - exercised through every sqlite test
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn):  # pragma: no cover
        conn.exec_driver_sql("BEGIN IMMEDIATE")
