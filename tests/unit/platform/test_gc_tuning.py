"""A Strata process tunes Python's collector once before serving (``tune_gc``): the objects
start-up loaded are frozen, and the young generation is collected every
``runtime.gc_young_threshold`` allocations. Run in a child process: freezing is for good."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

CHILD = """
import gc, json
from shared.runtime.process import tune_gc
from shared.settings import Settings
before = gc.get_threshold()
tune_gc(Settings(runtime={"gc_young_threshold": %d}))
print(json.dumps({"before": before, "after": gc.get_threshold(), "frozen": gc.get_freeze_count()}))
"""


def _tuned(young: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD % young], cwd=REPO, capture_output=True,
                         text=True, check=True, timeout=60)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_young_generation_is_collected_less_often_and_start_up_objects_are_frozen():
    got = _tuned(50_000)
    assert got["before"] == [700, 10, 10]
    assert got["after"] == [50_000, 20, 100]
    assert got["frozen"] > 10_000  # the modules, models and settings loaded so far


def test_zero_keeps_pythons_thresholds():
    got = _tuned(0)
    assert got["after"] == [700, 10, 10]
    assert got["frozen"] > 10_000
