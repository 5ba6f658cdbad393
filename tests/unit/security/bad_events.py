"""Every kind of bad event that can reach an inbound topic, each with what the dead-letter
reason (``strata_dlq_reason``) and the HTTP problem must name. The unit tests (single-process
harness) and the Kafka tests replay the same catalogue.

Each bad event is about its own customer (its Kafka key), so that its dead letters are found by
key and the good event published right after it, for the same customer and so on the same
partition, shows that the stream went on.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from prometheus_client import REGISTRY
from pydantic import BaseModel

from shared.bus.base import Message
from shared.contracts import topics
from shared.contracts.cloudevents import MAX_EVENT_BYTES, encode_binary
from shared.contracts.events import AccountV1, BalanceV1, CustomerV1, PostingV1

BRANCH = "BR-SEC"
WHEN = "2026-11-20T10:00:00+08:00"
GOOD_BALANCE = "1000.00"
ABOVE_THE_LIMIT = "1000000000000.01"
"""One cent above ``limits.max_amount`` (10^12 CNY by default)."""

CE_TYPES = {
    topics.CUSTOMERS: "bank.customer.v1",
    topics.ACCOUNTS: "bank.account.v1",
    topics.POSTINGS: "bank.posting.v1",
    topics.BALANCES: "bank.balance.v1",
}
INBOUND = tuple(CE_TYPES)


# --- good data, as core banking sends it -----------------------------------------------------


def customer_data(cid: str, **over: Any) -> dict[str, Any]:
    return {"customer_id": cid, "name": "王芳", "id_number": "360102198807150023", "phone": "13800000000",
            "birth_date": "1988-07-15", "gender": "F", "home_branch_id": BRANCH, "risk_level": "C3",
            "tags": ["travel"], "auto_points_offset": False, "source": "core", "updated_at": WHEN, **over}


def account_data(cid: str, aid: str | None = None, **over: Any) -> dict[str, Any]:
    return {"account_id": aid or f"{cid}-A", "customer_id": cid, "branch_id": BRANCH,
            "product_type": "demand_deposit", "product_code": "DD-1", "status": "open",
            "opened_on": "2025-12-01", "maturity_date": None, "card_expiry": None, **over}


def posting_data(cid: str, aid: str | None = None, **over: Any) -> dict[str, Any]:
    return {"posting_id": f"P-{uuid.uuid4().hex[:12]}", "customer_id": cid, "account_id": aid or f"{cid}-A",
            "account_seq": 1, "product_type": "demand_deposit", "direction": "credit", "amount": "500.00",
            "balance_after": "500.00", "currency": "CNY", "tx_type": "salary", "channel": "batch",
            "counterparty_bank": None, "cross_region": False, "branch_id": BRANCH, "posted_at": WHEN, **over}


def balance_data(cid: str, aid: str | None = None, **over: Any) -> dict[str, Any]:
    return {"customer_id": cid, "account_id": aid or f"{cid}-A", "product_type": "demand_deposit",
            "balance": "500.00", "currency": "CNY", "as_of": WHEN, **over}


GOOD_DATA: dict[str, Callable[..., dict[str, Any]]] = {
    topics.CUSTOMERS: customer_data,
    topics.ACCOUNTS: account_data,
    topics.POSTINGS: posting_data,
    topics.BALANCES: balance_data,
}


def good_after(topic: str, cid: str) -> BaseModel:
    """The good event published right after a bad one: for the same customer, with an outcome
    that can be read back (a name, an account, an AUM of exactly ``GOOD_BALANCE``)."""
    ok = f"{cid}-OK"
    if topic == topics.CUSTOMERS:
        return CustomerV1.model_validate(customer_data(cid, name="after the bad one"))
    if topic == topics.ACCOUNTS:
        return AccountV1.model_validate(account_data(cid, ok))
    if topic == topics.POSTINGS:
        return PostingV1.model_validate(posting_data(cid, ok, amount=GOOD_BALANCE, balance_after=GOOD_BALANCE))
    return BalanceV1.model_validate(balance_data(cid, ok, balance=GOOD_BALANCE))


# --- the bad events ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BadEvent:
    topic: str
    kind: str
    customer_id: str
    says: str
    """A part of the dead-letter reason (and of the HTTP problem) that names the problem."""
    attributes: dict[str, str] | None
    """CloudEvents attributes; None when the record is not a CloudEvent at all."""
    data: Any = None
    raw: bytes | None = None
    """The record's value as is (not JSON, or too large), instead of ``data``."""
    rejected_by: frozenset[str] = frozenset()
    """Services whose handler refuses the event given what they know; empty: the event is invalid
    in itself and every service reading the topic dead-letters it."""
    before: tuple[BaseModel, ...] = ()
    """Events applied first (the account registration a posting contradicts)."""
    over_http: bool = True
    """False for what only a topic can get wrong (a type on the wrong topic) or only state can
    refuse (an account of another customer): POST /v1/events validates the contract, the
    consumers validate against what they know."""
    http_status: int = 422
    http_says: str | None = None
    extra_headers: tuple[tuple[str, bytes], ...] = ()
    """Headers beyond the CloudEvents ones (a tracing header, say), which the dead letter keeps
    byte for byte."""

    @property
    def id(self) -> str:
        return f"{self.topic}:{self.kind}"

    @property
    def category(self) -> str:
        if self.rejected_by:
            return "rejected"
        return "wrong_topic" if self.kind == "type_of_another_topic" else "invalid"

    def record(self) -> tuple[bytes, list[tuple[str, bytes]]]:
        """Value and headers on Kafka (binary mode, as core banking produces)."""
        value = self.raw if self.raw is not None else json.dumps(self.data, ensure_ascii=False).encode()
        if self.attributes is None:
            return value, []
        headers = [(f"ce_{k}", v.encode()) for k, v in self.attributes.items()]
        return value, headers + [("content-type", b"application/json"), *self.extra_headers]

    def structured(self) -> Any:
        """The structured-mode body for POST /v1/events (None for a raw value)."""
        if self.raw is not None:
            return None
        if self.attributes is None:
            return self.data
        return {**self.attributes, "datacontenttype": "application/json", "data": self.data}

    def http_body(self) -> bytes:
        body = self.structured()
        return self.raw if body is None else json.dumps(body, ensure_ascii=False).encode()


