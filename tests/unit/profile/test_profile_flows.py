"""Branch AUM flows are a function of the read model's final state: each customer's net AUM
change per business day, summed at query time over the branch's members of that moment. So the
order in which master data, accounts and AUM arrive from their different topics changes
nothing, a past day stays exact, and a customer counts for a branch as soon as they belong to it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from tests.unit.profile.profile_events import ZONE, account, aum, customer, new_id, tier

DAY = date(2026, 11, 20)
BEFORE = DAY - timedelta(days=1)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE)


async def report(s, branch: str, day: date = DAY) -> dict:
    response = await s.get(f"/v1/branches/{branch}/report", params={"date": day.isoformat()})
    assert response.status_code == 200, response.text
    return response.json()


def flows(view: dict) -> tuple[str, ...]:
    return tuple(view[k] for k in ("inflow_today", "outflow_today", "inflow_mtd", "outflow_mtd"))


# --- the same events in two orders ----------------------------------------------------------


def scenario(tag: str) -> dict:
    """Home branch H with customers one and two; one holds a time deposit at A, two an open
    account at H and a closed one at A. One's day nets to -3,000 after 10,000 the day before;
    two arrives with 5,000 and ends the day at 4,000; one is upgraded twice at one instant."""
    h, a = new_id(f"BR{tag}H"), new_id(f"BR{tag}A")
    one, two = new_id(f"F{tag}"), new_id(f"F{tag}")
    upgraded = at(DAY, 12)
    return {
        "H": h, "A": a,
        "master": [customer(one, branch=h), customer(two, branch=h)],
        "accounts": [account(f"{one}-TD", one, "time_deposit", branch=a), account(f"{two}-DD", two, branch=h),
                     account(f"{two}-OLD", two, "fund", branch=a, status="closed")],
        "aum": [aum(one, "10000.00", day=BEFORE, as_of=at(BEFORE, 10)),
                aum(one, "15000.00", day=DAY, as_of=at(DAY, 9)),
                aum(one, "7000.00", day=DAY, as_of=at(DAY, 11)),
                aum(two, "5000.00", day=DAY, as_of=at(DAY, 10)),
                aum(two, "4000.00", day=DAY, as_of=at(DAY, 15))],
        "tiers": [tier(one, "gold", at=upgraded), tier(one, "platinum", frm="gold", at=upgraded)],
    }


async def apply(s, phases: list[list]) -> None:
    for events in phases:
        await s.publish(*events)
        await s.settle()


def comparable(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "branch_id"}


async def test_the_same_events_in_two_orders_give_the_same_reports(profile_strata):
    s = profile_strata
    first, second = scenario("O1"), scenario("O2")
    # master data and accounts before the balances, as a quiet start would have them ...
    await apply(s, [first["master"] + first["accounts"], first["aum"] + first["tiers"]])
    # ... and the balances first, as a lagging core-banking topic would: the branches the
    # customers belong to and hold accounts at are known only afterwards
    await apply(s, [second["tiers"] + second["aum"], second["accounts"], second["master"]])

    for branch in ("H", "A"):
        assert comparable(await report(s, first[branch])) == comparable(await report(s, second[branch])), branch
    home, away = await report(s, second["H"]), await report(s, second["A"])
    assert flows(home) == ("4000.00", "3000.00", "14000.00", "3000.00")  # one -3,000 today, +10,000 before
    assert flows(home["account_holders"]) == ("4000.00", "0.00", "4000.00", "0.00")  # two only
    assert (away["customers"], away["account_holders"]["customers"]) == (0, 1)
    assert flows(away["account_holders"]) == ("0.00", "3000.00", "10000.00", "3000.00")  # one only
    assert home["tier_changes_mtd"] == {"upgrades": 2, "downgrades": 0}


# --- what a flow is -------------------------------------------------------------------------


async def test_moving_money_between_own_products_is_no_flow(profile_strata):
    s, h, cid = profile_strata, new_id("BRM"), new_id("FM")
    await apply(s, [[customer(cid, branch=h)], [
        aum(cid, "50000.00", day=BEFORE, as_of=at(BEFORE, 10)),
        # 20,000 leaves the deposit for a wealth product: first the debit, then the purchase ...
        aum(cid, "30000.00", day=DAY, as_of=at(DAY, 9)),
        aum(cid, "50000.00", day=DAY, as_of=at(DAY, 10),
            by_type={"demand_deposit": "30000.00", "wealth_product": "20000.00"}),
        # ... and 10,000 more moves in one record: the total never changes
        aum(cid, "50000.00", day=DAY, as_of=at(DAY, 11),
            by_type={"demand_deposit": "20000.00", "wealth_product": "30000.00"}),
    ]])
    body = await report(s, h)
    assert flows(body) == ("0.00", "0.00", "50000.00", "0.00")  # only the 50,000 it came with
    assert body["products"]["wealth_product"]["balance"] == "30000.00"


async def test_flows_of_a_past_day_stay_exact_after_later_days(profile_strata):
    s, h, cid = profile_strata, new_id("BRP"), new_id("FP")
    days = [DAY - timedelta(days=2), DAY - timedelta(days=1), DAY]
    await apply(s, [[customer(cid, branch=h)], [
        aum(cid, "10000.00", day=days[0], as_of=at(days[0], 9)),
        aum(cid, "12500.00", day=days[0], as_of=at(days[0], 15)),  # day one: +12,500
        aum(cid, "9000.00", day=days[1], as_of=at(days[1], 9)),
        aum(cid, "8000.00", day=days[1], as_of=at(days[1], 15)),   # day two: -4,500
        aum(cid, "20000.00", day=days[2], as_of=at(days[2], 9)),   # day three: +12,000
    ]])
    assert flows(await report(s, h, days[0])) == ("12500.00", "0.00", "12500.00", "0.00")
    assert flows(await report(s, h, days[1])) == ("0.00", "4500.00", "12500.00", "4500.00")
    assert flows(await report(s, h, days[2])) == ("12000.00", "0.00", "24500.00", "4500.00")


async def test_a_month_to_date_starts_on_the_first_of_the_month(profile_strata):
    s, h, cid = profile_strata, new_id("BRN"), new_id("FN")
    oct31, nov1 = date(2026, 10, 31), date(2026, 11, 1)
    await apply(s, [[customer(cid, branch=h)], [
        aum(cid, "7000.00", day=oct31, as_of=at(oct31, 9)),
        aum(cid, "6000.00", day=nov1, as_of=at(nov1, 9)),
    ]])
    assert flows(await report(s, h, nov1)) == ("0.00", "1000.00", "0.00", "1000.00")
    assert flows(await report(s, h, oct31)) == ("7000.00", "0.00", "7000.00", "0.00")


# --- who a branch's flows are counted for ---------------------------------------------------


async def test_an_account_opened_later_at_another_branch_brings_the_customer_to_its_holders(profile_strata):
    s, h, z, cid = profile_strata, new_id("BRL"), new_id("BRZ"), new_id("FL")
    await apply(s, [[customer(cid, branch=h), account(f"{cid}-DD", cid, branch=h)], [
        aum(cid, "8000.00", day=BEFORE, as_of=at(BEFORE, 9)),
        aum(cid, "6000.00", day=DAY, as_of=at(DAY, 9)),
    ]])
    nobody = await s.get(f"/v1/branches/{z}/report", role="analyst", params={"date": DAY.isoformat()})
    assert nobody.status_code == 404, "no customer or account names the branch yet"
    await apply(s, [[account(f"{cid}-TD", cid, "time_deposit", branch=z)]])
    holders = (await report(s, z))["account_holders"]
    assert holders["customers"] == 1
    assert flows(holders) == ("0.00", "2000.00", "8000.00", "2000.00")
    assert flows((await report(s, h))["account_holders"]) == flows(holders)  # still a holder at home too


async def test_a_closed_account_takes_the_customer_out_of_the_holders_flows(profile_strata):
    s, h, z, cid = profile_strata, new_id("BRC"), new_id("BRY"), new_id("FC")
    await apply(s, [[customer(cid, branch=h), account(f"{cid}-TD", cid, "time_deposit", branch=z)],
                    [aum(cid, "8000.00", day=DAY, as_of=at(DAY, 9))]])
    assert flows((await report(s, z))["account_holders"]) == ("8000.00", "0.00", "8000.00", "0.00")
    await apply(s, [[account(f"{cid}-TD", cid, "time_deposit", branch=z, status="closed")]])
    holders = (await report(s, z))["account_holders"]
    assert holders["customers"] == 0
    assert flows(holders) == ("0.00", "0.00", "0.00", "0.00")


async def test_a_customer_who_moves_home_branch_takes_their_flows_along(profile_strata):
    s, old, new, cid = profile_strata, new_id("BRO"), new_id("BRW"), new_id("FW")
    stays = new_id("FW")  # keeps the old branch known once the mover has left
    await apply(s, [[customer(cid, branch=old, updated_at=at(BEFORE, 8)), customer(stays, branch=old)],
                    [aum(cid, "3000.00", day=DAY, as_of=at(DAY, 9))]])
    assert flows(await report(s, old))[0] == "3000.00"
    await apply(s, [[customer(cid, branch=new, updated_at=at(DAY, 12))]])
    assert flows(await report(s, old)) == ("0.00", "0.00", "0.00", "0.00")
    assert flows(await report(s, new)) == ("3000.00", "0.00", "3000.00", "0.00")
