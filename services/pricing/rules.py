"""The pricing rules of a settings object, with what is derived from them: built once for a
consumer's batch (``PricingState.load``) or an API call, from settings that never change under
it, so nothing is cached across settings and nothing can go stale."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from shared.contracts.types import KNOWN_TX_TYPES
from shared.settings import Settings
from shared.settings.pricing import PricingSettings
from shared.tiers import TierLadder
from services.pricing.domain import PricingEngine


@dataclass(frozen=True)
class Rules:
    pricing: PricingSettings
    engine: PricingEngine
    zone: ZoneInfo
    ladder: TierLadder
    tier_ranks: dict[str, int]
    free_use_benefits: frozenset[str]
    """The ids of every tier's free-use benefits: a stored fee whose rules name one was a free use."""

    @classmethod
    def of(cls, settings: Settings) -> Rules:
        ladder = settings.tier_ladder
        return cls(settings.pricing, PricingEngine(settings.pricing, KNOWN_TX_TYPES), settings.zone, ladder,
                   {t.id: t.rank for t in ladder.tiers},
                   frozenset(b.id for benefits in settings.pricing.benefits.values() for b in benefits
                             if b.kind == "free_uses"))

    @property
    def lowest_tier(self) -> str:
        return self.ladder.lowest.id

    @property
    def expiry_years(self) -> int:
        return self.pricing.points.expiry_calendar_years


def unknown_tier_ids(settings: Settings) -> set[str]:
    """Tier ids the pricing settings name that are not tiers of the bank."""
    return settings.pricing.tier_ids_named() - {t.id for t in settings.tiers}
