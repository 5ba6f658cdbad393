"""The customer base, segment templates (数据提取模板) and branch reports (docs/RULES.md:
Segments, Branch reports).

A segment template is a named filter over a whitelist of fields, with parameters: the filter
language is described in ``services/profile/filters.py``. Shipped templates are configuration;
analysts add their own with ``POST /v1/segments``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, model_validator

SEGMENT_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.\-]{0,63}$"


class SegmentTemplate(BaseModel):
    name: str = Field(pattern=SEGMENT_NAME_PATTERN)
    description: str = Field(default="", max_length=500)
    filter: dict[str, Any]
    """``{"all": [...]}``, ``{"any": [...]}``, ``{"not": {...}}`` or one condition
    ``{"field": ..., "op": ..., "value": ...}``; a value may be ``{"param": name}``."""
    parameters: dict[str, Any] = Field(default_factory=dict)
    """Default values of the parameters; ``?name=value`` on the members call overrides them."""


class ProfileSettings(BaseModel):
    segments: list[SegmentTemplate] = Field(default_factory=list)
    products: dict[str, str] = Field(default_factory=dict)
    """The product catalogue: product code -> the name the customer 360 shows with a holding
    (a code it does not list shows none)."""
    page_size: int = Field(default=100, ge=1)
    max_page_size: int = Field(default=1000, ge=1)
    export_batch_rows: int = Field(default=1000, ge=10, le=100_000)
    """Rows fetched per round trip while a segment streams as CSV: the export's memory bound."""
    max_filter_conditions: int = Field(default=50, ge=1)
    max_filter_depth: int = Field(default=6, ge=1)
    max_list_values: int = Field(default=500, ge=1)
    """Most values an ``in`` / ``contains_any`` list may carry."""

    @model_validator(mode="after")
    def _unique_names(self) -> ProfileSettings:
        names = [s.name for s in self.segments]
        if len(set(names)) != len(names):
            raise ValueError("segment template names must be unique")
        if self.page_size > self.max_page_size:
            raise ValueError("page_size must not exceed max_page_size")
        return self