def attributes(topic: str, cid: str, **over: str | None) -> dict[str, str]:
    attrs = {"specversion": "1.0", "id": f"bad-{uuid.uuid4().hex}", "source": "core-banking",
             "type": CE_TYPES[topic], "subject": cid, "time": WHEN}
    attrs.update(over)
    return {k: v for k, v in attrs.items() if v is not None}


class _Catalogue:
    def __init__(self, run: str) -> None:
        self.run = run
        self.n = 0
        self.items: list[BadEvent] = []

    def customer(self) -> str:
        self.n += 1
        return f"{self.run}-{self.n:03d}"

    def add(self, topic: str, kind: str, says: str, *, data: Callable[[str], Any] | None = None,
            attrs: dict[str, str | None] | None = None, **extra: Any) -> None:
        cid = self.customer()
        payload = (data or GOOD_DATA[topic])(cid)
        if "attributes" not in extra:
            extra["attributes"] = attributes(topic, cid, **(attrs or {}))
        self.items.append(BadEvent(topic, kind, cid, says, data=payload, **extra))


def _without(payload: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != name}


REQUIRED_FIELD = {topics.CUSTOMERS: "updated_at", topics.ACCOUNTS: "product_type",
                  topics.POSTINGS: "amount", topics.BALANCES: "as_of"}
WRONG_TYPE = {  # field, a value of the wrong JSON type
    topics.CUSTOMERS: ("auto_points_offset", "yes"),
    topics.ACCOUNTS: ("opened_on", 20251201),
    topics.POSTINGS: ("account_seq", "17"),
    topics.BALANCES: ("balance", 500),
}
NAIVE_TIME = {topics.CUSTOMERS: "updated_at", topics.POSTINGS: "posted_at", topics.BALANCES: "as_of"}
OUT_OF_RANGE = {  # field, value, reason
    topics.CUSTOMERS: ("birth_date", "1850-01-01", "date out of range"),
    topics.ACCOUNTS: ("opened_on", "2300-01-01", "date out of range"),
    topics.POSTINGS: ("posted_at", "1999-12-31T23:00:00+00:00", "time out of range"),
    topics.BALANCES: ("as_of", "2200-01-01T00:00:00Z", "time out of range"),
}


