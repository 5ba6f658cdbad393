"""``BatchTransaction``: what a batch changes reaches the database at commit, in one order,
set-based, and nothing of a transaction that rolls back survives it (metrics included)."""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, func, select

from shared.db import Database, MoneyType, UtcDateTime, read_rows, write_rows
from shared.runtime.transaction import BatchTransaction, decode_headers, encode_headers
from shared.settings import Settings

META = MetaData()
ROWS = Table("t_rows", META, Column("id", Integer, primary_key=True, autoincrement=True),
             Column("name", String(20)))
STATE = Table("t_state", META, Column("k", String(20), primary_key=True), Column("amount", MoneyType),
              Column("at", UtcDateTime, nullable=True), Column("note", String(40), nullable=True))


async def _sqlite(tmp_path) -> Database:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/t.db")
    async with db.engine.begin() as conn:
        await conn.run_sync(META.create_all)
    return db


async def _postgres() -> Database | None:
    url = os.environ.get("STRATA_TEST_DATABASE_URL")
    if not url:
        return None
    import asyncpg

    name = f"strata_t_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    db = Database(url.rsplit("/", 1)[0] + f"/{name}", 2)
    async with db.engine.begin() as conn:
        await conn.run_sync(META.create_all)
    return db


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request, tmp_path):
    database = await (_sqlite(tmp_path) if request.param == "sqlite" else _postgres())
    if database is None:
        if os.environ.get("STRATA_REQUIRE_INTEGRATION") == "1":
            pytest.fail("STRATA_TEST_DATABASE_URL is not set")
        pytest.skip("no PostgreSQL (scripts/test starts one)")
    try:
        yield database
    finally:
        await database.dispose()


class Counted:
    """A state whose rows are written at commit, one statement for the lot."""

    def __init__(self, rows: dict[str, dict]) -> None:
        self.rows = rows

    async def write(self, tx: BatchTransaction) -> None:
        await write_rows(tx.session, STATE, [{"k": k, **v} for k, v in sorted(self.rows.items())], key=("k",))


async def test_appended_rows_reach_the_table_at_commit_in_the_order_appended(db):
    async with BatchTransaction(db, "t", Settings()) as tx:
        for name in ("b", "a", "c"):
            tx.append(ROWS, {"name": name})
        async with db.sessions() as other:
            assert await other.scalar(select(func.count()).select_from(ROWS)) == 0
    async with db.sessions() as session:
        assert list((await session.execute(select(ROWS.c.name).order_by(ROWS.c.id))).scalars()) == ["b", "a", "c"]


async def test_a_rolled_back_transaction_writes_nothing_and_runs_no_after_commit_action(db):
    counted = []
    with pytest.raises(RuntimeError):
        async with BatchTransaction(db, "t", Settings()) as tx:
            tx.state = Counted({"x": {"amount": Decimal("1.00"), "at": None, "note": None}})
            tx.append(ROWS, {"name": "lost"})
            tx.after_commit(lambda: counted.append(1))
            raise RuntimeError("a handler failed")
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ROWS)) == 0
        assert await session.scalar(select(func.count()).select_from(STATE)) == 0
    assert counted == []


async def test_state_rows_are_upserted_with_their_types_and_read_back_by_key(db):
    at = datetime(2026, 11, 28, 2, 15, tzinfo=timezone.utc)
    async with BatchTransaction(db, "t", Settings()) as tx:
        tx.state = Counted({"a": {"amount": Decimal("12.30"), "at": at, "note": "first"},
                            "b": {"amount": Decimal("-0.01"), "at": None, "note": None}})
    async with BatchTransaction(db, "t", Settings()) as tx:
        tx.state = Counted({"a": {"amount": Decimal("99.99"), "at": None, "note": "second"}})
    async with db.sessions() as session:
        rows = {r.k: r for r in await read_rows(session, STATE, "k", ["a", "b", "missing"])}
    assert set(rows) == {"a", "b"}
    assert (rows["a"].amount, rows["a"].at, rows["a"].note) == (Decimal("99.99"), None, "second")
    assert (rows["b"].amount, rows["b"].at) == (Decimal("-0.01"), None)


def test_outbox_headers_keep_every_byte():
    headers = [("ce_id", b"abc"), ("odd", b"\xff\xfe\x00raw"), ("empty", b"")]
    assert decode_headers(encode_headers(headers)) == headers
    assert decode_headers('[["ce_id", "plain text"]]') == [("ce_id", b"plain text")]
