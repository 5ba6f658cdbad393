"""The segment filter language: what an analyst may write, checked before any SQL exists.

A filter is a tree of JSON objects::

    {"all": [node, ...]}                  every node holds
    {"any": [node, ...]}                  at least one node holds
    {"not": node}                         the node does not hold
    {"field": F, "op": O, "value": V}     a condition on one whitelisted field

``V`` is a literal, ``{"param": "name"}`` (bound from the template's defaults or from
``?name=value`` when members are asked for), or, for list operators, a list of those.
Conditions on maturities and card expiries may add ``"product_types": [...]``.

Parsing checks every field, operator and literal against the whitelist below and names the
path of each mistake; binding replaces parameters by values coerced to the field's type. The
SQL compiler (``services/profile/segments.py``) only ever receives the bound tree, whose values
it hands to the database as bind parameters: no text from a user is ever part of a statement.

Nothing here touches a database, the bus or HTTP.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Iterator, Mapping, Sequence, get_args

from shared.contracts.types import ProductType, RiskLevel
from shared.money import MoneyError, parse_money, within_limit

RISK_LEVELS: tuple[str, ...] = get_args(RiskLevel)
PRODUCT_TYPES: tuple[str, ...] = get_args(ProductType)
PARAM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_TEXT = 64
MAX_COUNT = 10**9
MAX_DAYS = 36_600

# --- the vocabulary: fields, kinds and operators -------------------------------------------

ORDER_OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "between")
LIST_OPS = ("in", "not_in", "contains_any", "contains_all")
SET_OPS = ("contains", "not_contains", "contains_any", "contains_all")
NULL_OPS = ("is_null", "not_null")

OPS_BY_KIND: dict[str, tuple[str, ...]] = {
    "ranked": ORDER_OPS + ("in", "not_in"),
    "money": ORDER_OPS,
    "count": ORDER_OPS,
    "text": ("eq", "ne", "in", "not_in"),
    "set": SET_OPS,
    "within_days": ("lte", "lt", "between"),
    "flag": ("eq",),
}


@dataclass(frozen=True)
class FieldSpec:
    """One field a segment may filter on.

    ``kind`` says which operators apply and how values are typed; ``ranks`` names the ordered
    vocabulary of a ranked field (``tier``: the configured tiers; ``risk``: C1..C5); ``item`` the
    vocabulary of a set's members (``product_type`` or free text)."""

    name: str
    kind: str
    description: str
    ranks: str | None = None
    item: str = "text"
    nullable: bool = False
    product_types: bool = False
    maximum: int = MAX_COUNT
    """The largest whole number a ``count`` or ``within_days`` field takes."""

    def ops(self) -> tuple[str, ...]:
        return OPS_BY_KIND[self.kind] + (NULL_OPS if self.nullable else ())


FIELDS: dict[str, FieldSpec] = {f.name: f for f in (
    FieldSpec("tier", "ranked", "the customer's tier; ordered by floor (mass < gold < ...)", ranks="tier"),
    FieldSpec("risk_level", "ranked", "risk preference, ordered C1 < C2 < ... < C5", ranks="risk", nullable=True),
    FieldSpec("aum", "money", "current assets under management (CNY)"),
    FieldSpec("mtd_average_daily_aum", "money", "this month's average daily AUM so far (CNY)"),
    FieldSpec("household_aum", "money", "combined AUM of the customer's household (own AUM without one)"),
    FieldSpec("branch", "text", "home branch id", nullable=True),
    FieldSpec("account_branches", "set", "branches where the customer holds an account that is not closed"),
    FieldSpec("gender", "text", "F, M or U", nullable=True),
    FieldSpec("household_role", "text", "head, spouse, child, parent or member", nullable=True),
    FieldSpec("age", "count", "age in whole years today, from the birth date", nullable=True, maximum=150),
    FieldSpec("tags", "set", "hobby and consumption tags"),
    FieldSpec("products_held", "set", "product types of accounts that are not closed", item="product_type"),
    FieldSpec("product_codes_held", "set", "product codes of accounts that are not closed"),
    FieldSpec("maturity_within_days", "within_days",
              "a holding (not closed) matures between today and today + N days", product_types=True,
              maximum=MAX_DAYS),
    FieldSpec("card_expiry_within_days", "within_days",
              "a card (not closed) expires between today and today + N days", product_types=True,
              maximum=MAX_DAYS),
    FieldSpec("open_signals", "count", "number of open signals"),
    FieldSpec("open_signal_types", "set", "types of the open signals"),
    FieldSpec("days_since_last_contact", "count",
              "whole days since the last logged contact; never contacted counts as longer than any N",
              nullable=True, maximum=MAX_DAYS),
    FieldSpec("watch", "flag", "on downgrade watch"),
    FieldSpec("points_balance", "count", "points balance", nullable=True),
)}


