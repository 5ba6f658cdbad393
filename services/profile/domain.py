"""The bank's rules for the customer base, the customer 360 and branch reports, as pure values
and functions.

Nothing here touches a database, the bus or HTTP: every rule can be called with plain values.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timezone  # noqa: F401 - timezone: the examples
from decimal import Decimal
from typing import Iterable, Sequence

from shared.auth import mask_id_number, mask_phone
from shared.calendar import month_of, next_month, start_of_day  # noqa: F401 - start_of_day: the segment filters' calendar
from shared.money import ZERO

# --- master data: the newer record wins ----------------------------------------------------


def is_newer(incoming: datetime, applied: datetime | None) -> bool:
    """An upsert applies unless a strictly newer one is already applied (the same time applies
    again: a repeated record is harmless, and a correction sent with the same time wins).

    >>> is_newer(datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 11, 2, tzinfo=timezone.utc))
    False
    """
    return applied is None or incoming >= applied


# --- identity masking -----------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    id_number: str | None
    phone: str | None


def identity_for(role: str, unmasked_roles: Sequence[str], identity: Identity) -> Identity:
    """Identity number and phone as the role may see them: in full for the roles configured
    as unmasked (``auth.unmasked_roles``, admin by default), masked for everyone else.

    >>> identity_for("rm", ["admin"], Identity("360102198807150023", "13800000000"))
    Identity(id_number='3601**********0023', phone='138****0000')
    """
    if role in unmasked_roles:
        return identity
    return Identity(mask_id_number(identity.id_number), mask_phone(identity.phone))


# --- ages and dates -------------------------------------------------------------------------


def age_on(birth: date, today: date) -> int:
    """Whole years completed on ``today`` (a 29 February birthday completes on 1 March in a
    common year).

    >>> age_on(date(1988, 7, 15), date(2026, 7, 14))
    37
    """
    years = today.year - birth.year
    if (today.month, today.day) < (birth.month, birth.day):
        years -= 1
    return years


def years_before(today: date, years: int) -> date:
    """The same day ``years`` earlier; 29 February becomes 28 February in a common year."""
    year = today.year - years
    day = min(today.day, calendar.monthrange(year, today.month)[1])
    return date(year, today.month, day)


def born_on_or_before_for_age(today: date, age: int) -> date:
    """The latest birth date of someone at least ``age`` years old today: ``age >= n`` is
    ``birth_date <= born_on_or_before_for_age(today, n)`` (agrees with :func:`age_on`, 29
    February included).

    >>> born_on_or_before_for_age(date(2026, 11, 28), 60)
    datetime.date(1966, 11, 28)
    """
    return years_before(today, age)


def born_after_for_age(today: date, age: int) -> date:
    """``age <= n`` is ``birth_date > born_after_for_age(today, n)``."""
    return years_before(today, age + 1)


def month_bounds(day: date) -> tuple[date, date]:
    """The first day of ``day``'s month and the first day of the next.

    >>> month_bounds(date(2026, 12, 5))
    (datetime.date(2026, 12, 1), datetime.date(2027, 1, 1))
    """
    first = month_of(day)
    return first, next_month(first)


# --- AUM flows ------------------------------------------------------------------------------


def flow_of_day(net: Decimal) -> tuple[Decimal, Decimal]:
    """A customer's inflow and outflow of one business day, from the day's net AUM change.

    Flows are counted per customer per business day on the day's net: a customer whose AUM
    ends the day 30,000 higher brings 30,000 of inflow however many postings it took, and
    moving money between their own products is no flow at all. The net of a day is the sum of
    the changes of every applied AUM record of that business date, so it depends on nothing
    but the customer's own records; a branch's flow is the sum over its members (the branch
    report computes the same in SQL).

    >>> flow_of_day(Decimal("-500.00"))
    (Decimal('0.00'), Decimal('500.00'))
    """
    return max(net, ZERO), max(-net, ZERO)


# --- signals --------------------------------------------------------------------------------


def signal_status_after(current: str | None, incoming: str) -> str | None:
    """The status a signal takes from an event about it, or ``None`` if the event changes
    nothing. A signal is open until any other status arrives; a closed signal never reopens
    (a late or repeated ``open`` must not bring back what the RM already dealt with).

    >>> signal_status_after("acknowledged", "open") is None
    True
    """
    if current is None:
        return incoming
    if current != "open":
        return None
    return incoming if incoming != "open" else None


# --- ordered vocabularies -------------------------------------------------------------------


def ranked(order: Sequence[str], op: str, value: str | tuple[str, str]) -> tuple[str, ...]:
    """The members of ``order`` that satisfy ``member op value`` for an ordered comparison
    (``eq``, ``ne``, ``lt``, ``lte``, ``gt``, ``gte``, ``between`` with ``(low, high)``)."""
    if op == "between":
        low, high = (order.index(v) for v in value)
        return tuple(order[low:high + 1])
    rank = order.index(value)
    keep = {
        "eq": lambda i: i == rank, "ne": lambda i: i != rank,
        "lt": lambda i: i < rank, "lte": lambda i: i <= rank,
        "gt": lambda i: i > rank, "gte": lambda i: i >= rank,
    }[op]
    return tuple(v for i, v in enumerate(order) if keep(i))


# --- households -----------------------------------------------------------------------------


def combined_aum(members: Iterable[Decimal]) -> Decimal:
    """A household's AUM: the sum of its members' AUM."""
    return sum(members, ZERO)
