"""Fixtures shared by every ring of tests."""

from __future__ import annotations

import os
import tempfile
from contextlib import asynccontextmanager
from typing import AsyncIterator, Sequence

import pytest

from shared.settings import Settings
from strata.registry import load, load_all
from strata.testing import Harness


def single_process_settings(tmpdir: str, **overrides) -> Settings:
    base = {
        "bus": "memory",
        "database_url": f"sqlite+aiosqlite:///{tmpdir}/strata.db",
        "runtime": {"poll_timeout_ms": 20, "outbox_poll_interval_ms": 20, "lag_interval_s": 0.5,
                    "business_gauges_interval_s": 1.5,
                    "retry_initial_ms": 10, "retry_max_ms": 200},
        "kafka": {"partitions": 2},
    }
    # No waiting for quiet topics (max_lateness_s) or quiet partitions of tiering's stream
    # (stream_wait_s): these tests publish each fact in order, and settle at once. The tests
    # that compare one arrival order with another pass the defaults back in ``runtime``.
    runtime = {**base["runtime"], "stream_wait_s": 0.0, "max_lateness_s": 0.0, **overrides.pop("runtime", {})}
    base.update(overrides)
    base["runtime"] = runtime
    return Settings(**base)


@pytest.fixture(scope="session")
async def strata():
    """All services in one process on the in-memory bus and SQLite, shared by the session:
    tests use their own customer ids."""
    with tempfile.TemporaryDirectory(prefix="strata-test-") as tmp:
        harness = await Harness(single_process_settings(tmp), load_all()).start()
        try:
            yield harness
        finally:
            await harness.stop()


@asynccontextmanager
async def private_strata(services: Sequence[str] | None = None, **overrides) -> AsyncIterator[Harness]:
    """A private single-process Strata with settings overrides (e.g. ``tiering={...}``)."""
    with tempfile.TemporaryDirectory(prefix="strata-test-") as tmp:
        specs = [load(s) for s in services] if services else load_all()
        harness = await Harness(single_process_settings(tmp, **overrides), specs).start()
        try:
            yield harness
        finally:
            await harness.stop()


@pytest.fixture
async def fresh_strata():
    """A private single-process Strata, for tests of global operations (month-end closes)."""
    async with private_strata() as harness:
        yield harness


def integration_required() -> bool:
    return os.environ.get("STRATA_REQUIRE_INTEGRATION") == "1"
