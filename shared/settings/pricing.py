"""Fee schedule, tier benefits, contribution discount, points and the product catalogue."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from shared.contracts.types import NonNegativeMoney


class FeeMatch(BaseModel):
    """Which postings a fee applies to."""

    tx_types: list[str]
    channels: list[str] | None = None
    counterparty: Literal["own", "other", "any"] = "any"
    cross_region: bool | None = None


class FeeRule(BaseModel):
    id: str
    name: str
    kind: Literal["fixed", "percent"]
    amount: NonNegativeMoney = Decimal("0.00")
    rate: Decimal = Decimal("0")
    minimum: NonNegativeMoney | None = None
    maximum: NonNegativeMoney | None = None
    period: Literal["transaction", "month", "quarter", "year"] = "transaction"
    domestic: bool = True
    match: FeeMatch


class Benefit(BaseModel):
    """One tier benefit: ``fee`` is a fee id or ``"*"`` (with ``domestic_only``) for all fees."""

    id: str
    fee: str
    kind: Literal["waive", "free_uses", "discount"]
    count: int = 0
    percent: Decimal = Decimal("0")
    domestic_only: bool = False


class ContributionSettings(BaseModel):
    aum_weight: Decimal = Decimal("0.01")
    fee_weight: Decimal = Decimal("1")
    threshold: NonNegativeMoney = Decimal("20000.00")
    discount_percent: Decimal = Decimal("20")


class PointsEarnRule(BaseModel):
    id: str
    tx_types: list[str]
    per_amount: NonNegativeMoney
    points: int = 1
    minimum_amount: NonNegativeMoney = Decimal("0.00")


class PointsSettings(BaseModel):
    earn: list[PointsEarnRule]
    points_per_yuan: int = 100
    expiry_calendar_years: int = 2


class Product(BaseModel):
    code: str
    name: str
    min_tier: str = "mass"
    min_risk_level: str | None = None
    private_only: bool = False
    priority_tiers: list[str] = Field(default_factory=list)
    priority_until: str | None = None


class PricingSettings(BaseModel):
    fees: list[FeeRule]
    benefits: dict[str, list[Benefit]]
    contribution: ContributionSettings = ContributionSettings()
    points: PointsSettings
    products: list[Product] = Field(default_factory=list)
