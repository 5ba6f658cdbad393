"""Signal triggers and suppression windows (DOMAIN.md, Signals)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel

from shared.contracts.types import NonNegativeMoney


class NearUpgrade(BaseModel):
    ratio: Decimal = Decimal("0.90")
    suppress_days: int = 30


class VipOutflow(BaseModel):
    min_tier: str = "platinum"
    drop_ratio: Decimal = Decimal("0.80")
    window_days: int = 30
    large_outflow: NonNegativeMoney = Decimal("100000.00")
    suppress_days: int = 7


class MaturityDue(BaseModel):
    days_ahead: list[int] = [30, 7]
    product_types: list[str] = ["time_deposit", "wealth_product"]


class Birthday(BaseModel):
    days_ahead: int = 7
    min_tier: str = "gold"


class CardExpiry(BaseModel):
    days_ahead: int = 60
    product_types: list[str] = ["demand_deposit"]


class SignalSettings(BaseModel):
    near_upgrade: NearUpgrade = NearUpgrade()
    vip_outflow: VipOutflow = VipOutflow()
    maturity_due: MaturityDue = MaturityDue()
    birthday: Birthday = Birthday()
    card_expiry: CardExpiry = CardExpiry()
