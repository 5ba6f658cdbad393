"""The OpenAPI fuzz (``tests/unit/security/test_openapi_fuzz.py``) against all five services on
PostgreSQL and Kafka: PostgreSQL refuses what SQLite forgives (a NUL character in text, an
integer beyond BIGINT, a time beyond its range), so a request that is harmless in the
single-process mode could still end as a 500 in production.

``STRATA_FUZZ_PG_EXAMPLES`` generated examples per operation and mode (default 2: the coverage
and edge cases do most of the work here; raise it for a long run).
"""

from __future__ import annotations

import os

import pytest

from tests.integration.conftest import distributed
from tests.unit.security.test_openapi_fuzz import fuzz, seed

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("integration_env")]

EXAMPLES = int(os.environ.get("STRATA_FUZZ_PG_EXAMPLES", "2"))


async def test_no_operation_answers_5xx_or_outside_its_schema_on_postgresql():
    async with distributed(["profile", "tiering", "alerts", "pricing", "assignment"]) as strata:
        await seed(strata)
        await fuzz(strata, examples=EXAMPLES, coverage_roles=("admin",))
