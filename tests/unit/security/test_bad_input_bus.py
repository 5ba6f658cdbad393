"""Bad events on every inbound topic, on the single-process harness: each lands on
``<topic>.dlq`` with a reason that names the problem, is counted, and the good event published
right after it (same customer, same partition) is applied. The same bad events over
``POST /v1/events`` are refused with a problem naming the field, and nothing reaches the bus.

What "unknown customer or account" means is pinned in ``tests/integration/test_bad_input_kafka.py``'s
docstring; here: a posting for an account never registered is applied, one contradicting the
registered account is rejected.
"""

from __future__ import annotations

import json

import pytest
from prometheus_client import REGISTRY

from shared.bus.base import Message
from shared.contracts import topics
from shared.contracts.cloudevents import BATCH, STRUCTURED, to_structured
from shared.contracts.events import AccountV1, PostingV1
from shared.contracts.topics import dead_letter_topic
from tests.unit.security.bad_events import (
    GOOD_BALANCE,
    INBOUND,
    BadEvent,
    account_data,
    catalogue,
    dead_letter_services,
    good_after,
    posting_data,
)

CATALOGUE = catalogue()


def readers(strata) -> dict[str, list[str]]:
    return {t: sorted(n for n, loop in strata.runtime.loops.items() if t in loop.topics) for t in INBOUND}


def dead_letters(strata, topic: str) -> list:
    parts = strata.runtime.bus.topics.get(dead_letter_topic(topic), [])
    return [r for p in parts for r in p.records]


def dead_lettered_total(service: str, topic: str, category: str) -> float:
    return REGISTRY.get_sample_value("strata_events_dead_lettered_total",
                                     {"service": service, "topic": topic, "reason": category}) or 0.0


async def publish_bad_then_good(strata, bad_events: list[BadEvent]) -> None:
    before = [e for bad in bad_events for e in bad.before]
    if before:
        await strata.publish(*before)
        await strata.settle()
    messages = []
    for bad in bad_events:
        value, headers = bad.record()
        messages.append(Message(bad.topic, bad.customer_id.encode(), value, headers))
        good = strata.event(good_after(bad.topic, bad.customer_id))
        messages.append(Message(good.topic, *_binary(good)))
    await strata.runtime.bus.publish(messages)
    await strata.settle()


def _binary(event):
    from shared.contracts.cloudevents import encode_binary

    return encode_binary(event)


async def good_event_applied(strata, bad: BadEvent) -> bool:
    cid = bad.customer_id
    if bad.topic in (topics.POSTINGS, topics.BALANCES):
        response = await strata.get(f"/v1/customers/{cid}/tier")
        return response.status_code == 200 and response.json()["aum"] == GOOD_BALANCE
    response = await strata.get(f"/v1/customers/{cid}", role="analyst")
    if response.status_code != 200:
        return False
    body = response.json()
    if bad.topic == topics.CUSTOMERS:
        return body["profile"]["name"] == "after the bad one"
    return [h["account_id"] for h in body["holdings"]] == [f"{cid}-OK"]


async def test_every_bad_event_is_dead_lettered_with_its_reason_counted_and_the_stream_goes_on(strata):
    who_reads = readers(strata)
    expected = {bad.id: dead_letter_services(bad, who_reads) for bad in CATALOGUE}
    counted_before = {(s, bad.topic, bad.category): dead_lettered_total(s, bad.topic, bad.category)
                      for bad in CATALOGUE for s in expected[bad.id]}

    await publish_bad_then_good(strata, CATALOGUE)

    wrong, counts = [], {}
    for bad in CATALOGUE:
        letters = [r for r in dead_letters(strata, bad.topic) if r.key == bad.customer_id.encode()]
        services = {dict(r.headers)["strata_dlq_service"].decode() for r in letters}
        if services != expected[bad.id] or len(letters) != len(services):
            wrong.append(f"{bad.id}: dead-lettered by {sorted(services)} ({len(letters)} letters), "
                         f"expected once by each of {sorted(expected[bad.id])}")
        for r in letters:
            headers = dict(r.headers)
            reason = headers["strata_dlq_reason"].decode()
            if bad.says not in reason:
                wrong.append(f"{bad.id}: reason {reason[:160]!r} does not say {bad.says!r}")
            if headers["strata_dlq_category"].decode() != bad.category:
                wrong.append(f"{bad.id}: category {headers['strata_dlq_category']!r}, not {bad.category}")
            if r.value != bad.record()[0] and bad.raw is None:
                wrong.append(f"{bad.id}: the dead letter does not carry the original value")
            key = (headers["strata_dlq_service"].decode(), bad.topic, bad.category)
            counts[key] = counts.get(key, 0) + 1
        if not await good_event_applied(strata, bad):
            wrong.append(f"{bad.id}: the good event after it was not applied")
    for key, n in counts.items():
        if dead_lettered_total(*key) - counted_before.get(key, 0.0) < n:
            wrong.append(f"strata_events_dead_lettered_total{key} grew by less than {n}")
    assert not wrong, "\n".join(wrong)


