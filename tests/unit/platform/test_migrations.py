"""Each service's Alembic branch creates exactly the tables its models declare."""

from __future__ import annotations

import tempfile

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shared import migrate
from shared.db import Base, Database
from strata.registry import available, load


def _table_of(diff) -> str | None:
    """The table a difference is about (alembic gives tuples, or lists of tuples for columns)."""
    flat = diff[0] if isinstance(diff, list) else diff
    for part in flat[1:]:
        if isinstance(part, str):
            return part
        name = getattr(part, "name", None)
        table = getattr(part, "table", None)
        if table is not None and getattr(table, "name", None):
            return table.name
        if name and hasattr(part, "columns"):
            return name
    return None


def _own_tables(diffs, prefixes):
    prefixes = tuple(p.strip("'") for p in prefixes)
    return [d for d in diffs if (_table_of(d) or "").startswith(prefixes)]


@pytest.mark.parametrize("service", available())
async def test_migrations_match_the_models(service):
    load(service)  # import the service's models into the metadata
    import importlib

    importlib.import_module(f"services.{service}.models")
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{tmp}/m.db")
        await migrate.upgrade(db, [service])
        async with db.engine.connect() as conn:
            diffs = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
        await db.dispose()
    prefixes = (f"'{service}_", "'runtime_")
    assert _own_tables(diffs, prefixes) == []
