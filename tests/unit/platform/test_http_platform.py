"""What every service's HTTP app serves: health, readiness, metrics, OpenAPI, event ingestion."""

from __future__ import annotations

import json

import pytest

from shared.contracts.cloudevents import BATCH, STRUCTURED, new_event, to_structured
from shared.contracts.events import PostingV1
from tests.conftest import private_strata


@pytest.fixture(scope="module")
async def strata():
    async with private_strata(["tiering"]) as harness:
        yield harness


def posting(n: int, **changes) -> dict:
    p = PostingV1(posting_id=f"HP{n}", customer_id=f"HC{n}", account_id=f"HA{n}", account_seq=1,
                  product_type="demand_deposit", direction="credit", amount="60000.00",
                  balance_after="60000.00", currency="CNY", tx_type="salary", channel="batch",
                  branch_id="B", posted_at="2026-11-10T10:00:00+08:00")
    body = to_structured(new_event(p, "core"))
    body["data"].update(changes)
    return body


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json"])
async def test_health_readiness_metrics_and_openapi_need_no_token(strata, path):
    response = await strata.client.get(path)
    assert response.status_code == 200


async def test_readyz_reports_the_bus_and_database(strata):
    body = (await strata.client.get("/readyz")).json()
    assert body["checks"] == {"database": True, "bus": True, "consumers": True}


async def test_metrics_expose_the_runtime_counters(strata):
    text = (await strata.client.get("/metrics")).text
    for name in ("strata_events_consumed_total", "strata_handler_duration_seconds",
                 "strata_outbox_backlog", "strata_events_dead_lettered_total"):
        assert name in text


async def test_other_paths_refuse_requests_without_a_token_with_problem_json(strata):
    response = await strata.client.post("/v1/events", json=posting(1))
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Unauthorized"


async def test_structured_event_over_http_is_published_and_processed(strata):
    response = await strata.client.post("/v1/events", content=json.dumps(posting(2)),
                                        headers={**strata.token("admin"), "content-type": STRUCTURED})
    assert response.status_code == 202, response.text
    await strata.settle()
    assert (await strata.get("/v1/customers/HC2/tier")).json()["tier"] == "gold"


async def test_batch_with_one_bad_event_is_refused_whole_and_names_the_field(strata):
    batch = [posting(3), posting(4, amount="12.345"), posting(5)]
    response = await strata.client.post("/v1/events", content=json.dumps(batch),
                                        headers={**strata.token("admin"), "content-type": BATCH})
    assert response.status_code == 422
    problem = response.json()
    assert problem["errors"][0]["index"] == 1 and "data.amount" in problem["errors"][0]["reason"]
    await strata.settle()
    assert (await strata.get("/v1/customers/HC3/tier")).status_code == 404, "nothing was published"


async def test_events_strata_emits_cannot_be_posted(strata):
    body = posting(6)
    body["type"] = "strata.tier_changed.v1"
    response = await strata.client.post("/v1/events", content=json.dumps(body),
                                        headers={**strata.token("admin"), "content-type": STRUCTURED})
    assert response.status_code == 422


async def test_only_admins_post_events(strata):
    response = await strata.client.post("/v1/events", content=json.dumps(posting(7)),
                                        headers={**strata.token("analyst"), "content-type": STRUCTURED})
    assert response.status_code == 403


async def test_malformed_json_is_a_400_problem(strata):
    response = await strata.client.post("/v1/events", content=b"{nope",
                                        headers={**strata.token("admin"), "content-type": STRUCTURED})
    assert response.status_code == 400 and response.json()["title"] == "Malformed JSON"


def _requests(route: str, status: str, method: str = "GET") -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("strata_http_requests_total", {
        "service": "tiering", "method": method, "route": route, "status": status}) or 0.0


async def test_requests_are_counted_by_route_template_and_status_class_never_by_raw_path(strata):
    from prometheus_client import REGISTRY

    template = "/v1/customers/{customer_id}/tier"
    before_ok, before_missing = _requests(template, "2xx"), _requests(template, "4xx")
    timed = REGISTRY.get_sample_value("strata_http_request_duration_seconds_count",
                                      {"service": "tiering", "method": "GET", "route": template}) or 0.0
    await strata.client.post("/v1/events", content=json.dumps(posting(3)),
                             headers={**strata.token("admin"), "content-type": STRUCTURED})
    await strata.settle()
    assert (await strata.get("/v1/customers/HC3/tier")).status_code == 200
    assert (await strata.get("/v1/customers/NOBODY-77/tier")).status_code == 404
    assert (await strata.get("/v1/no/such/path/HC3")).status_code == 404
    assert _requests(template, "2xx") == before_ok + 1
    assert _requests(template, "4xx") == before_missing + 1
    assert _requests("unmatched", "4xx") >= 1
    assert REGISTRY.get_sample_value("strata_http_request_duration_seconds_count",
                                     {"service": "tiering", "method": "GET", "route": template}) == timed + 2
    text = (await strata.client.get("/metrics")).text
    exposed = [line for line in text.splitlines() if line.startswith("strata_http_request")]
    assert exposed and not [line for line in exposed if "HC3" in line or "NOBODY" in line]


async def test_a_request_refused_before_routing_is_counted_under_its_route(strata):
    before = _requests("/v1/events", "4xx", "POST")
    response = await strata.client.post("/v1/events", content=b"{\"a\": \"\\u0000\"}",
                                        headers={**strata.token("admin"), "content-type": STRUCTURED})
    assert response.status_code == 400
    assert _requests("/v1/events", "4xx", "POST") == before + 1


async def test_docs_are_served_from_vendored_swagger_ui_without_a_cdn(strata):
    page = await strata.client.get("/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    assert "<script>" not in page.text  # only external scripts: the page runs under a CSP
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css", "/docs/assets/docs.js"):
        assert f'"{asset}"' in page.text
        response = await strata.client.get(asset)
        assert response.status_code == 200 and len(response.content) > 100, asset
