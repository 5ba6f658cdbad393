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


async def test_a_client_posting_too_much_to_a_real_server_reads_the_413(tmp_path):
    """Answered while the client was still sending, the 413 reached it as a connection reset:
    over real TCP, an ordinary client must read the problem."""
    import asyncio
    import socket
    import urllib.error
    import urllib.request

    import httpx
    import uvicorn

    from shared.http import create_app
    from shared.runtime.process import Runtime
    from strata.registry import load
    from tests.conftest import single_process_settings

    app = create_app(Runtime(single_process_settings(str(tmp_path)), [load("tiering")]), manage_runtime=False)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            for body in (b" " * 6_000_000, b"[" + b"1," * 3_000_000 + b"1]"):
                response = await client.post("/v1/events", content=body,
                                             headers={"content-type": "application/json"})
                assert response.status_code == 413
                assert response.headers["content-type"] == "application/problem+json"
                assert str(MAX_BODY_BYTES) in response.json()["detail"]
            assert (await client.get("/healthz")).status_code == 200

        def with_the_standard_library() -> tuple[int, dict]:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/events", data=b" " * 20_000_000,
                                             headers={"content-type": "application/json"})
            try:
                urllib.request.urlopen(request, timeout=120)
            except urllib.error.HTTPError as refused:
                return refused.code, json.loads(refused.read())
            raise AssertionError("accepted")

        status, problem = await asyncio.to_thread(with_the_standard_library)
        assert status == 413 and problem["title"] == "Payload too large"
    finally:
        server.should_exit = True
        await serving
        sock.close()
