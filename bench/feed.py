"""Pre-encoded CloudEvents for the benchmarks, built with string templates so that generating a
million events costs seconds, not minutes. A sample of every kind is validated against the
contract models, so the fast path cannot drift from the contract."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterator

from shared.contracts.cloudevents import decode_record

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]  # key, value, headers

BRANCHES = [f"BR-{i:03d}" for i in range(1, 21)]
TX = [  # tx_type, channel, counterparty, direction, weight
    ("salary", "batch", None, "credit", 10),
    ("card_spend", "pos", None, "debit", 30),
    ("atm_withdrawal", "atm", "OTHER", "debit", 8),
    ("atm_withdrawal", "atm", None, "debit", 12),
    ("transfer_out", "mobile", None, "debit", 15),
    ("transfer_out", "counter", "OTHER", "debit", 3),
    ("transfer_in", "mobile", None, "credit", 12),
    ("wealth_purchase", "mobile", None, "debit", 3),
    ("deposit_placement", "counter", None, "debit", 2),
    ("sms_monthly", "batch", None, "debit", 5),
]
WEIGHTS = [t[-1] for t in TX]


def _headers(ce_id: str, ce_type: str, subject: str, time: str) -> list[tuple[str, bytes]]:
    return [("ce_specversion", b"1.0"), ("ce_id", ce_id.encode()), ("ce_source", b"bench"),
            ("ce_type", ce_type.encode()), ("ce_subject", subject.encode()),
            ("ce_time", time.encode()), ("content-type", b"application/json")]


def opening_balance(rng: random.Random) -> int:
    """Cents, drawn so most customers are mass, about 9 % between 50,000 and 1,000,000 and a
    thin tail above."""
    u = rng.random()
    if u < 0.895:
        return rng.randrange(0, 4_900_000)
    if u < 0.985:
        return rng.randrange(5_000_000, 100_000_000)
    if u < 0.998:
        return rng.randrange(100_000_000, 600_000_000)
    return rng.randrange(600_000_000, 2_000_000_000)


@dataclass
class PostingFeed:
    """``count`` postings spread over ``customers`` customers (one demand account each), in
    account_seq order per account, timestamps inside one business month."""

    count: int
    customers: int
    seed: int = 1
    month: str = "2026-11"

    def __iter__(self) -> Iterator[Record]:
        rng = random.Random(self.seed)
        balances: dict[int, int] = {}
        seqs: dict[int, int] = {}
        for n in range(self.count):
            c = n if n < self.customers else rng.randrange(self.customers)
            balance = balances.get(c)
            if balance is None:
                balance = opening_balance(rng)
                tx_type, channel, cp, direction = "transfer_in", "mobile", None, "credit"
                amount = balance if balance > 0 else 100
                balance = amount
            else:
                tx_type, channel, cp, direction, _ = rng.choices(TX, WEIGHTS)[0]
                amount = rng.randrange(100, 2_000_000)
                if direction == "debit":
                    amount = min(amount, balance) or 100
                    balance = balance - amount if balance >= amount else balance + amount
                    if balance == 0:
                        direction = "debit"
                else:
                    balance += amount
            balances[c] = balance
            seqs[c] = seqs.get(c, 0) + 1
            yield self.record(n, c, seqs[c], tx_type, channel, cp, direction, amount, balance, rng)

    def record(self, n, c, seq, tx_type, channel, cp, direction, amount, balance, rng) -> Record:
        cid = f"C{c:08d}"
        day = 1 + (n * 29) // max(1, self.count)
        time = f"{self.month}-{day:02d}T{9 + n % 10:02d}:{n % 60:02d}:{(n // 60) % 60:02d}+08:00"
        counterparty = "null" if cp is None else f'"{cp}"'
        value = (
            f'{{"posting_id":"P{n:012d}","customer_id":"{cid}","account_id":"A{c:08d}",'
            f'"account_seq":{seq},"product_type":"demand_deposit","direction":"{direction}",'
            f'"amount":"{amount // 100}.{amount % 100:02d}","balance_after":"{balance // 100}.{balance % 100:02d}",'
            f'"currency":"CNY","tx_type":"{tx_type}","channel":"{channel}",'
            f'"counterparty_bank":{counterparty},"cross_region":false,'
            f'"branch_id":"{BRANCHES[c % len(BRANCHES)]}","posted_at":"{time}"}}'
        ).encode()
        ce_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        return cid.encode(), value, _headers(ce_id, "bank.posting.v1", cid, time)


def validate_sample(records: list[Record], every: int = 997) -> int:
    """Decode every ``every``-th record with the real codec; raises on a contract mismatch."""
    checked = 0
    for i in range(0, len(records), every):
        _key, value, headers = records[i]
        decode_record(value, headers)
        checked += 1
    return checked


def expected_aum(records: list[Record]) -> dict[str, Decimal]:
    """The final AUM of each customer the feed implies (last balance_after per account)."""
    out: dict[str, Decimal] = {}
    for _key, value, _headers in records:
        body = json.loads(value)
        out[body["customer_id"]] = Decimal(body["balance_after"])
    return out
