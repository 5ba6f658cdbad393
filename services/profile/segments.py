"""Segment templates: where they are kept, and a bound filter compiled to SQL.

The compiler only receives trees from :mod:`services.profile.filters`, whose fields and
operators come from a whitelist and whose values are typed. Every value becomes a bind
parameter of a SQLAlchemy expression; field names map to columns through the table below, never
through text. Members come back ordered by customer id, so a page's cursor is the last id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, exists, false, func, not_, or_, select, true, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from shared.db import MoneyType
from shared.settings import Settings
from shared.settings.profile import SegmentTemplate
from services.profile.domain import born_after_for_age, born_on_or_before_for_age, ranked, start_of_day
from services.profile.filters import (
    AllOf,
    AnyOf,
    Condition,
    Limits,
    Node,
    Not,
    Vocabulary,
)
from services.profile.models import (
    ProfileAccount,
    ProfileCustomer,
    ProfileSegment,
    ProfileSignal,
    ProfileTag,
)

C = ProfileCustomer
_MEMBER = aliased(ProfileCustomer, name="household_member")
HOUSEHOLD_AUM = type_coerce(func.coalesce(
    select(func.sum(_MEMBER.aum)).where(_MEMBER.household_id == C.household_id).scalar_subquery(), C.aum
), MoneyType())
"""The combined AUM of the customer's household (the customer's own without one), read
through the household index rather than kept as a running total that two consumers could race
on."""


def vocabulary_of(settings: Settings) -> Vocabulary:
    return Vocabulary(tiers=tuple(t.id for t in settings.tiers))


def limits_of(settings: Settings) -> Limits:
    p = settings.profile
    return Limits(p.max_filter_conditions, p.max_filter_depth, p.max_list_values)


# --- templates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredTemplate:
    template: SegmentTemplate
    source: str  # "shipped" (settings) or "stored" (POST /v1/segments)
    created_by: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.template.name, "description": self.template.description,
            "filter": self.template.filter, "parameters": self.template.parameters,
            "parameter_names": sorted(_named_parameters(self.template.filter)), "source": self.source,
            "created_by": self.created_by, "created_at": self.created_at, "updated_at": self.updated_at,
        }


def _named_parameters(raw: Any) -> set[str]:
    """The ``{"param": name}`` a stored filter names, read without checking it: listing
    templates must work even if one no longer checks (say, a tier was renamed in configuration);
    asking for its members then says what is wrong."""
    if isinstance(raw, dict):
        if set(raw) == {"param"} and isinstance(raw["param"], str):
            return {raw["param"]}
        return set().union(*(_named_parameters(v) for v in raw.values())) if raw else set()
    if isinstance(raw, list):
        return set().union(*(_named_parameters(v) for v in raw)) if raw else set()
    return set()


def shipped_templates(settings: Settings) -> dict[str, StoredTemplate]:
    return {t.name: StoredTemplate(t, "shipped") for t in settings.profile.segments}


def _from_row(row: ProfileSegment) -> StoredTemplate:
    template = SegmentTemplate(name=row.name, description=row.description, filter=json.loads(row.filter),
                               parameters=json.loads(row.parameters))
    return StoredTemplate(template, "stored", row.created_by, row.created_at, row.updated_at)


async def all_templates(session: AsyncSession, settings: Settings) -> list[StoredTemplate]:
    stored = (await session.execute(select(ProfileSegment).order_by(ProfileSegment.name))).scalars()
    found = {**{r.name: _from_row(r) for r in stored}, **shipped_templates(settings)}
    return [found[name] for name in sorted(found)]


async def find_template(session: AsyncSession, settings: Settings, name: str) -> StoredTemplate | None:
    shipped = shipped_templates(settings).get(name)
    if shipped is not None:
        return shipped
    row = await session.get(ProfileSegment, name)
    return _from_row(row) if row is not None else None


class SegmentExists(Exception):
    """A stored template of that name exists (and the caller did not ask to replace it)."""


async def save_template(session: AsyncSession, template: SegmentTemplate, author: str,
                        *, replace: bool) -> StoredTemplate:
    """Store a checked template; ``replace`` overwrites one of the same name."""
    now = datetime.now(timezone.utc)
    row = await session.get(ProfileSegment, template.name)
    if row is None:
        row = ProfileSegment(name=template.name, created_by=author, created_at=now)
        session.add(row)
    elif not replace:
        raise SegmentExists(template.name)
    row.description = template.description
    row.filter = json.dumps(template.filter, ensure_ascii=False)
    row.parameters = json.dumps(template.parameters, ensure_ascii=False, default=str)
    row.updated_at = now
    await session.flush()
    return _from_row(row)


# --- the compiler ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CompileContext:
    """What a filter is evaluated against: the bank's business date and the ordered tiers."""

    today: date
    zone: ZoneInfo
    vocabulary: Vocabulary


