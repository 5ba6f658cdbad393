"""Field types shared by every contract model."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer, StringConstraints

from shared.money import format_money, parse_money, within_limit

Money = Annotated[
    Decimal,
    BeforeValidator(parse_money),
    PlainSerializer(format_money, return_type=str, when_used="always"),
]
"""An amount of money: a JSON string with at most two decimal places, a ``Decimal`` in code."""


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("must be greater than zero")
    return value


def _not_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError("must not be negative")
    return value


PositiveMoney = Annotated[Money, AfterValidator(_positive)]
NonNegativeMoney = Annotated[Money, AfterValidator(_not_negative)]

Amount = Annotated[Money, AfterValidator(within_limit)]
"""An amount or balance from outside (an inbound event, a request): money no further from zero
than ``limits.max_amount``. Strata's own figures (sums, totals) are ``Money``."""
PositiveAmount = Annotated[Amount, AfterValidator(_positive)]
NonNegativeAmount = Annotated[Amount, AfterValidator(_not_negative)]

Identifier = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
"""Customer, account, posting, branch and RM ids: short, printable, no spaces."""

def _no_nul(value: str) -> str:
    # PostgreSQL cannot store a NUL character in text: refused here, named, rather than failing
    # the whole batch at the database
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    return value


NoNul = AfterValidator(_no_nul)
ShortText = Annotated[str, StringConstraints(max_length=200), NoNul]


_RFC3339_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})?", re.ASCII)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def _time_text(value: object) -> object:
    # pydantic would also read a number (or a numeric string) as a Unix time: the contract says
    # RFC 3339, so anything else is refused before it can be misread
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339_TIME.fullmatch(value):
        raise ValueError("a time must be an RFC 3339 string such as \"2026-11-28T10:15:02+08:00\"")
    return value


def _date_text(value: object) -> object:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("a date must be a string such as \"2026-11-28\"")
    return value


def _plausible_date(value: date) -> date:
    if not (1900 <= value.year <= 2199):
        raise ValueError("date out of range (1900-2199)")
    return value


def _plausible_time(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("time needs an offset (RFC 3339)")
    if not (2000 <= value.year <= 2199):
        raise ValueError("time out of range (2000-2199)")
    return value


BankDate = Annotated[date, BeforeValidator(_date_text), AfterValidator(_plausible_date)]
Timestamp = Annotated[datetime, BeforeValidator(_time_text), AfterValidator(_plausible_time)]

Currency = Literal["CNY"]
RiskLevel = Literal["C1", "C2", "C3", "C4", "C5"]
ProductType = Literal[
    "demand_deposit",
    "time_deposit",
    "wealth_product",
    "fund",
    "insurance",
    "precious_metal",
    "loan",
    "credit_card",
]
AUM_PRODUCT_TYPES: frozenset[str] = frozenset(
    {"demand_deposit", "time_deposit", "wealth_product", "fund", "insurance", "precious_metal"}
)
"""Product types counted in assets under management; loans and credit cards are not."""

KNOWN_TX_TYPES: frozenset[str] = frozenset(
    {
        "salary", "transfer_in", "transfer_out", "atm_withdrawal", "cash_deposit", "pos_purchase",
        "card_spend", "wealth_purchase", "wealth_redemption", "fund_purchase", "fund_redemption",
        "deposit_placement", "deposit_maturity", "interest", "fee", "sms_monthly", "card_annual",
        "small_account",
    }
)

TxType = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[a-z0-9_]+$")]
Tags = Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=40), NoNul]], Field(max_length=50)]
