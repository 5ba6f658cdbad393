"""A fuzz of every operation of the OpenAPI with schemathesis, against the single-process app
in process (all five services and the platform routes), with an admin token and an RM token.

Three kinds of request, each answer checked for: no 5xx, a status the operation documents, a
documented content type, a body that matches the documented schema.

- **coverage**: schemathesis's boundary and type cases for every parameter and body field;
- **generated**: hypothesis examples, valid and invalid (``FUZZ_EXAMPLES`` of each per
  operation; ``STRATA_FUZZ_EXAMPLES=200`` runs a long fuzz, ``STRATA_FUZZ_SEED`` another one);
- **edges**: what random generation rarely reaches: dates and times at the ends of the
  calendar, integers beyond 64 bits, long and odd strings in every field, and crafted paging
  cursors (a cursor is base64 JSON that a client can forge).

Generated requests aim half the time at the seeded customer, RM, branch, signal and segment,
so that they get past "not found" into the code behind. Failures are collected and reported
together, each with the request that caused it.
"""

from __future__ import annotations

import base64
import json
import os
import random
from dataclasses import dataclass
from typing import Any, Iterator

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shared.contracts.events import CustomerV1, PostingV1
from tests.conftest import private_strata
from tests.unit.security.bad_events import customer_data, posting_data

FUZZ_EXAMPLES = int(os.environ.get("STRATA_FUZZ_EXAMPLES", "6"))
FUZZ_SEED = os.environ.get("STRATA_FUZZ_SEED")
MAX_REQUESTS_PER_OPERATION = 1000
"""The fuzz is bounded by how many requests it sends, never by how long they take: each
operation gets its coverage, generated and edge cases, at most this many (times the examples'
share beyond the default), whatever the machine's load."""
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

RM, BRANCH, CUSTOMER, SEGMENT = "RM-FZ", "BR-FZ", "FZ-C1", "fz-branch"
SEEDED = {"customer_id": CUSTOMER, "rm_id": RM, "branch_id": BRANCH, "name": SEGMENT}
ROLES = {"admin": {}, "rm": {"rm_id": RM}}

HUGE = [2**63, -(2**63), 10**30]
ODD_STRINGS = ["x" * 10_000, "\x00", "../../etc/passwd", "' OR '1'='1", "😀" * 50, " ", "%00%ff"]
EDGE_DATES = ["0001-01-01", "9999-12-31", "1899-12-31", "2200-01-01"]
EDGE_TIMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "2026-11-28T10:00:00"]
FORGED_CURSORS = [
    {"after": {"x": 1}}, {"after": 10**30}, {"after": ["a"]}, {"id": 10**30}, {"id": -(10**30)}, {"id": "x"},
    {"before": 10**30}, {"before": {"x": 1}}, {"offset": -5}, {"offset": 10**30},
    {"sort": "tier", "order": "desc", "role": "all", "offset": 10**30},
    {"sort": "tier", "order": "desc", "role": "all", "offset": -(10**30)},
    {"t": "0001-01-01T00:00:00+14:00", "i": "x"}, {"t": "9999-12-31T23:59:59-12:00", "i": 1}, {"t": 5, "i": None},
]


@dataclass
class Finding:
    phase: str
    operation: str
    role: str
    request: dict[str, Any]
    status: int
    problem: str

    def __str__(self) -> str:
        request = json.dumps({k: v for k, v in self.request.items() if k != "headers"}, default=str)[:400]
        return f"[{self.phase}] {self.operation} as {self.role} -> {self.status}: {self.problem[:300]}\n    {request}"


async def seed(strata) -> None:
    """One RM, a gold customer of theirs (so a signal), and a segment template."""
    rm = {"name": "Fuzz RM", "branch_id": BRANCH, "level": "L1", "capacity": 50, "active": True}
    assert (await strata.client.put(f"/v1/rms/{RM}", json=rm, headers=strata.token("admin"))).status_code == 200
    await strata.publish(CustomerV1.model_validate(customer_data(CUSTOMER, home_branch_id=BRANCH)),
                         PostingV1.model_validate(posting_data(CUSTOMER, posted_at="2026-11-19T09:00:00+08:00")),
                         PostingV1.model_validate(posting_data(CUSTOMER, account_seq=2, amount="60000.00",
                                                               balance_after="60000.00")))
    await strata.settle()
    template = {"name": SEGMENT, "filter": {"field": "branch", "op": "eq", "value": {"param": "branch"}},
                "parameters": {"branch": BRANCH}}
    assert (await strata.post("/v1/segments", template, role="analyst")).status_code == 201
    signals = (await strata.get("/v1/signals", params={"customer_id": CUSTOMER})).json()["items"]
    assert signals and signals[0]["rm_id"] == RM
    SEEDED["signal_id"] = signals[0]["id"]