def compile_filter(node: Node, ctx: CompileContext) -> ColumnElement[bool]:
    """A bound filter as a WHERE clause over ``profile_customers``. Never NULL: a condition on a missing value is false, so ``not``
    means what it says."""
    if isinstance(node, AllOf):
        return and_(true(), *(compile_filter(n, ctx) for n in node.items))
    if isinstance(node, AnyOf):
        return or_(false(), *(compile_filter(n, ctx) for n in node.items))
    if isinstance(node, Not):
        return not_(compile_filter(node.item, ctx))
    return _CONDITIONS[node.field](node, ctx)


def _compare(column, op: str, value: Any) -> ColumnElement[bool]:
    if op == "between":
        low, high = value
        return and_(column >= low, column <= high)
    if op == "in":
        return column.in_(list(value))
    if op == "not_in":
        return column.not_in(list(value))
    return {
        "eq": lambda: column == value, "ne": lambda: column != value,
        "lt": lambda: column < value, "lte": lambda: column <= value,
        "gt": lambda: column > value, "gte": lambda: column >= value,
    }[op]()


def _nullable(column, c: Condition, build: Callable[[], ColumnElement[bool]]) -> ColumnElement[bool]:
    if c.op == "is_null":
        return column.is_(None)
    if c.op == "not_null":
        return column.is_not(None)
    return and_(column.is_not(None), build())


def _plain(column_of: Callable[[], Any]):
    def build(c: Condition, ctx: CompileContext) -> ColumnElement[bool]:
        column = column_of()
        return _nullable(column, c, lambda: _compare(column, c.op, c.value))
    return build


def _ranked(column_of: Callable[[], Any], order_of: Callable[[CompileContext], tuple[str, ...]]):
    def build(c: Condition, ctx: CompileContext) -> ColumnElement[bool]:
        column = column_of()

        def compare() -> ColumnElement[bool]:
            if c.op in ("in", "not_in"):
                return _compare(column, c.op, c.value)
            members = ranked(order_of(ctx), c.op, c.value)
            return column.in_(list(members)) if members else false()
        return _nullable(column, c, compare)
    return build


def _age(c: Condition, ctx: CompileContext) -> ColumnElement[bool]:
    birth = C.birth_date

    def at_least(n: int) -> ColumnElement[bool]:
        return birth <= born_on_or_before_for_age(ctx.today, n)

    def at_most(n: int) -> ColumnElement[bool]:
        return birth > born_after_for_age(ctx.today, n) if n >= 0 else false()

    def compare() -> ColumnElement[bool]:
        n = c.value
        return {
            "eq": lambda: and_(at_least(n), at_most(n)), "ne": lambda: not_(and_(at_least(n), at_most(n))),
            "gte": lambda: at_least(n), "gt": lambda: at_least(n + 1),
            "lte": lambda: at_most(n), "lt": lambda: at_most(n - 1),
            "between": lambda: and_(at_least(n[0]), at_most(n[1])),
        }[c.op]()
    return _nullable(birth, c, compare)


def _days_since_contact(c: Condition, ctx: CompileContext) -> ColumnElement[bool]:
    """Never contacted counts as longer ago than any number of days."""
    at = C.last_contact_at
    if c.op in ("is_null", "not_null"):
        return _nullable(at, c, true)

    def at_least(n: int) -> ColumnElement[bool]:  # contacted on a date at least n days ago
        return or_(at.is_(None), at < start_of_day(ctx.today - timedelta(days=n - 1), ctx.zone))

    def at_most(n: int) -> ColumnElement[bool]:
        if n < 0:
            return false()
        return and_(at.is_not(None), at >= start_of_day(ctx.today - timedelta(days=n), ctx.zone))

    n = c.value
    return {
        "eq": lambda: and_(at_least(n), at_most(n)), "ne": lambda: not_(and_(at_least(n), at_most(n))),
        "gte": lambda: at_least(n), "gt": lambda: at_least(n + 1),
        "lte": lambda: at_most(n), "lt": lambda: at_most(n - 1),
        "between": lambda: and_(at_least(n[0]), at_most(n[1])),
    }[c.op]()


