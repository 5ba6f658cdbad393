"""Segment templates shipped with Strata (DOMAIN.md capability 7)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class SegmentTemplate(BaseModel):
    name: str
    description: str = ""
    filter: dict[str, Any]
    parameters: dict[str, Any] = Field(default_factory=dict)


class ProfileSettings(BaseModel):
    segments: list[SegmentTemplate] = Field(default_factory=list)
