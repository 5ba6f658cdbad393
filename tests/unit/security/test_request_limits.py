"""What every route refuses before any handler runs: a NUL character anywhere in the request
(PostgreSQL cannot hold one, so it would end as a 500 at the first query) and a body larger
than the limit (refused as it arrives, not after it has filled the memory)."""

from __future__ import annotations

import json

import pytest

from shared.http import MAX_BODY_BYTES


@pytest.mark.parametrize("method,url,body", [
    ("GET", "/v1/rms?branch_id=%00", None),
    ("GET", "/v1/customers/C%001", None),
    ("PUT", "/v1/rms/RM-NUL", json.dumps({"name": "a\u0000b", "branch_id": "B", "level": "L1"})),
    ("POST", "/v1/events", b'{"specversion": "1.0", "id": "a\x00b"}'),
])
async def test_a_nul_character_anywhere_is_a_400_problem(strata, method, url, body):
    response = await strata.client.request(method, url, content=body, headers={
        **strata.token("admin"), "content-type": "text/plain" if url == "/v1/events" else "application/json"})
    assert response.status_code == 400 and response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "NUL character"


async def test_an_escaped_backslash_before_u0000_is_text_not_a_nul(strata):
    template = {"name": "literal-backslash-u", "description": "a \\u0000 b",
                "filter": {"field": "branch", "op": "eq", "value": "BR-X"}}
    response = await strata.post("/v1/segments", template, role="analyst")
    assert response.status_code == 201, response.text
    assert response.json()["description"] == "a \\u0000 b"


async def test_a_body_over_the_limit_is_refused_as_it_arrives(strata):
    async def body():
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b" " * 65536

    response = await strata.client.post("/v1/events", content=body(),
                                        headers={**strata.token("admin"), "content-type": "application/json"})
    assert response.status_code == 413 and response.headers["content-type"] == "application/problem+json"
