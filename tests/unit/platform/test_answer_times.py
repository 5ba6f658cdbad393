"""Every time in every JSON answer is RFC 3339 with the bank's offset (``+08:00`` by default),
never ``Z``: the main GET endpoints of all five services are walked for them. Dates stay dates."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Iterator

import pytest

from shared.contracts.events import CustomerV1
from tests.conftest import private_strata
from tests.unit.pricing.pricing_feed import Feed

CID, RM, BRANCH = "TZ001", "RM-TZ", "BR-TZ"
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from strings(v, f"{path}[{i}]")


@pytest.fixture(scope="module")
async def strata():
    async with private_strata() as harness:
        body = {"name": "钱经理", "branch_id": BRANCH, "level": "L1", "capacity": 100}
        assert (await harness.client.put(f"/v1/rms/{RM}", json=body,
                                         headers=harness.token("admin"))).status_code == 200
        feed = Feed(CID, branch_id=BRANCH)
        await harness.publish(
            CustomerV1(customer_id=CID, name="王芳", home_branch_id=BRANCH, birth_date="1988-07-15",
                       id_number="360102198807150023", phone="13800000000",
                       updated_at="2026-11-01T09:00:00+08:00"),
            feed.salary("100.00", at="2026-11-19T09:00:00+08:00"),   # the first AUM places the customer
            feed.salary("60000.00", at="2026-11-20T09:00:00+08:00"),  # this one is an upgrade: a signal
            feed.interbank_atm(at="2026-11-21T09:00:00+08:00"))
        await harness.settle()
        response = await harness.post(f"/v1/customers/{CID}/follow-ups",
                                      {"channel": "phone", "outcome": "interested",
                                       "contacted_at": "2026-11-21T02:00:00Z"})
        assert response.status_code == 201, response.text
        await harness.settle()
        yield harness


async def test_every_time_in_the_main_answers_carries_the_bank_offset(strata):
    signals = (await strata.get("/v1/signals", params={"customer_id": CID})).json()["items"]
    assert signals, "the seed raises a signal"
    paths = [
        "/v1/clock", f"/v1/customers/{CID}", f"/v1/customers/{CID}/tier", f"/v1/customers/{CID}/fees",
        f"/v1/customers/{CID}/points", f"/v1/customers/{CID}/points/ledger",
        f"/v1/customers/{CID}/eligible-products", f"/v1/customers/{CID}/assignments",
        f"/v1/customers/{CID}/follow-ups", "/v1/signals", f"/v1/signals/{signals[0]['id']}", "/v1/rms",
        f"/v1/rms/{RM}", f"/v1/rms/{RM}/worklist", f"/v1/rms/{RM}/assignments", "/v1/segments",
        "/v1/segments/core-value-band/members", f"/v1/branches/{BRANCH}/report", "/v1/audit",
        "/v1/pricing/schedule", "/readyz",
    ]
    times: dict[str, str] = {}
    for path in paths:
        response = await strata.get(path)
        assert response.status_code == 200, f"{path}: {response.text}"
        for where, text in strings(response.json()):
            if TIME.match(text):
                times[f"{path} {where}"] = text
            elif DATE.match(text):
                datetime.strptime(text, "%Y-%m-%d")
    wrong = {k: v for k, v in times.items() if not v.endswith("+08:00")}
    assert not wrong, f"times not in the bank's zone: {wrong}"
    assert len({k.split(" ")[0] for k in times}) >= 12, f"too few answers carried times: {sorted(times)}"
    follow_up = (await strata.get(f"/v1/customers/{CID}/follow-ups")).json()["items"][0]
    assert follow_up["contacted_at"] == "2026-11-21T10:00:00+08:00"


async def test_an_export_writes_times_in_the_bank_zone_too(strata):
    response = await strata.client.get("/v1/segments/core-value-band/members", params={"format": "csv"},
                                       headers=strata.token("admin"))
    assert response.status_code == 200
    rows = response.text.splitlines()
    column = rows[0].split(",").index("last_contact")
    mine = next(r.split(",") for r in rows[1:] if r.startswith(CID))
    assert mine[column] == "2026-11-21T10:00:00+08:00"


async def test_times_follow_the_configured_zone():
    async with private_strata(["tiering"], timezone="Europe/London") as harness:
        body = (await harness.get("/v1/clock")).json()
        assert body["zone"] == "Europe/London" and body["now"][-6:] in ("+00:00", "+01:00")
