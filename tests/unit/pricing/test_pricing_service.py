"""Pricing through the single-process mode: postings in (through tiering, as in production),
fees, points and the API out."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import datetime
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from shared.contracts.cloudevents import decode_record
from shared.contracts.events import PostingFact, TieringChangeV1
from shared.runtime.consumer import ConsumerLoop
from shared.runtime.models import OutboxMessage
from services.pricing.models import PricingFee
from services.tiering.models import TieringCustomer
from tests.conftest import private_strata
from tests.unit.pricing.pricing_feed import Feed, customer

_ids = itertools.count(1)


def new_customer() -> str:
    return f"PC{next(_ids):05d}"


@pytest.fixture(scope="module")
async def strata():
    async with private_strata(["tiering", "pricing"]) as harness:
        yield harness


async def fees_of(strata, customer_id: str, **kw) -> dict:
    response = await strata.get(f"/v1/customers/{customer_id}/fees", params={"limit": 500}, **kw)
    assert response.status_code == 200, response.text
    return response.json()


async def by_posting(strata, customer_id: str) -> dict[str, dict]:
    return {f["posting_id"]: f for f in (await fees_of(strata, customer_id))["items"]}


def this_year() -> int:
    return datetime.now(ZoneInfo("Asia/Shanghai")).year


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- the tier of the posting's own moment ----------------------------------------------------


async def test_withdrawal_before_upgrading_salary_pays_old_tier_and_after_gets_new(strata):
    c = Feed(new_customer())
    await strata.publish(c.salary("30000.00", "2026-11-10T08:00:00+08:00"),
                         before := c.interbank_atm("2026-11-10T09:00:00+08:00"),
                         c.salary("1000000.00", "2026-11-10T10:00:00+08:00"),
                         after := c.interbank_atm("2026-11-10T11:00:00+08:00"))
    await strata.settle()
    fees = await by_posting(strata, c.customer_id)
    assert (fees[before.posting_id]["tier"], fees[before.posting_id]["net"]) == ("mass", "4.00")
    assert (fees[after.posting_id]["tier"], fees[after.posting_id]["net"]) == ("diamond", "0.00")
    assert fees[after.posting_id]["rules"] == ["fee.atm_interbank", "diamond.domestic.waive"]


async def _tiering_caught_up(strata, timeout: float = 20.0) -> None:
    bus, loop = strata.runtime.bus, strata.runtime.loops["tiering"]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with strata.runtime.db.sessions() as session:
            backlog = await session.scalar(select(func.count()).select_from(OutboxMessage)
                                           .where(OutboxMessage.service == "tiering"))
        if not backlog and not await bus.pending(loop.group, loop.topics):
            return
        assert asyncio.get_running_loop().time() < deadline, "tiering did not catch up"
        await asyncio.sleep(0.02)


async def test_tier_travels_with_the_posting_while_pricing_lags_far_behind():
    async with private_strata(["tiering", "pricing"]) as strata:
        runtime = strata.runtime
        paused = runtime.loops["pricing"]
        paused.stop()
        await next(t for t in runtime._tasks if t.get_name() == "pricing-consumer")
        c = Feed("LAG1")
        at = "2026-11-12T{:02d}:00:00+08:00".format
        postings = [c.salary("10000.00", at(8)), c.interbank_atm(at(9)), c.interbank_atm(at(10)),
                    c.salary("60000.00", at(11)),                       # -> gold
                    *[c.interbank_atm(at(12 + i)) for i in range(4)],    # 3 free, the 4th charged
                    c.salary("2000000.00", at(17)),                     # -> diamond
                    c.interbank_atm(at(18))]
        await strata.publish(*postings)
        await _tiering_caught_up(strata)
        async with runtime.db.sessions() as session:
            assert (await session.get(TieringCustomer, "LAG1")).tier == "diamond"
            assert await session.scalar(select(func.count()).select_from(PricingFee)) == 0
        resumed = ConsumerLoop(paused.spec, runtime.db, runtime.bus, strata.settings,
                               on_commit=runtime.relays["pricing"].wake)
        runtime.loops["pricing"] = resumed
        runtime._spawn(resumed.run(), "pricing-consumer")
        await strata.settle()
        fees = await by_posting(strata, "LAG1")
        charged = [(fees[p.posting_id]["tier"], fees[p.posting_id]["net"]) for p in postings
                   if p.tx_type == "atm_withdrawal"]
        assert charged == [("mass", "4.00"), ("mass", "4.00"), ("gold", "0.00"), ("gold", "0.00"),
                           ("gold", "0.00"), ("gold", "4.00"), ("diamond", "0.00")]


# --- exactly once ------------------------------------------------------------------------------


async def test_same_posting_under_two_event_ids_and_a_replayed_tiered_event_are_priced_once(strata):
    c = Feed(new_customer())
    salary = c.salary("1000.00", "2026-11-11T08:00:00+08:00")
    atm = c.interbank_atm("2026-11-11T09:00:00+08:00")
    await strata.publish(salary, atm)
    await strata.publish(atm)  # core banking sends it again under a new ce_id
    await strata.settle()
    duplicates = sample("strata_pricing_duplicate_postings_total")
    replay = TieringChangeV1(customer_id=atm.customer_id, fact="posting", at=atm.posted_at,
                             posting=PostingFact(**dict(atm)), tier="diamond", aum="0.00", aum_before="0.00",
                             business_date=atm.posted_at.date())
    await strata.publish(replay)  # the same posting under yet another event id, another tier
    await strata.settle()
    fees = (await fees_of(strata, c.customer_id))["items"]
    assert [(f["posting_id"], f["net"]) for f in fees] == [(atm.posting_id, "4.00"), (salary.posting_id, "0.00")]
    assert sample("strata_pricing_duplicate_postings_total") == duplicates + 1


async def test_every_posting_emits_one_fee_event_also_at_zero(strata):
    c = Feed(new_customer())
    postings = [c.salary("5000.00", "2026-11-13T08:00:00+08:00"),
                c.post("transfer_out", "100.00", at="2026-11-13T09:00:00+08:00", channel="mobile",
                       counterparty_bank="OTHER"),
                c.interbank_atm("2026-11-13T10:00:00+08:00")]
    await strata.publish(*postings)
    await strata.settle()
    events = [decode_record(r.value, r.headers).data for part in strata.runtime.bus.topics["strata.fees"]
              for r in part.records]
    mine = {e.posting_id: e for e in events if e.customer_id == c.customer_id}
    assert set(mine) == {p.posting_id for p in postings}
    assert (mine[postings[0].posting_id].rules, mine[postings[0].posting_id].net) == (["no_fee"], D("0.00"))
    assert mine[postings[1].posting_id].rules == ["fee.transfer_online"]
    assert (mine[postings[2].posting_id].fee_id, mine[postings[2].posting_id].net) == ("atm_interbank", D("4.00"))
    assert mine[postings[2].posting_id].tier == "mass"


async def test_unknown_tx_type_is_priced_at_zero_and_counted(strata):
    c = Feed(new_customer())
    before = sample("strata_pricing_unknown_tx_types_total")
    odd = c.post("crypto_swap", "10.00", at="2026-11-13T09:00:00+08:00", direction="credit", channel="mobile")
    await strata.publish(odd)
    await strata.settle()
    fee = (await by_posting(strata, c.customer_id))[odd.posting_id]
    assert (fee["fee_id"], fee["net"], fee["rules"]) == (None, "0.00", ["unknown_tx_type"])
    assert sample("strata_pricing_unknown_tx_types_total") == before + 1


# --- free uses per calendar month in Asia/Shanghai --------------------------------------------


async def test_gold_free_uses_reset_on_the_first_in_shanghai_time(strata):
    c = Feed(new_customer())
    salary = c.salary("80000.00", "2026-11-30T08:00:00+08:00")
    atms = [c.interbank_atm(f"2026-11-30T2{i}:00:00+08:00") for i in range(4)]
    first_of_december = c.interbank_atm("2026-11-30T16:00:01+00:00")  # 1 Dec 00:00:01 in Shanghai
    await strata.publish(salary, *atms, first_of_december)
    await strata.settle()
    fees = await by_posting(strata, c.customer_id)
    assert [fees[p.posting_id]["net"] for p in atms] == ["0.00", "0.00", "0.00", "4.00"]
    assert [fees[p.posting_id]["use_number"] for p in atms] == [1, 2, 3, 4]
    december = fees[first_of_december.posting_id]
    assert (december["net"], december["use_number"], december["rules"][-1]) == ("0.00", 1, "gold.atm_interbank.free3")
    sms = c.sms("2026-12-01T02:00:00+08:00")
    await strata.publish(sms)
    await strata.settle()
    assert (await by_posting(strata, c.customer_id))[sms.posting_id]["net"] == "1.00"


# --- points ------------------------------------------------------------------------------------


async def test_opted_in_customer_pays_part_of_a_fee_with_points_and_the_ledger_says_which_posting(strata):
    c = Feed(new_customer())
    await strata.publish(customer(c.customer_id, auto_points_offset=True))
    salary = c.salary("5000.00", "2026-11-14T08:00:00+08:00")
    spend = c.card_spend("3000.00", "2026-11-14T10:00:00+08:00")
    atm = c.interbank_atm("2026-11-14T11:00:00+08:00")
    await strata.publish(salary, spend, atm)
    await strata.settle()
    view = await fees_of(strata, c.customer_id)
    fees = {f["posting_id"]: f for f in view["items"]}
    assert (fees[spend.posting_id]["points_earned"], fees[spend.posting_id]["points_balance"]) == (150, 150)
    fee = fees[atm.posting_id]
    assert (fee["base"], fee["points_used"], fee["points_value"], fee["net"]) == ("4.00", 150, "1.50", "2.50")
    assert fee["rules"] == ["fee.atm_interbank", "points.offset"]
    assert view["points_balance"] == 0
    ledger = [(e["kind"], e["points"], e["posting_id"], e["balance_after"]) for e in reversed(view["points_ledger"])]
    assert ledger == [("earn", 150, spend.posting_id, 150), ("spend", -150, atm.posting_id, 0)]


async def test_a_fund_purchase_sent_as_two_legs_earns_once(strata):
    c = Feed(new_customer())
    salary = c.salary("20000.00", "2026-11-15T08:00:00+08:00")
    legs = c.fund_purchase("10000.00", "2026-11-15T10:00:00+08:00")
    await strata.publish(salary, *legs)
    await strata.settle()
    view = await fees_of(strata, c.customer_id)
    assert view["points_balance"] == 100
    assert [e["posting_id"] for e in view["points_ledger"]] == [legs[0].posting_id]  # the paying leg


async def test_points_are_spent_on_request_against_the_next_fees_only(strata):
    c = Feed(new_customer())
    day = f"{this_year()}-01-16T{{:02d}}:00:00+08:00".format  # redemptions happen today
    await strata.publish(customer(c.customer_id, auto_points_offset=False),
                         c.salary("5000.00", day(8)),
                         c.card_spend("4000.00", day(9)),
                         cash := c.interbank_atm(day(10)))
    await strata.settle()
    assert (await by_posting(strata, c.customer_id))[cash.posting_id]["net"] == "4.00"
    path = f"/v1/customers/{c.customer_id}/points/redeem"
    too_many = await strata.post(path, {"points": 201, "request_id": f"R-{c.customer_id}-0"})
    assert too_many.status_code == 409 and too_many.headers["content-type"] == "application/problem+json"
    first = await strata.post(path, {"points": 100, "request_id": f"R-{c.customer_id}-1"})
    again = await strata.post(path, {"points": 100, "request_id": f"R-{c.customer_id}-1"})
    assert first.status_code == again.status_code == 200, first.text
    assert (first.json()["redeem_allowance"], again.json()["redeem_allowance"], again.json()["repeated"]) == (100, 100, True)
    paid = c.interbank_atm(day(11))
    after = c.interbank_atm(day(12))
    await strata.publish(paid, after)
    await strata.settle()
    view = await fees_of(strata, c.customer_id)
    fees = {f["posting_id"]: f for f in view["items"]}
    assert (fees[paid.posting_id]["net"], fees[paid.posting_id]["points_used"]) == ("3.00", 100)
    assert fees[paid.posting_id]["rules"] == ["fee.atm_interbank", "points.redeem"]
    assert (fees[after.posting_id]["net"], fees[after.posting_id]["points_used"]) == ("4.00", 0)
    assert (view["points_balance"], view["redeem_allowance"]) == (100, 0)


async def test_points_expire_at_the_end_of_the_second_calendar_year():
    async with private_strata(["tiering", "pricing"]) as strata:
        c = Feed("EXP1")
        await strata.publish(customer("EXP1", auto_points_offset=True, updated_at="2025-01-01T00:00:00+08:00"),
                             c.salary("9000.00", "2025-06-01T08:00:00+08:00"),
                             c.card_spend("2000.00", "2025-06-02T08:00:00+08:00"),     # 100 points of 2025
                             c.card_spend("1000.00", "2026-03-02T08:00:00+08:00"))     # 50 points of 2026
        await strata.settle()
        run = lambda day: strata.post("/v1/pricing/points-expiry", {"date": day})
        assert (await run("2026-12-31")).json()["points_expired"] == 0
        first = await run("2027-01-01")
        assert (first.json()["points_expired"], first.json()["customers"]) == (100, 1)
        assert (await run("2027-01-01")).json()["points_expired"] == 0   # idempotent
        points = (await strata.get("/v1/customers/EXP1/points")).json()
        assert points["points_balance"] == 50
        assert [(lot["year"], lot["expired"], lot["remaining"]) for lot in points["lots"]] == [(2025, 100, 0), (2026, 0, 50)]
        expiry = points["items"][0]
        assert (expiry["kind"], expiry["points"], expiry["lot_year"]) == ("expire", -100, 2025)
        assert expiry["at"] == "2027-01-01T00:00:00+08:00"
        # A fee in 2028, before any job has run for it: the 2026 points have expired already.
        fee_2028 = c.interbank_atm("2028-01-05T10:00:00+08:00")
        await strata.publish(fee_2028)
        await strata.settle()
        fee = (await by_posting(strata, "EXP1"))[fee_2028.posting_id]
        assert (fee["points_used"], fee["net"], fee["points_balance"]) == (0, "4.00", 0)
        assert (await run("2028-01-05")).json()["points_expired"] == 0
        assert (await strata.post("/v1/pricing/points-expiry", {"date": "2028-01-05"}, role="analyst")).status_code == 403


async def test_points_set_aside_for_the_next_fees_expire_with_the_points():
    async with private_strata(["tiering", "pricing"]) as strata:
        year = this_year()   # a redemption is made today
        c = Feed("EXP2")
        await strata.publish(customer("EXP2"), c.salary("900.00", f"{year}-01-02T08:00:00+08:00"),
                             c.card_spend("400.00", f"{year}-01-02T09:00:00+08:00"))   # 20 points
        await strata.settle()
        redeemed = await strata.post("/v1/customers/EXP2/points/redeem", {"points": 20})
        assert redeemed.json()["redeem_allowance"] == 20, redeemed.text
        expired = await strata.post("/v1/pricing/points-expiry", {"date": f"{year + 2}-01-01"})
        assert expired.json()["points_expired"] == 20
        points = (await strata.get("/v1/customers/EXP2/points")).json()
        assert (points["points_balance"], points["redeem_allowance"]) == (0, 0)


async def test_spending_uses_the_oldest_points_first(strata):
    c = Feed(new_customer())
    await strata.publish(customer(c.customer_id, auto_points_offset=True, updated_at="2025-11-01T09:00:00+08:00"),
                         c.salary("9000.00", "2025-12-01T08:00:00+08:00"),
                         c.card_spend("200.00", "2025-12-30T08:00:00+08:00"),    # 10 points of 2025
                         c.card_spend("2000.00", "2026-01-02T08:00:00+08:00"),   # 100 points of 2026
                         c.interbank_atm("2026-01-03T08:00:00+08:00"))           # 4.00 = 400 points: all 110
    await strata.settle()
    points = (await strata.get(f"/v1/customers/{c.customer_id}/points")).json()
    spends = [(e["lot_year"], e["points"]) for e in points["items"] if e["kind"] == "spend"]
    assert sorted(spends) == [(2025, -10), (2026, -100)]
    assert points["points_balance"] == 0
    ledger = (await strata.get(f"/v1/customers/{c.customer_id}/points/ledger", params={"limit": 2})).json()
    assert [e["kind"] for e in ledger["items"]] == ["spend", "spend"] and ledger["next"]


# --- quote ------------------------------------------------------------------------------------


async def test_quote_says_what_the_next_posting_will_cost_and_changes_nothing(strata):
    c = Feed(new_customer())
    await strata.publish(c.salary("60000.00", "2026-11-17T08:00:00+08:00"),
                         *[c.interbank_atm(f"2026-11-17T1{i}:00:00+08:00") for i in range(3)])
    await strata.settle()
    request = {"customer_id": c.customer_id, "tx_type": "atm_withdrawal", "amount": "300.00",
               "channel": "atm", "counterparty_bank": "OTHER", "cross_region": False,
               "at": "2026-11-17T15:00:00+08:00"}
    quotes = [await strata.post("/v1/pricing/quote", request) for _ in range(2)]
    assert quotes[0].status_code == 200, quotes[0].text
    assert quotes[0].json() == quotes[1].json()
    quote = quotes[0].json()
    assert (quote["posting_id"], quote["tier"], quote["net"], quote["use_number"]) == (None, "gold", "4.00", 4)
    fourth = c.interbank_atm("2026-11-17T15:00:00+08:00", amount="300.00")
    await strata.publish(fourth)
    await strata.settle()
    stored = (await by_posting(strata, c.customer_id))[fourth.posting_id]
    assert {k: stored[k] for k in ("fee_id", "base", "waived", "discount", "points_used", "net", "rules")} == \
           {k: quote[k] for k in ("fee_id", "base", "waived", "discount", "points_used", "net", "rules")}
    next_month = await strata.post("/v1/pricing/quote", {**request, "at": "2026-12-01T09:00:00+08:00"})
    assert next_month.json()["net"] == "0.00"


async def test_quote_for_a_percentage_fee_at_its_maximum(strata):
    cid = new_customer()
    await strata.publish(customer(cid))
    await strata.settle()
    response = await strata.post("/v1/pricing/quote", {
        "customer_id": cid, "tx_type": "transfer_out", "amount": "50000.00",
        "channel": "counter", "counterparty_bank": "OTHER", "cross_region": False})
    assert response.status_code == 200, response.text
    assert (response.json()["net"], response.json()["rules"]) == (
        "50.00", ["fee.transfer_interbank_counter", "fee.transfer_interbank_counter.maximum"])


# --- what-if ---------------------------------------------------------------------------------


async def test_simulate_with_todays_rules_reproduces_the_stored_fees_and_a_proposal_shows_the_change():
    async with private_strata(["tiering", "pricing"]) as strata:
        c = Feed("SIM1")
        nov = "2026-11-{:02d}T10:00:00+08:00".format
        await strata.publish(c.salary("60000.00", nov(1)),
                             *[c.interbank_atm(nov(2 + i)) for i in range(5)],   # 3 free, 2 x 4.00
                             c.sms(nov(20)),                                       # 1.00
                             c.interbank_atm("2026-12-01T10:00:00+08:00"))       # December: free
        await strata.settle()
        same = await strata.post("/v1/pricing/simulate", {"from": "2026-11-04", "to": "2026-11-30"},
                                 role="analyst")
        assert same.status_code == 200, same.text
        result = same.json()
        assert result["postings"] == 4   # 3 withdrawals and the SMS fee from the 4th on
        assert result["totals"]["old"] == result["totals"]["new"]
        atm = next(i for i in result["items"] if (i["tier"], i["fee_id"]) == ("gold", "atm_interbank"))
        assert (atm["old"]["count"], atm["old"]["income"]) == (3, "8.00")   # uses 3 (free), 4 and 5
        proposal = {"from": "2026-11-01", "to": "2026-11-30",
                    "benefits": {"gold": [{"id": "gold.atm.free5", "fee": "atm_interbank", "kind": "free_uses", "count": 5},
                                          {"id": "gold.sms.waive", "fee": "sms_monthly", "kind": "waive"}]}}
        changed = (await strata.post("/v1/pricing/simulate", proposal, role="admin")).json()
        assert changed["totals"]["old"]["income"] == "9.00"
        assert changed["totals"]["new"]["income"] == "0.00"
        assert changed["totals"]["change"]["income"] == "-9.00"
        fees = await by_posting(strata, "SIM1")
        assert sum(D(f["net"]) for f in fees.values()) == D("9.00")   # nothing was re-priced for real
        assert (await strata.post("/v1/pricing/simulate", proposal, role="rm", rm_id="RM1")).status_code == 403
        bad = {**proposal, "benefits": {"gold": [{"id": "x", "fee": "nope", "kind": "waive"}]}}
        assert (await strata.post("/v1/pricing/simulate", bad)).status_code == 422


# --- products, access, paging --------------------------------------------------------------------


async def test_eligible_products_follow_tier_and_risk_level(strata):
    c = Feed(new_customer())
    await strata.publish(customer(c.customer_id, risk_level="C3"), c.salary("60000.00", "2026-11-18T08:00:00+08:00"))
    await strata.settle()
    response = await strata.get(f"/v1/customers/{c.customer_id}/eligible-products", params={"on": "2027-02-01"})
    assert response.status_code == 200, response.text
    view = response.json()
    assert (view["tier"], view["risk_level"]) == ("gold", "C3")
    assert {p["code"] for p in view["items"]} == {"TD-3Y", "WM-STEADY-90", "WM-GOLD-180", "WM-HOT-365"}
    refused = {p["code"]: p["reasons"] for p in view["ineligible"]}
    assert refused["PB-FAMILY-TRUST"] == ["needs tier private or above", "private customers only",
                                          "needs risk preference C4 or above"]


async def test_an_rm_sees_only_their_customers_and_a_branch_manager_only_the_branch(strata):
    c = Feed(new_customer())
    await strata.publish(customer(c.customer_id, branch="BR-9"), c.salary("100.00", "2026-11-19T08:00:00+08:00"))
    await strata.settle()
    path = f"/v1/customers/{c.customer_id}/fees"
    assert (await strata.get(path, role="rm", rm_id="RM-X")).status_code == 403
    assert (await strata.get(path, role="branch_manager", branch_id="BR-1")).status_code == 403
    assert (await strata.get(path, role="branch_manager", branch_id="BR-9")).status_code == 200
    quote = {"customer_id": c.customer_id, "tx_type": "sms_monthly", "amount": "2.00", "channel": "batch"}
    assert (await strata.post("/v1/pricing/quote", quote, role="rm", rm_id="RM-X")).status_code == 403
    assert (await strata.client.get(path)).status_code == 401
    assert (await strata.get("/v1/customers/NOBODY/fees")).status_code == 404


async def test_fees_are_listed_newest_first_in_pages(strata):
    c = Feed(new_customer())
    postings = [c.salary("100.00", f"2026-11-20T0{i}:00:00+08:00") for i in range(5)]
    await strata.publish(*postings)
    await strata.settle()
    seen, cursor = [], None
    while True:
        page = (await strata.get(f"/v1/customers/{c.customer_id}/fees",
                                 params={"limit": 2, **({"cursor": cursor} if cursor else {})})).json()
        seen += [f["posting_id"] for f in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [p.posting_id for p in reversed(postings)]


async def test_breakdown_explains_each_rule_in_words(strata):
    c = Feed(new_customer())
    salary = c.salary("1000.00", "2026-11-21T09:00:00+08:00")
    transfer = c.post("transfer_out", "300.00", at="2026-11-21T10:00:00+08:00", channel="counter",
                      counterparty_bank="OTHER")
    await strata.publish(salary, transfer)
    await strata.settle()
    fee = (await by_posting(strata, c.customer_id))[transfer.posting_id]
    assert [(s["rule"], s["amount"]) for s in fee["breakdown"]] == [
        ("fee.transfer_interbank_counter", "2.00"), ("fee.transfer_interbank_counter.minimum", "2.00")]
    assert "minimum 2.00" in fee["breakdown"][1]["note"]
    assert json.dumps(fee)  # plain JSON all the way down


async def test_each_priced_posting_keeps_the_customers_aum_right_after_it(strata):
    c = Feed(new_customer())
    salary = c.salary("30000.00", "2026-11-22T08:00:00+08:00")
    atm = c.interbank_atm("2026-11-22T09:00:00+08:00", amount="500.00")
    await strata.publish(salary, atm)
    await strata.settle()
    fees = await by_posting(strata, c.customer_id)
    assert (fees[salary.posting_id]["aum"], fees[atm.posting_id]["aum"]) == ("30000.00", "29500.00")
    async with strata.runtime.db.sessions() as session:
        stored = await session.scalar(select(PricingFee.aum).where(PricingFee.posting_id == atm.posting_id))
    assert stored == D("29500.00")


async def test_a_time_deposit_placed_in_cash_earns_its_points(strata):
    c = Feed(new_customer())
    placed = c.post("cash_deposit", "80000.00", at="2026-11-23T10:00:00+08:00", direction="credit",
                    account="TD", product_type="time_deposit", channel="counter")
    await strata.publish(placed)
    await strata.settle()
    view = await fees_of(strata, c.customer_id)
    assert view["points_balance"] == 80
    assert [(e["posting_id"], e["rule"]) for e in view["points_ledger"]] == [(placed.posting_id, "points.time_deposit")]


async def test_a_time_deposit_placed_from_the_current_account_earns_once(strata):
    c = Feed(new_customer())
    salary = c.salary("100000.00", "2026-11-23T08:00:00+08:00")
    legs = [c.post("deposit_placement", "60000.00", at="2026-11-23T10:00:00+08:00", channel="counter"),
            c.post("transfer_in", "60000.00", at="2026-11-23T10:00:00+08:00", direction="credit",
                   account="TD", product_type="time_deposit", channel="internal")]
    await strata.publish(salary, *legs)
    await strata.settle()
    view = await fees_of(strata, c.customer_id)
    assert view["points_balance"] == 60
    assert [e["posting_id"] for e in view["points_ledger"]] == [legs[1].posting_id]  # the time deposit's leg
