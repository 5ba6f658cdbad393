"""The tier ladder: the bank's tiers from the lowest floor up, as every service's rules need
them (tiering's policy, the signal rules, assignment's levels, pricing's benefits and products).

Built once per settings object (``Settings.tiers_ladder``), never per event.

>>> from decimal import Decimal
>>> ladder = TierLadder([Tier("mass", Decimal(0)), Tier("gold", Decimal(50000))])
>>> ladder.tier_for(Decimal("50000.00")).id, ladder.next_above("mass").id
('gold', 'gold')
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Sequence


@dataclass(frozen=True)
class Tier:
    id: str
    floor: Decimal
    downgrade_after_months: int = 3
    rank: int = 0
    name: str = ""
    rm_level: str | None = None


class TierLadder:
    """The tiers ordered by floor; ``rank`` 0 is the lowest."""

    def __init__(self, tiers: Sequence[Tier]) -> None:
        ordered = sorted(tiers, key=lambda t: t.floor)
        self.tiers = [replace(t, rank=i) for i, t in enumerate(ordered)]
        self.by_id = {t.id: t for t in self.tiers}
        self.ids = [t.id for t in self.tiers]

    @classmethod
    def from_rules(cls, rules: Sequence) -> TierLadder:
        """From the settings' tier table (``settings.tiers``)."""
        return cls([Tier(r.id, r.floor, r.downgrade_after_months, name=getattr(r, "name", ""),
                         rm_level=getattr(r, "rm_level", None)) for r in rules])

    @property
    def lowest(self) -> Tier:
        return self.tiers[0]

    @property
    def top(self) -> Tier:
        return self.tiers[-1]

    def knows(self, tier_id: str) -> bool:
        return tier_id in self.by_id

    def step(self, tier_id: str) -> Tier:
        """The tier of this id; an id the bank no longer has counts as the lowest tier."""
        return self.by_id.get(tier_id, self.tiers[0])

    def rank(self, tier_id: str) -> int:
        return self.step(tier_id).rank

    def tier_for(self, amount: Decimal) -> Tier:
        """The highest tier whose floor ``amount`` reaches."""
        found = self.tiers[0]
        for tier in self.tiers:
            if amount >= tier.floor:
                found = tier
            else:
                break
        return found

    def next_above(self, tier_id: str) -> Tier | None:
        rank = self.rank(tier_id)
        return self.tiers[rank + 1] if rank + 1 < len(self.tiers) else None

    def at_least(self, tier_id: str, minimum: str) -> bool:
        return self.rank(tier_id) >= self.rank(minimum)

    def ids_at_least(self, minimum: str) -> list[str]:
        return [t.id for t in self.tiers if t.rank >= self.rank(minimum)]

    def higher(self, a: str, b: str) -> str:
        """The higher of two tiers."""
        return a if self.rank(a) >= self.rank(b) else b

    def floors(self) -> dict[str, Decimal]:
        return {t.id: t.floor for t in self.tiers}
