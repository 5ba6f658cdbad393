"""Identity numbers and phones never reach a log line, and every read that lets customer data
out (an unmasked 360, a segment's members, a CSV export) is in an audit log that the API cannot
change, with who, what, when and why."""

from __future__ import annotations

import csv
import io
import logging

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DatabaseError

from shared.audit import PURPOSE_HEADER, AuditEntry
from shared.contracts.events import CustomerV1
from tests.unit.security.bad_events import customer_data
from tests.unit.security.logcapture import every_log_line
from tests.unit.security.routes import all_routes

ID_NUMBER, MOBILE, LANDLINE = "110101199003070011", "13912345678", "0791-86661234"
BRANCH = "BR-PII"
SEGMENT = "pii-branch"


@pytest.fixture(scope="module")
async def pii(strata):
    """Three customers of one branch (one with a landline, which no pattern would recognise) and
    a segment template selecting the branch."""
    ids = ["PII-1", "PII-2", "PII-3"]
    await strata.publish(*[CustomerV1.model_validate(customer_data(
        cid, id_number=ID_NUMBER, phone=LANDLINE if cid == "PII-3" else MOBILE, home_branch_id=BRANCH))
        for cid in ids])
    await strata.settle()
    template = {"name": SEGMENT, "description": "the PII test branch",
                "filter": {"field": "branch", "op": "eq", "value": BRANCH}}
    created = await strata.post("/v1/segments", template, role="analyst")
    assert created.status_code in (201, 409), created.text
    return strata, ids


def raw_identity_in(text: str) -> list[str]:
    return [v for v in (ID_NUMBER, MOBILE, LANDLINE) if v in text]


async def entries(strata, **where) -> list[AuditEntry]:
    async with strata.runtime.db.sessions() as session:
        stmt = select(AuditEntry).order_by(AuditEntry.id)
        for name, value in where.items():
            stmt = stmt.where(getattr(AuditEntry, name) == value)
        return list((await session.execute(stmt)).scalars())


def without_purpose(strata, role: str, **ids) -> dict[str, str]:
    return strata.token(role, purpose=None, **ids)


# --- no identity in logs ---------------------------------------------------------------------


@pytest.mark.parametrize("role", ["analyst", "admin"])
async def test_a_360_read_and_a_segment_export_log_no_identity_number_or_phone(pii, role):
    strata, ids = pii
    with every_log_line() as logs:
        view = await strata.get(f"/v1/customers/{ids[2]}", role=role)
        export = await strata.client.get(f"/v1/segments/{SEGMENT}/members", params={"format": "csv"},
                                         headers=strata.token(role))
    assert view.status_code == 200 and export.status_code == 200
    lines = logs.getvalue()
    assert "SELECT" in lines and "Row" in lines, "the capture saw the database reads and their rows"
    assert raw_identity_in(lines) == []
    if role == "analyst":
        assert raw_identity_in(view.text + export.text) == [], "a masked role sees no raw identity"
    else:
        assert LANDLINE in view.text, "the admin's audited read shows it unmasked"


async def test_a_database_error_logs_its_statement_but_not_its_values(pii):
    strata, _ = pii
    with every_log_line() as logs:
        try:
            async with strata.runtime.db.transaction() as session:
                await session.execute(text("INSERT INTO no_such_table VALUES (:a, :b)"),
                                      {"a": ID_NUMBER, "b": LANDLINE})
        except DatabaseError:
            logging.getLogger("strata.test").exception("insert failed", extra={"phone": LANDLINE})
    lines = logs.getvalue()
    assert "no_such_table" in lines and "[parameters: hidden]" in lines
    assert raw_identity_in(lines) == []


# --- the audit log ---------------------------------------------------------------------------


async def test_an_unmasked_360_needs_a_purpose_and_is_recorded_with_who_what_when_and_why(pii):
    strata, ids = pii
    cid = ids[0]
    masked = await strata.client.get(f"/v1/customers/{cid}", headers=without_purpose(strata, "admin"))
    assert masked.status_code == 200, "without a purpose, the contract's masked view"
    assert masked.json()["profile"]["id_number"] == "1101**********0011"
    assert raw_identity_in(masked.text) == []
    blank = {**without_purpose(strata, "admin"), PURPOSE_HEADER: "   "}
    assert (await strata.client.get(f"/v1/customers/{cid}", headers=blank)).json()["profile"]["phone"] != LANDLINE
    assert await entries(strata, customer_id=cid) == [], "a masked read is not audited"

    headers = {**without_purpose(strata, "admin"), PURPOSE_HEADER: "KYC%20review%20%E5%A4%8D%E6%A0%B8"}
    response = await strata.client.get(f"/v1/customers/{cid}", headers=headers)
    assert response.json()["profile"]["id_number"] == ID_NUMBER
    [entry] = await entries(strata, customer_id=cid)
    assert (entry.subject, entry.role, entry.action, entry.endpoint) == ("admin", "admin", "customer_360",
                                                                         f"GET /v1/customers/{cid}")
    assert (entry.rows, entry.unmasked, entry.purpose, entry.service) == (1, True, "KYC review 复核", "profile")
    assert entry.at is not None


