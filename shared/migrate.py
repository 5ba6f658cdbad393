"""Schema migrations with Alembic: the runtime's tables and each service's own branch.

Every service keeps its migrations in ``services/<name>/migrations`` as an Alembic branch
labelled with its name; a process upgrades the runtime branch and the branches of the services
it runs, under a PostgreSQL advisory lock so that five services starting at once take turns.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Sequence

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from shared.db import Database

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
LOCK_KEY = 7_212_001


def service_migrations(service: str) -> Path | None:
    """The service's migrations folder, or None for a service that keeps no tables."""
    try:
        spec = importlib.util.find_spec(f"services.{service}")
    except ModuleNotFoundError:
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "migrations"
    return path if path.is_dir() else None


def migrated_services(services: Sequence[str]) -> list[str]:
    return [s for s in services if service_migrations(s) is not None]


KNOWN_SERVICES = ("profile", "tiering", "alerts", "pricing", "assignment")


def alembic_config(services: Sequence[str]) -> Config:
    """Every service's branch is on the path, whichever services this process runs: processes
    of several services share one database and its alembic_version table, whose heads name
    other services' revisions."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    everyone = migrated_services(list(dict.fromkeys([*KNOWN_SERVICES, *services])))
    locations = [str(MIGRATIONS / "versions")] + [str(service_migrations(s)) for s in everyone]
    cfg.set_main_option("version_locations", " ".join(locations))
    cfg.set_main_option("path_separator", "space")
    return cfg


async def upgrade(db: Database, services: Sequence[str]) -> None:
    """Bring the runtime tables and the given services' tables to their newest revision."""
    cfg = alembic_config(services)
    targets = ["runtime@head"] + [f"{s}@head" for s in migrated_services(services)]

    def _run(connection) -> None:
        cfg.attributes["connection"] = connection
        for target in targets:
            command.upgrade(cfg, target)

    async with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_KEY})
            await conn.commit()
        try:
            await conn.run_sync(_run)
            await conn.commit()
        finally:
            if db.dialect == "postgresql":
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                await conn.commit()