@dataclass(frozen=True)
class Vocabulary:
    """The ordered values a ranked field compares against."""

    tiers: tuple[str, ...]
    risk_levels: tuple[str, ...] = RISK_LEVELS

    def ranks(self, name: str) -> tuple[str, ...]:
        return self.tiers if name == "tier" else self.risk_levels


@dataclass(frozen=True)
class Limits:
    max_conditions: int = 50
    max_depth: int = 6
    max_list_values: int = 500


# --- the tree -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """A value to be supplied when members are asked for."""

    name: str


@dataclass(frozen=True)
class Condition:
    """``field op value``. Once bound, ``value`` is typed: a ``Decimal``, ``int``, ``str`` or
    ``bool``; a tuple for list operators; ``(low, high)`` for ``between``; ``None`` for the null
    operators."""

    field: str
    op: str
    value: Any
    product_types: tuple[str, ...] = ()
    path: str = "filter"


@dataclass(frozen=True)
class AllOf:
    items: tuple["Node", ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple["Node", ...]


@dataclass(frozen=True)
class Not:
    item: "Node"


Node = Condition | AllOf | AnyOf | Not


@dataclass
class FilterError(ValueError):
    """Everything wrong with a filter or its parameters, each with the path where it is."""

    errors: list[tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(f"{path}: {message}" for path, message in self.errors[:5])


# --- parsing --------------------------------------------------------------------------------


def parse_filter(raw: Any, vocabulary: Vocabulary, limits: Limits = Limits()) -> Node:
    """Check a filter's structure, fields, operators and literals; parameters stay unbound.

    >>> parse_filter({"field": "tier", "op": "gte", "value": "platinum"}, vocab)
    Condition(field='tier', op='gte', value='platinum', ...)
    """
    parser = _Parser(vocabulary, limits)
    node = parser.node(raw, "filter", 1)
    if parser.conditions > limits.max_conditions:
        parser.fail("filter", f"at most {limits.max_conditions} conditions")
    if parser.errors:
        raise FilterError(parser.errors)
    return node


class _Parser:
    def __init__(self, vocabulary: Vocabulary, limits: Limits) -> None:
        self.vocabulary = vocabulary
        self.limits = limits
        self.errors: list[tuple[str, str]] = []
        self.conditions = 0

    def fail(self, path: str, message: str) -> None:
        self.errors.append((path, message))

    def node(self, raw: Any, path: str, depth: int) -> Node:
        if depth > self.limits.max_depth:
            self.fail(path, f"nested deeper than {self.limits.max_depth} levels")
            return AllOf(())
        if not isinstance(raw, dict):
            self.fail(path, "expected an object: {all: [...]}, {any: [...]}, {not: {...}} or a condition")
            return AllOf(())
        groups = [k for k in ("all", "any", "not") if k in raw]
        if groups:
            if len(raw) != 1:
                self.fail(path, f"a group has exactly one key ({groups[0]}), got {sorted(map(str, raw))}")
                return AllOf(())
            key = groups[0]
            if key == "not":
                return Not(self.node(raw["not"], f"{path}.not", depth + 1))
            items = raw[key]
            if not isinstance(items, list) or not items:
                self.fail(f"{path}.{key}", "expected a non-empty list")
                return AllOf(())
            nodes = tuple(self.node(item, f"{path}.{key}[{i}]", depth + 1) for i, item in enumerate(items))
            return AllOf(nodes) if key == "all" else AnyOf(nodes)
        return self.condition(raw, path)

    def condition(self, raw: dict, path: str) -> Condition:
        self.conditions += 1
        unknown = set(raw) - {"field", "op", "value", "product_types"}
        if unknown:
            self.fail(path, f"unknown keys {sorted(map(str, unknown))}; a condition has field, op, value")
        name = raw.get("field")
        spec = FIELDS.get(name) if isinstance(name, str) else None
        if spec is None:
            self.fail(f"{path}.field", f"unknown field {_show(name)}; known fields: {', '.join(FIELDS)}")
            return Condition("?", "?", None, path=path)
        op = raw.get("op")
        if op not in spec.ops():
            self.fail(f"{path}.op", f"operator {_show(op)} does not apply to {spec.name}; "
                                    f"use one of {', '.join(spec.ops())}")
            return Condition(spec.name, "?", None, path=path)
        product_types = self.product_types(raw, spec, path)
        value = self.value(raw, spec, op, path)
        return Condition(spec.name, op, value, product_types, path)

    def product_types(self, raw: dict, spec: FieldSpec, path: str) -> tuple[str, ...]:
        if "product_types" not in raw:
            return ()
        given = raw["product_types"]
        if not spec.product_types:
            self.fail(f"{path}.product_types", f"{spec.name} takes no product_types")
            return ()
        if not isinstance(given, list) or not given or any(t not in PRODUCT_TYPES for t in given):
            self.fail(f"{path}.product_types", f"expected a non-empty list of {', '.join(PRODUCT_TYPES)}")
            return ()
        return tuple(dict.fromkeys(given))

    def value(self, raw: dict, spec: FieldSpec, op: str, path: str) -> Any:
        where = f"{path}.value"
        if op in NULL_OPS:
            if raw.get("value", True) is not True:
                self.fail(where, f"{op} takes no value")
            return None
        if "value" not in raw:
            self.fail(where, "missing")
            return None
        value = raw["value"]
        try:
            return _typed(spec, op, value, self.vocabulary, self.limits, allow_params=True)
        except ValueError as exc:
            self.fail(where, str(exc))
            return None


def _typed(spec: FieldSpec, op: str, value: Any, vocabulary: Vocabulary, limits: Limits, *,
           allow_params: bool) -> Any:
    """The value of ``spec op value`` in its bound shape (parameters kept where allowed)."""
    if allow_params and _is_param(value):
        return _param(value)
    if op == "between":
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ValueError("between takes a list of two values [low, high]")
        return tuple(_scalar(spec, v, vocabulary, allow_params) for v in value)
    if op in LIST_OPS:
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError(f"{op} takes a non-empty list")
        if len(value) > limits.max_list_values:
            raise ValueError(f"at most {limits.max_list_values} values")
        return tuple(dict.fromkeys(_scalar(spec, v, vocabulary, allow_params) for v in value))
    return _scalar(spec, value, vocabulary, allow_params)


def _is_param(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"param"}


def _param(value: dict) -> Param:
    name = value["param"]
    if not isinstance(name, str) or not PARAM_NAME.match(name):
        raise ValueError(f"parameter name {_show(name)} must match {PARAM_NAME.pattern}")
    return Param(name)


def _scalar(spec: FieldSpec, value: Any, vocabulary: Vocabulary, allow_params: bool) -> Any:
    if allow_params and _is_param(value):
        return _param(value)
    kind = spec.kind
    if kind == "ranked":
        ranks = vocabulary.ranks(spec.ranks or "")
        if not isinstance(value, str) or value not in ranks:
            raise ValueError(f"{_show(value)} is not a {spec.name}; one of {', '.join(ranks)}")
        return value
    if kind == "money":
        if isinstance(value, bool) or not isinstance(value, (int, str, Decimal)):
            raise ValueError(f"{_show(value)} is not an amount; write it as a string such as \"50000.00\"")
        try:
            return within_limit(parse_money(str(value) if isinstance(value, int) else value))
        except MoneyError as exc:
            raise ValueError(str(exc)) from exc
    if kind in ("count", "within_days"):
        number = _integer(value)
        if number is None or not 0 <= number <= spec.maximum:
            raise ValueError(f"{_show(value)} is not a whole number from 0 to {spec.maximum}")
        return number
    if kind == "flag":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValueError(f"{_show(value)} is not true or false")
    if spec.item == "product_type":
        if value not in PRODUCT_TYPES:
            raise ValueError(f"{_show(value)} is not a product type; one of {', '.join(PRODUCT_TYPES)}")
        return value
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_TEXT:
        raise ValueError(f"{_show(value)} is not a text of 1 to {MAX_TEXT} characters")
    return value


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,10}", value.strip()):
        return int(value.strip())
    return None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- parameters -----------------------------------------------------------------------------


def conditions(node: Node) -> Iterator[Condition]:
    if isinstance(node, Condition):
        yield node
    elif isinstance(node, Not):
        yield from conditions(node.item)
    else:
        for item in node.items:
            yield from conditions(item)


def parameter_names(node: Node) -> set[str]:
    """Every parameter the filter refers to."""
    names: set[str] = set()
    for condition in conditions(node):
        values = condition.value if isinstance(condition.value, tuple) else (condition.value,)
        names.update(v.name for v in values if isinstance(v, Param))
    return names


def bind(node: Node, values: Mapping[str, Any], vocabulary: Vocabulary, limits: Limits = Limits(),
         *, partial: bool = False) -> Node:
    """The filter with every parameter replaced by its value, coerced to the type of the field
    it is compared with. Text from a query string is split on commas where a list is expected.
    Raises :class:`FilterError` naming each parameter that is missing or of the wrong type;
    with ``partial`` a parameter without a value stays unbound instead.

    >>> bind(parse_filter({"field": "age", "op": "gte", "value": {"param": "n"}}, vocab), {"n": "60"}, vocab)
    Condition(field='age', op='gte', value=60, ...)
    """
    errors: list[tuple[str, str]] = []

    def walk(n: Node) -> Node:
        if isinstance(n, AllOf):
            return AllOf(tuple(walk(i) for i in n.items))
        if isinstance(n, AnyOf):
            return AnyOf(tuple(walk(i) for i in n.items))
        if isinstance(n, Not):
            return Not(walk(n.item))
        try:
            return Condition(n.field, n.op, _bind_value(n, values, vocabulary, limits, partial),
                             n.product_types, n.path)
        except ValueError as exc:
            errors.append((n.path, str(exc)))
            return n

    bound = walk(node)
    if errors:
        raise FilterError(errors)
    return bound


class _Unbound(Exception):
    pass


def _bind_value(c: Condition, values: Mapping[str, Any], vocabulary: Vocabulary, limits: Limits,
                partial: bool) -> Any:
    spec = FIELDS[c.field]

    def lookup(p: Param) -> Any:
        if p.name not in values or values[p.name] is None:
            if partial:
                raise _Unbound
            raise ValueError(f"parameter {p.name!r} has no value; pass ?{p.name}=...")
        return values[p.name]

    def one(v: Any) -> Any:
        if not isinstance(v, Param):
            return v
        try:
            raw = lookup(v)
        except _Unbound:
            return v
        if isinstance(raw, (list, tuple)):
            if len(raw) != 1:
                raise ValueError(f"parameter {v.name!r} takes one value")
            raw = raw[0]
        try:
            return _scalar(spec, raw, vocabulary, allow_params=False)
        except ValueError as exc:
            raise ValueError(f"parameter {v.name!r}: {exc}") from exc

    if isinstance(c.value, Param):
        if c.op == "between" or c.op in LIST_OPS:
            try:
                raw = lookup(c.value)
            except _Unbound:
                return c.value
            if isinstance(raw, str):
                raw = [part.strip() for part in raw.split(",")]
            try:
                return _typed(spec, c.op, raw, vocabulary, limits, allow_params=False)
            except ValueError as exc:
                raise ValueError(f"parameter {c.value.name!r}: {exc}") from exc
        return one(c.value)
    if isinstance(c.value, tuple):
        bound = tuple(one(v) for v in c.value)
        return bound if c.op == "between" else tuple(dict.fromkeys(bound))
    return c.value


def check_template(raw_filter: Any, parameters: Mapping[str, Any], vocabulary: Vocabulary,
                   limits: Limits = Limits()) -> Node:
    """Parse a template and check its default parameters: each must be used by the filter and
    of the right type. A parameter without a default must come with every members query."""
    node = parse_filter(raw_filter, vocabulary, limits)
    used = parameter_names(node)
    errors = [(f"parameters.{name}", "not used by the filter") for name in parameters if name not in used]
    try:
        bind(node, parameters, vocabulary, limits, partial=True)
    except FilterError as exc:
        errors += exc.errors
    if errors:
        raise FilterError(errors)
    return node


def query_parameters(used: set[str], defaults: Mapping[str, Any], given: Mapping[str, Sequence[str]],
                     reserved: Sequence[str]) -> dict[str, Any]:
    """The template's defaults overridden by the query's values. A repeated query parameter is a
    list; a name the filter does not use is refused (it is most likely a typo)."""
    values: dict[str, Any] = dict(defaults)
    unknown = []
    for name, items in given.items():
        if name in reserved:
            continue
        if name not in used:
            unknown.append(name)
            continue
        values[name] = items[0] if len(items) == 1 else list(items)
    if unknown:
        raise FilterError([(f"query.{n}", f"the template has no parameter {n!r}; "
                                          f"it takes {', '.join(sorted(used)) or 'none'}")
                           for n in sorted(unknown)])
    return values
