"""How pricing's consumer works a batch: on plain values loaded set-based, written one statement
per table, the fee schedule matched once per posting. Bounded by counts, never by time."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

from sqlalchemy import event
from sqlalchemy.orm import Session

from shared.contracts.events import PostingFact, TieringChangeV1
from shared.runtime.consumer import ConsumerLoop
from services.pricing.domain import FeeSchedule
from tests.conftest import private_strata

START = datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc)
KINDS = [("atm_withdrawal", "100.00", "atm", "OTHER"), ("card_spend", "300.00", "pos", None),
         ("sms_monthly", "2.00", "batch", None), ("salary", "8000.00", "batch", None)]


def tiered_postings(customers: int, per_customer: int, first: int = 0) -> list[TieringChangeV1]:
    """Postings as tiering passes them on, ``per_customer`` for each customer, interleaved."""
    out = []
    for n in range(first, first + per_customer):
        for c in range(customers):
            customer_id = f"PB{c:04d}"
            tx_type, amount, channel, bank = KINDS[(n + c) % len(KINDS)]
            at = START + timedelta(minutes=n * customers + c)
            posting = PostingFact(
                posting_id=f"{customer_id}-{n}", customer_id=customer_id, account_id=f"{customer_id}-CUR",
                account_seq=n + 1, product_type="demand_deposit",
                direction="credit" if tx_type == "salary" else "debit", amount=D(amount),
                balance_after=D("9000.00"), currency="CNY", tx_type=tx_type, channel=channel,
                counterparty_bank=bank, branch_id="BR-1", posted_at=at)
            out.append(TieringChangeV1(customer_id=customer_id, fact="posting", at=at, posting=posting,
                                       tier=("mass", "gold")[c % 2], aum=D("9000.00"), aum_before=D("9000.00"),
                                       average_aum_12m=D("9000.00"), business_date=at.date()))
    return out


async def _paused(strata) -> None:
    loop = strata.runtime.loops["pricing"]
    loop.stop()
    await [t for t in strata.runtime._tasks if t.get_name() == "pricing-consumer"][-1]  # the loop's own task


def _resume(strata) -> ConsumerLoop:
    runtime = strata.runtime
    old = runtime.loops["pricing"]
    loop = ConsumerLoop(old.spec, runtime.db, runtime.bus, strata.settings, on_commit=runtime.relays["pricing"].wake)
    runtime.loops["pricing"] = loop
    runtime._spawn(loop.run(), "pricing-consumer")
    return loop


@contextmanager
def orm_and_statements(engine):
    """Counts ORM flushes and ORM objects added or loaded in any session, and the statements
    that touch pricing's tables."""
    seen = {"orm": 0, "statements": 0}

    def orm(*_args, **_kw):
        seen["orm"] += 1

    def statement(_conn, _cursor, sql, *_args):
        if "pricing_" in sql:
            seen["statements"] += 1

    hooks = [(Session, "before_flush", orm), (Session, "transient_to_pending", orm),
             (Session, "loaded_as_persistent", orm), (engine.sync_engine, "before_cursor_execute", statement)]
    for target, name, fn in hooks:
        event.listen(target, name, fn)
    try:
        yield seen
    finally:
        for target, name, fn in hooks:
            event.remove(target, name, fn)


async def test_a_batch_is_priced_on_plain_values_with_one_statement_per_table():
    async with private_strata(["pricing"]) as strata:
        for round_ in range(2):   # the second round finds every customer, usage row and lot stored
            await _paused(strata)
            await strata.publish(*tiered_postings(60, 5, first=5 * round_))
            with orm_and_statements(strata.runtime.db.engine) as seen:
                loop = _resume(strata)
                await strata.settle()
            assert seen["orm"] == 0, "no ORM object is created, loaded or flushed on the hot path"
            assert loop.batches >= 1
            # reads: customers, priced postings, usage, lots; writes: customers, usage, lots, fees, ledger
            assert seen["statements"] <= 9 * loop.batches, seen
        fees = (await strata.get("/v1/customers/PB0000/fees", params={"limit": 500})).json()["items"]
        assert len(fees) == 10


async def test_each_posting_matches_the_fee_schedule_once(monkeypatch):
    calls = []
    match = FeeSchedule.match

    def counted(self, tx):
        calls.append(tx.tx_type)
        return match(self, tx)

    monkeypatch.setattr(FeeSchedule, "match", counted)
    async with private_strata(["pricing"]) as strata:
        postings = tiered_postings(10, 4)
        await strata.publish(*postings)
        await strata.settle()
    assert len(calls) == len(postings)
