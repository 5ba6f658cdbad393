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

from shared.contracts import topics
from shared.contracts.cloudevents import BATCH, STRUCTURED, encode_binary, new_event, to_structured
from shared.contracts.events import AccountV1, PostingV1, TieringChangeV1
from shared.contracts.topics import dead_letter_topic
from tests.unit.security.bad_events import (
    INBOUND,
    WHEN,
    account_data,
    catalogue,
    counters,
    good_after,
    judge,
    posting_data,
    publish_bad_then_good,
)

CATALOGUE = catalogue()


def dead_letters(strata, topic: str) -> list:
    parts = strata.runtime.bus.topics.get(dead_letter_topic(topic), [])
    return [r for p in parts for r in p.records]


async def test_every_bad_event_is_dead_lettered_with_its_reason_counted_and_the_stream_goes_on(strata):
    before = counters(strata, CATALOGUE)
    await publish_bad_then_good(strata, CATALOGUE)
    letters = {t: dead_letters(strata, t) for t in INBOUND}
    wrong = await judge(strata, CATALOGUE, letters, before)
    assert not wrong, "\n".join(wrong)

    contradicting = next(b for b in CATALOGUE if b.kind == "account_of_another_customer" and b.topic == topics.POSTINGS)
    owner = contradicting.before[0].customer_id
    owner_tier = await strata.get(f"/v1/customers/{owner}/tier")
    assert owner_tier.json()["aum"] == "0.00", "the owner's account did not move"
    fees = (await strata.get(f"/v1/customers/{contradicting.customer_id}/fees")).json()["items"]
    assert contradicting.data["posting_id"] not in {f["posting_id"] for f in fees}, "a rejected posting is never priced"
    assert len(fees) == 1, "the good posting after it is"


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
        if bad.http_status != 400:  # a 400 refuses the whole body before any event is read
            errors = response.json()["errors"]
            assert [e["index"] for e in errors] == [1] and bad.says in errors[0]["reason"], errors
    assert inbound_ends(strata) == ends, "nothing of a refused request reaches the bus"


async def test_a_large_outflow_on_another_customers_account_raises_no_signal_for_the_claimed_customer(strata):
    cid, owner = "SEC-VIP-1", "SEC-VIP-OWNER"
    theirs = f"{owner}-A"
    await strata.publish(AccountV1.model_validate(account_data(owner, theirs)),
                         PostingV1.model_validate(posting_data(cid, amount="900000.00", balance_after="900000.00")))
    await strata.settle()
    outflow = dict(direction="debit", amount="150000.00", tx_type="transfer_out", counterparty_bank="OTHER",
                   posted_at="2026-11-21T10:00:00+08:00")  # a day after the upgrade: a VIP by then
    bad = PostingV1.model_validate(posting_data(cid, theirs, balance_after="0.00", **outflow))
    good = PostingV1.model_validate(posting_data(cid, account_seq=2, balance_after="750000.00", **outflow))
    await strata.publish(bad, good)
    await strata.settle()
    signals = (await strata.get("/v1/signals", params={"customer_id": cid, "signal_type": "vip_outflow"})).json()
    outflows = {s["evidence"].get("posting_id") for s in signals["items"]}
    assert good.posting_id in outflows, "the same outflow on the customer's own account is signalled"
    assert bad.posting_id not in outflows
    letters = [r for r in dead_letters(strata, topics.POSTINGS) if r.key == cid.encode()]
    assert {dict(r.headers)["strata_dlq_service"] for r in letters} == {b"tiering"}, \
        "tiering refuses it and never passes it on to alerts"


# --- tiering's internal stream --------------------------------------------------------------


async def test_bad_records_on_tierings_stream_are_dead_lettered_by_its_readers_and_the_stream_goes_on(strata):
    cid = "SEC-STREAM-1"
    stream = topics.TIERING_CHANGES
    near_gold = TieringChangeV1(customer_id=cid, fact="balance", at=WHEN, tier="mass", aum="46000.00",
                                aum_before="0.00", business_date="2026-11-20")
    good = new_event(near_gold, "/strata/tiering")
    key, value, headers = encode_binary(good)

    def typed(ce_type: str) -> list[tuple[str, bytes]]:  # under an id of its own
        new = {"ce_type": ce_type.encode(), "ce_id": f"bad-{ce_type}".encode()}
        return [(k, new.get(k, v)) for k, v in headers]

    bad_amount = json.dumps({**json.loads(value), "aum": "12.345"}).encode()
    cases = [
        (b"{not json", typed(good.type), "value is not JSON"),
        (value, typed("strata.aum.v1"), "data.mtd_average_daily_aum"),  # another type: not its data
        (value, typed("strata.tiering.nope.v1"), "unknown ce_type"),
        (bad_amount, typed(good.type), "data.aum"),
    ]
    for bad_value, bad_headers, _ in cases:
        await strata.publish_raw(stream, bad_value, bad_headers, key=key)
    await strata.publish(good)
    await strata.settle()

    letters = [r for r in dead_letters(strata, stream) if r.key == key]
    by = sorted(dict(r.headers)["strata_dlq_service"] for r in letters)
    assert by == sorted([b"alerts", b"assignment", b"pricing"] * len(cases)), \
        "each of the stream's readers dead-letters each"
    letters = [r for r in letters if dict(r.headers)["strata_dlq_service"] == b"alerts"]
    for letter, (bad_value, _, says) in zip(letters, cases):
        assert letter.value == bad_value
        assert says.encode() in dict(letter.headers)["strata_dlq_reason"], dict(letter.headers)
    signals = (await strata.get("/v1/signals", params={"customer_id": cid})).json()["items"]
    assert [s["signal_type"] for s in signals] == ["near_upgrade"], "the good event after them is judged"
