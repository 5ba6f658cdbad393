"""Alembic environment: run against the connection handed over by :mod:`shared.migrate`."""

from alembic import context

from shared.db import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - migrations always run through shared.migrate
    raise RuntimeError("run migrations with `strata migrate` or shared.migrate.upgrade()")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