def _has(make_exists: Callable[[tuple], ColumnElement[bool]]):
    """Set membership: ``contains``, ``not_contains``, ``contains_any``, ``contains_all``."""
    def build(c: Condition, ctx: CompileContext) -> ColumnElement[bool]:
        values = c.value if isinstance(c.value, tuple) else (c.value,)
        if c.op == "contains_all":
            return and_(true(), *(make_exists((v,)) for v in values))
        found = make_exists(values)
        return not_(found) if c.op == "not_contains" else found
    return build


def _open_accounts(*where) -> ColumnElement[bool]:
    return exists(select(1).where(ProfileAccount.customer_id == C.customer_id,
                                  ProfileAccount.status != "closed", *where))


def _tags(values: tuple) -> ColumnElement[bool]:
    return exists(select(1).where(ProfileTag.customer_id == C.customer_id, ProfileTag.tag.in_(list(values))))


def _signal_types(values: tuple) -> ColumnElement[bool]:
    return exists(select(1).where(ProfileSignal.customer_id == C.customer_id, ProfileSignal.status == "open",
                                  ProfileSignal.signal_type.in_(list(values))))


def _within_days(column_of: Callable[[], Any]):
    """A holding (not closed) whose date falls between today and today + N days."""
    def build(c: Condition, ctx: CompileContext) -> ColumnElement[bool]:
        column = column_of()
        if c.op == "between":
            low, high = (ctx.today + timedelta(days=d) for d in c.value)
        else:
            low = ctx.today
            high = ctx.today + timedelta(days=c.value if c.op == "lte" else c.value - 1)
        where = [column.is_not(None), column >= low, column <= high]
        if c.product_types:
            where.append(ProfileAccount.product_type.in_(list(c.product_types)))
        return _open_accounts(*where)
    return build


_CONDITIONS: dict[str, Callable[[Condition, CompileContext], ColumnElement[bool]]] = {
    "tier": _ranked(lambda: C.tier, lambda ctx: ctx.vocabulary.tiers),
    "risk_level": _ranked(lambda: C.risk_level, lambda ctx: ctx.vocabulary.risk_levels),
    "aum": _plain(lambda: C.aum),
    "mtd_average_daily_aum": _plain(lambda: C.mtd_average_daily_aum),
    "household_aum": _plain(lambda: HOUSEHOLD_AUM),
    "branch": _plain(lambda: C.home_branch_id),
    "account_branches": _has(lambda v: _open_accounts(ProfileAccount.branch_id.in_(list(v)))),
    "gender": _plain(lambda: C.gender),
    "household_role": _plain(lambda: C.household_role),
    "age": _age,
    "tags": _has(_tags),
    "products_held": _has(lambda v: _open_accounts(ProfileAccount.product_type.in_(list(v)))),
    "product_codes_held": _has(lambda v: _open_accounts(ProfileAccount.product_code.in_(list(v)))),
    "maturity_within_days": _within_days(lambda: ProfileAccount.maturity_date),
    "card_expiry_within_days": _within_days(lambda: ProfileAccount.card_expiry),
    "open_signals": _plain(lambda: C.open_signals),
    "open_signal_types": _has(_signal_types),
    "days_since_last_contact": _days_since_contact,
    "watch": _plain(lambda: C.watch),
    "points_balance": _plain(lambda: C.points_balance),
}


# --- members --------------------------------------------------------------------------------

MEMBER_COLUMNS = (
    C.customer_id, C.name, C.home_branch_id, C.tier, C.watch, C.aum, C.mtd_average_daily_aum,
    C.household_id, HOUSEHOLD_AUM.label("household_aum"), C.risk_level, C.gender, C.birth_date,
    C.phone, C.primary_rm, C.backup_rm, C.open_signals, C.points_balance, C.last_contact_at,
)


def members_query(node: Node, ctx: CompileContext, visible=None, *, after: str | None = None,
                  limit: int | None = None):
    """The members of a bound filter, ordered by customer id; ``visible`` limits them to the
    caller's book (``shared.access.visible_filter``)."""
    stmt = select(*MEMBER_COLUMNS).where(compile_filter(node, ctx)).order_by(C.customer_id)
    if visible is not None:
        stmt = stmt.where(C.customer_id.in_(visible))
    if after is not None:
        stmt = stmt.where(C.customer_id > after)
    if limit is not None:
        stmt = stmt.limit(limit)
    return stmt
