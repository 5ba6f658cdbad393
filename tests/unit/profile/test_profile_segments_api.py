"""Segment templates over HTTP: stored by analysts, checked before they are kept, members as
paged JSON or streamed CSV, limited to the caller's book."""

from __future__ import annotations

import codecs
import csv
import io
from datetime import timedelta

import pytest

from services.profile.models import ProfileSegment
from tests.unit.profile.profile_events import account, assignment, aum, customer, new_id, now, tier, today

TEMPLATE = "td-maturing-30d-platinum-c3"


@pytest.fixture(scope="module")
async def book(profile_strata):
    """Six customers: four platinum-or-above with a time deposit maturing within 30 days (one of
    them C2, so outside the template), spread over two branches and two RMs."""
    s = profile_strata
    soon, later = today() + timedelta(days=10), today() + timedelta(days=90)
    ids = [new_id("SG") for _ in range(6)]
    rows = [  # id, branch, rm, tier, risk, maturity
        (ids[0], "BR-S1", "RM-S1", "platinum", "C3", soon),
        (ids[1], "BR-S1", "RM-S1", "diamond", "C5", soon),
        (ids[2], "BR-S2", "RM-S2", "private", "C4", soon),
        (ids[3], "BR-S2", "RM-S2", "platinum", "C2", soon),
        (ids[4], "BR-S1", "RM-S2", "platinum", "C3", later),
        (ids[5], "BR-S2", "RM-S1", "gold", "C3", soon),
    ]
    events = []
    for cid, branch, rm, level, risk, maturity in rows:
        name = "=HYPERLINK(\"http://x\")" if cid == ids[2] else f"客户{cid}"
        events += [customer(cid, branch=branch, risk_level=risk, name=name), assignment(cid, rm),
                   account(f"{cid}-TD", cid, "time_deposit", branch=branch, maturity=maturity),
                   aum(cid, "300000.00"), tier(cid, level)]
    await s.publish(*events)
    await s.settle()
    return ids


async def members_json(s, name=TEMPLATE, role="analyst", params=None, **ids):
    response = await s.get(f"/v1/segments/{name}/members", role=role, params=params or {}, **ids)
    assert response.status_code == 200, response.text
    return response.json()


