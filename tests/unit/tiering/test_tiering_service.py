"""Tiering through the single-process mode: events in, tiers, AUM, history and API out."""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select

from shared.contracts.events import AccountV1, BalanceV1, CustomerV1, PostingV1
from shared.runtime.models import OutboxMessage
from services.tiering.models import TieringCustomer, TieringTierHistory
from tests.conftest import private_strata

_ids = itertools.count(1)


def new_customer() -> str:
    return f"TC{next(_ids):05d}"


def posting(customer: str, seq: int, balance: str, *, account: str | None = None,
            product_type: str = "demand_deposit", at: str = "2026-11-10T10:00:00+08:00",
            pid: str | None = None) -> PostingV1:
    account = account or f"{customer}-A"
    return PostingV1(
        posting_id=pid or f"{account}-{seq}", customer_id=customer, account_id=account,
        account_seq=seq, product_type=product_type, direction="credit", amount="1.00",
        balance_after=balance, currency="CNY", tx_type="transfer_in", channel="mobile",
        branch_id="BR-1", posted_at=at,
    )


def snapshot(customer: str, account: str, balance: str, as_of: str, product_type: str = "fund") -> BalanceV1:
    return BalanceV1(customer_id=customer, account_id=account, product_type=product_type,
                     balance=balance, currency="CNY", as_of=as_of)


@pytest.fixture(scope="module")
async def strata():
    async with private_strata(["tiering"]) as harness:
        yield harness


async def tier_of(strata, customer: str) -> dict:
    response = await strata.get(f"/v1/customers/{customer}/tier")
    assert response.status_code == 200, response.text
    return response.json()


async def test_posting_across_a_floor_upgrades_at_once_and_records_why(strata):
    c = new_customer()
    await strata.publish(posting(c, 1, "49999.99"), posting(c, 2, "50000.00"))
    await strata.settle()
    view = await tier_of(strata, c)
    assert (view["tier"], view["aum"], view["watch"]) == ("gold", "50000.00", False)
    assert [(h["from"], h["to"]) for h in view["history"]] == [("mass", "gold")]
    assert "50000.00" in view["history"][0]["reason"]


async def test_aum_sums_asset_products_and_leaves_loans_and_cards_out(strata):
    c = new_customer()
    await strata.publish(
        posting(c, 1, "30000.10", account=f"{c}-DD"),
        posting(c, 1, "100000.20", account=f"{c}-TD", product_type="time_deposit"),
        snapshot(c, f"{c}-F", "70000.03", "2026-11-10T15:00:00+08:00"),
        posting(c, 1, "-500000.00", account=f"{c}-L", product_type="loan"),
        posting(c, 1, "-8000.00", account=f"{c}-CC", product_type="credit_card"),
    )
    await strata.settle()
    view = await tier_of(strata, c)
    assert view["aum"] == "200000.33" and view["tier"] == "platinum"
    assert view["liabilities"] == "-508000.00"


async def test_the_same_event_delivered_twice_counts_once(strata):
    c = new_customer()
    event = strata.event(posting(c, 1, "60000.00"))
    await strata.publish(event, event)
    await strata.publish(event)
    await strata.settle()
    view = await tier_of(strata, c)
    assert view["aum"] == "60000.00" and len(view["history"]) == 1


async def test_stale_snapshot_and_older_posting_never_move_a_balance_back(strata):
    c = new_customer()
    acct = f"{c}-F"
    await strata.publish(snapshot(c, acct, "300000.00", "2026-11-10T15:00:00+08:00"))
    await strata.publish(snapshot(c, acct, "1.00", "2026-11-10T14:00:00+08:00"))
    await strata.publish(posting(c, 9, "700000.00", account=f"{c}-D"),
                         posting(c, 8, "2.00", account=f"{c}-D"))
    await strata.settle()
    assert (await tier_of(strata, c))["aum"] == "1000000.00"


async def test_same_posting_under_a_new_event_id_is_passed_to_pricing_once(strata):
    c = new_customer()
    p = posting(c, 1, "10.00")
    await strata.publish(p, p)  # two ce ids, one posting
    await strata.settle()
    async with strata.runtime.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    view = await tier_of(strata, c)
    assert view["aum"] == "10.00"


async def test_account_of_another_customer_is_dead_lettered_and_the_stream_goes_on(strata):
    a, b = new_customer(), new_customer()
    await strata.publish(posting(a, 1, "10.00", account="SHARED-1"))
    await strata.publish(posting(b, 2, "99999999.00", account="SHARED-1"), posting(b, 1, "55000.00"))
    await strata.settle()
    assert (await tier_of(strata, a))["aum"] == "10.00"
    assert (await tier_of(strata, b))["tier"] == "gold"
    dlq = strata.runtime.bus.topics["bank.postings.dlq"]
    reasons = [dict(r.headers)["strata_dlq_reason"] for p in dlq for r in p.records]
    assert any(b"belongs to customer" in r for r in reasons)


async def test_mtd_average_daily_aum_follows_the_business_days(strata):
    c = new_customer()
    await strata.publish(posting(c, 1, "300.00", at="2026-11-01T09:00:00+08:00"),
                         posting(c, 2, "600.00", at="2026-11-03T09:00:00+08:00"))
    await strata.settle()
    view = await tier_of(strata, c)
    # 1st and 2nd at 300, the 3rd at 600 so far: (300 + 300 + 600) / 3
    assert view["mtd_average_daily_aum"] == "400.00" and view["business_date"] == "2026-11-03"