def catalogue(run: str | None = None) -> list[BadEvent]:
    """Every kind of bad event on every inbound topic, each for a new customer id."""
    c = _Catalogue(run or f"SEC{uuid.uuid4().hex[:6].upper()}")
    for topic in INBOUND:
        good = GOOD_DATA[topic]
        c.add(topic, "not_json", "not JSON", raw=b'{"customer_id": "C1", "name": ', http_status=400,
              http_says="Malformed JSON")
        c.add(topic, "not_a_cloudevent", "not a CloudEvent", attributes=None)
        c.add(topic, "unknown_ce_type", "unknown ce_type", attrs={"type": "bank.customer.v9"})
        c.add(topic, "no_specversion", "missing specversion", attrs={"specversion": None})
        other = INBOUND[(INBOUND.index(topic) + 1) % len(INBOUND)]
        c.add(topic, "type_of_another_topic", f"does not belong on {topic}",
              data=GOOD_DATA[other], attrs={"type": CE_TYPES[other]}, over_http=False)
        c.add(topic, "subject_is_not_the_customer", "is not the customer_id", attrs={"subject": "SOMEONE-ELSE"})
        c.add(topic, "id_too_long", "id longer than 200", attrs={"id": "x" * 201})
        c.add(topic, "event_time_without_offset", "time needs an offset", attrs={"time": "2026-11-20T10:00:00"})
        c.add(topic, "event_time_out_of_range", "out of range", attrs={"time": "9999-12-31T00:00:00Z"})
        c.add(topic, "header_not_utf8", "header x-trace is not UTF-8", over_http=False,
              extra_headers=(("x-trace", b"\xff\xfe\x00trace\x80"), ("x-span", b"\\x41 plain")))
        name = REQUIRED_FIELD[topic]
        c.add(topic, "missing_field", f"data.{name}: Field required", data=lambda cid, g=good, n=name: _without(g(cid), n))
        name, value = WRONG_TYPE[topic]
        c.add(topic, "wrong_type", f"data.{name}", data=lambda cid, g=good, n=name, v=value: {**g(cid), n: v})
        c.add(topic, "unknown_field", "data.colour: Extra inputs are not permitted",
              data=lambda cid, g=good: {**g(cid), "colour": "red"})
        c.add(topic, "data_not_an_object", "data: Input should be", data=lambda cid: ["not", "an", "object"])
        if topic in NAIVE_TIME:
            name = NAIVE_TIME[topic]
            c.add(topic, "time_without_offset", f"data.{name}: Value error, time needs an offset",
                  data=lambda cid, g=good, n=name: {**g(cid), n: "2026-11-20T10:00:00"})
            c.add(topic, "unix_time", f"data.{name}: Value error, a time must be an RFC 3339 string",
                  data=lambda cid, g=good, n=name: {**g(cid), n: 1763604000})
        name, value, why = OUT_OF_RANGE[topic]
        c.add(topic, "out_of_range", f"data.{name}: Value error, {why}",
              data=lambda cid, g=good, n=name, v=value: {**g(cid), n: v})
        big = json.dumps({**good("X"), "pad": "x" * (MAX_EVENT_BYTES + 100)}).encode()
        c.add(topic, "oversized", f"exceeds {MAX_EVENT_BYTES}", raw=big, http_status=413)

    _customers(c)
    _accounts(c)
    _money(c, topics.POSTINGS, "amount")
    _money(c, topics.BALANCES, "balance")
    _postings(c)
    _balances(c)
    return c.items


def _customers(c: _Catalogue) -> None:
    t = topics.CUSTOMERS
    for kind, name, value, says in [
        ("bad_id_number", "id_number", "12345", "data.id_number"),
        ("bad_phone", "phone", "call me", "data.phone"),
        ("unknown_risk_level", "risk_level", "C9", "data.risk_level"),
        ("tags_not_a_list", "tags", "golf", "data.tags"),
        ("birth_date_not_a_date", "birth_date", "15/07/1988", "data.birth_date"),
    ]:
        c.add(t, kind, says, data=lambda cid, n=name, v=value: customer_data(cid, **{n: v}))
    c.add(t, "nul_in_text", "data.name: Value error, text must not contain NUL characters",
          data=lambda cid: customer_data(cid, name="王\x00芳"), http_status=400, http_says="NUL character")
    c.add(t, "core_record_without_name", "needs name and home_branch_id",
          data=lambda cid: _without(customer_data(cid), "name"))


