"""RM levels, which tier each level serves, book weights, capacities and service centres."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator


class AssignmentSettings(BaseModel):
    levels: list[str] = ["L1", "L2", "L3", "L4"]
    primary_levels: dict[str, list[str]] = Field(
        default_factory=lambda: {"gold": ["L1"], "platinum": ["L2"], "diamond": ["L3"], "private": ["L4"]}
    )
    """Which RM levels may be a tier's primary RM, most preferred first. A tier not listed (mass)
    has no named RM: its customers stay in the branch pool."""
    backup_levels: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "gold": ["L1", "L2"], "platinum": ["L2", "L1", "L3"], "diamond": ["L3", "L2", "L4"],
            "private": ["L4", "L3"],
        }
    )
    """Which RM levels may be a tier's backup RM (A/B角): the same or an adjacent level, most
    preferred first."""
    weights: dict[str, int] = Field(
        default_factory=lambda: {"gold": 1, "platinum": 2, "diamond": 4, "private": 8}
    )
    """A customer's weight in an RM's book, by tier."""
    centres: dict[str, str] = Field(default_factory=dict)
    """Tier -> branch id of the wealth or private-banking centre that serves it instead of the
    home branch (e.g. ``private: PB-CENTRE``)."""
    default_capacity: int = Field(default=400, ge=0)
    """The weighted book an RM may carry when the registry gives no capacity."""
    default_capacity_by_level: dict[str, int] = Field(default_factory=dict)
    """Per-level override of ``default_capacity`` (e.g. ``L4: 320``)."""
    page_size: int = Field(default=50, ge=1)
    max_page_size: int = Field(default=500, ge=1)

    @model_validator(mode="after")
    def _levels_known(self) -> AssignmentSettings:
        known = set(self.levels)
        for name, table in (("primary_levels", self.primary_levels), ("backup_levels", self.backup_levels)):
            for tier, levels in table.items():
                unknown = [lv for lv in levels if lv not in known]
                if unknown:
                    raise ValueError(f"assignment.{name}.{tier} names unknown levels {unknown}")
        unknown = [lv for lv in self.default_capacity_by_level if lv not in known]
        if unknown:
            raise ValueError(f"assignment.default_capacity_by_level names unknown levels {unknown}")
        missing = [t for t in self.primary_levels if self.primary_levels[t] and t not in self.weights]
        if missing:
            raise ValueError(f"assignment.weights has no weight for {missing}")
        if any(w < 1 for w in self.weights.values()):
            raise ValueError("assignment.weights must be at least 1")
        if any(c < 0 for c in self.default_capacity_by_level.values()):
            raise ValueError("assignment.default_capacity_by_level must not be negative")
        return self
