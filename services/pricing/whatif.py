"""Pricing's part of a tier-policy simulation: the period's priced postings, priced again with
the tier each customer would have had at each posting (tiering works that out by replaying its
history under a policy), under today's pricing rules.

:class:`FeeHistory` is the one place another service reads pricing's table of priced postings
(``pricing_fees``): in every deployment Strata ships the services share one database, so it is
a read of the table, not a call. Where that table is not there, :meth:`FeeHistory.open` says so
and the simulation answers without the fee part.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Callable, Iterable, Sequence

from sqlalchemy import Column, inspect, literal_column, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from shared.calendar import business_day, start_of_day
from shared.contracts.types import KNOWN_TX_TYPES
from shared.db import MoneyType, read_rows
from shared.settings.pricing import PricingSettings
from services.pricing.domain import FeeTotals, PricingEngine, Repricer, StoredPosting, Transaction
from services.pricing.models import PricingFee

FEES = PricingFee.__table__


@dataclass(frozen=True, slots=True)
class FeePosting:
    """A priced posting with a fee, as it was priced and with what it was priced on."""

    customer_id: str
    day: date
    """The posting's business day."""
    stored: StoredPosting
    fee_id: str
    base: Decimal
    waived: Decimal
    discount: Decimal
    aum: Decimal | None
    """The customer's AUM right after the posting, where pricing keeps it."""


class FeeHistory:
    """The priced postings of a period, read a set of customers at a time."""

    def __init__(self, zone, with_aum: bool) -> None:
        self.zone = zone
        self.with_aum = with_aum
        """Whether ``pricing_fees`` keeps the AUM right after each posting."""

    @classmethod
    async def open(cls, session: AsyncSession, zone) -> FeeHistory | None:
        """The fee history of this database, or None when pricing's table is not in it."""
        def columns(sync) -> set[str] | None:
            inspector = inspect(sync)
            if not inspector.has_table(FEES.name):
                return None
            return {c["name"] for c in inspector.get_columns(FEES.name)}

        found = await (await session.connection()).run_sync(columns)
        return None if found is None else cls(zone, "aum" in found)

    async def postings(self, session: AsyncSession, customer_ids: Iterable[str], first: date,
                       last: date) -> dict[str, list[FeePosting]]:
        """Each customer's postings with a fee from ``first`` to ``last`` (business days), in
        the order pricing priced them. Postings without a fee are left out: the fee a posting
        incurs does not depend on the tier, only what its benefits take off it does."""
        f = FEES.c
        picked: list[Column] = [f.id, f.customer_id, f.posted_at, f.month, f.tier, f.tx_type, f.amount, f.channel,
                                f.counterparty_bank, f.cross_region, f.product_type, f.direction,
                                f.average_aum_12m, f.fees_paid, f.fee_id, f.base, f.waived, f.discount]
        if self.with_aum:
            picked.append(type_coerce(literal_column("aum"), MoneyType).label("aum"))
        start = start_of_day(first, self.zone)
        end = start_of_day(last + timedelta(days=1), self.zone)
        rows = await read_rows(session, FEES, "customer_id", customer_ids, columns=picked,
                               where=(f.posted_at >= start) & (f.posted_at < end) & f.fee_id.is_not(None))
        rows.sort(key=lambda r: (r.customer_id, r.id))
        out: dict[str, list[FeePosting]] = {}
        for r in rows:
            tx = Transaction(r.tx_type, r.amount, r.channel, r.counterparty_bank, r.cross_region, r.product_type,
                             r.direction)
            out.setdefault(r.customer_id, []).append(FeePosting(
                r.customer_id, business_day(r.posted_at, self.zone),
                StoredPosting(r.customer_id, r.month, r.tier, tx, r.average_aum_12m, r.fees_paid),
                r.fee_id, r.base, r.waived, r.discount, r.aum if self.with_aum else None))
        return out


class TierRepricing:
    """Prices postings again with a tier given per posting and per policy, under today's
    pricing rules (free uses counted afresh from each month's first posting, contribution
    scores rebuilt from what each posting was priced on, points left out as a way of paying),
    and totals fee income, waived and discount by the tier priced with.

    Feed each customer's postings of the period consecutively and in order (as
    :meth:`FeeHistory.postings` gives them), once per policy."""

    def __init__(self, pricing: PricingSettings, sides: Sequence[str]) -> None:
        engine = PricingEngine(pricing, KNOWN_TX_TYPES)
        self.repricers = {side: Repricer(engine, pricing.contribution) for side in sides}
        self.totals: dict[str, dict[str, FeeTotals]] = {side: {} for side in sides}
        self.as_charged: dict[str, FeeTotals] = {}
        self.postings = 0

    def price(self, postings: Sequence[FeePosting], tier_of: dict[str, Callable[[FeePosting], str]]) -> None:
        """One customer's postings, each priced with ``tier_of[side](posting)`` for each side."""
        for side, tier_at in tier_of.items():
            repricer, totals = self.repricers[side], self.totals[side]
            for posting in postings:
                tier = tier_at(posting)
                s = posting.stored
                priced = repricer.price(StoredPosting(s.customer_id, s.month, tier, s.tx, s.average_aum_12m,
                                                      s.fees_paid))
                if priced.fee_id is not None:
                    totals.setdefault(tier, FeeTotals()).add(priced.base, priced.waived, priced.discount)
        for posting in postings:
            self.as_charged.setdefault(posting.stored.tier, FeeTotals()).add(posting.base, posting.waived,
                                                                             posting.discount)
        self.postings += len(postings)

    def as_dict(self, tiers: Sequence[str]) -> dict:
        sides = list(self.totals)
        by_tier = [{"tier": t, **{side: self.totals[side].get(t, FeeTotals()).as_dict() for side in sides}}
                   for t in tiers]
        totals = {side: FeeTotals.of(self.totals[side].values()).as_dict() for side in sides}
        totals["as_charged"] = FeeTotals.of(self.as_charged.values()).as_dict()
        if len(sides) == 2:
            a, b = (FeeTotals.of(self.totals[s].values()) for s in sides)
            totals["change"] = {"income": b.income - a.income, "waived": b.waived - a.waived,
                                "discount": b.discount - a.discount}
        return {"postings": self.postings, "by_tier": by_tier, "totals": totals}

