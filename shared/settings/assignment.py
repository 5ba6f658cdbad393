"""RM levels, which tier each level serves, book weights and service centres."""

from __future__ import annotations

from pydantic import BaseModel, Field


class AssignmentSettings(BaseModel):
    levels: list[str] = ["L1", "L2", "L3", "L4"]
    primary_levels: dict[str, list[str]] = Field(
        default_factory=lambda: {"gold": ["L1"], "platinum": ["L2"], "diamond": ["L3"], "private": ["L4"]}
    )
    """Which RM levels may be a tier's primary RM."""
    backup_levels: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "gold": ["L1", "L2"], "platinum": ["L2", "L1", "L3"], "diamond": ["L3", "L2", "L4"],
            "private": ["L4", "L3"],
        }
    )
    weights: dict[str, int] = Field(
        default_factory=lambda: {"gold": 1, "platinum": 2, "diamond": 4, "private": 8}
    )
    """A customer's weight in an RM's book, by tier."""
    centres: dict[str, str] = Field(default_factory=dict)
    """Tier -> branch id of the wealth or private-banking centre that serves it instead of the
    home branch (e.g. ``private: PB-CENTRE``)."""
    default_capacity: int = 400
