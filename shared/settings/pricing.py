"""Fee schedule, tier benefits, contribution discount, points and the product catalogue
(docs/RULES.md: Fees and tier benefits, Points, Products by tier).

Everything a bank changes about prices is here, as data: a new fee, a waiver, a number of free
uses, a discount or a product is a change to the YAML file, never to code. Tier ids named here
(benefit keys, ``min_tier``, ``priority_tiers``) must be ids of ``settings.tiers``; the pricing
service logs an error at start-up for one that is not.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from shared.contracts.types import NonNegativeAmount, PositiveMoney, ProductType

RiskLevelName = Literal["C1", "C2", "C3", "C4", "C5"]


class FeeMatch(BaseModel):
    """Which postings a fee applies to; every condition given must hold."""

    tx_types: list[str] = Field(min_length=1)
    channels: list[str] | None = None
    """``None``: any channel."""
    counterparty: Literal["own", "other", "any"] = "any"
    """``own``: ``counterparty_bank`` is null (or one of ``own_bank_codes``); ``other``: another bank
    (``shared.banks.is_other_bank``)."""
    cross_region: bool | None = None
    """``None``: either."""


class FeeRule(BaseModel):
    """One line of the fee schedule. The first line whose ``match`` fits a posting prices it.

    Periodic fees (``period`` other than ``transaction``) are charged by core banking with a
    posting of their own ``tx_type`` once per period; pricing prices that posting from this line
    (its ``amount`` in the posting is not used).
    """

    id: str
    name: str
    kind: Literal["fixed", "percent"]
    amount: NonNegativeAmount = Decimal("0.00")
    """``fixed``: the fee."""
    rate: Decimal = Field(default=Decimal("0"), ge=0, le=1)
    """``percent``: the share of the posting's amount (``0.005`` is 0.5 %)."""
    minimum: NonNegativeAmount | None = None
    maximum: NonNegativeAmount | None = None
    period: Literal["transaction", "month", "quarter", "year"] = "transaction"
    domestic: bool = True
    """Domestic fees are the ones ``domestic_only`` benefits (diamond's) waive."""
    match: FeeMatch

    @model_validator(mode="after")
    def _bounds(self) -> FeeRule:
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"fee {self.id}: minimum is above maximum")
        return self


class Benefit(BaseModel):
    """One tier benefit on one fee (``fee: "*"`` for every fee, or every domestic fee with
    ``domestic_only``). A tier's benefits apply in the order listed, each to what is left.

    - ``waive``: waives ``percent`` of what is left (100, the default, is a full waiver);
    - ``free_uses``: the first ``count`` uses of the fee in a calendar month are free;
    - ``discount``: ``percent`` off what is left.
    """

    id: str
    fee: str
    kind: Literal["waive", "free_uses", "discount"]
    count: int = Field(default=0, ge=0)
    percent: Decimal | None = Field(default=None, gt=0, le=100)
    domestic_only: bool = False

    @model_validator(mode="after")
    def _complete(self) -> Benefit:
        if self.kind == "free_uses" and self.count < 1:
            raise ValueError(f"benefit {self.id}: free_uses needs count >= 1")
        if self.kind == "discount" and self.percent is None:
            raise ValueError(f"benefit {self.id}: a discount needs percent")
        return self

    @property
    def share(self) -> Decimal:
        """The share of what is left that a waiver or discount takes off (1 = all)."""
        return (self.percent if self.percent is not None else Decimal("100")) / 100


class ContributionSettings(BaseModel):
    """Contribution score (贡献度) = ``aum_weight`` x average AUM of the last 12 closed months
    + ``fee_weight`` x fees paid in the last ``window_months`` calendar months; a score at or
    above ``threshold`` takes ``discount_percent`` off what is left after the tier benefit."""

    aum_weight: Decimal = Field(default=Decimal("0.01"), ge=0)
    fee_weight: Decimal = Field(default=Decimal("1"), ge=0)
    threshold: NonNegativeAmount = Decimal("20000.00")
    discount_percent: Decimal = Field(default=Decimal("20"), ge=0, le=100)
    window_months: int = Field(default=12, ge=1, le=120)


