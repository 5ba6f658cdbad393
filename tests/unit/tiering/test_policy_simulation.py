"""Tier-policy simulation: a candidate policy replayed over a month of the simulated bank's
history agrees, customer by customer, with the live path fed the same facts under that policy;
a candidate that is not a policy is refused naming the rule; nothing but the simulation's own
tables changes."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import date, timedelta

import pytest
from sqlalchemy import select, text

from shared.bus.base import Message
from shared.contracts.cloudevents import encode_binary
from shared.settings import get_settings
from services.tiering.models import TieringCustomer
from strata.simulator.feed import Feed
from tests.conftest import private_strata

MONTH = "2026-10"
CANDIDATE = [{"id": "gold", "floor": "40000.00", "downgrade_after_months": 1},
             {"id": "platinum", "floor": "150000.00", "downgrade_after_months": 2}]
CUSTOMERS = 400
SEED = 2
"""A bank of this seed and size has, in October, customers the candidate watches and lowers."""


def candidate_tiers(settings) -> list[dict]:
    """The settings' tier table with the candidate's floors: the live path configured with it."""
    changes = {t["id"]: t for t in CANDIDATE}
    return [{**t.model_dump(mode="json"), **changes.get(t.id, {})} for t in settings.tiers]


@pytest.fixture(scope="module")
def bank_feed() -> list:
    """The simulated bank's October and the 1st of November, as core banking sends them."""
    feed = Feed(SEED, CUSTOMERS, date(2026, 10, 1), get_settings())
    events = list(feed.master_events())
    day = date(2026, 10, 1)
    while day <= date(2026, 11, 1):
        events += list(feed.day_events(day))
        day += timedelta(days=1)
    return events


async def publish_all(strata, events) -> None:
    for start in range(0, len(events), 500):
        await strata.runtime.bus.publish([Message(e.topic, *encode_binary(e)) for e in events[start:start + 500]])
    await strata.settle(300)


async def close(strata, month: str) -> dict:
    response = await strata.post("/v1/admin/month-end-close", {"month": month})
    assert response.status_code == 200, response.text
    return response.json()


async def tiers_of(strata) -> dict[str, tuple[str, bool, int]]:
    async with strata.runtime.db.sessions() as session:
        return {c.customer_id: (c.tier, c.watch, c.months_below)
                for c in (await session.execute(select(TieringCustomer))).scalars()}


async def simulate(strata, body: dict) -> dict:
    response = await strata.post("/v1/tiering/simulate", body, role="analyst")
    assert response.status_code == 202, response.text
    simulation_id = response.json()["id"]
    for _ in range(1200):
        view = (await strata.get(f"/v1/tiering/simulations/{simulation_id}", role="analyst")).json()
        if view["state"] not in ("queued", "running"):
            break
        await asyncio.sleep(0.05)
    assert view["state"] == "done", view
    return view


async def simulated_customers(strata, simulation_id: str) -> dict[str, dict]:
    out, after = {}, None
    while True:
        params = {"limit": 200, **({"after": after} if after else {})}
        page = (await strata.get(f"/v1/tiering/simulations/{simulation_id}/customers", role="analyst",
                                 params=params)).json()
        out.update({i["customer_id"]: i for i in page["items"]})
        after = page["next"]
        if after is None:
            return out


@pytest.fixture(scope="module")
async def live_today(bank_feed):
    """Today's policy, live: the feed, the close of October, and a simulation of the candidate."""
    async with private_strata(["tiering", "pricing"]) as strata:
        await publish_all(strata, bank_feed)
        summary = await close(strata, MONTH)
        view = await simulate(strata, {"from": MONTH, "to": MONTH, "tiers": CANDIDATE})
        yield {"strata": strata, "summary": summary, "tiers": await tiers_of(strata), "view": view,
               "customers": await simulated_customers(strata, view["id"])}