async def test_unknown_customer_is_a_404_problem(strata):
    response = await strata.get("/v1/customers/NOPE/tier")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_tier_needs_a_token_and_an_rm_sees_only_their_customers(strata):
    c = new_customer()
    await strata.publish(posting(c, 1, "1.00"))
    await strata.settle()
    assert (await strata.client.get(f"/v1/customers/{c}/tier")).status_code == 401
    response = await strata.get(f"/v1/customers/{c}/tier", role="rm", rm_id="RM-OTHER")
    assert response.status_code == 403


def month_feed(customer: str, balances: dict[str, str]) -> list[PostingV1]:
    """One posting on the 1st of each month setting the balance for the whole month."""
    return [posting(customer, i + 1, bal, at=f"{month}-01T09:00:00+08:00")
            for i, (month, bal) in enumerate(balances.items())]


async def close(strata, month: str) -> dict:
    response = await strata.post("/v1/admin/month-end-close", {"month": month})
    assert response.status_code == 200, response.text
    return response.json()


async def test_watch_then_downgrade_after_three_month_ends_and_second_close_changes_nothing():
    async with private_strata(["tiering"]) as strata:
        c = new_customer()
        await strata.publish(*month_feed(c, {"2026-08": "250000.00"}))
        await strata.settle()
        await strata.publish(*month_feed(c, {"2026-08": "250000.00", "2026-09": "120000.00"})[1:])
        await strata.settle()
        # August's average: 31 days at 250,000 -> at the floor, nothing happens
        assert (await close(strata, "2026-08"))["watch"] == 0
        first = await close(strata, "2026-09")
        assert first["watch"] == 1
        again = await close(strata, "2026-09")
        assert again["already_closed"] is True and again["watch"] == 1
        assert (await tier_of(strata, c))["watch"] is True
        await close(strata, "2026-10")
        result = await close(strata, "2026-11")
        assert result["downgrades"] == 1
        view = await tier_of(strata, c)
        assert (view["tier"], view["watch"]) == ("gold", False)
        changes = [h["change"] for h in view["history"]]
        assert changes == ["initial_placement", "watch", "watch", "downgrade"]
        downgrade = view["history"][-1]
        assert downgrade["effective_at"] == "2026-12-01T00:00:00+08:00"


async def test_months_close_in_order_only():
    async with private_strata(["tiering"]) as strata:
        await close(strata, "2026-09")
        response = await strata.post("/v1/admin/month-end-close", {"month": "2026-11"})
        assert response.status_code == 409 and "2026-10" in response.json()["detail"]
        bad = await strata.post("/v1/admin/month-end-close", {"month": "2026-13"})
        assert bad.status_code == 422


async def test_month_average_weights_each_day_by_its_end_of_day_aum():
    async with private_strata(["tiering"]) as strata:
        c = new_customer()
        # platinum on the 1st, down to 100,000 on the 16th of a 30-day month:
        # average = (15 x 250,000 + 15 x 100,000) / 30 = 175,000 < 200,000 -> watch
        await strata.publish(posting(c, 1, "250000.00", at="2026-11-01T09:00:00+08:00"),
                             posting(c, 2, "100000.00", at="2026-11-16T09:00:00+08:00"))
        await strata.settle()
        assert (await close(strata, "2026-11"))["watch"] == 1
        async with strata.runtime.db.sessions() as session:
            from services.tiering.models import TieringMonthlyAum

            row = await session.get(TieringMonthlyAum, (c, "2026-11"))
        assert row.average == D("175000.00")


async def test_household_aggregation_tiers_members_on_the_combined_aum():
    async with private_strata(["tiering"], tiering={"household_aggregation": True}) as strata:
        head, spouse = new_customer(), new_customer()
        for cid, role in ((head, "head"), (spouse, "spouse")):
            await strata.publish(CustomerV1(
                customer_id=cid, name="n", home_branch_id="BR-1", household_id="H-1",
                household_role=role, updated_at="2026-11-01T09:00:00+08:00"))
        await strata.publish(posting(head, 1, "30000.00"), posting(spouse, 1, "25000.00"))
        await strata.settle()
        assert (await tier_of(strata, head))["tier"] == "gold"
        assert (await tier_of(strata, spouse))["tier"] == "gold"


async def test_without_household_aggregation_members_tier_alone(strata):
    head = new_customer()
    await strata.publish(CustomerV1(customer_id=head, name="n", home_branch_id="BR-1",
                                    household_id="H-SOLO", updated_at="2026-11-01T09:00:00+08:00"))
    await strata.publish(posting(head, 1, "30000.00"))
    await strata.settle()
    assert (await tier_of(strata, head))["tier"] == "mass"


async def test_the_end_of_day_aum_and_the_days_high_are_kept_per_business_day(strata):
    c = new_customer()
    await strata.publish(posting(c, 1, "40000.00", at="2026-11-10T09:00:00+08:00"),
                         posting(c, 2, "90000.00", at="2026-11-10T11:00:00+08:00"),
                         posting(c, 3, "70000.00", at="2026-11-10T15:00:00+08:00"),
                         posting(c, 4, "75000.00", at="2026-11-12T15:00:00+08:00"))
    await strata.settle()
    response = await strata.get(f"/v1/customers/{c}/aum/daily", params={"from": "2026-11-01"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(i["date"], i["aum"], i["high"]) for i in body["items"]] == [
        ("2026-11-10", "70000.00", "90000.00"), ("2026-11-12", "75000.00", "75000.00")]
    assert body["floors"]["gold"] == "50000.00"
    assert (await strata.get(f"/v1/customers/{c}/aum/daily", params={"from": "2026-12-01", "to": "2026-11-01"})
            ).status_code == 422
