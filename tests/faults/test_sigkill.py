"""Every service SIGKILLed between the steps of its commit order (``shared.runtime.faults``),
again and again, restarted each time, and the run ends exactly where the undisturbed reference
run did.

One run holds every kill: each service's first instance runs a schedule of fault plans, one
after the other (the watchdog starts it again with the next plan each time one kills it), so
every service dies at every point it has: after the database commit and before the offset
commit, after the offset commit, and after the outbox relay published and before it deleted
(profile emits nothing, so its relay has no such point). Fourteen kills in one run cost far less
than fourteen runs, and each restart happens under the others' backlog. A difference names its
table, and so its service.

A service passes the consumer's points once per batch (at most STRATA_RUNTIME__BATCH_SIZE=100
events, so at least events/100 times) and the relay's once per publish: the counts below are
reached whatever the load, spread over the master data, the opening balances and the stream.
A bigger feed (STRATA_FAULT_POSTINGS) moves the consumer's points further in, in proportion.
"""

from __future__ import annotations

import pytest

from tests.faults.conftest import KAFKA, POSTINGS, assert_same, observe
from tests.faults.stack import Stack
from tests.integration.conftest import create_database

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.usefixtures("integration_env")]

DB, OFFSET, OUTBOX = "after_db_commit", "after_offset_commit", "after_outbox_publish"
SCALE = max(1, POSTINGS // 2000)


def _at(point: str, n: int) -> str:
    return f"{point}={n if point == OUTBOX else n * SCALE}"


SCHEDULE = {
    "tiering": [_at(DB, 8), _at(OFFSET, 8), _at(OUTBOX, 4)],
    "profile": [_at(OFFSET, 15), _at(DB, 15)],
    "alerts": [_at(OUTBOX, 3), _at(DB, 12), _at(OFFSET, 12)],
    "pricing": [_at(OFFSET, 5), _at(OUTBOX, 3), _at(DB, 5)],
    "assignment": [_at(OUTBOX, 2), _at(DB, 6), _at(OFFSET, 6)],  # it emits on placements: early
}


async def test_every_service_killed_at_every_commit_step_ends_in_the_reference_state(reference, feed):
    stack = Stack(KAFKA, await create_database())
    try:
        await stack.prepare()
        await stack.start(faults=SCHEDULE)
        await stack.register_rms(feed.rms)
        await stack.send(feed)
        outcome = await observe(stack)
    finally:
        await stack.close()
    assert_same(reference.outcome, outcome, stack, feed)
    killed = sorted((service, plan) for service, code, plan in stack.kills if code == -9)
    planned = sorted((service, plan) for service, plans in SCHEDULE.items() for plan in plans)
    assert killed == planned, f"every planned kill happened, once: {stack.kills}"
