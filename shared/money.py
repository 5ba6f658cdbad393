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
# a signed 64-bit count of cents even when a branch's book is summed. ASCII digits only: Python's
# \d (and Decimal) also read fullwidth and Arabic-Indic digits, which no core system sends.
MONEY_PATTERN = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,2})?", re.ASCII)

DEFAULT_MAX_AMOUNT = Decimal("1000000000000.00")
"""The largest amount or balance accepted from outside (``limits.max_amount``): 10^12 CNY."""
_limit = {"max_amount": DEFAULT_MAX_AMOUNT}


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
        text = value  # not stripped: " 12.50" is not what the contract says an amount is
    else:
        raise MoneyError("an amount must be a decimal string such as \"1234.50\"")
    if not MONEY_PATTERN.fullmatch(text):
        raise MoneyError(f"{text[:40]!r} is not an amount with at most two decimal places")
    try:
        return Decimal(text).quantize(CENT)
    except InvalidOperation as exc:  # pragma: no cover - the pattern already guards this
        raise MoneyError(str(exc)) from exc


def max_amount() -> Decimal:
    """The largest amount or balance this process accepts from outside."""
    return _limit["max_amount"]


def set_max_amount(value: Decimal) -> None:
    """Apply ``limits.max_amount`` (the runtime does it once, from the settings)."""
    if value <= 0:
        raise ValueError("limits.max_amount must be positive")
    _limit["max_amount"] = Decimal(value).quantize(CENT)


def within_limit(value: Decimal) -> Decimal:
    """``value`` if it is no further from zero than :func:`max_amount`: an amount or balance
    beyond any a customer can hold is a fault at the source, refused before it is summed into
    AUM, averages and branch totals (where it could overflow the database's integers).

    >>> within_limit(Decimal("1000000000000.01"))
    Traceback (most recent call last):
    ...
    shared.money.MoneyError: 1000000000000.01 is above the largest amount accepted, 1000000000000.00 (limits.max_amount)
    """
    limit = max_amount()
    if abs(value) > limit:
        raise MoneyError(f"{value} is above the largest amount accepted, {limit} (limits.max_amount)")
    return value


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
    """The two-place Decimal of an integer number of cents (exact: a product with 0.01 keeps
    the two places, at half the cost of a division and a rounding).

    >>> from_cents(12345), from_cents(-5), from_cents(0)
    (Decimal('123.45'), Decimal('-0.05'), Decimal('0.00'))
    """
    return Decimal(int(cents)) * CENT


def format_money(value: Decimal) -> str:
    """The contract's string form of an amount: always two places."""
    return format(value.quantize(CENT), "f")
