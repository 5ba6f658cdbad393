"""The workbench: where it finds the API and how it behaves in the browser."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class WorkbenchSettings(BaseModel):
    api_url: str = "http://127.0.0.1:8000"
    """Base URL of Strata's public HTTP API for ``strata serve workbench`` (the gateway in the
    distributed mode). ``strata run`` ignores it: there the workbench calls the API in-process."""
    language: Literal["zh-CN", "en"] = "zh-CN"
    """The language of a browser that has not chosen one."""
    poll_seconds: int = Field(default=5, ge=1, le=300)
    """How often an open RM home asks whether new signals arrived."""
    page_size: int = Field(default=50, ge=1, le=500)
    """Rows per page of the book, segment members and the audit log."""
    secure_cookies: bool = False
    """Mark the sign-in cookies ``Secure`` (only sent over HTTPS): set it behind a TLS gateway."""
    api_timeout_s: float = Field(default=30.0, gt=0)
