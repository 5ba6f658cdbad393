"""Each service's Alembic branch creates exactly the tables its models declare."""

from __future__ import annotations

import tempfile

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shared import migrate
from shared.db import Base, Database
from strata.registry import available, load


def _own_tables(diffs, prefixes):
    out = []
    for diff in diffs:
        flat = diff if isinstance(diff, tuple) else diff[0]
        text = repr(flat)
        if any(p in text for p in prefixes):
            out.append(diff)
    return out


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
