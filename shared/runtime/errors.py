"""How the runtime tells a bad event from a passing outage."""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from shared.bus.base import BusUnavailable


class Rejected(Exception):
    """A handler's verdict that an event can never be applied (e.g. an account that belongs to
    another customer). The event goes to the dead-letter topic with this reason."""


_RETRYABLE_SQLSTATES = {"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "08000", "08003",
                        "08006", "08001", "08004", "53300"}


def is_retryable(exc: BaseException) -> bool:
    """True for outages that pass (database or bus down, lock conflicts): retry, never drop."""
    if isinstance(exc, (BusUnavailable, ConnectionError, OSError, asyncio.TimeoutError,
                        OperationalError, InterfaceError)):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if code in _RETRYABLE_SQLSTATES:
            return True
        text = str(exc.orig).lower()
        return "connection" in text and ("closed" in text or "refused" in text or "lost" in text)
    name = type(exc).__name__
    return name in {"ConnectionDoesNotExistError", "CannotConnectNowError",
                    "ConnectionFailureError", "TooManyConnectionsError"}
