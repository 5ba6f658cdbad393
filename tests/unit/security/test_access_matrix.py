"""Who may call what: every endpoint of every app × every role × ownership, as a table.

The table has one row per route (method and path template), collected from the apps' routes:
a new endpoint without a row fails ``test_every_route_of_every_app_has_a_row``. For each row:

- without a valid token (none, expired, wrong signature, unknown role, an RM token without an
  RM id, unsigned, another issuer) every non-public route answers 401 problem+json;
- a role outside the row's roles gets 403 problem+json;
- an RM reaches only their own customers, their own RM records, worklist and signals; a branch
  manager only their branch's; analysts and admins everything (403 problem+json otherwise);
- identity numbers and phones appear unmasked in no answer to a role that may not see them.

The data is seeded through events on a private single-process Strata: two branches, an RM in
each, a gold customer in each (assigned by the assignment service to the branch's RM).
"""

from __future__ import annotations

import itertools
import json
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import jwt
import pytest

from shared.auth import issue_token
from shared.contracts.cloudevents import STRUCTURED, new_event, to_structured
from shared.contracts.events import CustomerV1, PostingV1
from shared.http import create_app
from shared.runtime.process import Runtime
from strata.registry import available, load
from tests.conftest import private_strata, single_process_settings
from tests.unit.security.bad_events import customer_data, posting_data
from tests.unit.security.routes import all_routes

ID_NUMBER, PHONE = "110101198001010038", "13700001111"
BR_A, BR_B, RM_A, RM_B = "BR-ACL-A", "BR-ACL-B", "RM-ACL-A", "RM-ACL-B"
CA, CB = "ACL-CA", "ACL-CB"
SEGMENT = "acl-everyone"
EVERYONE = ("rm", "branch_manager", "analyst", "admin")
PUBLIC = "public"


@dataclass
class World:
    """The ids the rows aim at: everything "own" belongs to RM A and branch A."""

    signal_a: str = ""
    simulation: str = ""
    new_customers: itertools.count = field(default_factory=lambda: itertools.count(1))


@dataclass(frozen=True)
class Who:
    name: str
    role: str
    rm_id: str | None = None
    branch_id: str | None = None

    @property
    def owns_a(self) -> bool:
        """Whether this caller may see what belongs to RM A / branch A."""
        return self.role in ("admin", "analyst") or RM_A in (self.rm_id,) or self.branch_id == BR_A


CALLERS = (
    Who("admin", "admin"), Who("analyst", "analyst"),
    Who("rm A", "rm", rm_id=RM_A), Who("rm B", "rm", rm_id=RM_B),
    Who("manager A", "branch_manager", branch_id=BR_A), Who("manager B", "branch_manager", branch_id=BR_B),
)


@dataclass(frozen=True)
class Row:
    """One route: who may call it, whether it is about something of A (``owned``: only callers
    who see A's things pass), and the request to send."""

    roles: tuple[str, ...] | str
    request: Callable[[World], dict[str, Any]]
    ok: tuple[int, ...] = (200,)
    owned: bool = False


def get(path: str, **params: Any) -> Callable[[World], dict[str, Any]]:
    return lambda w: {"url": path.format(w=w), "params": params}


def send(path: str, body: Callable[[World], Any] | Any = None) -> Callable[[World], dict[str, Any]]:
    return lambda w: {"url": path.format(w=w), "json": body(w) if callable(body) else body}


def event_body(w: World) -> dict[str, Any]:
    data = CustomerV1.model_validate(customer_data(f"ACL-NEW-{next(w.new_customers)}", home_branch_id="BR-ACL-X"))
    return to_structured(new_event(data, "core-banking"))


RM_BODY = {"name": "RM A", "branch_id": BR_A, "level": "L1", "capacity": 50, "active": True}
TEMPLATE = {"name": SEGMENT, "description": "both ACL branches",
            "filter": {"field": "branch", "op": "in", "value": [BR_A, BR_B]}}

