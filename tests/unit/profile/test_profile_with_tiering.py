"""Profile fed by tiering in one process: core banking's accounts, balances and postings in,
the customer 360's holdings and the branch report's flows out."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from tests.conftest import private_strata
from tests.unit.profile.profile_events import ZONE, account, customer, new_id, posting, snapshot

DAY = date(2026, 11, 20)
BEFORE = DAY - timedelta(days=1)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE)


@pytest.fixture(scope="module")
async def pipeline():
    async with private_strata(["tiering", "profile"]) as harness:
        yield harness


async def apply(s, *phases: list) -> None:
    for events in phases:
        await s.publish(*events)
        await s.settle()


async def holdings(s, cid: str) -> dict[str, dict]:
    response = await s.get(f"/v1/customers/{cid}")
    assert response.status_code == 200, response.text
    return {h["account_id"]: h for h in response.json()["holdings"]}


# --- holdings -------------------------------------------------------------------------------


async def test_holdings_carry_each_account_s_balance_now_and_its_product_name(pipeline):
    s, cid = pipeline, new_id("TP")
    dd, td, fund = f"{cid}-DD", f"{cid}-TD", f"{cid}-FD"
    await apply(s, [customer(cid), account(dd, cid, code="DD-SAVINGS"),
                    account(td, cid, "time_deposit", code="TD-1Y", maturity=date(2027, 1, 5)),
                    account(fund, cid, "fund", code="FUND-OF-ANOTHER-BANK")],
                [snapshot(cid, dd, "5000.00", at(DAY, 0)), snapshot(cid, td, "20000.00", at(DAY, 0), "time_deposit")],
                [posting(cid, dd, 1, "300.00", "5300.00", at(DAY, 10))])
    found = await holdings(s, cid)
    assert (found[dd]["balance"], found[dd]["product_name"]) == ("5300.00", "Demand savings 活期储蓄")
    assert (found[td]["balance"], found[td]["product_name"], found[td]["maturity_date"]) == (
        "20000.00", "1-year time deposit 一年期定期存款", "2027-01-05")
    assert (found[fund]["balance"], found[fund]["product_name"]) == (None, None), \
        "no balance has reached Strata, and the catalogue does not know the code"


async def test_a_balance_that_arrives_before_the_account_s_record_is_kept_for_it(pipeline):
    s, cid = pipeline, new_id("TP")
    dd = f"{cid}-DD"
    await apply(s, [customer(cid)], [snapshot(cid, dd, "750.00", at(DAY, 0))])
    assert await holdings(s, cid) == {}, "no holding without core banking's record of the account"
    await apply(s, [account(dd, cid, code="DD-SAVINGS")])
    assert (await holdings(s, cid))[dd]["balance"] == "750.00"


# --- flows ----------------------------------------------------------------------------------


async def report(s, branch: str, day: date) -> dict:
    response = await s.get(f"/v1/branches/{branch}/report", params={"date": day.isoformat()})
    assert response.status_code == 200, response.text
    return response.json()


def flows(view: dict) -> tuple[str, ...]:
    return tuple(view[k] for k in ("inflow_today", "outflow_today", "inflow_mtd", "outflow_mtd"))


def master_data(s, cid: str, branch: str, *accounts: tuple[str, str]) -> list:
    """The customer's record and accounts as core banking sent them the day before DAY."""
    sent = at(BEFORE, 9)
    return [s.event(customer(cid, branch=branch, updated_at=sent), time=sent),
            *(s.event(account(aid, cid, product_type, branch=branch), time=sent) for aid, product_type in accounts)]


async def test_a_customer_s_first_placement_is_no_inflow_and_a_later_posting_is(pipeline):
    s, cid, branch = pipeline, new_id("TF"), new_id("BR-TF")
    dd, td = f"{cid}-DD", f"{cid}-TD"
    await apply(s, master_data(s, cid, branch, (dd, "demand_deposit"), (td, "time_deposit")),
                # the go-live load: the balances the customer already held
                [snapshot(cid, dd, "5000.00", at(DAY, 0)), snapshot(cid, td, "20000.00", at(DAY, 0), "time_deposit")],
                [posting(cid, dd, 1, "300.00", "5300.00", at(DAY, 10))])
    body = await report(s, branch, DAY)
    assert body["aum"] == "25300.00"
    assert flows(body) == ("300.00", "0.00", "300.00", "0.00"), "only the posting flowed in"


async def test_a_change_that_arrives_late_counts_on_the_business_day_it_happened(pipeline):
    s, cid, branch = pipeline, new_id("TL"), new_id("BR-TL")
    dd, other = f"{cid}-DD", f"{cid}-D2"
    await apply(s, master_data(s, cid, branch, (dd, "demand_deposit"), (other, "demand_deposit")),
                [snapshot(cid, dd, "5000.00", at(BEFORE, 8)), snapshot(cid, other, "1000.00", at(BEFORE, 8))],
                [posting(cid, dd, 1, "300.00", "5300.00", at(DAY, 10))],
                # the day before's posting, read after DAY's: tiering's running day is DAY by then
                [posting(cid, other, 1, "700.00", "1700.00", at(BEFORE, 15))])
    before, day = await report(s, branch, BEFORE), await report(s, branch, DAY)
    assert day["aum"] == "7000.00"
    assert flows(before) == ("700.00", "0.00", "700.00", "0.00"), "the late posting belongs to its own day"
    assert flows(day) == ("300.00", "0.00", "1000.00", "0.00"), "DAY's inflow is DAY's posting only"
