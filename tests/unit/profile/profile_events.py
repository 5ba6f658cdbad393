"""Builders of the events profile reads, with unique customer ids per test."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from shared.contracts.events import (
    AccountV1,
    AssignmentChangedV1,
    AumV1,
    BalanceV1,
    CustomerV1,
    FeeAssessedV1,
    PostingV1,
    SignalV1,
    TierChangedV1,
)

ZONE = ZoneInfo("Asia/Shanghai")
_ids = itertools.count(1)


def new_id(prefix: str = "PC") -> str:
    return f"{prefix}{next(_ids):05d}"


def today() -> date:
    """The bank's business date now (what the API counts maturities and flows from)."""
    return datetime.now(timezone.utc).astimezone(ZONE).date()


def now() -> datetime:
    return datetime.now(timezone.utc)


def customer(cid: str, *, branch: str = "BR-P1", updated_at: datetime | None = None, source: str = "core",
             **fields) -> CustomerV1:
    base = dict(customer_id=cid, name=f"客户{cid}", id_number="360102198807150023", phone="13800000000",
                birth_date="1988-07-15", gender="F", home_branch_id=branch, risk_level="C3",
                tags=["travel"], source=source, updated_at=updated_at or now())
    if source != "core":
        base = dict(customer_id=cid, source=source, updated_at=updated_at or now())
    base.update(fields)
    return CustomerV1(**base)


def account(aid: str, cid: str, product_type: str = "demand_deposit", *, branch: str = "BR-P1",
            status: str = "open", code: str = "DD", maturity: date | None = None,
            expiry: date | None = None) -> AccountV1:
    return AccountV1(account_id=aid, customer_id=cid, branch_id=branch, product_type=product_type,
                     product_code=code, status=status, opened_on="2025-01-02", maturity_date=maturity,
                     card_expiry=expiry)


def aum(cid: str, amount: str, *, as_of: datetime | None = None, day: date | None = None,
        mtd: str | None = None, by_type: dict | None = None, liabilities: dict | None = None) -> AumV1:
    return AumV1(customer_id=cid, aum=amount, mtd_average_daily_aum=mtd or amount,
                 by_product_type=by_type if by_type is not None else {"demand_deposit": amount},
                 liabilities=liabilities or {}, business_date=day or today(), as_of=as_of or now())


def tier(cid: str, to: str, *, frm: str = "mass", change: str = "upgrade", watch: bool = False,
         at: datetime | None = None) -> TierChangedV1:
    return TierChangedV1(customer_id=cid, **{"from": frm}, to=to, reason="test", effective_at=at or now(),
                         change=change, watch=watch, aum="0.00", basis="0.00")


def signal(sid: str, cid: str, status: str = "open", signal_type: str = "near_upgrade") -> SignalV1:
    return SignalV1(id=sid, signal_type=signal_type, customer_id=cid, rm_id="RM-P1", branch_id="BR-P1",
                    status=status, raised_at=now() - timedelta(hours=1), evidence={"aum": "45000.00"})


def fee(pid: str, cid: str, net: str, *, points: int | None = None, at: datetime | None = None) -> FeeAssessedV1:
    return FeeAssessedV1(posting_id=pid, customer_id=cid, fee_id="atm_interbank", tier="gold", base="4.00",
                         waived="0.00", discount="0.00", points_used=0, net=net, rules=["base"],
                         posted_at=at or now(), points_balance=points)


def assignment(cid: str, rm: str | None, *, role: str = "primary", at: datetime | None = None) -> AssignmentChangedV1:
    return AssignmentChangedV1(customer_id=cid, role=role, **{"from": None}, to=rm, reason="test",
                               changed_at=at or now())


# --- core banking's balances, for tests that run tiering too ---------------------------------


def snapshot(cid: str, aid: str, balance: str, at: datetime, product_type: str = "demand_deposit") -> BalanceV1:
    """A balance snapshot (what core banking sends of every account at go-live)."""
    return BalanceV1(customer_id=cid, account_id=aid, product_type=product_type, balance=balance, currency="CNY",
                     as_of=at)


def posting(cid: str, aid: str, seq: int, amount: str, balance_after: str, at: datetime, *,
            product_type: str = "demand_deposit", direction: str = "credit") -> PostingV1:
    return PostingV1(posting_id=f"{aid}-{seq}", customer_id=cid, account_id=aid, account_seq=seq,
                     product_type=product_type, direction=direction, amount=amount, balance_after=balance_after,
                     currency="CNY", tx_type="transfer_in" if direction == "credit" else "transfer_out",
                     channel="mobile", branch_id="BR-P1", posted_at=at)