TABLE: dict[tuple[str, str], Row] = {
    # --- public ----------------------------------------------------------------------------
    ("GET", "/healthz"): Row(PUBLIC, get("/healthz")),
    ("GET", "/readyz"): Row(PUBLIC, get("/readyz")),
    ("GET", "/metrics"): Row(PUBLIC, get("/metrics")),
    ("GET", "/openapi.json"): Row(PUBLIC, get("/openapi.json")),
    ("GET", "/asyncapi.json"): Row(PUBLIC, get("/asyncapi.json")),
    ("GET", "/docs"): Row(PUBLIC, get("/docs")),
    # --- one customer's data ------------------------------------------------------------------
    ("GET", "/v1/customers/{customer_id}"): Row(EVERYONE, get(f"/v1/customers/{CA}"), owned=True),
    ("GET", "/v1/customers/{customer_id}/tier"): Row(EVERYONE, get(f"/v1/customers/{CA}/tier"), owned=True),
    ("GET", "/v1/customers/{customer_id}/aum/daily"): Row(EVERYONE, get(f"/v1/customers/{CA}/aum/daily"), owned=True),
    ("GET", "/v1/customers/{customer_id}/tier/explain"): Row(EVERYONE, get(f"/v1/customers/{CA}/tier/explain"),
                                                              owned=True),
    ("GET", "/v1/customers/{customer_id}/fees/{posting_id}/explain"): Row(
        EVERYONE, get(f"/v1/customers/{CA}/fees/{CA}-GOLD/explain", lang="zh-CN"), owned=True),
    ("GET", "/v1/customers/{customer_id}/fees"): Row(EVERYONE, get(f"/v1/customers/{CA}/fees"), owned=True),
    ("GET", "/v1/customers/{customer_id}/points"): Row(EVERYONE, get(f"/v1/customers/{CA}/points"), owned=True),
    ("GET", "/v1/customers/{customer_id}/points/ledger"): Row(EVERYONE, get(f"/v1/customers/{CA}/points/ledger"),
                                                               owned=True),
    ("GET", "/v1/customers/{customer_id}/eligible-products"): Row(
        EVERYONE, get(f"/v1/customers/{CA}/eligible-products"), owned=True),
    ("GET", "/v1/customers/{customer_id}/assignments"): Row(EVERYONE, get(f"/v1/customers/{CA}/assignments"),
                                                             owned=True),
    ("GET", "/v1/customers/{customer_id}/follow-ups"): Row(EVERYONE, get(f"/v1/customers/{CA}/follow-ups"),
                                                            owned=True),
    ("POST", "/v1/customers/{customer_id}/follow-ups"): Row(
        ("rm", "branch_manager", "admin"),
        send(f"/v1/customers/{CA}/follow-ups", {"channel": "phone", "note": "called", "outcome": "interested"}),
        ok=(201,), owned=True),
    ("POST", "/v1/customers/{customer_id}/points/redeem"): Row(
        ("rm", "branch_manager", "admin"), send(f"/v1/customers/{CA}/points/redeem", {"points": 1}),
        ok=(200, 409), owned=True),
    ("POST", "/v1/pricing/quote"): Row(EVERYONE, send("/v1/pricing/quote", {
        "customer_id": CA, "tx_type": "atm_withdrawal", "amount": "100.00", "channel": "atm",
        "counterparty_bank": "OTHER"}), owned=True),
    # --- an RM's records -------------------------------------------------------------------
    ("GET", "/v1/rms/{rm_id}"): Row(EVERYONE, get(f"/v1/rms/{RM_A}"), owned=True),
    ("GET", "/v1/rms/{rm_id}/worklist"): Row(EVERYONE, get(f"/v1/rms/{RM_A}/worklist"), owned=True),
    ("GET", "/v1/rms/{rm_id}/assignments"): Row(EVERYONE, get(f"/v1/rms/{RM_A}/assignments"), owned=True),
    ("POST", "/v1/assignments/claims"): Row(("rm", "branch_manager", "admin"), send(
        "/v1/assignments/claims", {"rm_id": RM_A, "customer_id": CA, "reason": "knows the family"}), owned=True),
    ("POST", "/v1/rms/{rm_id}/handover"): Row(  # 422: the access checks passed, the target does not exist
        ("branch_manager", "admin"), send(f"/v1/rms/{RM_A}/handover", {"reason": "test", "to": ["RM-NOBODY"]}),
        ok=(422,), owned=True),
    ("PUT", "/v1/rms/{rm_id}"): Row(("admin",), send(f"/v1/rms/{RM_A}", RM_BODY)),
    # --- a branch ----------------------------------------------------------------------------
    ("GET", "/v1/branches"): Row(("branch_manager", "analyst", "admin"), get("/v1/branches")),
    ("GET", "/v1/branches/{branch_id}/report"): Row(("branch_manager", "analyst", "admin"),
                                                     get(f"/v1/branches/{BR_A}/report"), owned=True),
    # --- signals -----------------------------------------------------------------------------
    ("GET", "/v1/signals/{signal_id}"): Row(EVERYONE, lambda w: {"url": f"/v1/signals/{w.signal_a}"}, owned=True),
    ("POST", "/v1/signals/{signal_id}/ack"): Row(("rm", "branch_manager", "admin"),
                                                  lambda w: {"url": f"/v1/signals/{w.signal_a}/ack"},
                                                  ok=(200, 409), owned=True),
    ("POST", "/v1/signals/{signal_id}/done"): Row(("rm", "branch_manager", "admin"),
                                                   lambda w: {"url": f"/v1/signals/{w.signal_a}/done"},
                                                   ok=(200, 409), owned=True),
    ("POST", "/v1/signals/{signal_id}/snooze"): Row(("rm", "branch_manager", "admin"),
                                                     lambda w: {"url": f"/v1/signals/{w.signal_a}/snooze",
                                                                "json": {"until": "2199-12-30"}},
                                                     ok=(200, 409), owned=True),
    # --- lists, filtered to the caller's book (their content: tests below) --------------------
    ("GET", "/v1/signals"): Row(EVERYONE, get("/v1/signals")),
    ("GET", "/v1/signals/summary"): Row(EVERYONE, get("/v1/signals/summary")),
    ("GET", "/v1/rms"): Row(EVERYONE, get("/v1/rms")),
    ("GET", "/v1/segments/{name}/members"): Row(EVERYONE, get(f"/v1/segments/{SEGMENT}/members")),
    # --- shared reference data ---------------------------------------------------------------
    ("GET", "/v1/segments"): Row(EVERYONE, get("/v1/segments")),
    ("GET", "/v1/segments/_fields"): Row(EVERYONE, get("/v1/segments/_fields")),
    ("GET", "/v1/segments/{name}"): Row(EVERYONE, get(f"/v1/segments/{SEGMENT}")),
    ("GET", "/v1/pricing/schedule"): Row(EVERYONE, get("/v1/pricing/schedule")),
    ("GET", "/v1/clock"): Row(EVERYONE, get("/v1/clock")),
    ("POST", "/v1/segments"): Row(("analyst", "admin"), send("/v1/segments", TEMPLATE), ok=(201, 409)),
    ("PUT", "/v1/segments/{name}"): Row(("analyst", "admin"), send(f"/v1/segments/{SEGMENT}", TEMPLATE)),
    ("POST", "/v1/pricing/simulate"): Row(("analyst", "admin"), send(
        "/v1/pricing/simulate", {"from": "2026-11-01", "to": "2026-11-02"})),
    ("POST", "/v1/tiering/simulate"): Row(("analyst", "admin"), send(
        "/v1/tiering/simulate", {"from": "2026-10", "to": "2026-10", "tiers": [{"id": "gold", "floor": "40000.00"}]}),
        ok=(202,)),
    ("GET", "/v1/tiering/simulations/{simulation_id}"): Row(
        ("analyst", "admin"), lambda w: {"url": f"/v1/tiering/simulations/{w.simulation}"}),
    ("GET", "/v1/tiering/simulations/{simulation_id}/customers"): Row(
        ("analyst", "admin"), lambda w: {"url": f"/v1/tiering/simulations/{w.simulation}/customers"}),
    # --- operations ----------------------------------------------------------------------------
    ("GET", "/v1/audit"): Row(("admin",), get("/v1/audit")),
    ("POST", "/v1/events"): Row(("admin",), lambda w: {
        "url": "/v1/events", "content": json.dumps(event_body(w)),
        "headers": {"content-type": STRUCTURED}}, ok=(202,)),
    ("POST", "/v1/admin/month-end-close"): Row(("admin",), send("/v1/admin/month-end-close", {"month": "2001-01"}),
                                                ok=(200, 409)),
    ("POST", "/v1/admin/daily-scan"): Row(("admin",), send("/v1/admin/daily-scan", {"date": "2001-01-01"})),
    ("POST", "/v1/pricing/points-expiry"): Row(("admin",), send("/v1/pricing/points-expiry", {"date": "2001-01-01"})),
}


