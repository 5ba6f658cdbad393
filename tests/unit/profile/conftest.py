"""A single-process Strata with only profile, so that the figures a test publishes are the
only ones (other services would add their own signals and assignments)."""

from __future__ import annotations

import pytest

from tests.conftest import private_strata


@pytest.fixture(scope="module")
async def profile_strata():
    async with private_strata(["profile"]) as harness:
        yield harness
