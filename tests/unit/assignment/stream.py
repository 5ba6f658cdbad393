"""What assignment reads, built the way tiering writes it: one ``strata.tiering.change.v1`` per
fact on ``strata.tiering.changes`` (a core customer record, a tier decision, an AUM change), each
with the customer's tier, watch and AUM right after it. Shared by the unit and Kafka tests.

Each customer's tier, watch, months below and AUM are kept here as tiering would hold them, so a
record carries what the records before it left (customer ids are unique per test).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from shared.contracts.events import CustomerFact, TierChange, TieringChangeV1

T0 = datetime(2026, 11, 10, 10, 0, tzinfo=timezone(timedelta(hours=8)))

_held: dict[str, dict] = {}
"""customer id -> tier, watch, months_below, aum as tiering holds them after the records so far."""


def _now(customer_id: str) -> dict:
    return _held.setdefault(customer_id, {"tier": "mass", "watch": False, "months_below": 0,
                                          "aum": Decimal("0.00")})


def _record(customer_id: str, fact: str, at: datetime, **over) -> TieringChangeV1:
    held = _now(customer_id)
    aum_before = held["aum"]
    for name in ("tier", "watch", "months_below", "aum"):
        if name in over:
            held[name] = over.pop(name)
    return TieringChangeV1(customer_id=customer_id, fact=fact, at=at, tier=held["tier"], watch=held["watch"],
                           months_below=held["months_below"], aum=held["aum"], aum_before=aum_before,
                           business_date=at.date(), **over)


def customer_record(customer_id: str, branch: str | None, at: datetime = T0, *, name: str = "王芳") -> TieringChangeV1:
    """Core banking's record of the customer (home branch, name), as tiering passes it on."""
    fact = CustomerFact(customer_id=customer_id, name=name, home_branch_id=branch, updated_at=at)
    return _record(customer_id, "customer", at, customer=fact)


def tier_record(customer_id: str, to: str, change: str = "upgrade", at: datetime = T0, *,
                aum: str = "100.00", watch: bool | None = None, months_below: int | None = None) -> TieringChangeV1:
    """A balance that moved the customer to ``to`` (or, with ``change="watch"``, put them on
    watch): the decision and the state right after it."""
    held = _now(customer_id)
    watch = (change == "watch") if watch is None else watch
    months_below = (held["months_below"] + 1 if change == "watch" else 0) if months_below is None else months_below
    decision = TierChange(**{"from": held["tier"]}, to=to, change=change, reason="test", effective_at=at,
                          watch=watch, months_below=months_below, basis=Decimal(aum))
    return _record(customer_id, "balance", at, tier=to, watch=watch, months_below=months_below,
                   aum=Decimal(aum), tier_changes=[decision])


def aum_record(customer_id: str, aum: str, at: datetime = T0) -> TieringChangeV1:
    """A balance that moved the AUM and no tier."""
    return _record(customer_id, "balance", at, aum=Decimal(aum))
