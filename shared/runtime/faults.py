"""Named points in the runtime where the fault tests kill the process.

``STRATA_FAULTS="after_db_commit=3,after_outbox_publish=2"`` makes the process SIGKILL itself
the 3rd time it passes ``after_db_commit``. Without the variable every checkpoint is a no-op;
it exists so the order of side effects the runtime documents is proven by killing a real
process between the steps, not only argued.
"""

from __future__ import annotations

import os
import signal

_PLAN: dict[str, int] | None = None
_SEEN: dict[str, int] = {}


def _plan() -> dict[str, int]:
    global _PLAN
    if _PLAN is None:
        _PLAN = {}
        for part in filter(None, os.environ.get("STRATA_FAULTS", "").split(",")):
            name, _, count = part.partition("=")
            _PLAN[name.strip()] = int(count or 1)
    return _PLAN


def checkpoint(name: str) -> None:
    plan = _plan()
    if not plan or name not in plan:
        return
    _SEEN[name] = _SEEN.get(name, 0) + 1
    if _SEEN[name] == plan[name]:
        os.kill(os.getpid(), signal.SIGKILL)