async def test_a_contradicting_posting_changes_nothing_for_the_accounts_owner(strata):
    bad = next(b for b in CATALOGUE if b.kind == "account_of_another_customer" and b.topic == topics.POSTINGS)
    owner = bad.before[0].customer_id
    response = await strata.get(f"/v1/customers/{owner}/tier")
    assert response.status_code == 404 or response.json()["aum"] == "0.00"
    fees = await strata.get(f"/v1/customers/{bad.customer_id}/fees")
    assert bad.data["posting_id"] not in {f["posting_id"] for f in fees.json()["items"]}, \
        "a rejected posting is not passed on to pricing"


async def test_a_posting_for_an_account_not_yet_registered_is_applied_and_a_matching_registration_later_too(strata):
    cid = "SEC-UNORDERED-1"
    posting = PostingV1.model_validate(posting_data(cid, amount="70000.00", balance_after="70000.00"))
    await strata.publish(posting)
    await strata.settle()
    assert (await strata.get(f"/v1/customers/{cid}/tier")).json()["aum"] == "70000.00"
    await strata.publish(AccountV1.model_validate(account_data(cid)))
    await strata.settle()
    letters = [r for t in (topics.ACCOUNTS, topics.POSTINGS) for r in dead_letters(strata, t) if r.key == cid.encode()]
    assert letters == [], "the registration that arrived after the posting agrees with it"
    assert (await strata.get(f"/v1/customers/{cid}/tier")).json()["tier"] == "gold"


async def test_a_registration_contradicting_what_postings_established_is_dead_lettered(strata):
    cid = "SEC-UNORDERED-2"
    await strata.publish(PostingV1.model_validate(posting_data(cid)))
    await strata.settle()
    await strata.publish(AccountV1.model_validate(account_data(cid, product_type="fund")))
    await strata.settle()
    letters = [r for r in dead_letters(strata, topics.ACCOUNTS) if r.key == cid.encode()]
    assert {dict(r.headers)["strata_dlq_service"] for r in letters} >= {b"tiering"}
    assert b"is a demand_deposit, not a fund" in dict(letters[0].headers)["strata_dlq_reason"]


# --- the same bad events over HTTP ----------------------------------------------------------


HTTP_CASES = [b for b in CATALOGUE if b.over_http]


def inbound_ends(strata) -> dict[str, list[int]]:
    return {t: strata.runtime.bus.end_offsets(t) for t in INBOUND}


def good_structured(strata) -> dict:
    return to_structured(strata.event(good_after(topics.POSTINGS, "SEC-HTTP-GOOD")))


@pytest.mark.parametrize("bad", HTTP_CASES, ids=[b.id for b in HTTP_CASES])
async def test_a_bad_event_posted_over_http_is_refused_naming_the_problem_and_nothing_is_published(strata, bad):
    ends = inbound_ends(strata)
    response = await strata.client.post("/v1/events", content=bad.http_body(),
                                        headers={**strata.token("admin"), "content-type": STRUCTURED})
    assert response.status_code == bad.http_status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (bad.http_says or bad.says) in f"{problem['title']} {problem.get('detail', '')}", problem
    if bad.structured() is not None:
        batch = [good_structured(strata), bad.structured()]
        response = await strata.client.post("/v1/events", content=json.dumps(batch),
                                            headers={**strata.token("admin"), "content-type": BATCH})
        assert response.status_code == bad.http_status, response.text
        errors = response.json()["errors"]
        assert [e["index"] for e in errors] == [1] and bad.says in errors[0]["reason"], errors
    assert inbound_ends(strata) == ends, "nothing of a refused request reaches the bus"


async def test_a_large_outflow_on_another_customers_account_raises_no_signal_for_the_claimed_customer(strata):
    cid, owner = "SEC-VIP-1", "SEC-VIP-OWNER"
    theirs = f"{owner}-A"
    await strata.publish(AccountV1.model_validate(account_data(owner, theirs)),
                         PostingV1.model_validate(posting_data(cid, amount="900000.00", balance_after="900000.00")))
    await strata.settle()
    outflow = dict(direction="debit", amount="150000.00", tx_type="transfer_out", counterparty_bank="OTHER")
    bad = PostingV1.model_validate(posting_data(cid, theirs, balance_after="0.00", **outflow))
    good = PostingV1.model_validate(posting_data(cid, account_seq=2, balance_after="750000.00", **outflow))
    await strata.publish(bad, good)
    await strata.settle()
    signals = (await strata.get("/v1/signals", params={"customer_id": cid, "signal_type": "vip_outflow"})).json()
    outflows = {s["evidence"].get("posting_id") for s in signals["items"]}
    assert good.posting_id in outflows, "the same outflow on the customer's own account is signalled"
    assert bad.posting_id not in outflows
    letters = [r for r in dead_letters(strata, topics.POSTINGS) if r.key == cid.encode()]
    assert {dict(r.headers)["strata_dlq_service"] for r in letters} == {b"tiering", b"alerts"}