@pytest.fixture(scope="module")
async def fuzz_strata():
    """A private Strata: the fuzz creates RMs, segments and month closes."""
    async with private_strata() as strata:
        await seed(strata)
        yield strata


# --- the requests -------------------------------------------------------------------------------


def _generated(operation, mode: GenerationMode, n: int) -> list:
    cases: list = []

    @hypothesis.settings(max_examples=n, database=None, deadline=None, phases=[Phase.explicit, Phase.generate],
                         suppress_health_check=list(HealthCheck), derandomize=FUZZ_SEED is None)
    @hypothesis.given(operation.as_strategy(generation_mode=mode))
    def collect(case) -> None:
        cases.append(case)

    if FUZZ_SEED is not None:
        collect = hypothesis.seed(int(FUZZ_SEED))(collect)
    try:
        collect()
    except hypothesis.errors.Unsatisfiable:  # nothing invalid to say about an operation without inputs
        pass
    return cases


def _aimed(case, operation) -> Any:
    """The case with its path parameters set to the seeded ids, so that it reaches the code
    behind "not found"."""
    path = {k: SEEDED.get(k, v) for k, v in (case.path_parameters or {}).items()}
    return operation.Case(path_parameters=path, query=dict(case.query or {}), body=case.body,
                          media_type=case.media_type, headers=dict(case.headers or {}))


def _schema_of(operation) -> dict[str, Any]:
    return operation.definition.raw if hasattr(operation.definition, "raw") else operation.definition


BASELINES: dict[str, dict[str, Any]] = {
    # requests that pass the checks a schema cannot express (a level of the registry, a month
    # that may close), so that the edge values of each field reach the code behind them
    "PUT /v1/rms/{rm_id}": {"body": {"name": "Edge RM", "branch_id": BRANCH, "level": "L1", "capacity": 10}},
    "POST /v1/rms/{rm_id}/handover": {"body": {"reason": "edge", "to": [RM]}},
    "POST /v1/assignments/claims": {"body": {"rm_id": RM, "customer_id": CUSTOMER, "reason": "edge"}},
    "POST /v1/customers/{customer_id}/follow-ups": {"body": {"channel": "phone", "outcome": "ok", "note": "n"}},
    "POST /v1/customers/{customer_id}/points/redeem": {"body": {"points": 1}},
    "POST /v1/pricing/quote": {"body": {"customer_id": CUSTOMER, "tx_type": "atm_withdrawal", "amount": "10.00",
                                        "channel": "atm", "counterparty_bank": "OTHER"}},
    "POST /v1/pricing/simulate": {"body": {"from": "2026-11-01", "to": "2026-11-30"}},
    "POST /v1/pricing/points-expiry": {"body": {"date": "2026-11-20"}},
    "POST /v1/admin/daily-scan": {"body": {"date": "2026-11-20"}},
    "POST /v1/admin/month-end-close": {"body": {"month": "2026-10"}},
    "POST /v1/segments": {"body": {"name": "edge-segment", "filter": {"field": "branch", "op": "eq", "value": BRANCH}}},
    "PUT /v1/segments/{name}": {"body": {"name": SEGMENT, "filter": {"field": "branch", "op": "eq", "value": BRANCH}}},
}


def _baseline(operation):
    """A valid request to vary one field at a time: the operation's own, or the first positive
    coverage case; aimed at the seeded ids."""
    own = BASELINES.get(operation.label)
    if own is not None:
        path = {p["name"]: SEEDED[p["name"]] for p in _schema_of(operation).get("parameters", []) if p["in"] == "path"}
        return operation.Case(path_parameters=path, query=own.get("query", {}), body=own["body"],
                              media_type="application/json")
    for case in operation.schema.iter_coverage_cases(
            operation, generation_modes=[GenerationMode.POSITIVE],
            generation_config=operation.schema.config.generation_for(operation=operation)):
        return _aimed(case, operation)
    return None


