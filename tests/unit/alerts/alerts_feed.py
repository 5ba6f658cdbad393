"""Events the alerts service reads, built the way their producers send them, for the alerts
tests (unit and integration). Times are in the bank's zone (+08:00).

Alerts reads what tiering tells it (customer and account records, postings with the tier and
AUM right after them, tier decisions, AUM changes) from ``strata.tiering.changes``; :func:`as_read`
puts each item there as tiering does, one ``strata.tiering.change.v1`` per fact."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel

from shared.contracts import topics
from shared.settings import Settings
from shared.contracts.cloudevents import Event, new_event
from shared.contracts.events import (
    AccountFact,
    AccountV1,
    AssignmentChangedV1,
    AumV1,
    CustomerFact,
    CustomerV1,
    PostingFact,
    PostingV1,
    TierChange,
    TierChangedV1,
    TieringChangeV1,
)

_ids = itertools.count(1)
_known: dict[str, tuple[str, Decimal]] = {}
"""Each customer's tier and AUM as the items given so far left them (what tiering would hold)."""


@dataclass(frozen=True)
class Tiered:
    """A posting as tiering passes it on: the tier and AUM right after it."""

    posting: PostingV1
    tier: str
    aum: str


def as_read(item: BaseModel | Event | Tiered, *, event_id: str | None = None):
    """``item`` as alerts reads it: one fact on ``strata.tiering.changes`` (an event's id is
    kept); an assignment unchanged, for its own topic."""
    data = item.data if isinstance(item, Event) else item
    if isinstance(item, Event):
        event_id = item.id
    if isinstance(data, (AssignmentChangedV1, TieringChangeV1)):
        return item
    change = _change(data)
    return new_event(change, "/strata/tiering", id=event_id or str(uuid.uuid4()),
                     time=item.time if isinstance(item, Event) else None)


def _change(data) -> TieringChangeV1:
    customer_id = data.posting.customer_id if isinstance(data, Tiered) else data.customer_id
    tier, aum = _known.get(customer_id, ("mass", Decimal("0.00")))
    base = {"customer_id": customer_id, "tier": tier, "aum": aum, "aum_before": aum,
            "business_date": "2026-11-01"}
    if isinstance(data, CustomerV1):
        fact = CustomerFact(**{k: getattr(data, k) for k in CustomerFact.model_fields})
        return TieringChangeV1(**{**base, "fact": "customer", "at": data.updated_at, "customer": fact})
    if isinstance(data, AccountV1):
        return TieringChangeV1(**{**base, "fact": "account", "at": "2026-11-01T09:00:00+08:00",
                                  "account": AccountFact(**dict(data))})
    if isinstance(data, Tiered):
        p = data.posting
        _known[customer_id] = (data.tier, Decimal(data.aum))
        return TieringChangeV1(**{**base, "fact": "posting", "at": p.posted_at, "posting": PostingFact(**dict(p)),
                                  "tier": data.tier, "aum": data.aum, "aum_before": data.aum,
                                  "business_date": p.posted_at.date()})
    if isinstance(data, TierChangedV1):
        _known[customer_id] = (data.to, aum)
        decision = TierChange(**{"from": data.from_, "to": data.to, "change": data.change, "reason": data.reason,
                                 "effective_at": data.effective_at, "watch": data.watch, "basis": data.basis})
        return TieringChangeV1(**{**base, "fact": "balance", "at": data.effective_at, "tier": data.to,
                                  "watch": data.watch, "aum": data.aum, "aum_before": data.aum,
                                  "tier_changes": [decision], "business_date": data.effective_at.date()})
    if isinstance(data, AumV1):
        ladder = Settings().tier_ladder  # fast up: never below what the AUM reaches, as tiering does
        tier_now = data.tier or ladder.higher(tier, ladder.tier_for(data.aum).id)
        _known[customer_id] = (tier_now, data.aum)
        before = aum if aum != data.aum else data.aum + Decimal("0.01")
        return TieringChangeV1(**{**base, "fact": "balance", "at": data.as_of, "tier": tier_now, "aum": data.aum,
                                  "aum_before": before, "business_date": data.business_date})
    raise TypeError(f"alerts reads no {type(data).__name__}")


