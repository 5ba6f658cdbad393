"""``UnitOfWork.insert_later``: append-only rows queued by handlers reach the table at the end
of the transaction, in the order queued, with the transaction (not before, not without it)."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table, func, select

from shared.db import Database
from shared.runtime.unit_of_work import UnitOfWork
from shared.settings import Settings

META = MetaData()
ROWS = Table("t_rows", META, Column("id", Integer, primary_key=True, autoincrement=True),
             Column("name", String(20)))


async def _db(tmp_path) -> Database:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/t.db")
    async with db.engine.begin() as conn:
        await conn.run_sync(META.create_all)
    return db


async def test_rows_are_written_at_flush_in_the_order_queued(tmp_path):
    db = await _db(tmp_path)
    try:
        async with db.transaction() as session:
            batch: dict = {}
            for name in ("b", "a", "c"):  # two handlers of one batch share its scratch space
                UnitOfWork(session, "t", Settings(), name, batch).insert_later(ROWS, {"name": name})
            assert await session.scalar(select(func.count()).select_from(ROWS)) == 0
            await UnitOfWork(session, "t", Settings(), "flush", batch).flush()
            assert not batch
        async with db.sessions() as session:
            assert (await session.execute(select(ROWS.c.name).order_by(ROWS.c.id))).scalars().all() == ["b", "a", "c"]
    finally:
        await db.dispose()


async def test_a_rolled_back_transaction_leaves_no_row(tmp_path):
    db = await _db(tmp_path)
    try:
        try:
            async with db.transaction() as session:
                uow = UnitOfWork(session, "t", Settings(), "x")
                uow.insert_later(ROWS, {"name": "x"})
                await uow.flush()
                raise RuntimeError("the handler after it failed")
        except RuntimeError:
            pass
        async with db.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(ROWS)) == 0
    finally:
        await db.dispose()