class PointsEarnRule(BaseModel):
    """``points`` per whole ``per_amount`` of a posting's amount, for postings of ``tx_types``
    at or above ``minimum_amount``. ``product_types`` and ``direction`` pick the leg of a
    two-legged transaction that earns (a purchase debits the current account and credits the
    product: only one of the two may earn)."""

    id: str
    tx_types: list[str] = Field(min_length=1)
    per_amount: PositiveMoney
    points: int = Field(default=1, ge=1)
    minimum_amount: NonNegativeAmount = Decimal("0.00")
    product_types: list[ProductType] | None = None
    direction: Literal["debit", "credit"] | None = None


class PointsSettings(BaseModel):
    earn: list[PointsEarnRule]
    points_per_yuan: int = Field(default=100, ge=1)
    """How many points offset 1.00 CNY of fees."""
    expiry_calendar_years: int = Field(default=2, ge=1, le=50)
    """Points earned in calendar year Y expire at the end of year Y + this - 1 (the default 2:
    at the end of the year after the one they were earned in)."""


class Product(BaseModel):
    """A product of the catalogue and who may buy it.

    From ``available_from`` (if given) to ``priority_until`` (inclusive) only customers of
    ``priority_tiers`` may buy it (a priority purchase window for a hot product); afterwards
    everyone who meets ``min_tier`` and ``min_risk_level``.
    """

    code: str
    name: str
    min_tier: str = "mass"
    min_risk_level: RiskLevelName | None = None
    """The customer's risk preference (C1 cautious ... C5 aggressive) must be at least this."""
    private_only: bool = False
    priority_tiers: list[str] = Field(default_factory=list)
    available_from: date | None = None
    priority_until: date | None = None

    @model_validator(mode="after")
    def _window(self) -> Product:
        if self.priority_until is not None and not self.priority_tiers:
            raise ValueError(f"product {self.code}: priority_until needs priority_tiers")
        if self.available_from and self.priority_until and self.available_from > self.priority_until:
            raise ValueError(f"product {self.code}: available_from is after priority_until")
        return self


class PricingSettings(BaseModel):
    fees: list[FeeRule]
    benefits: dict[str, list[Benefit]] = Field(default_factory=dict)
    """Tier id -> the tier's benefits, in the order they apply."""
    contribution: ContributionSettings = ContributionSettings()
    points: PointsSettings
    products: list[Product] = Field(default_factory=list)
    own_bank_codes: list[str] = Field(default_factory=list)
    """Bank codes that mean this bank when core banking fills ``counterparty_bank`` with one
    (``shared.banks.is_other_bank``: every service that tells another bank's business from this
    bank's reads them here)."""

    @model_validator(mode="after")
    def _references(self) -> PricingSettings:
        fee_ids = [f.id for f in self.fees]
        if len(set(fee_ids)) != len(fee_ids):
            raise ValueError("fee ids must be unique")
        benefit_ids: list[str] = []
        for tier, benefits in self.benefits.items():
            for b in benefits:
                if b.fee != "*" and b.fee not in fee_ids:
                    raise ValueError(f"benefit {b.id} of {tier} names unknown fee {b.fee}")
                benefit_ids.append(b.id)
        if len(set(benefit_ids)) != len(benefit_ids):
            raise ValueError("benefit ids must be unique")
        codes = [p.code for p in self.products]
        if len(set(codes)) != len(codes):
            raise ValueError("product codes must be unique")
        earn_ids = [r.id for r in self.points.earn]
        if len(set(earn_ids)) != len(earn_ids):
            raise ValueError("points earn rule ids must be unique")
        return self

    def tier_ids_named(self) -> set[str]:
        """Every tier id this section refers to (checked against ``settings.tiers``)."""
        named = set(self.benefits)
        for p in self.products:
            named.add(p.min_tier)
            named.update(p.priority_tiers)
        return named