def _edge_values(schema: dict[str, Any], components: dict[str, Any]) -> list[Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    for option in schema.get("anyOf", []):
        if option.get("type") != "null":
            return _edge_values(option, components)
    kind, fmt = schema.get("type"), schema.get("format")
    if kind == "integer":
        return HUGE
    if kind == "number":
        return [1e308, -1e308]
    if fmt == "date":
        return EDGE_DATES
    if fmt == "date-time":
        return EDGE_TIMES
    if kind == "string":
        return ODD_STRINGS
    return []


def _cursor(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def _edges(operation, components: dict[str, Any]) -> Iterator[Any]:
    base = _baseline(operation)
    if base is None:
        return
    raw = _schema_of(operation)
    for parameter in raw.get("parameters", []):
        name, where = parameter["name"], parameter["in"]
        values = [_cursor(c) for c in FORGED_CURSORS] if name == "cursor" else \
            _edge_values(parameter.get("schema", {}), components)
        for value in values:
            if where == "query":
                yield operation.Case(path_parameters=dict(base.path_parameters or {}),
                                     query={**(base.query or {}), name: value}, body=base.body,
                                     media_type=base.media_type)
            elif where == "path" and isinstance(value, str) and value.strip() and value.isprintable() \
                    and not set(value) & set("/?#%"):
                yield operation.Case(path_parameters={**(base.path_parameters or {}), name: value},
                                     query=dict(base.query or {}), body=base.body, media_type=base.media_type)
    if isinstance(base.body, dict):
        content = raw.get("requestBody", {}).get("content", {})
        body_schema = next(iter(content.values()), {}).get("schema", {})
        while "$ref" in body_schema:
            body_schema = components[body_schema["$ref"].rsplit("/", 1)[1]]
        for name, prop in body_schema.get("properties", {}).items():
            for value in _edge_values(prop, components):
                yield operation.Case(path_parameters=dict(base.path_parameters or {}),
                                     query=dict(base.query or {}), body={**base.body, name: value},
                                     media_type=base.media_type)


def requests_of(operation, components: dict[str, Any], examples: int,
                phases: tuple[str, ...]) -> Iterator[tuple[str, Any, tuple[str, ...]]]:
    """(phase, case, roles) for one operation."""
    if "coverage" in phases:
        for case in operation.schema.iter_coverage_cases(
                operation, generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                generation_config=operation.schema.config.generation_for(operation=operation)):
            yield "coverage", case, tuple(ROLES)
    if "generated" in phases:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for case in _generated(operation, mode, examples):
                yield "generated", case, tuple(ROLES)
                if case.path_parameters:
                    yield "generated", _aimed(case, operation), tuple(ROLES)
    if "edges" in phases:
        for case in _edges(operation, components):
            yield "edges", case, ("admin",)


def _httpx_request(case, headers: dict[str, str]) -> dict[str, Any]:
    kw = case.as_transport_kwargs(base_url="http://strata.test")
    request: dict[str, Any] = {"method": kw["method"], "url": kw["url"], "params": kw.get("params"),
                               "headers": {**(kw.get("headers") or {}), **headers}}
    if "json" in kw:
        request["json"] = kw["json"]
    elif kw.get("data") is not None:
        data = kw["data"]
        request["content" if isinstance(data, (bytes, str)) else "data"] = data
    return request


# --- the run -------------------------------------------------------------------------------


async def fuzz(strata, *, examples: int = FUZZ_EXAMPLES, phases=("coverage", "generated", "edges"),
               coverage_roles: tuple[str, ...] = tuple(ROLES)) -> None:
    """Fuzz every operation of ``strata``'s app (seeded with :func:`seed`); fail with every
    finding, each with its request."""
    spec = strata.app.openapi()
    schema = schemathesis.openapi.from_dict(spec)
    components = spec.get("components", {}).get("schemas", {})
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 38, "every operation of the five services and the platform is fuzzed"
    tokens = {role: strata.token(role, **ids) for role, ids in ROLES.items()}
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=strata.app, raise_app_exceptions=False),
                               base_url="http://strata.test", timeout=30)
    findings: dict[tuple[str, str, int], Finding] = {}
    counts = dict.fromkeys(phases, 0)
    cap = int(MAX_REQUESTS_PER_OPERATION * max(1.0, examples / FUZZ_EXAMPLES))
    capped = []
    random.Random(FUZZ_SEED or 7).shuffle(operations)
    try:
        for operation in operations:
            sent = 0
            for phase, case, roles in requests_of(operation, components, examples, phases):
                if sent >= cap:
                    capped.append(operation.label)
                    break
                for role in roles if phase != "coverage" else coverage_roles:
                    request = _httpx_request(case, tokens[role])
                    response = await client.request(**request)
                    counts[phase] += 1
                    sent += 1
                    problem = None
                    try:
                        case.validate_response(response, checks=CHECKS)
                    except (AssertionError, BaseExceptionGroup) as failure:  # noqa: B036 - schemathesis' groups
                        problem = f"{_titles(failure)}: {response.text[:200]}"
                    if problem:
                        key = (operation.label, problem.split(":")[0], response.status_code)
                        findings.setdefault(key, Finding(phase, operation.label, role, request,
                                                         response.status_code, problem))
    finally:
        await client.aclose()
    print(f"\nfuzzed {len(operations)} operations with {sum(counts.values())} requests {counts}"
          + (f"; stopped at {cap} requests: {sorted(set(capped))}" if capped else ""))
    assert not findings, f"{len(findings)} findings:\n" + "\n".join(str(f) for f in findings.values())


async def test_no_operation_answers_5xx_or_outside_its_documented_schema(fuzz_strata):
    await fuzz(fuzz_strata)


def _titles(failure: BaseException) -> str:
    group = getattr(failure, "exceptions", None)
    if group:
        return "; ".join(sorted({getattr(e, "title", type(e).__name__) for e in group}))
    return getattr(failure, "title", type(failure).__name__)
