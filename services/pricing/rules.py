"""The pricing settings of a process, with what is derived from them built once."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from shared.contracts.types import KNOWN_TX_TYPES
from shared.settings import Settings
from shared.settings.pricing import PricingSettings
from services.pricing.domain import PricingEngine


@dataclass(frozen=True)
class Rules:
    pricing: PricingSettings
    engine: PricingEngine
    zone: ZoneInfo
    tier_ranks: dict[str, int]

    @property
    def lowest_tier(self) -> str:
        return min(self.tier_ranks, key=self.tier_ranks.get)

    @property
    def expiry_years(self) -> int:
        return self.pricing.points.expiry_calendar_years


_RULES: dict[int, tuple[Settings, Rules]] = {}


def rules_of(settings: Settings) -> Rules:
    """The pricing rules of these settings, built once per settings object."""
    cached = _RULES.get(id(settings))
    if cached is None or cached[0] is not settings:
        ranks = {t.id: i for i, t in enumerate(settings.tiers)}
        rules = Rules(settings.pricing, PricingEngine(settings.pricing, KNOWN_TX_TYPES),
                      settings.zone, ranks)
        cached = (settings, rules)
        _RULES[id(settings)] = cached
    return cached[1]


def unknown_tier_ids(settings: Settings) -> set[str]:
    """Tier ids the pricing settings name that are not tiers of the bank."""
    return settings.pricing.tier_ids_named() - {t.id for t in settings.tiers}
