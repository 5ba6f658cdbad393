"""The workbench over HTTP (no browser): sign-in cookies, CSRF, the Content-Security-Policy,
the development sign-in only where it belongs, and the API's answers carried to the page."""

from __future__ import annotations

import re

import httpx
import pytest

from shared.settings import Settings
from strata.single import add_workbench
from strata.workbench.app import standalone
from tests.conftest import private_strata

BASE = "http://workbench.test"


@pytest.fixture(scope="module")
async def wb():
    """A private single-process Strata with the workbench mounted, as ``strata run`` mounts it."""
    async with private_strata() as strata:
        inner = add_workbench(strata.app, strata.settings)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=strata.app), base_url=BASE)
        try:
            yield strata, client
        finally:
            await client.aclose()
            await inner.aclose()


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


async def signed_in(client: httpx.AsyncClient, token: str) -> httpx.AsyncClient:
    page = await client.get("/app/signin")
    response = await client.post("/app/signin", data={"csrf": csrf_of(page.text), "token": token, "next": ""})
    assert response.status_code == 303, response.text
    return response


async def test_every_workbench_response_carries_a_strict_content_security_policy(wb):
    _, client = wb
    for path in ("/", "/app/signin", "/app/static/workbench.js", "/app/home"):
        policy = (await client.get(path)).headers["content-security-policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy, path
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, path


async def test_the_front_page_leads_to_sign_in_and_api_paths_keep_their_answers(wb):
    strata, client = wb
    assert (await client.get("/", follow_redirects=True)).url.path == "/app/signin"
    unknown = await client.get("/v1/no-such-route")
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
    assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_sign_in_keeps_the_token_in_an_httponly_strict_cookie_ending_with_the_token(wb):
    strata, client = wb
    token = strata.token("analyst")["Authorization"].split()[1]
    client.cookies.clear()
    response = await signed_in(client, token)
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("strata_token="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    max_age = int(re.search(r"Max-Age=(\d+)", cookie).group(1))
    assert 0 < max_age <= strata.settings.auth.token_ttl_minutes * 60
    assert response.headers["location"] == "/app/branch"


async def test_a_token_the_api_refuses_is_not_kept_and_the_page_says_why(wb):
    strata, client = wb
    client.cookies.clear()
    from shared.auth import issue_token

    forged = issue_token("another-key-entirely-but-as-long-as-the-real-one", "admin")
    page = await client.get("/app/signin")
    response = await client.post("/app/signin", data={"csrf": csrf_of(page.text), "token": forged})
    assert response.status_code == 401
    assert "strata_token" not in response.headers.get("set-cookie", "")
    assert "令牌无效" in response.text and forged in response.text, "the message, and what was typed, in place"


async def test_a_form_without_the_csrf_token_is_refused(wb):
    strata, client = wb
    client.cookies.clear()
    await signed_in(client, strata.token("admin")["Authorization"].split()[1])
    refused = await client.post("/app/signout", data={})
    assert refused.status_code == 403
    forged = await client.post("/app/signout", data={"csrf": "guessed"})
    assert forged.status_code == 403
    assert (await client.get("/app/branch")).status_code == 200, "still signed in"


async def test_strata_run_offers_the_development_sign_in_and_it_mints_a_working_token(wb):
    strata, client = wb
    client.cookies.clear()
    page = await client.get("/app/signin")
    assert 'action="/app/signin/dev"' in page.text
    response = await client.post("/app/signin/dev", data={"csrf": csrf_of(page.text), "role": "analyst"})
    assert response.status_code == 303 and response.headers["location"] == "/app/branch"
    assert (await client.get("/app/segments")).status_code == 200


async def test_the_distributed_workbench_has_no_development_sign_in():
    app = standalone(Settings(workbench={"api_url": "http://127.0.0.1:9"}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        page = await client.get("/app/signin")
        assert page.status_code == 200 and "/app/signin/dev" not in page.text
        refused = await client.post("/app/signin/dev", data={"csrf": csrf_of(page.text), "role": "admin"})
        assert refused.status_code == 404
        assert (await client.get("/readyz")).status_code == 503, "no API behind it"


async def test_an_rm_opening_another_rms_customer_gets_the_apis_refusal_in_their_language(wb):
    strata, client = wb
    client.cookies.clear()
    await signed_in(client, strata.token("rm", rm_id="RM-NOBODY")["Authorization"].split()[1])
    page = await client.get("/app/customers/C-NOT-MINE")
    assert page.status_code == 403 and "不在您的名单中" in page.text


async def test_every_button_on_the_pricing_page_has_its_own_name(wb):
    """A screen reader lists a page's buttons by name: the fee what-if and the tier-policy
    simulation must not both be called the same."""
    strata, client = wb
    client.cookies.clear()
    await signed_in(client, strata.token("analyst")["Authorization"].split()[1])
    page = await client.get("/app/pricing")
    assert page.status_code == 200, page.text
    names = [re.sub(r"\s+", " ", n).strip() for n in re.findall(r"<button[^>]*>(.*?)</button>", page.text, re.S)]
    assert len(names) >= 2 and len(names) == len(set(names)), names
