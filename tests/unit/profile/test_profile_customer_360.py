"""The customer base and the customer 360 through the single-process mode: master data and
Strata events in, one read model out, masked per role and limited to the caller's book."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from shared.settings import Settings
from strata.simulator.catalogue import PRODUCTS
from tests.unit.profile.profile_events import (
    account,
    assignment,
    aum,
    customer,
    fee,
    new_id,
    now,
    signal,
    tier,
    today,
)

CONTRACT_FIELDS = {"customer_id", "profile", "holdings", "aum", "tier", "watch", "rm", "open_signals",
                   "points_balance"}


async def view(strata, cid, role="admin", **ids):
    response = await strata.get(f"/v1/customers/{cid}", role=role, **ids)
    assert response.status_code == 200, response.text
    return response.json()


async def test_360_answers_every_contract_field_from_master_data_and_strata_events(profile_strata):
    s, cid = profile_strata, new_id()
    maturity, expiry = today() + timedelta(days=20), today() + timedelta(days=45)
    await s.publish(
        customer(cid, household_id=f"H{cid}", household_role="head"),
        account(f"{cid}-TD", cid, "time_deposit", code="TD-3Y", maturity=maturity),
        account(f"{cid}-DD", cid, "demand_deposit", expiry=expiry),
        account(f"{cid}-LN", cid, "loan", code="MORTGAGE"),
        account(f"{cid}-CC", cid, "credit_card", code="CC-GOLD", expiry=expiry),
        aum(cid, "260000.00", mtd="210000.00", by_type={"time_deposit": "200000.00", "demand_deposit": "60000.00"},
            liabilities={"loan": "-500000.00"}),
        tier(cid, "platinum"),
        assignment(cid, "RM-A"), assignment(cid, "RM-B", role="backup"),
        signal(f"{cid}-S1", cid), fee(f"{cid}-P1", cid, "4.00", points=120),
    )
    await s.settle()
    body = await view(s, cid)
    assert CONTRACT_FIELDS <= set(body)
    assert body["aum"] == "260000.00" and body["mtd_average_daily_aum"] == "210000.00"
    assert body["tier"] == "platinum" and body["watch"] is False
    assert body["rm"] == {"primary": "RM-A", "backup": "RM-B"}
    assert [x["id"] for x in body["open_signals"]] == [f"{cid}-S1"]
    assert body["points_balance"] == 120
    assert body["fees"]["charged_total"] == "4.00" and body["fees"]["priced_postings"] == 1
    assert body["aum_by_product_type"] == {"demand_deposit": "60000.00", "time_deposit": "200000.00"}
    assert body["liabilities"] == {"loan": "-500000.00"}
    holdings = {h["account_id"]: h for h in body["holdings"]}
    assert set(holdings) == {f"{cid}-TD", f"{cid}-DD", f"{cid}-LN", f"{cid}-CC"}
    assert holdings[f"{cid}-TD"]["maturity_date"] == maturity.isoformat()
    assert holdings[f"{cid}-DD"]["card_expiry"] == expiry.isoformat()
    assert [h["account_id"] for h in body["loans"]] == [f"{cid}-LN"]
    assert [h["account_id"] for h in body["credit_cards"]] == [f"{cid}-CC"]
    profile = body["profile"]
    assert profile["name"] == f"客户{cid}" and profile["risk_level"] == "C3" and profile["tags"] == ["travel"]
    assert profile["birth_date"] == "1988-07-15" and profile["home_branch_id"] == "BR-P1"


@pytest.mark.parametrize("role,ids,id_number,phone", [
    ("admin", {}, "360102198807150023", "13800000000"),
    ("analyst", {}, "3601**********0023", "138****0000"),
    ("rm", {"rm_id": "RM-MASK"}, "3601**********0023", "138****0000"),
    ("branch_manager", {"branch_id": "BR-MASK"}, "3601**********0023", "138****0000"),
])
async def test_identity_number_and_phone_are_masked_unless_the_role_is_unmasked(profile_strata, role, ids,
                                                                                id_number, phone):
    s, cid = profile_strata, new_id()
    await s.publish(customer(cid, branch="BR-MASK"), assignment(cid, "RM-MASK"))
    await s.settle()
    profile = (await view(s, cid, role, **ids))["profile"]
    assert (profile["id_number"], profile["phone"]) == (id_number, phone)


async def test_an_older_master_data_record_does_not_overwrite_a_newer_one(profile_strata):
    s, cid = profile_strata, new_id()
    t = now()
    await s.publish(customer(cid, risk_level="C5", tags=["golf"], updated_at=t))
    await s.publish(customer(cid, risk_level="C1", tags=["car"], branch="BR-OLD", updated_at=t - timedelta(days=1)))
    await s.settle()
    profile = (await view(s, cid))["profile"]
    assert (profile["risk_level"], profile["tags"], profile["home_branch_id"]) == ("C5", ["golf"], "BR-P1")
    await s.publish(customer(cid, risk_level="C2", tags=[], updated_at=t + timedelta(seconds=1)))
    await s.settle()
    profile = (await view(s, cid))["profile"]
    assert (profile["risk_level"], profile["tags"]) == ("C2", [])


async def test_attributes_from_other_sources_keep_provenance_and_the_latest_value_per_source(profile_strata):
    s, cid = profile_strata, new_id()
    t = now()
    await s.publish(
        customer(cid, updated_at=t),
        customer(cid, source="social_security", attributes={"insured": True, "city": "南昌"}, updated_at=t),
        customer(cid, source="tax", attributes={"city": "上海", "bracket": 3}, updated_at=t),
    )
    await s.publish(
        customer(cid, source="social_security", attributes={"city": "九江"}, updated_at=t + timedelta(hours=1)),
        customer(cid, source="tax", attributes={"bracket": 1}, updated_at=t - timedelta(hours=1)),  # older
    )
    await s.settle()
    body = await view(s, cid)
    attributes = body["profile"]["attributes"]
    assert {k: {n: v["value"] for n, v in a.items()} for k, a in attributes.items()} == {
        "social_security": {"insured": True, "city": "九江"},
        "tax": {"city": "上海", "bracket": 3},
    }
    assert attributes["social_security"]["city"]["updated_at"] > attributes["social_security"]["insured"]["updated_at"]
    assert body["profile"]["name"] == f"客户{cid}", "another source does not touch core master data"


async def test_household_members_and_combined_aum_follow_membership(profile_strata):
    s = profile_strata
    head, spouse, household = new_id(), new_id(), new_id("H")
    await s.publish(
        customer(head, household_id=household, household_role="head"),
        customer(spouse, household_id=household, household_role="spouse"),
        aum(head, "100000.00"), aum(spouse, "30000.50"),
    )
    await s.settle()
    family = (await view(s, head))["profile"]["household"]
    assert family["household_id"] == household and family["role"] == "head"
    assert [(m["customer_id"], m["role"], m["aum"]) for m in family["members"]] == [
        (head, "head", "100000.00"), (spouse, "spouse", "30000.50")]
    assert family["combined_aum"] == "130000.50"
    await s.publish(customer(spouse, household_id=None, household_role=None))
    await s.settle()
    assert (await view(s, head))["profile"]["household"]["combined_aum"] == "100000.00"
    assert (await view(s, spouse))["profile"]["household"] is None


async def test_an_older_aum_does_not_overwrite_a_newer_one(profile_strata):
    s, cid = profile_strata, new_id()
    t = now()
    await s.publish(aum(cid, "5000.00", as_of=t))
    await s.publish(aum(cid, "9000.00", as_of=t - timedelta(minutes=5)))
    await s.settle()
    assert (await view(s, cid))["aum"] == "5000.00"


async def test_an_older_tier_change_does_not_overwrite_a_newer_one(profile_strata):
    s, cid = profile_strata, new_id()
    t = now()
    await s.publish(tier(cid, "gold", frm="platinum", change="watch", watch=True, at=t))
    await s.publish(tier(cid, "platinum", at=t - timedelta(days=1)))
    await s.settle()
    body = await view(s, cid)
    assert (body["tier"], body["watch"]) == ("gold", True)


async def test_an_account_record_older_than_the_applied_one_is_ignored(profile_strata):
    s, cid = profile_strata, new_id()
    t = now()
    closed = s.event(account(f"{cid}-A", cid, status="closed"), time=t)
    stale = s.event(account(f"{cid}-A", cid, status="open"), time=t - timedelta(minutes=1))
    await s.publish(closed)
    await s.publish(stale)
    await s.settle()
    assert [h["status"] for h in (await view(s, cid))["holdings"]] == ["closed"]


async def test_signals_stay_open_until_a_status_change_closes_them_and_never_reopen(profile_strata):
    s, cid = profile_strata, new_id()
    await s.publish(signal(f"{cid}-1", cid), signal(f"{cid}-2", cid, signal_type="birthday"))
    await s.publish(signal(f"{cid}-1", cid, status="acknowledged"))
    await s.publish(signal(f"{cid}-1", cid, status="open"))  # late repeat: stays closed
    await s.settle()
    body = await view(s, cid)
    assert [(x["id"], x["signal_type"], x["status"]) for x in body["open_signals"]] == [
        (f"{cid}-2", "birthday", "open")]


async def test_a_signal_re_routed_to_a_new_primary_rm_shows_that_rm_and_stays_open(profile_strata):
    s, cid = profile_strata, new_id()
    queued = signal(f"{cid}-1", cid).model_copy(update={"rm_id": None})  # raised before the RM was known
    await s.publish(queued)
    await s.publish(signal(f"{cid}-1", cid))  # alerts re-routes it to the primary RM, status unchanged
    await s.settle()
    body = await view(s, cid)
    assert [(x["id"], x["rm_id"], x["status"]) for x in body["open_signals"]] == [(f"{cid}-1", "RM-P1", "open")]


async def test_a_priced_posting_arriving_again_under_a_new_event_id_is_counted_once(profile_strata):
    s, cid = profile_strata, new_id()
    t = now()
    await s.publish(fee(f"{cid}-P1", cid, "4.00", points=10, at=t), fee(f"{cid}-P2", cid, "2.50", points=30,
                                                                       at=t + timedelta(minutes=1)))
    await s.publish(fee(f"{cid}-P1", cid, "4.00", points=10, at=t))  # same posting, new event id
    await s.settle()
    body = await view(s, cid)
    assert body["fees"] == {"charged_total": "6.50", "charged_mtd": "6.50", "priced_postings": 2}
    assert body["points_balance"] == 30, "the balance after the latest posting"


async def test_the_same_event_id_delivered_twice_has_the_effect_of_one(profile_strata):
    s, cid = profile_strata, new_id()
    event = s.event(aum(cid, "1000.00"))
    await s.publish(event, event)
    await s.publish(event)
    await s.settle()
    assert (await view(s, cid))["aum"] == "1000.00"


async def test_an_older_assignment_does_not_replace_the_rm_in_force(profile_strata):
    s, cid = profile_strata, new_id()
    t = now()
    await s.publish(assignment(cid, "RM-NEW", at=t), assignment(cid, "RM-OLD", at=t - timedelta(hours=1)))
    await s.settle()
    assert (await view(s, cid))["rm"] == {"primary": "RM-NEW", "backup": None}


async def test_an_rm_sees_only_their_customers_and_a_branch_manager_only_their_branch(profile_strata):
    s, mine, other = profile_strata, new_id(), new_id()
    await s.publish(customer(mine, branch="BR-V1"), customer(other, branch="BR-V2"),
                    assignment(mine, "RM-V1"), assignment(other, "RM-V2", role="backup"))
    await s.settle()
    assert (await s.get(f"/v1/customers/{mine}", role="rm", rm_id="RM-V1")).status_code == 200
    refused = await s.get(f"/v1/customers/{other}", role="rm", rm_id="RM-V1")
    assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
    assert (await s.get(f"/v1/customers/{other}", role="rm", rm_id="RM-V2")).status_code == 200
    assert (await s.get(f"/v1/customers/{mine}", role="branch_manager", branch_id="BR-V1")).status_code == 200
    assert (await s.get(f"/v1/customers/{other}", role="branch_manager", branch_id="BR-V1")).status_code == 403


async def test_an_unknown_customer_is_a_404_problem_and_no_token_is_a_401(profile_strata):
    s = profile_strata
    missing = await s.get("/v1/customers/NOBODY-AT-ALL")
    assert missing.status_code == 404 and missing.json()["title"] == "Customer not found"
    assert (await s.client.get("/v1/customers/NOBODY-AT-ALL")).status_code == 401


async def test_read_model_lag_is_exported_per_topic(profile_strata):
    s, cid = profile_strata, new_id()
    await s.publish(aum(cid, "1.00"))
    await s.settle()
    text = (await s.client.get("/metrics")).text
    lag = [line for line in text.splitlines()
           if line.startswith('strata_profile_read_model_lag_seconds{topic="strata.aum"}')]
    assert lag and float(lag[0].split()[-1]) < 60


async def test_profile_runs_beside_every_other_service_in_the_single_process_mode(strata):
    cid = new_id("PX")
    await strata.publish(customer(cid), account(f"{cid}-A", cid), aum(cid, "12.34"))
    await strata.settle()
    body = (await strata.get(f"/v1/customers/{cid}")).json()
    assert body["customer_id"] == cid and Decimal(body["aum"]) == Decimal("12.34")


def test_the_shipped_catalogue_names_every_product_the_simulator_sells():
    names = Settings().profile.products
    assert [p.code for p in PRODUCTS if not names.get(p.code)] == []