@pytest.fixture(scope="module")
async def live_candidate(bank_feed):
    """The candidate policy, live: a fresh tiering configured with it, fed the same facts."""
    async with private_strata(["tiering"], tiers=candidate_tiers(get_settings())) as strata:
        await publish_all(strata, bank_feed)
        summary = await close(strata, MONTH)
        yield {"summary": summary, "tiers": await tiers_of(strata)}


def _differences(live: dict[str, tuple], simulated: dict[str, dict], side: str) -> dict:
    wrong = {}
    for customer_id, state in live.items():
        got = simulated.get(customer_id)
        mine = None if got is None else (got[f"{side}_tier"], got[f"{side}_watch"], got[f"{side}_months_below"])
        if mine != state:
            wrong[customer_id] = {"live": state, "simulated": mine}
    return wrong


async def test_the_candidate_simulated_agrees_customer_by_customer_with_the_live_path_under_it(
        live_today, live_candidate):
    wrong = _differences(live_candidate["tiers"], live_today["customers"], "candidate")
    assert not wrong, f"{len(wrong)} of {len(live_candidate['tiers'])} customers differ, e.g. {list(wrong.items())[:5]}"
    month = live_today["view"]["result"]["months"][0]["candidate"]
    live = live_candidate["summary"]
    assert live["watch"] and live["downgrades"], f"the month should try the candidate's watch and downgrades: {live}"
    assert (month["customers"], month["watch"], month["watch_cleared"], month["downgrades"]) == \
        (live["customers"], live["watch"], live["watch_cleared"], live["downgrades"])


async def test_todays_policy_replayed_agrees_customer_by_customer_with_the_live_path(live_today):
    wrong = _differences(live_today["tiers"], live_today["customers"], "today")
    assert not wrong, f"{len(wrong)} customers differ, e.g. {list(wrong.items())[:5]}"
    month = live_today["view"]["result"]["months"][0]["today"]
    live = live_today["summary"]
    assert (month["customers"], month["watch"], month["watch_cleared"], month["downgrades"]) == \
        (live["customers"], live["watch"], live["watch_cleared"], live["downgrades"])


async def test_the_candidate_moves_customers_up_and_the_migration_matrix_says_where(live_today, live_candidate):
    result = live_today["view"]["result"]
    end = result["migration"]["end"]
    moved = {(a, b): n for a, row in end.items() for b, n in row.items() if a != b and n}
    assert moved, "lower floors move some customers up"
    live_moves = {}
    for customer_id, (tier, _w, _m) in live_candidate["tiers"].items():
        before = live_today["tiers"][customer_id][0]
        if before != tier:
            live_moves[(before, tier)] = live_moves.get((before, tier), 0) + 1
    assert moved == live_moves
    assert result["migration"]["by_month"][MONTH] == end
    assert sum(n for row in end.values() for n in row.values()) == result["customers"] == len(live_today["tiers"])


async def test_the_answer_says_which_months_had_history_and_where_each_was_closed(live_today):
    history = live_today["view"]["result"]["history"]
    assert history["months_with_history"] == [MONTH] and history["months_without_history"] == []
    assert history["months"][0]["days_with_history"] == 31
    assert history["months"][0]["closed_through"] == "2026-11-01"


