"""A batch of tiering's stream costs assignment a few statements whatever its size: everything the
batch's decisions need (its customers, the RMs and books of their branches, who waits there) is
read in a few set-based statements before the first record is applied, and written at commit
with one statement per table; no query per record, per placement or per release of room."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event, select

from services.assignment.models import AssignmentCustomer
from tests.conftest import private_strata
from tests.unit.assignment.stream import T0, aum_record, customer_record, tier_record

RUNTIME = {"poll_timeout_ms": 20, "outbox_poll_interval_ms": 20, "lag_interval_s": 0.5,
           "business_gauges_interval_s": 3600, "retry_initial_ms": 10, "retry_max_ms": 200,
           "batch_size": 5000}


def book(prefix: str, n: int) -> list:
    """``n`` customers over two branches reaching gold, every third of them platinum later (which
    frees room in the full L1 books for the gold customers waiting), then an AUM change each."""
    customers = [(f"{prefix}-{i:04d}", f"{prefix}-BR{i % 2}") for i in range(n)]
    records = [customer_record(c, branch, T0) for c, branch in customers]
    records += [tier_record(c, "gold", "initial_placement", T0 + timedelta(minutes=1)) for c, _ in customers]
    records += [tier_record(c, "platinum", "upgrade", T0 + timedelta(minutes=2))
                for i, (c, _) in enumerate(customers) if i % 3 == 0]
    records += [aum_record(c, "70000.00", T0 + timedelta(minutes=3)) for c, _ in customers]
    return records


async def statements_for(n: int) -> tuple[int, int, list[AssignmentCustomer]]:
    """(statements on assignment's tables, batches) for one batch of ``n`` customers' records."""
    prefix = f"BATCH{n}"
    async with private_strata(["assignment"], runtime=RUNTIME) as strata:
        l1_room = (2 * n) // 3 // 4  # per RM: two L1 RMs per branch hold two thirds of the book
        for b in (0, 1):
            for rm_id, level, capacity in ((f"{prefix}-L1A-{b}", "L1", l1_room), (f"{prefix}-L1B-{b}", "L1", l1_room),
                                           (f"{prefix}-L2A-{b}", "L2", None), (f"{prefix}-L2B-{b}", "L2", None)):
                response = await strata.client.put(f"/v1/rms/{rm_id}", headers=strata.token("admin"), json={
                    "name": rm_id, "branch_id": f"{prefix}-BR{b}", "level": level, "capacity": capacity})
                assert response.status_code == 200, response.text
        seen: list[str] = []

        def count(conn, cursor, statement, parameters, context, executemany):
            # the business gauges (a background task of aggregates) may run meanwhile: not the batch's
            if "assignment_" in statement and "GROUP BY" not in statement:
                seen.append(statement)

        engine = strata.runtime.db.engine.sync_engine
        loop = strata.runtime.loops["assignment"]
        batches = loop.batches
        event.listen(engine, "before_cursor_execute", count)
        try:
            await strata.publish(*book(prefix, n))
            await strata.settle()
        finally:
            event.remove(engine, "before_cursor_execute", count)
        async with strata.runtime.db.sessions() as session:
            rows = (await session.execute(select(AssignmentCustomer))).scalars().all()
        return len(seen), loop.batches - batches, rows


async def test_a_batch_costs_the_same_few_statements_for_30_customers_or_300():
    small, small_batches, small_rows = await statements_for(30)
    large, large_batches, large_rows = await statements_for(300)
    assert small_batches == large_batches == 1, "each book arrives in one batch"
    assert all(r.primary_rm is not None for r in small_rows + large_rows), \
        "every customer placed, the waiting ones once upgrades freed room"
    assert sum(1 for r in large_rows if r.tier == "platinum") == 100
    assert large == small, f"{large} statements for 300 customers, {small} for 30: a query per record"
    assert large <= 12, f"{large} statements for one batch"
