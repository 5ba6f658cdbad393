"""Lists are ``{"items": [...], "next": cursor-or-null}``; a cursor is an opaque token."""

from __future__ import annotations

import base64
import json
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from shared.problems import Problem

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next: str | None = None


def encode_cursor(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, default=str).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except Exception as exc:
        raise Problem(422, "Invalid cursor", "The cursor is not one this API returned.") from exc
    if not isinstance(value, dict):
        raise Problem(422, "Invalid cursor", "The cursor is not one this API returned.")
    return value