async def members_csv(s, name=TEMPLATE, role="analyst", params=None, **ids) -> list[dict]:
    response = await s.client.get(f"/v1/segments/{name}/members", params=params or {},
                                  headers={**s.token(role, **ids), "Accept": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(codecs.BOM_UTF8)
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


# --- templates ------------------------------------------------------------------------------


async def test_the_shipped_templates_include_the_domain_example(profile_strata):
    body = (await profile_strata.get("/v1/segments", role="rm", rm_id="RM-S1")).json()
    found = {t["name"]: t for t in body["items"]}
    assert found[TEMPLATE]["source"] == "shipped"
    assert found[TEMPLATE]["parameter_names"] == ["days", "min_risk", "min_tier"]
    assert found[TEMPLATE]["parameters"] == {"days": 30, "min_tier": "platinum", "min_risk": "C3"}
    assert body["next"] is None


async def test_an_analyst_stores_a_template_that_then_lists_and_selects(profile_strata, book):
    s = profile_strata
    template = {"name": "s1-high-risk", "description": "BR-S1, risk C5",
                "filter": {"all": [{"field": "branch", "op": "eq", "value": {"param": "branch"}},
                                   {"field": "risk_level", "op": "eq", "value": "C5"}]},
                "parameters": {"branch": "BR-S1"}}
    created = await s.post("/v1/segments", template, role="analyst")
    assert created.status_code == 201, created.text
    assert created.json()["source"] == "stored" and created.json()["created_by"] == "analyst"
    names = [t["name"] for t in (await s.get("/v1/segments")).json()["items"]]
    assert "s1-high-risk" in names and names == sorted(names)
    assert (await s.get("/v1/segments/s1-high-risk")).json()["filter"] == template["filter"]
    assert [m["customer_id"] for m in (await members_json(s, "s1-high-risk"))["items"]] == [book[1]]
    again = await s.post("/v1/segments", template, role="admin")
    assert again.status_code == 409
    replaced = await s.client.put("/v1/segments/s1-high-risk", headers=s.token("analyst"),
                                  json={**template, "parameters": {"branch": "BR-S2"}})
    assert replaced.status_code == 200
    assert (await members_json(s, "s1-high-risk"))["items"] == []


@pytest.mark.parametrize("role,ids", [("rm", {"rm_id": "RM-S1"}), ("branch_manager", {"branch_id": "BR-S1"})])
async def test_only_analysts_and_admins_store_templates(profile_strata, role, ids):
    body = {"name": "nope", "filter": {"field": "tier", "op": "eq", "value": "gold"}}
    assert (await profile_strata.post("/v1/segments", body, role=role, **ids)).status_code == 403


@pytest.mark.parametrize("filter_,path,words", [
    ({"field": "salary", "op": "gt", "value": "1.00"}, "filter.field", "unknown field"),
    ({"all": [{"field": "tier", "op": "like", "value": "gold"}]}, "filter.all[0].op", "does not apply"),
    ({"field": "aum; DROP TABLE profile_customers", "op": "gt", "value": "1"}, "filter.field", "unknown field"),
    ({"field": "aum", "op": "gt", "value": 1.5}, "filter.value", "not an amount"),
])
async def test_an_invalid_template_is_a_422_problem_naming_the_mistake(profile_strata, filter_, path, words):
    response = await profile_strata.post("/v1/segments", {"name": "bad-one", "filter": filter_})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["title"] == "Invalid segment filter"
    assert any(e["path"] == path and words in e["message"] for e in problem["errors"]), problem
    assert (await profile_strata.get("/v1/segments/bad-one")).status_code == 404


async def test_a_shipped_template_name_cannot_be_taken(profile_strata):
    body = {"name": TEMPLATE, "filter": {"field": "tier", "op": "eq", "value": "gold"}}
    assert (await profile_strata.post("/v1/segments", body)).status_code == 409


async def test_the_field_whitelist_is_published(profile_strata):
    fields = {f["field"]: f for f in (await profile_strata.get("/v1/segments/_fields", role="rm", rm_id="R")).json()}
    assert fields["tier"]["values"] == ["mass", "gold", "platinum", "diamond", "private"]
    assert "gte" in fields["risk_level"]["ops"] and fields["maturity_within_days"]["product_types"]


# --- members --------------------------------------------------------------------------------


async def test_members_of_the_domain_example_are_platinum_c3_with_time_deposits_maturing(profile_strata, book):
    items = (await members_json(profile_strata))["items"]
    assert [m["customer_id"] for m in items] == [book[0], book[1], book[2]]
    first = items[0]
    assert (first["tier"], first["risk_level"], first["aum"], first["primary_rm"]) == \
        ("platinum", "C3", "300000.00", "RM-S1")
    assert first["phone"] == "138****0000", "masked for an analyst"


async def test_query_parameters_override_the_templates_defaults(profile_strata, book):
    items = (await members_json(profile_strata, params={"days": "120", "min_tier": "gold", "min_risk": "C3"}))["items"]
    assert [m["customer_id"] for m in items] == [book[0], book[1], book[2], book[4], book[5]]


@pytest.mark.parametrize("params,words", [
    ({"min_tier": "gold' OR '1'='1"}, "not a tier"),
    ({"days": "-3"}, "not a whole number"),
    ({"mindays": "3"}, "no parameter 'mindays'"),
])
async def test_a_bad_parameter_is_a_422_problem(profile_strata, book, params, words):
    response = await profile_strata.get(f"/v1/segments/{TEMPLATE}/members", params=params)
    assert response.status_code == 422 and words in response.json()["detail"]


async def test_a_parameter_without_default_must_be_given(profile_strata, book):
    s = profile_strata
    body = {"name": "by-branch", "filter": {"field": "branch", "op": "in", "value": {"param": "branches"}}}
    assert (await s.post("/v1/segments", body)).status_code == 201
    missing = await s.get("/v1/segments/by-branch/members")
    assert missing.status_code == 422 and "branches" in missing.json()["detail"]
    items = (await members_json(s, "by-branch", params={"branches": "BR-S2,BR-NONE"}))["items"]
    assert [m["customer_id"] for m in items] == [book[2], book[3], book[5]]


async def test_json_members_are_paged_with_a_cursor(profile_strata, book):
    s, seen, cursor = profile_strata, [], None
    params = {"days": "120", "min_tier": "mass", "min_risk": "C1", "limit": "2"}
    while True:
        page = await members_json(s, params={**params, **({"cursor": cursor} if cursor else {})})
        assert len(page["items"]) <= 2
        seen += [m["customer_id"] for m in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == sorted(book)
    assert (await s.get(f"/v1/segments/{TEMPLATE}/members", params={"limit": "100000"})).status_code == 422
    assert (await s.get(f"/v1/segments/{TEMPLATE}/members", params={"cursor": "garbage!"})).status_code == 422


async def test_csv_export_streams_every_member_with_the_phone_masked_per_role(profile_strata, book):
    s = profile_strata
    rows = await members_csv(s)
    assert [r["customer_id"] for r in rows] == [book[0], book[1], book[2]]
    assert rows[0]["phone"] == "138****0000" and rows[0]["aum"] == "300000.00"
    assert rows[0]["tier"] == "platinum" and rows[0]["home_branch_id"] == "BR-S1"
    admin = await members_csv(s, role="admin")
    assert admin[0]["phone"] == "13800000000"
    by_format = await s.get(f"/v1/segments/{TEMPLATE}/members", params={"format": "csv"})
    assert by_format.headers["content-disposition"] == f'attachment; filename="{TEMPLATE}.csv"'
    assert len(by_format.text.strip().splitlines()) == 4


async def test_csv_export_starts_with_a_utf8_bom_so_excel_reads_chinese_names(profile_strata, book):
    response = await profile_strata.get(f"/v1/segments/{TEMPLATE}/members", params={"format": "csv"})
    assert response.content.startswith(codecs.BOM_UTF8 + b"customer_id,")
    assert response.content.count(codecs.BOM_UTF8) == 1


async def test_a_cell_a_spreadsheet_would_run_as_a_formula_is_made_inert(profile_strata, book):
    rows = await members_csv(profile_strata)
    assert rows[2]["name"] == "'=HYPERLINK(\"http://x\")"


async def test_an_rms_export_holds_only_their_customers_and_a_branch_managers_only_their_branch(profile_strata,
                                                                                             book):
    s = profile_strata
    params = {"days": "120", "min_tier": "mass", "min_risk": "C1"}
    rm = await members_csv(s, role="rm", params=params, rm_id="RM-S1")
    assert [r["customer_id"] for r in rm] == [book[0], book[1], book[5]]
    manager = await members_csv(s, role="branch_manager", params=params, branch_id="BR-S2")
    assert [r["customer_id"] for r in manager] == [book[2], book[3], book[5]]
    page = await members_json(s, role="rm", params=params, rm_id="RM-S2")
    assert [m["customer_id"] for m in page["items"]] == [book[2], book[3], book[4]]


async def test_an_unknown_template_is_a_404(profile_strata):
    assert (await profile_strata.get("/v1/segments/no-such/members")).status_code == 404


async def test_segment_query_latency_is_measured(profile_strata, book):
    await members_json(profile_strata)
    await members_csv(profile_strata)
    text = (await profile_strata.client.get("/metrics")).text
    assert 'strata_profile_segment_query_seconds_count{format="json"}' in text
    assert 'strata_profile_segment_query_seconds_count{format="csv"}' in text


async def test_a_stored_template_that_no_longer_checks_still_lists_and_its_members_say_why(profile_strata):
    """A bank may rename a tier in configuration after an analyst stored a template using it."""
    s = profile_strata
    async with s.runtime.db.transaction() as session:
        session.add(ProfileSegment(name="old-titanium", description="", created_by="analyst",
                                   filter='{"field": "tier", "op": "gte", "value": {"param": "t"}}',
                                   parameters='{"t": "titanium"}', created_at=now(), updated_at=now()))
    listed = {t["name"]: t for t in (await s.get("/v1/segments")).json()["items"]}
    assert listed["old-titanium"]["parameter_names"] == ["t"]
    refused = await s.get("/v1/segments/old-titanium/members")
    assert refused.status_code == 422 and "not a tier" in refused.json()["detail"]
