"""How the runtime tells a bad event from a passing outage."""

from __future__ import annotations

import asyncio
from typing import Iterator

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from shared.bus.base import BusUnavailable


class Rejected(Exception):
    """A handler's verdict that an event can never be applied (e.g. an account that belongs to
    another customer). The event goes to the dead-letter topic with this reason."""


_RETRYABLE_SQLSTATES = {"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "08000", "08003",
                        "08006", "08001", "08004", "53300"}


_RETRYABLE_NAMES = {"ConnectionDoesNotExistError", "CannotConnectNowError", "ConnectionFailureError",
                    "TooManyConnectionsError", "InvalidCatalogNameError", "InvalidPasswordError",
                    "InvalidAuthorizationSpecificationError", "KafkaConnectionError"}


def is_retryable(exc: BaseException) -> bool:
    """True for outages that pass (database or bus down, lock conflicts, a database missing or
    refusing us): the event is not at fault, the environment is, so retry and never dead-letter.
    Looks through the chain of causes, since drivers wrap the error that matters. An overflow is
    never an outage (:func:`is_data_fault`), whatever class the driver files it under."""
    causes = list(_causes(exc))
    return not any(_data_fault_one(e) for e in causes) and any(_retryable_one(e) for e in causes)


def is_data_fault(exc: BaseException) -> bool:
    """True for a value the arithmetic or the database cannot hold: Python's ``OverflowError``
    or a decimal overflow, SQLSTATE class 22 (PostgreSQL: ``numeric_value_out_of_range``...),
    SQLite's ``integer overflow`` (which pysqlite raises as an OperationalError, the class of
    outages). Retrying changes nothing: the event is dead-lettered, the request answered 500."""
    return any(_data_fault_one(e) for e in _causes(exc))


def _data_fault_one(exc: BaseException) -> bool:
    if isinstance(exc, ArithmeticError):  # OverflowError, decimal.Overflow / InvalidOperation
        return True
    code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if isinstance(code, str) and code.startswith("22"):
        return True
    return type(exc).__module__ == "sqlite3" and "overflow" in str(exc).lower()


def _causes(exc: BaseException, depth: int = 8) -> Iterator[BaseException]:
    """``exc`` and what it wraps: the driver's error under SQLAlchemy's (``orig``), then the
    chain of causes and contexts, at most ``depth`` deep."""
    current: BaseException | None = exc
    for _ in range(depth):
        if current is None:
            return
        yield current
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__


def _retryable_one(exc: BaseException) -> bool:
    if isinstance(exc, (BusUnavailable, ConnectionError, OSError, asyncio.TimeoutError,
                        OperationalError, InterfaceError)):
        return True
    if type(exc).__name__ in _RETRYABLE_NAMES:
        return True
    code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if isinstance(code, str) and (code in _RETRYABLE_SQLSTATES or code[:2] in ("08", "28", "53", "57")
                                  or code == "3D000"):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        text = str(exc.orig).lower()
        return "connection" in text and ("closed" in text or "refused" in text or "lost" in text)
    return False


def is_conflict(exc: BaseException) -> bool:
    """True for a unique violation (SQLSTATE 23505): most often two instances inserting the
    same row at once (a customer seen first on two topics whose partitions two instances hold).
    Run again, the batch finds the row the other one committed; a conflict that persists is a
    fault of the event or the handler, and the runtime dead-letters it after a few retries."""
    return any((getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)) == "23505"
               or type(e).__name__ == "UniqueViolationError" for e in _causes(exc))