# --- the world -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def world():
    async with private_strata() as strata:
        for rm_id, branch in ((RM_A, BR_A), (RM_B, BR_B)):
            body = {**RM_BODY, "name": rm_id, "branch_id": branch}
            response = await strata.client.put(f"/v1/rms/{rm_id}", json=body, headers=strata.token("admin"))
            assert response.status_code == 200, response.text
        gold = dict(amount="60000.00", balance_after="60000.00")
        await strata.publish(
            CustomerV1.model_validate(customer_data(CA, home_branch_id=BR_A, id_number=ID_NUMBER, phone=PHONE)),
            CustomerV1.model_validate(customer_data(CB, home_branch_id=BR_B, id_number=ID_NUMBER, phone=PHONE)),
            CustomerV1(customer_id=CA, source="social-security", updated_at=datetime.now(timezone.utc),
                       attributes={"ss_id_number": ID_NUMBER, "contact_mobile": int(PHONE), "employer": "某公司"}),
            # a first posting places each customer; the second lifts them to gold: a tier_upgraded
            *[PostingV1.model_validate(posting_data(c, posted_at="2026-11-19T09:00:00+08:00")) for c in (CA, CB)],
            *[PostingV1.model_validate(posting_data(c, account_seq=2, posting_id=f"{c}-GOLD", **gold)) for c in (CA, CB)])
        await strata.settle()
        assert (await strata.post("/v1/segments", TEMPLATE, role="analyst")).status_code == 201
        w = World()
        for cid, rm_id in ((CA, RM_A), (CB, RM_B)):
            held = (await strata.get(f"/v1/customers/{cid}/assignments")).json()
            assert held["primary"] == rm_id, f"the seed needs {cid} assigned to {rm_id}: {held}"
        signals = (await strata.get("/v1/signals", params={"customer_id": CA})).json()["items"]
        assert signals and all(s["rm_id"] == RM_A for s in signals), signals
        w.signal_a = signals[0]["id"]
        simulated = await strata.post("/v1/tiering/simulate", {"from": "2026-10", "to": "2026-10"}, role="analyst")
        assert simulated.status_code == 202, simulated.text
        w.simulation = simulated.json()["id"]
        yield strata, w