async def test_the_answer_counts_customers_aum_and_the_rms_the_books_need_under_both(live_today):
    result = live_today["view"]["result"]
    month = result["months"][0]
    for side in ("today", "candidate"):
        by_tier = month[side]["by_tier"]
        assert sum(t["customers"] for t in by_tier.values()) == month[side]["customers"]
    assert month["candidate"]["by_tier"] != month["today"]["by_tier"], "the candidate tiers differently"
    total_aum = {side: sum(float(t["aum"]) for t in month[side]["by_tier"].values()) for side in ("today", "candidate")}
    assert total_aum["today"] == pytest.approx(total_aum["candidate"]), "the same money, tiered differently"
    for side in ("today", "candidate"):
        gold = month[side]["by_tier"]["gold"]["customers"]
        need = result["rms_needed"][side]["L1"]
        assert need["customers"] == gold and need["weighted_book"] == gold
        assert need["rms"] == -(-gold // need["capacity"])


async def test_the_fee_part_prices_the_periods_postings_again_with_the_simulated_tiers(live_today):
    fees = live_today["view"]["result"]["fees"]
    assert fees["available"] is True and fees["postings"] > 0
    totals = fees["totals"]
    assert totals["today"]["count"] == totals["candidate"]["count"] == totals["as_charged"]["count"] == fees["postings"]
    # today's policy replayed prices (nearly) as charged; the candidate's richer tiers waive more
    assert float(totals["candidate"]["waived"]) >= float(totals["today"]["waived"])
    assert float(totals["change"]["income"]) == pytest.approx(
        float(totals["candidate"]["income"]) - float(totals["today"]["income"]))


async def test_the_answer_comes_as_csv_too(live_today):
    strata = live_today["strata"]
    response = await strata.get(f"/v1/tiering/simulations/{live_today['view']['id']}", role="analyst",
                                params={"format": "csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    gold_to_platinum = [r for r in rows if r["section"] == "migration" and r["month"] == "end"
                        and r["tier"] == "gold" and r["to_tier"] == "platinum"]
    assert gold_to_platinum and int(gold_to_platinum[0]["value"]) == \
        live_today["view"]["result"]["migration"]["end"]["gold"]["platinum"]
    assert {r["section"] for r in rows} >= {"history", "migration", "month", "rms_needed", "fees"}
    response = await strata.get(f"/v1/tiering/simulations/{live_today['view']['id']}/customers", role="analyst",
                                params={"format": "csv"})
    lines = response.text.strip().split("\n")
    assert lines[0].startswith("customer_id,today_tier") and len(lines) == len(live_today["customers"]) + 1


async def test_a_month_without_history_is_said_and_changes_no_customers_outcome(live_today):
    strata = live_today["strata"]
    view = await simulate(strata, {"from": "2026-09", "to": MONTH, "tiers": CANDIDATE})
    history = view["result"]["history"]
    assert history["months_without_history"] == ["2026-09"] and history["months_with_history"] == [MONTH]
    assert view["result"]["months"][0]["candidate"]["customers"] == 0, "nobody was a customer in September"
    assert await simulated_customers(strata, view["id"]) == live_today["customers"]


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("tiers, rule", [
    ([{"id": "platinum", "floor": "40000.00"}], "floors must increase"),
    ([{"id": "gold", "floor": "200000.00"}], "floors must increase"),
    ([{"id": "titanium", "floor": "80000.00"}], "unknown tier titanium"),
    ([{"id": "mass", "floor": "100.00"}], "the lowest tier must have floor 0"),
    ([{"id": "gold", "downgrade_after_months": 0}], "downgrade_after_months"),
    ([{"id": "gold", "downgrade_after_months": 25}], "downgrade_after_months"),
    ([{"id": "gold", "floor": "-5.00"}], "must not be negative"),
    ([{"id": "gold", "floor": "1.00"}, {"id": "gold", "floor": "2.00"}], "more than once"),
], ids=["platinum-below-gold", "gold-above-platinum", "unknown-tier", "lowest-not-zero", "no-months",
        "too-many-months", "negative-floor", "tier-twice"])
async def test_a_candidate_that_is_not_a_policy_is_refused_naming_the_rule(live_today, tiers, rule):
    response = await live_today["strata"].post("/v1/tiering/simulate", {"from": MONTH, "to": MONTH, "tiers": tiers},
                                              role="analyst")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert rule in response.json()["detail"], response.json()


@pytest.mark.parametrize("period, why", [
    ({"from": "2026-10", "to": "2026-09"}, "before"),
    ({"from": "2024-01", "to": "2026-10"}, "at most 24 months"),
    ({"from": "2099-12", "to": "2099-12"}, "whole months that have ended"),
    ({"from": "2026-13", "to": "2026-13"}, "from"),
    ({"from": "x2026-10", "to": "2026-10 "}, "from"),
])
async def test_a_period_that_is_not_past_whole_months_is_refused(live_today, period, why):
    response = await live_today["strata"].post("/v1/tiering/simulate", {**period, "tiers": CANDIDATE}, role="analyst")
    assert response.status_code == 422 and why in response.json()["detail"], response.text


async def test_only_analysts_and_admins_simulate(live_today):
    strata = live_today["strata"]
    body = {"from": MONTH, "to": MONTH, "tiers": CANDIDATE}
    assert (await strata.post("/v1/tiering/simulate", body, role="rm", rm_id="RM-1")).status_code == 403
    assert (await strata.get(f"/v1/tiering/simulations/{live_today['view']['id']}", role="branch_manager",
                             branch_id="BR-1")).status_code == 403
    assert (await strata.get("/v1/tiering/simulations/no-such-id", role="analyst")).status_code == 404


# --- nothing live changes -------------------------------------------------------------------

OWN_TABLES = ("tiering_simulations", "tiering_simulation_customers")


async def _every_table(strata) -> dict[str, list]:
    async with strata.runtime.db.sessions() as session:
        names = [r[0] for r in await session.execute(text(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"))]
        return {name: sorted(map(tuple, await session.execute(text(f'SELECT * FROM "{name}"'))), key=repr)
                for name in names if name not in OWN_TABLES}


async def test_a_simulation_writes_nothing_but_its_own_tables_and_emits_nothing(live_today):
    strata = live_today["strata"]
    before = await _every_table(strata)
    bus = strata.runtime.bus
    published = {topic: bus.end_offsets(topic) for topic in bus.topics}
    view = await simulate(strata, {"from": MONTH, "to": MONTH, "tiers": CANDIDATE, "household_aggregation": True})
    await strata.settle()
    after = await _every_table(strata)
    assert "runtime_outbox" in before and before["runtime_outbox"] == after["runtime_outbox"] == []
    changed = sorted(name for name in before if before[name] != after.get(name))
    assert changed == [], f"a simulation changed {changed}"
    assert view["result"]["policies"]["candidate"]["household_aggregation"] is True
    assert {topic: bus.end_offsets(topic) for topic in bus.topics} == published, "a simulation published events"


async def test_the_work_goes_a_chunk_of_customers_at_a_time(live_today, monkeypatch):
    from services.tiering import simulation_job

    sizes = []
    replay = simulation_job._replay_chunk

    def counted(job, groups):
        sizes.append(sum(len(g[0]) for g in groups))
        return replay(job, groups)

    monkeypatch.setattr(simulation_job, "CHUNK", 37)
    monkeypatch.setattr(simulation_job, "_replay_chunk", counted)
    view = await simulate(live_today["strata"], {"from": MONTH, "to": MONTH, "tiers": CANDIDATE})
    assert max(sizes) <= 37 and len(sizes) >= CUSTOMERS // 37
    assert sum(sizes) == view["customers_done"] == view["customers_total"] and view["percent"] == 100.0
    assert await simulated_customers(live_today["strata"], view["id"]) == live_today["customers"]


async def test_without_pricings_table_the_tier_part_answers_and_the_fee_part_says_it_is_unavailable(bank_feed):
    async with private_strata(["tiering"]) as strata:
        await publish_all(strata, bank_feed[:3000])
        view = await simulate(strata, {"from": MONTH, "to": MONTH, "tiers": CANDIDATE})
    result = view["result"]
    assert result["fees"]["available"] is False and "pricing_fees" in result["fees"]["reason"]
    assert result["customers"] > 0 and result["migration"]["end"]
