"""The distribution a simulated bank produced: customers and AUM by tier band, the share of the
50,000–1,000,000 band, and events by type."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from shared.money import from_cents
from strata.simulator.feed import Feed

REFERENCE_BAND = (5_000_000, 100_000_000)
"""In cents: the 50,000–1,000,000 CNY band, which in one commercial bank held 9 % of the customers
and brought 72 % of the contribution; the synthetic population is calibrated on it."""


@dataclass(frozen=True)
class Band:
    tier: str
    floor: Decimal
    customers: int
    aum: Decimal


@dataclass(frozen=True)
class Distribution:
    bands: list[Band]
    customers: int
    aum: Decimal
    reference_customers: float
    """Share of customers in the 50,000–1,000,000 band."""
    reference_aum: float
    """Share of AUM held by that band."""


def distribution(feed: Feed) -> Distribution:
    """Customers and AUM by the tier band their current AUM falls in (tier floors from the
    settings)."""
    tiers = feed.settings.tiers
    floors = feed.floors
    counts = [0] * len(floors)
    sums = [0] * len(floors)
    low, high = REFERENCE_BAND
    in_band = band_aum = 0
    for aum in feed.ledger.aum:
        band = 0
        for i, floor in enumerate(floors):
            if aum >= floor:
                band = i
        counts[band] += 1
        sums[band] += aum
        if low <= aum < high:
            in_band += 1
            band_aum += aum
    total = sum(sums)
    customers = feed.customers
    return Distribution(
        bands=[Band(t.id, t.floor, n, from_cents(s)) for t, n, s in zip(tiers, counts, sums)],
        customers=customers, aum=from_cents(total),
        reference_customers=in_band / customers if customers else 0.0,
        reference_aum=band_aum / total if total else 0.0,
    )


def render(feed: Feed, expected: dict[str, int] | None = None) -> str:
    dist = distribution(feed)
    lines = ["Customers and AUM by tier band (AUM at the end of the run):",
             f"  {'band':<10} {'floor':>14} {'customers':>11} {'share':>7} {'AUM (CNY)':>20} {'share':>7}"]
    for band in dist.bands:
        lines.append(
            f"  {band.tier:<10} {band.floor:>14,.0f} {band.customers:>11,} "
            f"{_pct(band.customers, dist.customers):>7} {band.aum:>20,.2f} {_pct(band.aum, dist.aum):>7}")
    lines.append(f"  {'total':<10} {'':>14} {dist.customers:>11,} {'':>7} {dist.aum:>20,.2f}")
    lines.append(f"The 50,000–1,000,000 band: {dist.reference_customers:.1%} of customers, "
                 f"{dist.reference_aum:.1%} of AUM.")
    if expected:
        lines.append("Tiers the feed leads to (fast up; downgrades only where month-end closes ran): "
                     + ", ".join(f"{tier} {n:,}" for tier, n in expected.items()))
    lines.append("Events by type:")
    ce_types = {k: v for k, v in feed.counts.items() if "." in k}
    tx_types = {k: v for k, v in feed.counts.items() if "." not in k}
    for name, count in sorted(ce_types.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {name:<24} {count:>12,}")
        if name == "bank.posting.v1":
            for tx, n in sorted(tx_types.items(), key=lambda kv: -kv[1]):
                lines.append(f"    {tx:<22} {n:>12,}")
    return "\n".join(lines)


def _pct(part, whole) -> str:
    return f"{(part / whole if whole else 0):.1%}"
