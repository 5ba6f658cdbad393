"""Services SIGKILLed between the steps of their commit order (``shared.runtime.faults``),
restarted each time, and the run ends exactly where the undisturbed reference run did.

One run holds every kill: each service's first instance runs a schedule of fault plans, one
after the other (the watchdog starts it again with the next plan each time one kills it). The
points: after the database commit and before the offset commit, after the offset commit, and
after the outbox relay published and before it deleted (profile emits nothing, so its relay has
no such point). Many kills in one run cost far less than one run each, and each restart
happens under the others' backlog. A difference names its table, and so its service.

A service passes the consumer's points once per batch (at most STRATA_RUNTIME__BATCH_SIZE=100
events, so at least events/100 times) and the relay's once per publish: the counts below are
reached whatever the load, spread over the master data, the opening balances and the stream.
A bigger feed (STRATA_FAULT_POSTINGS) moves the consumer's points further in, in proportion.
"""

from __future__ import annotations

import os

import pytest

from tests.faults.conftest import POSTINGS, assert_same, faulted_run

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.usefixtures("integration_env")]

DB, OFFSET, OUTBOX = "after_db_commit", "after_offset_commit", "after_outbox_publish"
SCALE = max(1, POSTINGS // 2000)


def _at(point: str, n: int) -> str:
    return f"{point}={n if point == OUTBOX else n * SCALE}"


# Every service at every point it has: STRATA_FAULT_KILLS=all (fourteen kills). By default
# tiering, where every other service's input starts, dies at all three points and every other
# service at one, each point taken by two services or more (seven kills: the suite's time).
# A relay point comes first where a service emits little (its publishes are few and early).
EVERY_POINT = {
    "tiering": [_at(OUTBOX, 3), _at(DB, 8), _at(OFFSET, 8)],
    "profile": [_at(OFFSET, 15), _at(DB, 15)],
    "alerts": [_at(OUTBOX, 2), _at(DB, 12), _at(OFFSET, 12)],
    "pricing": [_at(OFFSET, 5), _at(OUTBOX, 3), _at(DB, 5)],
    "assignment": [_at(OUTBOX, 2), _at(DB, 6), _at(OFFSET, 6)],
}
DEFAULT = {
    "tiering": EVERY_POINT["tiering"],
    "profile": [_at(DB, 25)],
    "alerts": [_at(OUTBOX, 2)],
    "pricing": [_at(OFFSET, 8)],
    "assignment": [_at(OUTBOX, 2)],
}
SCHEDULE = EVERY_POINT if os.environ.get("STRATA_FAULT_KILLS") == "all" else DEFAULT


async def test_services_killed_between_commit_steps_end_in_the_reference_state(broker, reference, feed):
    stack, outcome = await faulted_run(broker.bootstrap, feed, faults=SCHEDULE)
    assert_same(reference.outcome, outcome, stack, feed)
    killed = sorted((service, plan) for service, code, plan in stack.kills if code == -9)
    planned = sorted((service, plan) for service, plans in SCHEDULE.items() for plan in plans)
    assert killed == planned, f"every planned kill happened, once: {stack.kills}"
