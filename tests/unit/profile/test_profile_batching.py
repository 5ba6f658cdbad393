"""Batch-at-a-time I/O changes nothing but speed: the same events give the same read model
however they fall into batches."""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Iterator

from prometheus_client import REGISTRY
from sqlalchemy import event as sql_events
from sqlalchemy import select

from services.profile.models import ProfileCustomerFlow, ProfileTierChange
from strata.registry import load
from strata.testing import Harness
from tests.conftest import single_process_settings
from tests.unit.profile.profile_events import ZONE, account, aum, customer, fee, new_id, signal, tier

DAY = date(2026, 11, 20)


def story(cid: str, branch: str) -> list:
    """Events of one customer that exercise every write made at once per batch: tags replaced
    twice, a fee and a tier change repeated under new event ids, flows within and across days."""
    t = datetime(2026, 11, 20, 9, tzinfo=ZONE)
    return [
        customer(cid, branch=branch, tags=["golf"], updated_at=t),
        customer(cid, branch=branch, tags=["golf", "car"], updated_at=t + timedelta(minutes=1)),
        account(f"{cid}-A", cid, "time_deposit", branch=f"{branch}-X"),
        aum(cid, "1000.00", day=DAY - timedelta(days=1), as_of=t - timedelta(days=1)),
        aum(cid, "5000.00", day=DAY, as_of=t),
        aum(cid, "3000.00", day=DAY, as_of=t + timedelta(hours=1)),
        fee(f"{cid}-P", cid, "4.00", points=7, at=t), fee(f"{cid}-P", cid, "4.00", points=7, at=t),
        tier(cid, "gold", at=t), tier(cid, "gold", at=t),
        signal(f"{cid}-S", cid), signal(f"{cid}-S", cid, status="done"),
        customer(cid, branch=branch, tags=["car", "tea"], updated_at=t + timedelta(minutes=2)),
    ]


async def read_model(s: Harness, cid: str, branch: str) -> tuple:
    body = (await s.get(f"/v1/customers/{cid}")).json()
    report = (await s.get(f"/v1/branches/{branch}/report", params={"date": DAY.isoformat()})).json()
    holders = (await s.get(f"/v1/branches/{branch}-X/report", params={"date": DAY.isoformat()})).json()
    for volatile in ("updated_at",):
        body["profile"].pop(volatile)
    return body, report, holders["account_holders"]


async def run(events_in_batches: list[list], cid: str, branch: str) -> tuple:
    spec = load("profile")
    with tempfile.TemporaryDirectory(prefix="strata-test-") as tmp:
        s = await Harness(single_process_settings(tmp), [spec]).start()
        try:
            for events in events_in_batches:
                await s.publish(*events)
                await s.settle()
            return await read_model(s, cid, branch)
        finally:
            await s.stop()


async def test_the_read_model_is_the_same_in_one_batch_or_many():
    cid, branch = new_id("BT"), new_id("BR-BT")
    events = story(cid, branch)
    together = await run([events], cid, branch)
    one_by_one = await run([[e] for e in events], cid, branch)
    assert together == one_by_one
    body, report, holders = together
    assert body["profile"]["tags"] == ["car", "tea"]
    assert body["fees"]["priced_postings"] == 1 and body["open_signals"] == []
    assert (report["inflow_today"], report["outflow_today"]) == ("2000.00", "0.00")
    assert (report["inflow_mtd"], holders["inflow_mtd"]) == ("3000.00", "3000.00")  # 1,000 on the 19th
    assert report["tier_changes_mtd"] == {"upgrades": 1, "downgrades": 0}


async def test_tags_replaced_twice_in_one_batch_select_only_the_last_ones(profile_strata):
    s, cid = profile_strata, new_id("BT")
    await s.publish(*story(cid, new_id("BR-BT")))
    await s.settle()
    for tag, expected in (("tea", [cid]), ("golf", [])):
        created = await s.post("/v1/segments", {"name": f"tag-{tag}-{cid.lower()}",
                                                "filter": {"field": "tags", "op": "contains", "value": tag}})
        assert created.status_code == 201
        members = (await s.get(f"/v1/segments/tag-{tag}-{cid.lower()}/members")).json()["items"]
        assert [m["customer_id"] for m in members] == expected


async def rows_after(batches: list[list], statement) -> list[list[tuple]]:
    """The rows ``statement`` selects after each way of batching the same events (a fresh
    single-process Strata each)."""
    found = []
    for events_in_batches in batches:
        with tempfile.TemporaryDirectory(prefix="strata-test-") as tmp:
            s = await Harness(single_process_settings(tmp), [load("profile")]).start()
            try:
                for events in events_in_batches:
                    await s.publish(*events)
                    await s.settle()
                async with s.runtime.db.sessions() as session:
                    found.append(sorted((await session.execute(statement)).all()))
            finally:
                await s.stop()
    return found