def headers_of(strata, who: Who) -> dict[str, str]:
    return strata.token(who.role, rm_id=who.rm_id, branch_id=who.branch_id)


async def call(strata, row: Row, w: World, headers: dict[str, str]):
    request = row.request(w)
    method = next(m for (m, _), r in TABLE.items() if r is row)
    return await strata.client.request(method, request["url"], params=request.get("params"),
                                       json=request.get("json"), content=request.get("content"),
                                       headers={**headers, **request.get("headers", {})})


def expected_status(row: Row, who: Who) -> tuple[int, ...]:
    if row.roles != PUBLIC and who.role not in row.roles:
        return (403,)
    if row.owned and not who.owns_a:
        return (403,)
    return row.ok


# --- the tests -----------------------------------------------------------------------------


def test_every_route_of_every_app_has_a_row():
    """The single-process app and each service's own app (the distributed mode)."""
    settings = single_process_settings(tempfile.mkdtemp(prefix="strata-acl-"))
    apps = {"single-process": create_app(Runtime(settings, [load(s) for s in available()]), manage_runtime=False)}
    for name in available():
        apps[name] = create_app(Runtime(settings, [load(name)]), manage_runtime=False)
    missing = {f"{name}: {method} {path}" for name, app in apps.items() for method, path in all_routes(app)
               if (method, path) not in TABLE}
    assert not missing, f"routes without a row in the access table: {sorted(missing)}"
    stale = set(TABLE) - set(all_routes(apps["single-process"]))
    assert not stale, f"rows for routes that no longer exist: {sorted(stale)}"


def _bad_tokens(secret: str) -> dict[str, dict[str, str]]:
    now = datetime.now(timezone.utc)
    claims = {"iss": "strata", "sub": "x", "iat": now, "exp": now + timedelta(minutes=5)}
    bearer = lambda token: {"Authorization": f"Bearer {token}"}  # noqa: E731
    return {
        "no token": {},
        "not a bearer token": {"Authorization": "Basic YWRtaW46YWRtaW4="},
        "expired": bearer(issue_token(secret, "admin", ttl_minutes=-1)),
        "wrong signature": bearer(issue_token("another-key-entirely-but-as-long-as-the-real-one", "admin")),
        "another issuer": bearer(issue_token(secret, "admin", issuer="somebody-else")),
        "unsigned": bearer(jwt.encode({**claims, "role": "admin"}, None, algorithm="none")),
        "unknown role": bearer(jwt.encode({**claims, "role": "superuser"}, secret, algorithm="HS256")),
        "rm without an rm id": bearer(jwt.encode({**claims, "role": "rm"}, secret, algorithm="HS256")),
        "garbage": bearer("not.a.jwt"),
    }


async def test_every_protected_route_refuses_a_missing_or_bad_token_with_401_problem_json(world):
    strata, w = world
    wrong = []
    for (method, path), row in TABLE.items():
        if row.roles == PUBLIC:
            continue
        for what, headers in _bad_tokens(strata.settings.auth.secret.get_secret_value()).items():
            response = await call(strata, row, w, headers)
            if response.status_code != 401 or response.headers.get("content-type") != "application/problem+json":
                wrong.append(f"{method} {path} with {what}: {response.status_code} {response.text[:120]}")
    assert not wrong, "\n".join(wrong)


