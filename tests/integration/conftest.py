"""The distributed mode against the real Kafka broker and PostgreSQL that ``scripts/test``
starts. Each harness gets its own database and its own topic prefix on the shared broker, so
tests never see each other's events; the broker and the server are started once per run."""

from __future__ import annotations

import os
import uuid
from contextlib import asynccontextmanager
from typing import AsyncIterator, Sequence

import asyncpg
import pytest

from shared.settings import Settings
from strata.registry import load, available
from strata.testing import Harness

KAFKA = os.environ.get("STRATA_TEST_KAFKA", "127.0.0.1:9092")
DATABASE_URL = os.environ.get("STRATA_TEST_DATABASE_URL",
                              "postgresql+asyncpg://strata:strata@127.0.0.1:55432/strata")


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _reachable() -> str | None:
    try:
        conn = await asyncpg.connect(_dsn(DATABASE_URL), timeout=30)
        await conn.close()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"PostgreSQL at {DATABASE_URL}: {exc}"
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA, request_timeout_ms=3000)
    try:
        await admin.start()
        await admin.list_topics()
    except Exception as exc:  # noqa: BLE001
        return f"Kafka at {KAFKA}: {exc}"
    finally:
        await admin.close()
    return None


@pytest.fixture(scope="session")
async def integration_env() -> None:
    problem = await _reachable()
    if problem:
        if os.environ.get("STRATA_REQUIRE_INTEGRATION") == "1":
            pytest.fail(f"integration services not reachable: {problem}")
        pytest.skip(f"integration services not reachable (run scripts/test): {problem}")


async def create_database() -> str:
    """A fresh PostgreSQL database; returns its SQLAlchemy URL."""
    name = f"strata_t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(_dsn(DATABASE_URL))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return DATABASE_URL.rsplit("/", 1)[0] + f"/{name}"


def distributed_settings(database_url: str, prefix: str, **overrides) -> Settings:
    base = {
        "bus": "kafka",
        "database_url": database_url,
        "kafka": {"bootstrap_servers": KAFKA, "partitions": 3, "topic_prefix": prefix,
                  "group_prefix": f"{prefix}strata"},
        "runtime": {"poll_timeout_ms": 50, "outbox_poll_interval_ms": 50, "lag_interval_s": 0.5,
                    "business_gauges_interval_s": 1.5,
                    "retry_initial_ms": 50, "retry_max_ms": 1000,
                    # no wait for quiet topics: each test publishes its facts in order, and settles
                    "max_lateness_s": 0.0, "stream_wait_s": 0.0},
    }
    base.update(overrides)
    return Settings(**base)


@asynccontextmanager
async def distributed(services: Sequence[str] | None = None, *, database_url: str | None = None,
                      prefix: str | None = None, **overrides) -> AsyncIterator[Harness]:
    """A running Strata on real Kafka and PostgreSQL with the given services in this process
    (each with its own consumer group, exactly as separate processes would have)."""
    database_url = database_url or await create_database()
    prefix = prefix or f"t{uuid.uuid4().hex[:8]}."
    specs = [load(s) for s in (services or available())]
    harness = Harness(distributed_settings(database_url, prefix, **overrides), specs)
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()
