"""Money as the bank counts it: ``Decimal`` with two places in code, integer cents at rest.

Storing cents as integers keeps sums exact in both PostgreSQL and SQLite (which has no decimal
type) and lets the database aggregate without floats.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
# Fifteen integer digits is far beyond any single customer's holdings and keeps every value inside
# a signed 64-bit count of cents even when a branch's book is summed.
MONEY_PATTERN = re.compile(r"^-?\d{1,15}(\.\d{1,2})?$")


class MoneyError(ValueError):
    """A value that is not an amount of money with at most two decimal places."""


def parse_money(value: object) -> Decimal:
    """Parse a contract amount (a JSON string such as ``"1234.50"``) into a two-place Decimal.

    >>> parse_money("12.5")
    Decimal('12.50')
    """
    if isinstance(value, Decimal):
        text = format(value, "f")
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise MoneyError("an amount must be a decimal string such as \"1234.50\"")
    if not MONEY_PATTERN.match(text):
        raise MoneyError(f"{text[:40]!r} is not an amount with at most two decimal places")
    try:
        return Decimal(text).quantize(CENT)
    except InvalidOperation as exc:  # pragma: no cover - the pattern already guards this
        raise MoneyError(str(exc)) from exc


def round_money(value: Decimal) -> Decimal:
    """Round half up to the cent, as banks do for fees and averages.

    >>> round_money(Decimal("2.005"))
    Decimal('2.01')
    """
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def to_cents(value: Decimal) -> int:
    """Exact integer cents of a two-place amount; refuses fractions of a cent."""
    cents = value * 100
    if cents != cents.to_integral_value():
        raise MoneyError(f"{value} has fractions of a cent")
    return int(cents)


def from_cents(cents: int) -> Decimal:
    """The two-place Decimal of an integer number of cents."""
    return (Decimal(int(cents)) / 100).quantize(CENT)


def format_money(value: Decimal) -> str:
    """The contract's string form of an amount: always two places."""
    return format(value.quantize(CENT), "f")
