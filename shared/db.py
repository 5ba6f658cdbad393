"""The database: SQLAlchemy 2 async over asyncpg (PostgreSQL) or aiosqlite (single-process mode).

Money columns hold integer cents (:class:`MoneyType`) so that sums stay exact in both databases.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, AsyncIterator, Mapping, Sequence

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


# --- set-based writes -----------------------------------------------------------------------

_PG_ARRAY_TYPES = {
    "BIGINT": "BIGINT", "INTEGER": "INTEGER", "SMALLINT": "SMALLINT", "VARCHAR": "VARCHAR",
    "TEXT": "TEXT", "BOOLEAN": "BOOLEAN", "DATE": "DATE", "TIMESTAMP": "TIMESTAMPTZ",
    "JSON": "TEXT", "BYTEA": "BYTEA",
}


def _pg_type(column) -> tuple[str, str]:
    """The array element type a column's values travel in, and how the SELECT casts them back
    (JSON travels as text)."""
    impl = column.type.impl if isinstance(column.type, TypeDecorator) else column.type
    name = impl.compile(dialect=postgresql.dialect()).split("(")[0].upper()
    if name.startswith("TIMESTAMP"):
        name = "TIMESTAMP"
    if name == "LARGEBINARY":
        name = "BYTEA"
    array = _PG_ARRAY_TYPES.get(name, name)
    return array, "::json" if name == "JSON" else ""


def _pg_value(column, dialect):
    """A function turning a Python value into what the column's array carries (MoneyType's
    cents, UtcDateTime's UTC time, JSON's text)."""
    kind = column.type
    if isinstance(kind, TypeDecorator):
        return lambda v: kind.process_bind_param(v, dialect)
    if kind.__class__.__name__ == "JSON":
        import json

        return lambda v: None if v is None else json.dumps(v)
    return None


_STATEMENTS: dict[tuple, tuple] = {}


async def write_rows(session: AsyncSession, table, rows: list[dict[str, Any]], *,
                     key: tuple[str, ...] = (), update: tuple[str, ...] | None = None) -> None:
    """Write ``rows`` (dicts naming the same columns) in ONE statement: inserted, or with ``key``
    upserted (``update``: the columns a conflict overwrites, every non-key column by default;
    ``()``: a conflict keeps the row). This is how a batch's state reaches the database: one
    statement per table per batch, never one per row.

    PostgreSQL takes every column as one array parameter (``unnest``); SQLite an executemany.
    Rows must not repeat a key (one statement may not touch a row twice)."""
    if not rows:
        return
    columns = tuple(rows[0])
    if update is None:
        update = tuple(c for c in columns if c not in key)
    dialect = session.get_bind().dialect
    cache_key = (table.name, columns, key, update, dialect.name)
    cached = _STATEMENTS.get(cache_key)
    if cached is None:
        cached = _STATEMENTS[cache_key] = _compile_write(table, columns, key, update, dialect)
    statement, converters = cached
    if dialect.name == "postgresql":
        await session.execute(statement, _arrays(rows, columns, converters))
    else:
        await session.execute(statement, rows)


def _compile_write(table, columns, key, update, dialect):
    if dialect.name != "postgresql":
        stmt = sqlite.insert(table)
        if key:
            stmt = (stmt.on_conflict_do_update(index_elements=list(key),
                                               set_={c: stmt.excluded[c] for c in update})
                    if update else stmt.on_conflict_do_nothing(index_elements=list(key)))
        return stmt, ()
    arrays, selects, converters = [], [], []
    for i, name in enumerate(columns):
        column = table.c[name]
        array, cast = _pg_type(column)
        arrays.append(f"CAST(:c{i} AS {array}[])")
        selects.append(f"u.c{i}{cast}")
        converters.append(_pg_value(column, dialect))
    names = ", ".join(f'"{c}"' for c in columns)
    aliases = ", ".join(f"c{i}" for i in range(len(columns)))
    sql = (f'INSERT INTO "{table.name}" ({names}) SELECT {", ".join(selects)} '
           f"FROM unnest({', '.join(arrays)}) AS u({aliases})")
    if key:
        target = ", ".join(f'"{c}"' for c in key)
        if update:
            sets = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in update)
            sql += f" ON CONFLICT ({target}) DO UPDATE SET {sets}"
        else:
            sql += f" ON CONFLICT ({target}) DO NOTHING"
    return text(sql), tuple(converters)


async def read_rows(session: AsyncSession, table, key: str, keys, *, columns=None,
                    where=None) -> list[Any]:
    """The rows of ``table`` whose ``key`` column is one of ``keys``, in a few statements
    whatever their number (on PostgreSQL one: the keys as an array joined to the key's index);
    ``columns`` picks columns (default all), ``where`` adds a condition. Rows come back with
    the columns' types applied (money as Decimal, aware times)."""
    from sqlalchemy import String, bindparam, cast, func, select
    from sqlalchemy.dialects.postgresql import ARRAY

    keys = sorted(set(keys))
    if not keys:
        return []
    picked = columns if columns is not None else (table,)
    if session.get_bind().dialect.name == "postgresql":
        wanted = func.unnest(cast(bindparam("keys", type_=ARRAY(String)), ARRAY(String))) \
            .table_valued("k").render_derived()
        stmt = select(*picked).join(wanted, table.c[key] == wanted.c.k)
        if where is not None:
            stmt = stmt.where(where)
        return list(await session.execute(stmt, {"keys": keys}))
    out: list[Any] = []
    for start in range(0, len(keys), 500):
        stmt = select(*picked).where(table.c[key].in_(keys[start:start + 500]))
        if where is not None:
            stmt = stmt.where(where)
        out.extend(await session.execute(stmt))
    return out


async def update_rows(session: AsyncSession, table, rows: list[dict[str, Any]], *, key: tuple[str, ...]) -> None:
    """Update existing rows, the columns each dict names besides ``key``, in ONE statement
    (``UPDATE ... FROM unnest(...)`` on PostgreSQL, an executemany on SQLite): a job that
    changes a few columns of many rows writes only those."""
    if not rows:
        return
    columns = tuple(rows[0])
    dialect = session.get_bind().dialect
    cache_key = ("update", table.name, columns, key, dialect.name)
    cached = _STATEMENTS.get(cache_key)
    if cached is None:
        from sqlalchemy import bindparam, update

        if dialect.name != "postgresql":
            stmt = update(table).where(*[table.c[k] == bindparam(f"k_{k}") for k in key]).values(
                **{c: bindparam(f"v_{c}") for c in columns if c not in key})
            cached = (stmt, ())
        else:
            arrays, converters = [], []
            for i, name in enumerate(columns):
                column = table.c[name]
                array, cast = _pg_type(column)
                arrays.append(f"CAST(:c{i} AS {array}[])")
                converters.append(_pg_value(column, dialect))
            aliases = ", ".join(f"c{i}" for i in range(len(columns)))
            sets = ", ".join(f'"{c}" = u.c{i}{_pg_type(table.c[c])[1]}' for i, c in enumerate(columns)
                             if c not in key)
            where = " AND ".join(f't."{k}" = u.c{columns.index(k)}' for k in key)
            sql = (f'UPDATE "{table.name}" AS t SET {sets} FROM unnest({", ".join(arrays)}) AS u({aliases}) '
                   f"WHERE {where}")
            cached = (text(sql), tuple(converters))
        _STATEMENTS[cache_key] = cached
    statement, converters = cached
    if dialect.name == "postgresql":
        await session.execute(statement, _arrays(rows, columns, converters))
    else:
        await session.execute(statement, [{**{f"k_{k}": r[k] for k in key},
                                           **{f"v_{c}": r[c] for c in columns if c not in key}} for r in rows])


def _arrays(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], converters) -> dict[str, list]:
    """The rows as one array parameter per column (``c0``, ``c1``...), for ``unnest``."""
    params = {}
    for i, (name, convert) in enumerate(zip(columns, converters)):
        values = [r[name] for r in rows]
        params[f"c{i}"] = [convert(v) for v in values] if convert is not None else values
    return params
