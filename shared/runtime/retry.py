"""Waiting out a passing outage: exponential backoff between attempts."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial: float
    maximum: float
    current: float = field(init=False)

    def __post_init__(self) -> None:
        self.current = self.initial

    async def wait(self) -> None:
        await asyncio.sleep(self.current)
        self.current = min(self.maximum, self.current * 2)

    def reset(self) -> None:
        self.current = self.initial

    @classmethod
    def of(cls, settings) -> "Backoff":
        """The runtime's backoff from the settings (``runtime.retry_initial_ms`` to ``retry_max_ms``)."""
        return cls(settings.runtime.retry_initial_ms / 1000, settings.runtime.retry_max_ms / 1000)