@pytest.mark.parametrize(("role", "ids"), [("branch_manager", {"branch_id": BRANCH}), ("analyst", {}), ("admin", {})])
async def test_a_360_without_a_purpose_is_masked_for_every_role_and_not_recorded(pii, role, ids):
    strata, customers = pii
    response = await strata.client.get(f"/v1/customers/{customers[1]}", headers=without_purpose(strata, role, **ids))
    assert response.status_code == 200, response.text
    assert response.json()["profile"]["id_number"] == "1101**********0011"
    assert raw_identity_in(response.text) == []
    assert await entries(strata, customer_id=customers[1]) == []


async def test_a_purpose_unmasks_nothing_for_a_role_that_may_not_see_identities(pii):
    strata, customers = pii
    response = await strata.get(f"/v1/customers/{customers[1]}", role="analyst")  # states the test's purpose
    assert raw_identity_in(response.text) == []
    assert await entries(strata, customer_id=customers[1]) == []


async def test_every_read_of_a_segments_members_needs_a_purpose_and_is_recorded_with_its_rows(pii):
    strata, ids = pii
    path = f"/v1/segments/{SEGMENT}/members"
    refused = await strata.client.get(path, headers=without_purpose(strata, "rm", rm_id="RM-PII"))
    assert refused.status_code == 400
    before = len(await entries(strata, segment=SEGMENT))

    headers = {**without_purpose(strata, "analyst"), PURPOSE_HEADER: "campaign 2026-12"}
    page = await strata.client.get(path, params={"limit": 2}, headers=headers)
    export = await strata.client.get(path, params={"format": "csv"}, headers=headers)
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert len(page.json()["items"]) == 2 and len(rows) == 3

    recorded = (await entries(strata, segment=SEGMENT))[before:]
    assert [(e.action, e.rows, e.unmasked, e.purpose, e.subject) for e in recorded] == [
        ("segment_members", 2, False, "campaign 2026-12", "analyst"),
        ("segment_export", 3, False, "campaign 2026-12", "analyst"),
    ]
    assert '"limit": ["2"]' in recorded[0].parameters and '"format": ["csv"]' in recorded[1].parameters


async def test_the_audit_log_is_read_by_admins_only_newest_first_and_paged(pii):
    strata, ids = pii
    cid = ids[2]
    for _ in range(3):
        assert (await strata.get(f"/v1/customers/{cid}")).status_code == 200
    assert (await strata.get("/v1/audit", role="analyst")).status_code == 403
    assert (await strata.get("/v1/audit", role="rm", rm_id="RM-PII")).status_code == 403
    recorded = [e.id for e in await entries(strata, customer_id=cid)]
    seen, cursor = [], None
    while True:
        page = (await strata.get("/v1/audit", params={"customer_id": cid, "limit": 2,
                                                      **({"cursor": cursor} if cursor else {})})).json()
        assert len(page["items"]) <= 2
        seen += [e["id"] for e in page["items"]]
        if not (cursor := page["next"]):
            break
    assert len(recorded) >= 3 and seen == sorted(recorded, reverse=True)
    latest = (await strata.get("/v1/audit", params={"customer_id": cid, "limit": 1})).json()["items"][0]
    assert (latest["purpose"], latest["action"], latest["customer_id"]) == ("automated test", "customer_360", cid)


async def test_no_route_changes_the_audit_log_and_the_database_refuses_to(pii):
    strata, _ = pii
    routes = all_routes(strata.app)
    assert [(m, p) for m, p in routes if "audit" in p] == [("GET", "/v1/audit")], "no route writes it"
    for method in ("put", "patch", "delete", "post"):
        response = await strata.client.request(method.upper(), "/v1/audit", headers=strata.token("admin"))
        assert response.status_code == 405, method
    assert await entries(strata), "there are entries to protect"
    for statement in (update(AuditEntry).values(purpose="nothing to see"), delete(AuditEntry)):
        with pytest.raises(DatabaseError, match="append-only"):
            async with strata.runtime.db.transaction() as session:
                await session.execute(statement)
