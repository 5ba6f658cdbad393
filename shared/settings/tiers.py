"""Tier table and tiering switches (docs/RULES.md, Tiers)."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from shared.contracts.types import NonNegativeMoney


class TierRule(BaseModel):
    id: str
    name: str
    floor: NonNegativeMoney
    downgrade_after_months: int = Field(default=3, ge=1, le=24)
    rm_level: str | None = None


class TieringSettings(BaseModel):
    household_aggregation: bool = False
    """Tier a household's members on the household's combined AUM instead of their own."""


def check_tier_order(tiers: list[TierRule]) -> list[TierRule]:
    if not tiers:
        raise ValueError("at least one tier is needed")
    floors = [t.floor for t in tiers]
    if floors != sorted(floors) or len(set(floors)) != len(floors):
        raise ValueError("tiers must be listed from the lowest floor up, with distinct floors")
    if floors[0] != 0:
        raise ValueError("the lowest tier must have floor 0")
    if len({t.id for t in tiers}) != len(tiers):
        raise ValueError("tier ids must be unique")
    return tiers


class TierTable(BaseModel):
    tiers: list[TierRule]

    @model_validator(mode="after")
    def _ordered(self) -> TierTable:
        check_tier_order(self.tiers)
        return self