def _accounts(c: _Catalogue) -> None:
    t = topics.ACCOUNTS
    c.add(t, "unknown_product_type", "data.product_type", data=lambda cid: account_data(cid, product_type="crypto"))
    c.add(t, "unknown_status", "data.status", data=lambda cid: account_data(cid, status="deleted"))
    c.add(t, "account_id_with_spaces", "data.account_id", data=lambda cid: account_data(cid, "A 1; DROP"))
    # valid records that contradict the account as registered: an account keeps its owner and type
    owner = c.customer()
    theirs = f"{owner}-A"
    c.add(t, "account_moved_to_another_customer", f"account {theirs} belongs to customer {owner}",
          data=lambda cid: account_data(cid, theirs), rejected_by=frozenset({"tiering", "profile"}),
          before=(AccountV1.model_validate(account_data(owner, theirs)),), over_http=False)
    mine = c.customer()
    own = f"{mine}-A"
    c.items.append(BadEvent(
        t, "account_changes_product_type", mine, f"account {own} is a demand_deposit, not a fund",
        attributes(t, mine), data=account_data(mine, own, product_type="fund"),
        rejected_by=frozenset({"tiering", "profile"}),
        before=(AccountV1.model_validate(account_data(mine, own)),), over_http=False,
    ))


def _money(c: _Catalogue, topic: str, name: str) -> None:
    data = GOOD_DATA[topic]
    for kind, value in [("three_decimals", "12.345"), ("absurd_amount", "12345678901234567.00"),
                        ("exponent_amount", "1e5"), ("fullwidth_digits", "１２３.00"),
                        ("arabic_indic_digits", "١٢٣.٠٠"), ("surrounding_spaces", " 123.00 ")]:
        c.add(topic, kind, f"data.{name}: Value error, {value!r} is not an amount with at most two decimal places",
              data=lambda cid, v=value: data(cid, **{name: v}))
    for kind, value in [("float_amount", 12.5), ("integer_amount", 12)]:
        c.add(topic, kind, f"data.{name}: Value error, an amount must be a decimal string",
              data=lambda cid, v=value: data(cid, **{name: v}))
    above = [name, "balance_after"] if topic == topics.POSTINGS else [name]
    for field in above:
        c.add(topic, f"{field}_above_the_limit",
              f"data.{field}: Value error, {ABOVE_THE_LIMIT} is above the largest amount accepted",
              data=lambda cid, f=field: data(cid, **{f: ABOVE_THE_LIMIT}))
    c.add(topic, "unknown_currency", "data.currency", data=lambda cid: data(cid, currency="USD"))
    c.add(topic, "negative_asset_balance", "cannot be negative",
          data=lambda cid: data(cid, **{("balance_after" if topic == topics.POSTINGS else name): "-5.00"}))


def _postings(c: _Catalogue) -> None:
    t = topics.POSTINGS
    c.add(t, "zero_amount", "data.amount: Value error, must be greater than zero",
          data=lambda cid: posting_data(cid, amount="0.00"))
    c.add(t, "unknown_direction", "data.direction", data=lambda cid: posting_data(cid, direction="sideways"))
    c.add(t, "account_seq_zero", "data.account_seq", data=lambda cid: posting_data(cid, account_seq=0))
    c.add(t, "cross_region_as_text", "data.cross_region", data=lambda cid: posting_data(cid, cross_region="no"))
    _contradictions(c, t, posting_data)


def _balances(c: _Catalogue) -> None:
    _contradictions(c, topics.BALANCES, balance_data)


def _contradictions(c: _Catalogue, topic: str, data: Callable[..., dict[str, Any]]) -> None:
    """Events that are valid in themselves but contradict the account as registered."""
    owner = c.customer()
    theirs = f"{owner}-A"
    registration = AccountV1.model_validate(account_data(owner, theirs))
    c.add(topic, "account_of_another_customer", f"account {theirs} belongs to customer {owner}",
          data=lambda cid: data(cid, theirs), rejected_by=frozenset({"tiering"}), before=(registration,),
          over_http=False)
    mine = c.customer()
    own = f"{mine}-A"
    c.items.append(BadEvent(
        topic, "product_type_contradicts_the_account", mine, f"account {own} is a demand_deposit, not a fund",
        attributes(topic, mine), data=data(mine, own, product_type="fund"), rejected_by=frozenset({"tiering"}),
        before=(AccountV1.model_validate(account_data(mine, own)),), over_http=False,
    ))


def dead_letter_services(bad: BadEvent, readers: dict[str, list[str]]) -> set[str]:
    """The services that must dead-letter ``bad``: every reader of its topic when it is invalid in
    itself, only the refusing ones otherwise. ``readers`` maps a topic to its services."""
    return set(bad.rejected_by) if bad.rejected_by else set(readers[bad.topic])


# --- driving a harness (single-process or Kafka) ------------------------------------------


