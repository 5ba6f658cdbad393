"""The replay behind tier-policy simulations: the running sum and the tiers it gives, household
aggregation against the live path, the tier at each posting for the fee part."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal as D
from types import SimpleNamespace

from sqlalchemy import select, text

from shared.contracts.events import CustomerV1, PostingV1
from shared.tiers import Tier, TierLadder
from services.tiering.domain import TierPolicy
from services.tiering.models import TieringCustomer
from services.tiering.replay import Close, DayTiers, History, decide, household_path, path_of
from services.tiering.simulation_job import view
from tests.conftest import private_strata

POLICY = TierPolicy(TierLadder([Tier("mass", D(0)), Tier("gold", D(50000), 3), Tier("platinum", D(200000), 3)]))
OCTOBER = Close(date(2026, 10, 1), date(2026, 10, 31))


def cents(amount: str) -> int:
    return int(D(amount) * 100)


def day(n: int, aum: str, high: str | None = None, month: int = 10):
    """A day of history as tiering keeps it: the day, its end-of-day AUM and its high, in cents."""
    return (date(2026, month, n), cents(aum), cents(high or aum))


def test_days_without_activity_keep_the_aum_of_the_day_before_and_days_before_the_first_count_zero():
    carried = path_of(History("C", None, cents("1000.00"), [day(11, "4000.00")]), [OCTOBER]).stretches[0]
    assert carried.average == D("3032.26")  # 10 days at 1000, 21 at 4000, over 31
    new = path_of(History("C", None, None, [day(11, "3100.00")]), [OCTOBER]).stretches[0]
    assert new.average == D("2100.00")  # 21 days at 3100 over 31
    assert (new.month_end_aum, new.close_aum) == (D("3100.00"), D("3100.00"))


def test_a_customer_first_seen_after_the_month_is_not_closed_in_it():
    late = path_of(History("C", None, None, [day(1, "9000.00", month=11)]),
                   [Close(date(2026, 10, 1), date(2026, 11, 1))])
    assert late.stretches[0].average is None
    assert decide(late, late, POLICY, [OCTOBER]) == [None]


def test_the_days_highest_aum_upgrades_even_when_the_day_ends_below_the_floor():
    path = path_of(History("C", None, cents("0.00"), [day(5, "30000.00", "60000.00")]), [OCTOBER])
    [month] = decide(path, path, POLICY, [OCTOBER])
    assert month.state.tier == "gold" and month.upgraded and month.change == "watch"


def test_a_month_closed_after_the_next_months_first_day_counts_that_day_as_the_live_close_does():
    """The live close decides on the customer as they stand when it runs: a tier reached on the
    1st is the tier the month is held against, and the AUM then is the AUM now."""
    through = Close(date(2026, 10, 1), date(2026, 11, 1))
    history = History("C", None, cents("60000.00"), [day(1, "250000.00", month=11)])
    [late] = decide(path_of(history, [through]), path_of(history, [through]), POLICY, [through])
    [early] = decide(path_of(history, [OCTOBER]), path_of(history, [OCTOBER]), POLICY, [OCTOBER])
    assert (late.state.tier, late.state.watch) == ("platinum", True)
    assert (early.state.tier, early.state.watch, early.change) == ("gold", False, None)


def test_downgrades_wait_the_tiers_months_below_the_floor():
    months = [Close(date(2026, m, 1), date(2026, m, 28 if m == 2 else 30 if m in (4, 6, 9, 11) else 31))
              for m in (1, 2, 3)]
    history = History("C", None, cents("60000.00"), [day(2, "1000.00", month=1)])
    path = path_of(history, months)
    outcomes = decide(path, path, POLICY, months)
    assert [(o.state.tier, o.change, o.state.months_below) for o in outcomes] == [
        ("gold", "watch", 1), ("gold", "watch", 2), ("mass", "downgrade", 0)]


def test_a_households_highest_of_a_day_is_one_members_rise_on_the_others_aum():
    head = path_of(History("H1", "H", cents("30000.00"), [day(5, "30000.00", "45000.00")]), [OCTOBER])
    spouse = path_of(History("H2", "H", cents("10000.00"), [day(6, "12000.00")]), [OCTOBER])
    household = household_path([head, spouse], [OCTOBER])
    assert household.opening == D("40000.00")
    assert household.days == [day(5, "40000.00", "55000.00"), day(6, "42000.00")]
    assert household.stretches[0].average == head.stretches[0].average + spouse.stretches[0].average
    [month] = decide(spouse, household, POLICY, [OCTOBER])
    assert month.state.tier == "gold", "the spouse is tiered on the household's highest AUM"


def test_the_tier_at_a_posting_rises_within_the_day_with_the_aum_after_it():
    path = path_of(History("C", None, cents("10000.00"), [day(7, "60000.00", "61000.00")]), [OCTOBER])
    tiers = DayTiers(path, path, POLICY, [OCTOBER])
    assert [tiers.after(date(2026, 10, 7), D(a)) for a in ("9900.00", "61000.00", "60000.00")] == \
        ["mass", "gold", "gold"]
    assert tiers.at(date(2026, 10, 7)) == "mass" and tiers.at(date(2026, 10, 8)) == "gold"
    assert tiers.at(date(2026, 11, 1)) == "gold"


def test_a_running_simulation_whose_heartbeat_stopped_was_interrupted():
    now = datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)
    row = SimpleNamespace(id="S", state="running", heartbeat_at=now - timedelta(minutes=5), requested_at=now,
                          customers_total=10, customers_done=4, requested_by="a", started_at=now,
                          finished_at=None, request="{}", error=None, result=None)
    assert (view(row, now)["state"], view(row, now)["percent"]) == ("interrupted", 40.0)
    row.heartbeat_at = now - timedelta(seconds=5)
    assert view(row, now)["state"] == "running"


# --- against the live path --------------------------------------------------------------------

_seq: dict[str, int] = {}


def move(customer: str, balance: str, at: str, *, tx_type: str = "transfer_in", direction: str = "credit",
         channel: str = "mobile", counterparty: str | None = None, amount: str = "1.00") -> PostingV1:
    seq = _seq[customer] = _seq.get(customer, 0) + 1
    return PostingV1(posting_id=f"{customer}-{seq}", customer_id=customer, account_id=f"{customer}-A",
                     account_seq=seq, product_type="demand_deposit", direction=direction, amount=amount,
                     balance_after=balance, currency="CNY", tx_type=tx_type, channel=channel,
                     counterparty_bank=counterparty, branch_id="BR-1", posted_at=at)


def household_facts() -> list:
    _seq.clear()
    people = [CustomerV1(customer_id=c, name="n", home_branch_id="BR-1", household_id=h, household_role=r,
                         updated_at="2026-10-01T08:00:00+08:00")
              for c, h, r in (("RH-HEAD", "RH-1", "head"), ("RH-SPOUSE", "RH-1", "spouse"), ("RH-SOLO", None, None))]
    return people + [
        move("RH-HEAD", "30000.00", "2026-10-02T10:00:00+08:00"),
        move("RH-SPOUSE", "25000.00", "2026-10-05T10:00:00+08:00"),
        move("RH-SOLO", "60000.00", "2026-10-03T10:00:00+08:00"),
        move("RH-SPOUSE", "5000.00", "2026-10-10T10:00:00+08:00", direction="debit"),
        move("RH-SOLO", "10000.00", "2026-10-20T10:00:00+08:00", direction="debit"),
        move("RH-HEAD", "31000.00", "2026-11-01T10:00:00+08:00"),
    ]


async def _run(aggregation: bool) -> tuple[dict, object]:
    async with private_strata(["tiering"], tiering={"household_aggregation": aggregation}) as strata:
        for fact in household_facts():
            await strata.publish(fact)
            await strata.settle()
        assert (await strata.post("/v1/admin/month-end-close", {"month": "2026-10"})).status_code == 200
        async with strata.runtime.db.sessions() as session:
            live = {c.customer_id: (c.tier, c.watch, c.months_below)
                    for c in (await session.execute(select(TieringCustomer))).scalars()}
        response = await strata.post("/v1/tiering/simulate", {"from": "2026-10", "to": "2026-10",
                                                              "household_aggregation": not aggregation})
        assert response.status_code == 202, response.text
        for _ in range(400):
            body = (await strata.get(f"/v1/tiering/simulations/{response.json()['id']}")).json()
            if body["state"] == "done":
                break
            await asyncio.sleep(0.05)
        items = (await strata.get(f"/v1/tiering/simulations/{body['id']}/customers")).json()["items"]
    return live, {i["customer_id"]: i for i in items}


def _side(simulated: dict, side: str) -> dict:
    return {c: (i[f"{side}_tier"], i[f"{side}_watch"], i[f"{side}_months_below"]) for c, i in simulated.items()}


async def test_household_aggregation_simulated_agrees_with_the_live_path_each_way():
    with_households, simulated_without = await _run(True)
    without_households, simulated_with = await _run(False)
    assert with_households["RH-SPOUSE"] == ("gold", True, 1), "the household lifted the spouse, then fell below"
    assert without_households["RH-SPOUSE"] == ("mass", False, 0)
    assert _side(simulated_without, "today") == with_households
    assert _side(simulated_without, "candidate") == without_households
    assert _side(simulated_with, "today") == without_households
    assert _side(simulated_with, "candidate") == with_households


# --- the fee part: the tier at the posting ---------------------------------------------------


async def _fee_simulation(strata) -> dict:
    response = await strata.post("/v1/tiering/simulate", {"from": "2026-10", "to": "2026-10"})
    for _ in range(400):
        body = (await strata.get(f"/v1/tiering/simulations/{response.json()['id']}")).json()
        if body["state"] == "done":
            return body["result"]["fees"]
        await asyncio.sleep(0.05)
    raise AssertionError(body)


async def test_with_the_aum_after_each_posting_a_fee_is_priced_with_the_tier_it_had_at_that_moment():
    """An interbank ATM withdrawal as mass (charged), a transfer in that lifts the customer to
    gold, a second withdrawal the same day (gold's free use): priced as charged when pricing
    kept the AUM after each posting; for postings priced before it kept it, from the start of
    the day, both are mass's."""
    _seq.clear()
    atm = dict(tx_type="atm_withdrawal", direction="debit", channel="atm", counterparty="OTHER", amount="100.00")
    facts = [move("FX-1", "10000.00", "2026-10-06T09:00:00+08:00"),
             move("FX-1", "9900.00", "2026-10-07T09:00:00+08:00", **atm),
             move("FX-1", "70000.00", "2026-10-07T10:00:00+08:00"),
             move("FX-1", "69900.00", "2026-10-07T11:00:00+08:00", **atm)]
    async with private_strata(["tiering", "pricing"]) as strata:
        for fact in facts:
            await strata.publish(fact)
            await strata.settle()
        after_posting = await _fee_simulation(strata)
        async with strata.runtime.db.transaction() as session:  # as priced before pricing kept the AUM
            await session.execute(text("UPDATE pricing_fees SET aum = NULL"))
        start_of_day = await _fee_simulation(strata)
    assert after_posting["tier_at_posting"] == "after_posting"
    charged = after_posting["totals"]["as_charged"]
    assert (charged["count"], charged["waived"], charged["income"]) == (2, "4.00", "4.00")
    assert after_posting["totals"]["today"] == charged
    assert (start_of_day["totals"]["today"]["waived"], start_of_day["totals"]["today"]["income"]) == ("0.00", "8.00")