async def test_two_upgrades_of_one_instant_are_two_changes_in_one_batch_or_two():
    # two balances as of one moment: mass to gold, then gold to platinum, both at t; the tier
    # change key (customer, time, change, from, to) holds both however they batch
    cid = new_id("BT")
    t = datetime(2026, 11, 20, tzinfo=ZONE)
    first, second = tier(cid, "gold", at=t), tier(cid, "platinum", frm="gold", at=t)
    T = ProfileTierChange
    stored = await rows_after([[[first, second]], [[first], [second]], [[first, second, first]]],
                              select(T.from_tier, T.to_tier).where(T.customer_id == cid))
    assert stored[0] == stored[1] == stored[2] == [("gold", "platinum"), ("mass", "gold")]


async def test_changes_of_a_day_that_cancel_out_leave_the_same_row_in_one_batch_or_two():
    # 1,000 in and out again: a net of zero for the day, stored alike whether the two changes
    # were added in one statement or in two
    cid = new_id("BT")
    t = datetime(2026, 11, 20, 9, tzinfo=ZONE)
    events = [aum(cid, "1000.00", day=DAY, as_of=t), aum(cid, "0.00", day=DAY, as_of=t + timedelta(hours=1)),
              aum(cid, "250.00", day=DAY + timedelta(days=1), as_of=t + timedelta(days=1))]
    F = ProfileCustomerFlow
    stored = await rows_after([[events], [[e] for e in events]],
                              select(F.day, F.net).where(F.customer_id == cid))
    assert stored[0] == stored[1] == [(DAY, Decimal("0.00")), (DAY + timedelta(days=1), Decimal("250.00"))]


# --- work per batch, and what a batch run again counts ----------------------------------------


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@contextmanager
def statements_on_profile_tables(s: Harness) -> Iterator[list[str]]:
    """The SQL statements run against profile's own tables meanwhile (an executemany is one)."""
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if "profile_" in statement:
            seen.append(statement)

    engine = s.runtime.db.engine.sync_engine
    sql_events.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sql_events.remove(engine, "before_cursor_execute", count)


async def test_a_batch_costs_a_few_statements_whatever_the_number_of_its_customers(profile_strata):
    s, n = profile_strata, 300
    ids = [new_id("BW") for _ in range(n)]
    t = datetime(2026, 11, 20, 9, tzinfo=ZONE)
    events = []
    for cid in ids:
        events += [customer(cid, tags=["golf"], updated_at=t), customer(cid, source="tax", attributes={"b": 1},
                                                                         updated_at=t),
                   account(f"{cid}-A", cid), aum(cid, "100.00", day=DAY, as_of=t), fee(f"{cid}-P", cid, "1.00"),
                   tier(cid, "gold", at=t), signal(f"{cid}-S", cid)]
    loop = s.runtime.loops["profile"]
    batches = loop.batches
    with statements_on_profile_tables(s) as seen:
        await s.publish(*events)
        await s.settle()
    ran = loop.batches - batches
    assert ran <= 4, f"{len(events)} events took {ran} batches"
    assert len(seen) <= 20 * ran, f"{len(seen)} statements on profile's tables for {ran} batches of {n} customers"
    body = (await s.get(f"/v1/customers/{ids[-1]}")).json()
    assert (body["tier"], body["fees"]["priced_postings"], body["aum"]) == ("gold", 1, "100.00")


async def test_a_batch_run_again_counts_its_stale_events_and_repeated_facts_once(profile_strata):
    s, cid, other = profile_strata, new_id("BR"), new_id("BR")
    t = datetime(2026, 11, 20, 9, tzinfo=ZONE)
    await s.publish(s.event(account(f"{cid}-A", cid), time=t), fee(f"{cid}-P", cid, "4.00", at=t))
    await s.settle()
    stale = sample("strata_profile_stale_events_total", topic="bank.accounts")
    repeated = sample("strata_profile_duplicate_facts_total", topic="strata.fees")
    # one batch: an older account record, the fee again under a new event id, and a record
    # giving the account to another customer, which is refused: the batch is rolled back and
    # run again without it
    await s.publish(s.event(account(f"{cid}-A", cid, status="closed"), time=t - timedelta(minutes=1)),
                    fee(f"{cid}-P", cid, "4.00", at=t),
                    s.event(account(f"{cid}-A", other), time=t + timedelta(minutes=1)))
    await s.settle()
    assert sample("strata_profile_stale_events_total", topic="bank.accounts") == stale + 1
    assert sample("strata_profile_duplicate_facts_total", topic="strata.fees") == repeated + 1
    body = (await s.get(f"/v1/customers/{cid}")).json()
    assert [h["status"] for h in body["holdings"]] == ["open"] and body["fees"]["priced_postings"] == 1
