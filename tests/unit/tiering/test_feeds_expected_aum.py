"""Whole feeds through tiering, checked customer by customer against what the feed implies.

Two feeds: the benchmark's (postings of one account per customer, in ``account_seq`` order,
with ``posted_at`` that jumps back and forth within each day, as core banking's clocks and
batch jobs do) and the simulated bank's (master data, opening balances, postings and
valuations on every product). The expected figures are worked out here, independently of
tiering's code, from the contract's rules: a posting with a higher ``account_seq`` sets the
account's balance; the month's average daily AUM sums each day's end-of-day AUM.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select

from bench.feed import PostingFeed, expected_aum
from shared.bus.base import Message
from shared.calendar import business_day
from shared.contracts.cloudevents import encode_binary
from shared.money import from_cents
from services.tiering.models import TieringCustomer
from strata.simulator.feed import Feed
from tests.conftest import private_strata


def _independent_month_to_date(records, zone) -> dict[str, tuple[Decimal, date]]:
    """Each customer's month-to-date average daily AUM on the last day with a posting, the
    days before the customer's first posting counted at zero: per account the balance of the
    highest ``account_seq`` posted by the end of each day."""
    best: dict[tuple[str, date], tuple[int, Decimal]] = {}
    for _key, value, _headers in records:
        p = json.loads(value)
        day = business_day(datetime.fromisoformat(p["posted_at"]), zone)
        seq, balance = p["account_seq"], Decimal(p["balance_after"])
        known = best.get((p["customer_id"], day))
        if known is None or seq > known[0]:
            best[(p["customer_id"], day)] = (seq, balance)
    days_of: dict[str, list[date]] = defaultdict(list)
    for customer, day in best:
        days_of[customer].append(day)
    out = {}
    for customer, days in days_of.items():
        days.sort()
        first, last = days[0], days[-1]
        total, balance, seq_so_far = Decimal("0.00"), Decimal("0.00"), 0
        day = first.replace(day=1)
        while day <= last:
            if (customer, day) in best and best[(customer, day)][0] > seq_so_far:
                seq_so_far, balance = best[(customer, day)]
            total += balance
            day += timedelta(days=1)
        average = (total / last.day).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        out[customer] = (average, last)
    return out


async def _tiering_customers(strata) -> dict[str, TieringCustomer]:
    async with strata.runtime.db.sessions() as session:
        return {c.customer_id: c for c in (await session.execute(select(TieringCustomer))).scalars()}


async def test_the_benchmark_feed_ends_with_every_customer_aum_and_average_as_the_contract_implies():
    records = list(PostingFeed(5000, 1000, seed=3))
    async with private_strata(["tiering"]) as strata:
        zone = strata.settings.zone
        for start in range(0, len(records), 500):
            await strata.runtime.bus.publish([Message("bank.postings", k, v, h)
                                              for k, v, h in records[start:start + 500]])
        await strata.settle(120)
        customers = await _tiering_customers(strata)
    want_aum = expected_aum(records)
    wrong_aum = {c: (str(customers[c].aum), str(a)) for c, a in want_aum.items() if customers[c].aum != a}
    assert not wrong_aum, f"{len(wrong_aum)} customers end with a wrong AUM, e.g. {list(wrong_aum.items())[:3]}"
    wrong_average = {}
    for customer, (average, last) in _independent_month_to_date(records, zone).items():
        row = customers[customer]
        got = (row.mtd_sum + row.aum) / row.mtd_day.day
        got = got.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        if (got, row.mtd_day) != (average, last):
            wrong_average[customer] = (str(got), row.mtd_day.isoformat(), str(average), last.isoformat())
    assert not wrong_average, (f"{len(wrong_average)} customers end with a wrong month-to-date average, "
                               f"e.g. {list(wrong_average.items())[:3]}")


async def test_the_simulated_bank_feed_ends_with_every_customer_aum_as_its_books_say():
    async with private_strata(["tiering"]) as strata:
        feed = Feed(5, 300, date(2026, 10, 1), strata.settings)
        events = list(feed.master_events())
        day = date(2026, 10, 1)
        while day < date(2026, 10, 13):
            events += list(feed.day_events(day))
            day += timedelta(days=1)
        for start in range(0, len(events), 500):
            await strata.runtime.bus.publish([Message(e.topic, *encode_binary(e)) for e in events[start:start + 500]])
        await strata.settle(120)
        customers = await _tiering_customers(strata)
    wrong = {}
    for c in range(feed.customers):
        customer_id = feed.bank.customer_id(c)
        want = from_cents(feed.ledger.aum[c])
        got = customers[customer_id].aum if customer_id in customers else Decimal("0.00")
        if got != want:
            wrong[customer_id] = (str(got), str(want))
    assert not wrong, f"{len(wrong)} customers end with a wrong AUM, e.g. {list(wrong.items())[:3]}"
