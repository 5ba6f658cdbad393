"""A single-process Strata running assignment alone, shared by this directory's tests.

Assignment decides from every RM of a branch, so its tests keep to their own branches; running it
alone also leaves ``strata.assignments`` unconsumed on the in-memory bus, where tests read exactly
what was emitted.
"""

from __future__ import annotations

import tempfile

import pytest

from strata.registry import load
from strata.testing import Harness
from tests.conftest import single_process_settings


@pytest.fixture(scope="session")
async def solo():
    with tempfile.TemporaryDirectory(prefix="strata-assignment-") as tmp:
        harness = await Harness(single_process_settings(tmp), [load("assignment")]).start()
        try:
            yield harness
        finally:
            await harness.stop()