def readers(harness) -> dict[str, list[str]]:
    """Which services read each inbound topic in this harness."""
    return {t: sorted(n for n, loop in harness.runtime.loops.items() if t in loop.topics) for t in INBOUND}


def dead_lettered_total(service: str, topic: str, category: str) -> float:
    return REGISTRY.get_sample_value("strata_events_dead_lettered_total",
                                     {"service": service, "topic": topic, "reason": category}) or 0.0


async def publish_bad_then_good(harness, bad_events: list[BadEvent]) -> None:
    """The registrations some bad events contradict, applied first; then each bad event and,
    right after it, a good one for the same customer (same key, same partition)."""
    before = [e for bad in bad_events for e in bad.before]
    if before:
        await harness.publish(*before)
        await harness.settle()
    messages = []
    for bad in bad_events:
        value, headers = bad.record()
        messages.append(Message(bad.topic, bad.customer_id.encode(), value, headers))
        good = harness.event(good_after(bad.topic, bad.customer_id))
        messages.append(Message(good.topic, *encode_binary(good)))
    await harness.runtime.bus.publish(messages)
    await harness.settle(timeout=60)


async def good_event_applied(harness, bad: BadEvent) -> bool:
    cid = bad.customer_id
    if bad.topic in (topics.POSTINGS, topics.BALANCES):
        response = await harness.get(f"/v1/customers/{cid}/tier")
        return response.status_code == 200 and response.json()["aum"] == GOOD_BALANCE
    response = await harness.get(f"/v1/customers/{cid}", role="analyst")
    if response.status_code != 200:
        return False
    body = response.json()
    if bad.topic == topics.CUSTOMERS:
        return body["profile"]["name"] == "after the bad one"
    # the good account, and of the accounts registered before only the customer's own, unchanged
    registered = {(a.account_id, a.product_type) for a in bad.before
                  if isinstance(a, AccountV1) and a.customer_id == cid}
    held = {(h["account_id"], h["product_type"]) for h in body["holdings"]}
    return held - registered == {(f"{cid}-OK", "demand_deposit")} and registered <= held


async def judge(harness, bad_events: list[BadEvent], letters: dict[str, list], counted_before: dict) -> list[str]:
    """Everything wrong with the outcome: ``letters`` are the records of each topic's DLQ (any
    record type with ``key``, ``value`` and ``headers``); ``counted_before`` the dead-letter
    counters before the events were published."""
    who_reads = readers(harness)
    wrong: list[str] = []
    counts: dict[tuple[str, str, str], int] = {}
    for bad in bad_events:
        expected = dead_letter_services(bad, who_reads)
        mine = [r for r in letters[bad.topic] if r.key == bad.customer_id.encode()]
        services = {dict(r.headers)["strata_dlq_service"].decode() for r in mine}
        if services != expected or len(mine) != len(services):
            wrong.append(f"{bad.id}: dead-lettered by {sorted(services)} ({len(mine)} letters), "
                         f"expected once by each of {sorted(expected)}")
        for r in mine:
            headers = dict(r.headers)
            reason = headers["strata_dlq_reason"].decode()
            if bad.says not in reason:
                wrong.append(f"{bad.id}: reason {reason[:160]!r} does not say {bad.says!r}")
            if headers["strata_dlq_category"].decode() != bad.category:
                wrong.append(f"{bad.id}: category {headers['strata_dlq_category']!r}, not {bad.category}")
            if r.value != bad.record()[0]:
                wrong.append(f"{bad.id}: the dead letter does not carry the original value")
            kept = [(k, bytes(v)) for k, v in r.headers if not k.startswith("strata_dlq_")]
            if kept != list(bad.record()[1]):
                wrong.append(f"{bad.id}: the dead letter's headers {kept!r} are not the original's")
            key = (headers["strata_dlq_service"].decode(), bad.topic, bad.category)
            counts[key] = counts.get(key, 0) + 1
        if not await good_event_applied(harness, bad):
            wrong.append(f"{bad.id}: the good event after it was not applied")
    for key, n in counts.items():
        if dead_lettered_total(*key) - counted_before.get(key, 0.0) < n:
            wrong.append(f"strata_events_dead_lettered_total{key} grew by less than {n}")
    return wrong


def counters(harness, bad_events: list[BadEvent]) -> dict[tuple[str, str, str], float]:
    who_reads = readers(harness)
    return {(s, bad.topic, bad.category): dead_lettered_total(s, bad.topic, bad.category)
            for bad in bad_events for s in dead_letter_services(bad, who_reads)}
