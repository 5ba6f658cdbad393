"""Signal triggers and suppression windows (docs/RULES.md, Signals).

Tier ids named here (``min_tier``) must be ids of ``settings.tiers``; the alerts service refuses
to start with one that is not.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from shared.contracts.types import NonNegativeMoney

SIGNAL_TYPES = ("near_upgrade", "vip_outflow", "tier_upgraded", "tier_downgraded", "downgrade_watch",
                "maturity_due", "birthday", "card_expiry")
LAPSING_TYPES = ("vip_outflow", "tier_upgraded", "tier_downgraded", "downgrade_watch")
"""The signal types that lapse when nobody acknowledges them (``expires_after_days``)."""


def _ratio(value: Decimal) -> Decimal:
    if not (Decimal("0") < value <= Decimal("1")):
        raise ValueError("a ratio is above 0 and at most 1")
    return value


class NearUpgrade(BaseModel):
    ratio: Decimal = Decimal("0.90")
    """Raised when AUM is at least this share of the next tier's floor (and below it)."""
    suppress_days: int = Field(default=30, ge=1)
    """Not raised again for the customer until this many business days after the last one."""

    @field_validator("ratio")
    @classmethod
    def _check_ratio(cls, value: Decimal) -> Decimal:
        return _ratio(value)


class VipOutflow(BaseModel):
    min_tier: str = "platinum"
    drop_ratio: Decimal = Decimal("0.80")
    """Raised when AUM falls to this share of its highest value in the window, or below."""
    window_days: int = Field(default=30, ge=1)
    """The highest AUM is taken over this many business days, today included."""
    large_outflow: NonNegativeMoney = Decimal("100000.00")
    """One debit to another bank of at least this amount also raises the signal."""
    suppress_days: int = Field(default=7, ge=1)

    @field_validator("drop_ratio")
    @classmethod
    def _check_ratio(cls, value: Decimal) -> Decimal:
        return _ratio(value)


class MaturityDue(BaseModel):
    days_ahead: list[int] = [30, 7]
    """One signal per product and threshold: the tightest threshold the days left fall within."""
    product_types: list[str] = ["time_deposit", "wealth_product"]

    @field_validator("days_ahead")
    @classmethod
    def _thresholds(cls, value: list[int]) -> list[int]:
        if not value or any(d < 0 for d in value) or len(set(value)) != len(value):
            raise ValueError("days_ahead is a non-empty list of distinct days >= 0")
        return value


class Birthday(BaseModel):
    days_ahead: int = Field(default=7, ge=0)
    min_tier: str = "gold"
    leap_day_in_common_years: Literal["02-28", "03-01"] = "02-28"
    """When a customer born on 29 February is celebrated in a year without one: on the last day
    of their birth month (28 February, before the day has passed) or on 1 March."""


class CardExpiry(BaseModel):
    days_ahead: int = Field(default=60, ge=0)
    product_types: list[str] = ["demand_deposit"]


class Priority(BaseModel):
    """How urgent a signal is, 1 (most urgent) to 5: the type's priority, moved by the
    customer's tier when it was raised (a negative step is more urgent), kept within 1..5."""

    by_type: dict[str, int] = Field(default_factory=lambda: {
        "vip_outflow": 1, "downgrade_watch": 2, "tier_downgraded": 2, "near_upgrade": 2,
        "maturity_due": 3, "tier_upgraded": 3, "card_expiry": 4, "birthday": 4})
    by_tier: dict[str, int] = Field(default_factory=lambda: {"diamond": -1, "private": -1})
    default: int = Field(default=3, ge=1, le=5)
    """A type ``by_type`` leaves out."""

    @field_validator("by_type")
    @classmethod
    def _known_types(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(SIGNAL_TYPES))
        if unknown:
            raise ValueError(f"priority.by_type names {unknown}; the signal types are {list(SIGNAL_TYPES)}")
        if any(not 1 <= p <= 5 for p in value.values()):
            raise ValueError("priorities are 1 (most urgent) to 5")
        return value

    def of(self, signal_type: str, tier: str | None) -> int:
        """>>> Priority().of("vip_outflow", "private"), Priority().of("birthday", "gold")
        (1, 4)
        """
        step = self.by_tier.get(tier, 0) if tier is not None else 0
        return min(5, max(1, self.by_type.get(signal_type, self.default) + step))


class SignalSettings(BaseModel):
    """The signal rules (docs/RULES.md, Signals)."""

    near_upgrade: NearUpgrade = NearUpgrade()
    vip_outflow: VipOutflow = VipOutflow()
    maturity_due: MaturityDue = MaturityDue()
    birthday: Birthday = Birthday()
    card_expiry: CardExpiry = CardExpiry()
    expires_after_days: dict[str, int | None] = Field(
        default_factory=lambda: {t: 7 if t == "vip_outflow" else 30 for t in LAPSING_TYPES})
    """Days an unacknowledged signal of these types stays open (the day raised is the first):
    the daily scan expires it after them. An acknowledged one stays until it is done. A type
    left out (or null) stays open until done."""
    priority: Priority = Priority()
    scan_page_size: int = Field(default=2000, ge=1)
    """Daily scan: candidates handled per transaction (each page is one indexed query)."""

    @field_validator("expires_after_days")
    @classmethod
    def _lapsing(cls, value: dict[str, int | None]) -> dict[str, int | None]:
        unknown = sorted(set(value) - set(LAPSING_TYPES))
        if unknown:
            raise ValueError(f"expires_after_days names {unknown}; the types that lapse unacknowledged are "
                             f"{list(LAPSING_TYPES)}")
        if any(days is not None and days < 1 for days in value.values()):
            raise ValueError("expires_after_days are at least 1 (the day raised)")
        return value

    def lapses_after(self, signal_type: str) -> int | None:
        """The days an unacknowledged signal of this type stays open (None: until done)."""
        return self.expires_after_days.get(signal_type)
