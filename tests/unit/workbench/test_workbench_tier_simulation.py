"""The pricing page over HTTP (no browser): head office simulates a candidate tier policy and
follows it to its answer; a candidate that is not a policy is refused naming the rule; anyone
on the page can ask why a posting's fee is what it is."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from strata.single import add_workbench
from tests.conftest import private_strata
from tests.unit.workbench.test_workbench_http import BASE, csrf_of, signed_in


@pytest.fixture(scope="module")
async def analyst():
    async with private_strata() as strata:
        inner = add_workbench(strata.app, strata.settings)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=strata.app), base_url=BASE)
        try:
            await signed_in(client, strata.token("analyst")["Authorization"].split()[1])
            yield client
        finally:
            await client.aclose()
            await inner.aclose()


def form_of(page: str, month: str, **changes: str) -> dict:
    fields = dict(re.findall(r'name="((?:floor|months):[a-z_]+)" value="([^"]*)"', page))
    return {"csrf": csrf_of(page), "from": month, "to": month, "household_aggregation": "", **fields, **changes}


async def test_head_office_simulates_a_candidate_and_follows_it_to_the_answer(analyst):
    page = (await analyst.get("/app/pricing")).text
    assert 'id="tier-simulate"' in page and 'name="floor:gold"' in page
    month = re.search(r'id="t-from" name="from" value="([0-9-]+)"', page).group(1)
    started = await analyst.post("/app/pricing/tier-simulate", data=form_of(page, month, **{"floor:gold": "40000.00"}),
                                 headers={"HX-Request": "true"})
    assert started.status_code == 200 and 'id="tier-simulation"' in started.text, started.text
    simulation_id = re.search(r'/pricing/tier-simulations/([0-9a-f-]{36})', started.text).group(1)
    for _ in range(400):
        shown = (await analyst.get(f"/app/pricing/tier-simulations/{simulation_id}")).text
        if 'data-state="done"' in shown:
            break
        assert 'data-state="queued"' in shown or 'data-state="running"' in shown, shown
        await asyncio.sleep(0.05)
    assert 'data-field="migration"' in shown and 'data-field="rms-needed"' in shown
    csv = await analyst.get(f"/app/pricing/tier-simulations/{simulation_id}/answer.csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text.startswith("section,")


async def test_a_candidate_that_is_not_a_policy_is_refused_on_the_page_naming_the_rule(analyst):
    page = (await analyst.get("/app/pricing")).text
    month = re.search(r'id="t-from" name="from" value="([0-9-]+)"', page).group(1)
    refused = await analyst.post("/app/pricing/tier-simulate", data=form_of(page, month, **{"floor:gold": "999999999.00"}),
                                 headers={"HX-Request": "true"})
    assert 'id="tier-simulate-error"' in refused.text and "floors must increase" in refused.text
    assert 'value="999999999.00"' in refused.text, "the form keeps what was typed"


async def test_the_pricing_page_asks_why_a_posting_was_charged_and_says_when_it_is_unknown(analyst):
    page = (await analyst.get("/app/pricing")).text
    assert 'id="fee-why"' in page
    answer = await analyst.get("/app/pricing/explain", params={"customer_id": "C-NONE", "posting_id": "P-NONE"})
    assert answer.status_code == 200 and 'role="alert"' in answer.text