async def test_public_routes_answer_without_a_token(world):
    strata, w = world
    for (method, path), row in TABLE.items():
        if row.roles == PUBLIC:
            response = await call(strata, row, w, {})
            assert response.status_code == 200, f"{method} {path}: {response.status_code}"


@pytest.mark.parametrize("who", CALLERS, ids=[c.name for c in CALLERS])
async def test_each_role_reaches_exactly_what_it_may_and_never_sees_raw_identity(world, who):
    strata, w = world
    wrong = []
    # reads first, so that the writes (a signal closed, a month closed) do not change what they see
    rows = sorted(TABLE.items(), key=lambda item: item[0][0] != "GET")
    for (method, path), row in rows:
        if row.roles == PUBLIC:
            continue
        response = await call(strata, row, w, headers_of(strata, who))
        expected = expected_status(row, who)
        if response.status_code not in expected:
            wrong.append(f"{method} {path}: {response.status_code}, expected {expected}: {response.text[:160]}")
        elif response.status_code in (401, 403) and response.headers["content-type"] != "application/problem+json":
            wrong.append(f"{method} {path}: a {response.status_code} that is not problem+json")
        if who.role != "admin" and (ID_NUMBER in response.text or PHONE in response.text):
            wrong.append(f"{method} {path}: raw identity number or phone shown to {who.name}")
    assert not wrong, f"{who.name}:\n" + "\n".join(wrong)


# --- what the lists hold -------------------------------------------------------------------


async def test_an_rm_lists_only_their_own_signals_records_and_segment_members(world):
    strata, _ = world
    rm_a = {"role": "rm", "rm_id": RM_A}
    signals = (await strata.get("/v1/signals", **rm_a)).json()["items"]
    assert signals and {s["rm_id"] for s in signals} == {RM_A}
    assert (await strata.get("/v1/signals", params={"rm_id": RM_B}, **rm_a)).status_code == 403
    assert [r["rm_id"] for r in (await strata.get("/v1/rms", **rm_a)).json()["items"]] == [RM_A]
    members = (await strata.get(f"/v1/segments/{SEGMENT}/members", **rm_a)).json()["items"]
    assert [m["customer_id"] for m in members] == [CA]
    worklist = (await strata.get(f"/v1/rms/{RM_A}/worklist", **rm_a)).json()["items"]
    assert [i["customer_id"] for i in worklist] == [CA]


async def test_a_branch_manager_lists_only_the_branchs_signals_rms_and_members(world):
    strata, _ = world
    bm_a = {"role": "branch_manager", "branch_id": BR_A}
    signals = (await strata.get("/v1/signals", **bm_a)).json()["items"]
    assert signals and {s["branch_id"] for s in signals} == {BR_A}
    assert (await strata.get("/v1/signals", params={"branch_id": BR_B}, **bm_a)).status_code == 403
    assert {r["branch_id"] for r in (await strata.get("/v1/rms", **bm_a)).json()["items"]} == {BR_A}
    assert (await strata.get("/v1/rms", params={"branch_id": BR_B}, **bm_a)).status_code == 403
    members = (await strata.get(f"/v1/segments/{SEGMENT}/members", **bm_a)).json()["items"]
    assert [m["customer_id"] for m in members] == [CA]


async def test_analysts_see_everyone_with_identity_masked_and_admins_unmasked(world):
    strata, _ = world
    members = (await strata.get(f"/v1/segments/{SEGMENT}/members", role="analyst")).json()["items"]
    assert [m["customer_id"] for m in members] == [CA, CB]
    assert {m["phone"] for m in members} == {"137****1111"}
    profile = (await strata.get(f"/v1/customers/{CB}", role="analyst")).json()["profile"]
    assert (profile["id_number"], profile["phone"]) == ("1101**********0038", "137****1111")
    profile = (await strata.get(f"/v1/customers/{CB}", role="admin")).json()["profile"]
    assert (profile["id_number"], profile["phone"]) == (ID_NUMBER, PHONE)


async def test_identity_another_source_sends_as_attributes_is_masked_too(world):
    strata, _ = world
    masked = (await strata.get(f"/v1/customers/{CA}", role="rm", rm_id=RM_A)).json()["profile"]["attributes"]
    assert {k: v["value"] for k, v in masked["social-security"].items()} == {
        "ss_id_number": "1101**********0038", "contact_mobile": "1370***1111", "employer": "某公司"}
    full = (await strata.get(f"/v1/customers/{CA}", role="admin")).json()["profile"]["attributes"]
    assert full["social-security"]["ss_id_number"]["value"] == ID_NUMBER