def new_customer(prefix: str = "AC") -> str:
    return f"{prefix}{next(_ids):05d}"


def at(day: str, clock: str = "10:00:00") -> str:
    """``2026-11-10`` -> ``2026-11-10T10:00:00+08:00``."""
    return f"{day}T{clock}+08:00"


def aum(customer: str, amount: str, when: str, tier: str | None = None) -> AumV1:
    """An AUM event; ``tier`` is the tier tiering held right after it (None: as emitted before
    AUM events carried one)."""
    return AumV1(customer_id=customer, aum=amount, mtd_average_daily_aum=amount,
                 by_product_type={"demand_deposit": amount}, business_date=when[:10], as_of=when,
                 tier=tier)


def tiered(posting: PostingV1, tier: str, aum_: str) -> Tiered:
    """A posting as tiering passes it on: the tier and AUM right after it."""
    return Tiered(posting, tier, aum_)


def tier_change(customer: str, change: str, from_: str, to: str, when: str, *, aum_: str = "0.00",
                watch: bool | None = None) -> TierChangedV1:
    return TierChangedV1(customer_id=customer, **{"from": from_}, to=to, reason=f"{change} for test",
                         effective_at=when, change=change,
                         watch=(change == "watch") if watch is None else watch,
                         aum=aum_, basis=aum_)


def assignment(customer: str, to: str | None, when: str, *, from_: str | None = None,
               role: str = "primary") -> AssignmentChangedV1:
    return AssignmentChangedV1(customer_id=customer, role=role, **{"from": from_}, to=to,
                               reason="test assignment", changed_at=when)


def customer(customer_id: str, *, branch: str = "BR-1", birth: str | None = "1980-06-15",
             updated: str = "2026-11-01T09:00:00+08:00", name: str = "测试客户") -> CustomerV1:
    return CustomerV1(customer_id=customer_id, name=name, birth_date=birth, home_branch_id=branch,
                      updated_at=updated)


def account(customer_id: str, account_id: str, product_type: str, *, maturity: str | None = None,
            card_expiry: str | None = None, status: str = "open", branch: str = "BR-1",
            code: str = "P-1") -> AccountV1:
    return AccountV1(account_id=account_id, customer_id=customer_id, branch_id=branch,
                     product_type=product_type, product_code=code, status=status,
                     opened_on="2024-01-01", maturity_date=maturity, card_expiry=card_expiry)


class Postings:
    """One customer's postings on one demand account: ``account_seq`` counts up and
    ``balance_after`` follows the amounts."""

    def __init__(self, customer_id: str, account_id: str | None = None, balance: str = "0.00") -> None:
        self.customer_id = customer_id
        self.account_id = account_id or f"{customer_id}-DD"
        self.seq = 0
        self.balance = Decimal(balance)

    def credit(self, amount: str, when: str, **kw) -> PostingV1:
        return self._post("credit", amount, when, tx_type=kw.pop("tx_type", "salary"), **kw)

    def debit(self, amount: str, when: str, *, bank: str | None = None, **kw) -> PostingV1:
        return self._post("debit", amount, when, tx_type=kw.pop("tx_type", "transfer_out"),
                          counterparty_bank=bank, **kw)

    def _post(self, direction: str, amount: str, when: str, *, tx_type: str,
              counterparty_bank: str | None = None, pid: str | None = None) -> PostingV1:
        self.seq += 1
        self.balance += Decimal(amount) if direction == "credit" else -Decimal(amount)
        return PostingV1(
            posting_id=pid or f"{self.account_id}-{self.seq}", customer_id=self.customer_id,
            account_id=self.account_id, account_seq=self.seq, product_type="demand_deposit",
            direction=direction, amount=amount, balance_after=str(self.balance), currency="CNY",
            tx_type=tx_type, channel="mobile", counterparty_bank=counterparty_bank,
            branch_id="BR-1", posted_at=when,
        )


def signals_of(items: list[dict], customer_id: str) -> list[tuple]:
    """``(signal_type, rm_id, status)`` of one customer's signals, oldest first."""
    mine = [i for i in items if i["customer_id"] == customer_id]
    return [(i["signal_type"], i["rm_id"], i["status"]) for i in reversed(mine)]

