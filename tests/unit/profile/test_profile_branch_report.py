"""Branch reports through the single-process mode: customers and AUM by tier, deposits and
products, AUM flows today and month to date, tier changes this month, for the branch's own
customers and for those holding accounts there; a branch manager sees only their branch."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from tests.unit.profile.profile_events import ZONE, account, aum, customer, new_id, tier

DAY = date(2026, 11, 20)


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=ZONE)


@pytest.fixture(scope="module")
async def branches(profile_strata):
    """Home branch H with customers one and two; one also holds an account at branch A, and
    three (home branch X) holds one at H."""
    s = profile_strata
    h, a, b, x = (new_id("BRH"), new_id("BRA"), new_id("BRB"), new_id("BRX"))
    one, two, three = new_id(), new_id(), new_id()
    await s.publish(
        customer(one, branch=h), customer(two, branch=h), customer(three, branch=x),
        account(f"{one}-TD", one, "time_deposit", branch=a), account(f"{one}-DD", one, branch=h),
        account(f"{one}-OLD", one, "fund", branch=h, status="closed"),
        account(f"{two}-DD", two, branch=b), account(f"{three}-TD", three, "time_deposit", branch=h),
    )
    await s.settle()
    oct31, nov19 = date(2026, 10, 31), date(2026, 11, 19)
    await s.publish(
        aum(one, "10000.00", day=oct31, as_of=at(oct31, 10)),
        aum(one, "50000.00", day=nov19, as_of=at(nov19, 10)),
        aum(one, "30000.00", day=DAY, as_of=at(DAY, 9)),
        aum(one, "45000.00", day=DAY, as_of=at(DAY, 11),
            by_type={"demand_deposit": "15000.00", "time_deposit": "30000.00"}),
        aum(two, "300000.00", day=DAY, as_of=at(DAY, 10)),
        aum(three, "1000.00", day=DAY, as_of=at(DAY, 10), by_type={"time_deposit": "1000.00"}),
        tier(one, "platinum", at=at(date(2026, 10, 30), 12)),
        tier(one, "gold", frm="platinum", change="downgrade", at=at(date(2026, 11, 1), 0)),
        tier(one, "gold", frm="gold", change="watch", watch=True, at=at(date(2026, 11, 25), 0)),
        tier(two, "platinum", at=at(DAY, 10)),
    )
    await s.settle()
    return {"H": h, "A": a, "X": x, "one": one, "two": two, "three": three}


async def report(s, branch, role="analyst", **kw):
    response = await s.get(f"/v1/branches/{branch}/report", role=role, params={"date": DAY.isoformat()}, **kw)
    assert response.status_code == 200, response.text
    return response.json()


async def test_home_branch_view_has_the_contract_fields_with_the_figures_of_its_customers(profile_strata, branches):
    body = await report(profile_strata, branches["H"])
    assert body["branch_id"] == branches["H"] and body["business_date"] == "2026-11-20"
    assert body["by_tier"] == {
        "mass": {"customers": 0, "aum": "0.00"}, "gold": {"customers": 1, "aum": "45000.00"},
        "platinum": {"customers": 1, "aum": "300000.00"}, "diamond": {"customers": 0, "aum": "0.00"},
        "private": {"customers": 0, "aum": "0.00"},
    }
    assert (body["customers"], body["aum"]) == (2, "345000.00")
    # today: one's day nets to -5,000 (30,000 then 45,000 from 50,000); two brings 300,000
    flows = [body[k] for k in ("inflow_today", "outflow_today", "inflow_mtd", "outflow_mtd")]
    assert flows == ["300000.00", "5000.00", "340000.00", "5000.00"]
    assert body["net_today"] == "295000.00" and body["net_mtd"] == "335000.00"
    assert body["tier_changes_mtd"] == {"upgrades": 1, "downgrades": 1}


async def test_home_branch_deposits_and_products_count_every_account_of_its_customers(profile_strata, branches):
    body = await report(profile_strata, branches["H"])
    assert body["deposits"] == {"demand_deposit": "315000.00", "time_deposit": "30000.00", "total": "345000.00"}
    products = {k: (v["accounts"], v["customers"], v["balance"]) for k, v in body["products"].items()}
    assert products == {"demand_deposit": (2, 2, "315000.00"), "time_deposit": (1, 1, "30000.00")}


async def test_account_holders_view_counts_the_customers_holding_accounts_at_the_branch(profile_strata, branches):
    view = (await report(profile_strata, branches["H"]))["account_holders"]
    assert view["by_tier"]["gold"] == {"customers": 1, "aum": "45000.00"}
    assert view["by_tier"]["mass"] == {"customers": 1, "aum": "1000.00"}
    assert (view["customers"], view["aum"]) == (2, "46000.00")
    assert (view["inflow_today"], view["outflow_today"]) == ("1000.00", "5000.00")
    assert (view["inflow_mtd"], view["outflow_mtd"]) == ("41000.00", "5000.00")
    products = {k: (v["accounts"], v["customers"]) for k, v in view["products"].items()}
    assert products == {"demand_deposit": (1, 1), "time_deposit": (1, 1)}
    assert view["tier_changes_mtd"] == {"upgrades": 0, "downgrades": 1}


async def test_a_branch_where_a_customer_only_holds_an_account_sees_them_only_as_account_holder(profile_strata,
                                                                                              branches):
    body = await report(profile_strata, branches["A"])
    assert body["customers"] == 0 and body["inflow_mtd"] == "0.00"
    assert body["account_holders"]["customers"] == 1
    assert body["account_holders"]["inflow_mtd"] == "40000.00"


async def test_month_to_date_excludes_last_month(profile_strata, branches):
    body = (await profile_strata.get(f"/v1/branches/{branches['H']}/report",
                                     params={"date": "2026-10-31"})).json()
    assert (body["inflow_today"], body["inflow_mtd"]) == ("10000.00", "10000.00")
    assert body["tier_changes_mtd"] == {"upgrades": 1, "downgrades": 0}


async def test_a_branch_manager_sees_their_branch_and_not_another(profile_strata, branches):
    s, h, x = profile_strata, branches["H"], branches["X"]
    assert (await report(s, h, role="branch_manager", branch_id=h))["customers"] == 2
    refused = await s.get(f"/v1/branches/{h}/report", role="branch_manager", branch_id=x)
    assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"


async def test_an_rm_may_not_see_branch_reports(profile_strata, branches):
    refused = await profile_strata.get(f"/v1/branches/{branches['H']}/report", role="rm", rm_id="RM-1")
    assert refused.status_code == 403


async def test_a_malformed_date_is_a_422_problem(profile_strata, branches):
    refused = await profile_strata.get(f"/v1/branches/{branches['H']}/report", params={"date": "20-11-2026"})
    assert refused.status_code == 422 and refused.json()["title"] == "Invalid request"


async def test_flows_by_day_split_the_month_to_date_into_its_business_days(profile_strata, branches):
    body = await report(profile_strata, branches["H"])
    assert body["flows_by_day"] == [
        {"date": "2026-11-19", "inflow": "40000.00", "outflow": "0.00"},
        {"date": "2026-11-20", "inflow": "300000.00", "outflow": "5000.00"},
    ]
    assert body["account_holders"]["flows_by_day"][-1]["date"] == "2026-11-20"


async def test_branches_lists_head_office_every_branch_and_a_manager_their_own(profile_strata, branches):
    s = profile_strata
    everyone = (await s.get("/v1/branches", role="analyst")).json()["items"]
    mine = {i["branch_id"]: i for i in everyone}[branches["H"]]
    assert (mine["customers"], mine["aum"]) == (2, "345000.00")
    assert branches["X"] in {i["branch_id"] for i in everyone}
    own = (await s.get("/v1/branches", role="branch_manager", branch_id=branches["H"])).json()["items"]
    assert own == [mine]
    empty = (await s.get("/v1/branches", role="branch_manager", branch_id="BR-NONE")).json()["items"]
    assert empty == [{"branch_id": "BR-NONE", "customers": 0, "aum": "0.00"}]
    assert (await s.get("/v1/branches", role="rm", rm_id="RM-1")).status_code == 403
