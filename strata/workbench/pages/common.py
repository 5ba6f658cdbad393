"""Reads several pages need: the business date, signal ordering."""

from __future__ import annotations

from datetime import date, datetime

from strata.workbench.api import Caller

# How urgent a signal type is when the API does not say (1 most urgent).
DEFAULT_PRIORITY = {"vip_outflow": 1, "downgrade_watch": 2, "tier_downgraded": 2, "maturity_due": 2,
                    "near_upgrade": 3, "tier_upgraded": 4, "birthday": 4, "card_expiry": 5}


async def clock_today(api: Caller) -> date | None:
    """The business date of the API's clock (the simulated one in ``strata run``), if it has one."""
    clock = await api.optional("/v1/clock")
    try:
        return date.fromisoformat(clock["today"]) if clock and clock.get("today") else None
    except (TypeError, ValueError):
        return None


async def business_today(api: Caller, settings) -> date:
    """The API clock's business date, else the calendar date in the bank's zone."""
    return await clock_today(api) or datetime.now(settings.zone).date()


def priority_of(signal: dict) -> int:
    value = signal.get("priority")
    return value if isinstance(value, int) else DEFAULT_PRIORITY.get(signal.get("signal_type"), 3)


def by_priority(signals: list[dict]) -> list[dict]:
    """Most urgent first; within a priority, the newest first."""
    newest_first = sorted(signals, key=lambda s: s.get("raised_at") or "", reverse=True)
    return sorted(newest_first, key=priority_of)
