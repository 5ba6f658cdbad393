"""The segment filter compiler: every field and operator against a small known customer base,
bad input refused with the path of the mistake, and injection attempts inert."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, func, insert, select
from sqlalchemy.dialects import postgresql

from shared.db import Base
from services.profile.filters import (
    FIELDS,
    FilterError,
    Limits,
    Vocabulary,
    bind,
    check_template,
    parameter_names,
    parse_filter,
    query_parameters,
)
from services.profile.models import (
    BALANCE_COLUMNS,
    ProfileAccount,
    ProfileCustomer,
    ProfileSignal,
    ProfileTag,
)
from services.profile.segments import CompileContext, members_query

ZONE = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 11, 28)
VOCAB = Vocabulary(tiers=("mass", "gold", "platinum", "diamond", "private"))
CTX = CompileContext(TODAY, ZONE, VOCAB)
EVERYONE = {"K1", "K2", "K3", "K4", "K5", "K6"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def customer(cid, tier, aum, *, risk=None, branch=None, gender=None, birth=None, household=None,
             role=None, mtd=None, signals=0, contact=None, points=None, watch=False):
    return dict(customer_id=cid, name=f"name {cid}", tier=tier, aum=Decimal(aum),
                mtd_average_daily_aum=Decimal(mtd or aum), risk_level=risk, home_branch_id=branch,
                gender=gender, birth_date=birth, household_id=household, household_role=role,
                open_signals=signals, last_contact_at=contact, points_balance=points, watch=watch,
                tags="[]", auto_points_offset=False, aum_by_product_type="{}", liabilities="{}",
                fees_charged=Decimal("0.00"), fees_priced=0,
                **{column: Decimal("0.00") for column in BALANCE_COLUMNS.values()})


def account(aid, cid, branch, product_type, *, status="open", code="X", maturity=None, expiry=None):
    return dict(account_id=aid, customer_id=cid, branch_id=branch, product_type=product_type,
                product_code=code, status=status, opened_on=date(2025, 1, 1), maturity_date=maturity,
                card_expiry=expiry, event_at=at("2026-01-01T00:00:00+08:00"))


@pytest.fixture(scope="module")
def engine():
    engine = create_engine("sqlite://")
    tables = [t for name, t in Base.metadata.tables.items() if name.startswith("profile_")]
    Base.metadata.create_all(engine, tables=tables)
    with engine.begin() as conn:
        conn.execute(insert(ProfileCustomer), [
            customer("K1", "platinum", "300000.00", mtd="250000.00", risk="C3", branch="BR1", gender="F",
                     birth=date(1966, 11, 28), household="H1", role="head", signals=1,
                     contact=at("2026-11-27T10:00:00+08:00"), points=500),
            customer("K2", "gold", "60000.00", mtd="55000.00", risk="C5", branch="BR1", gender="M",
                     birth=date(1966, 11, 29), household="H1", role="spouse",
                     contact=at("2026-08-01T10:00:00+08:00"), watch=True),
            customer("K3", "mass", "46000.00", branch="BR2"),
            customer("K4", "diamond", "2000000.00", risk="C1", branch="BR2", gender="U",
                     birth=date(2000, 2, 29), household="H2", role="head",
                     contact=at("2026-11-28T09:00:00+08:00")),
            customer("K5", "private", "7000000.00", risk="C4", branch="BR3", gender="F",
                     birth=date(1980, 1, 1), points=0),
            customer("K6", "gold", "50000.00", risk="C2", branch="BR1", household="H2", role="member",
                     contact=at("2026-08-30T23:59:00+08:00")),
        ])
        conn.execute(insert(ProfileTag), [
            {"customer_id": "K1", "tag": "travel"}, {"customer_id": "K1", "tag": "golf"},
            {"customer_id": "K2", "tag": "golf"}, {"customer_id": "K4", "tag": "car"},
            {"customer_id": "K5", "tag": "it's"},
        ])
        conn.execute(insert(ProfileAccount), [
            account("A1", "K1", "BR1", "time_deposit", code="TD-3Y", maturity=date(2026, 12, 20)),
            account("A2", "K2", "BR1", "wealth_product", code="WM-STEADY-90", maturity=date(2026, 12, 5)),
            account("A3", "K2", "BR2", "demand_deposit", code="DD", expiry=date(2027, 1, 10)),
            account("A4", "K3", "BR2", "time_deposit", status="closed", maturity=date(2026, 12, 1)),
            account("A5", "K3", "BR2", "loan", code="LN"),
            account("A6", "K4", "BR1", "fund", code="FUND-EQ-GROWTH"),
            account("A7", "K4", "BR2", "time_deposit", code="TD-3Y", maturity=date(2027, 6, 1)),
            account("A8", "K5", "BR3", "time_deposit", code="TD-1Y", maturity=date(2026, 11, 28)),
            account("A9", "K6", "BR1", "demand_deposit", status="dormant", expiry=date(2026, 11, 27)),
        ])
        conn.execute(insert(ProfileSignal), [
            {"id": "S1", "customer_id": "K1", "signal_type": "vip_outflow", "rm_id": "RM1", "branch_id": "BR1",
             "status": "open", "raised_at": at("2026-11-20T00:00:00+08:00"), "evidence": "{}"},
            {"id": "S2", "customer_id": "K4", "signal_type": "near_upgrade", "rm_id": "RM2", "branch_id": "BR2",
             "status": "acknowledged", "raised_at": at("2026-11-20T00:00:00+08:00"), "evidence": "{}"},
        ])
    yield engine
    engine.dispose()


def members(engine, raw, params=None) -> set[str]:
    node = bind(parse_filter(raw, VOCAB), params or {}, VOCAB)
    with engine.connect() as conn:
        return {row.customer_id for row in conn.execute(members_query(node, CTX))}


def cond(field, op, value=None, **more):
    c = {"field": field, "op": op, **more}
    if value is not None:
        c["value"] = value
    return c


# --- every field and operator ---------------------------------------------------------------

CASES = [
    # tier: ordered by the configured floors
    (cond("tier", "eq", "gold"), {"K2", "K6"}),
    (cond("tier", "ne", "gold"), {"K1", "K3", "K4", "K5"}),
    (cond("tier", "lt", "gold"), {"K3"}),
    (cond("tier", "lte", "gold"), {"K2", "K3", "K6"}),
    (cond("tier", "gt", "diamond"), {"K5"}),
    (cond("tier", "gte", "platinum"), {"K1", "K4", "K5"}),
    (cond("tier", "between", ["gold", "platinum"]), {"K1", "K2", "K6"}),
    (cond("tier", "in", ["mass", "private"]), {"K3", "K5"}),
    (cond("tier", "not_in", ["mass", "private"]), {"K1", "K2", "K4", "K6"}),
    # risk level: C1 < ... < C5; a customer without one matches no comparison
    (cond("risk_level", "gte", "C3"), {"K1", "K2", "K5"}),
    (cond("risk_level", "lt", "C3"), {"K4", "K6"}),
    (cond("risk_level", "ne", "C3"), {"K2", "K4", "K5", "K6"}),
    (cond("risk_level", "is_null"), {"K3"}),
    (cond("risk_level", "not_null"), EVERYONE - {"K3"}),
    # money
    (cond("aum", "gte", "50000.00"), EVERYONE - {"K3"}),
    (cond("aum", "gt", "50000.00"), EVERYONE - {"K3", "K6"}),
    (cond("aum", "lt", "50000.00"), {"K3"}),
    (cond("aum", "lte", "50000.00"), {"K3", "K6"}),
    (cond("aum", "eq", 50000), {"K6"}),
    (cond("aum", "ne", "50000"), EVERYONE - {"K6"}),
    (cond("aum", "between", ["50000.00", "300000.00"]), {"K1", "K2", "K6"}),
    (cond("mtd_average_daily_aum", "lt", "100000.00"), {"K2", "K3", "K6"}),
    (cond("household_aum", "gte", "1000000.00"), {"K4", "K5", "K6"}),
    (cond("household_aum", "between", ["300000.00", "400000.00"]), {"K1", "K2"}),
    # text
    (cond("branch", "eq", "BR1"), {"K1", "K2", "K6"}),
    (cond("branch", "ne", "BR1"), {"K3", "K4", "K5"}),
    (cond("branch", "in", ["BR2", "BR3"]), {"K3", "K4", "K5"}),
    (cond("branch", "not_in", ["BR2", "BR3"]), {"K1", "K2", "K6"}),
    (cond("gender", "eq", "F"), {"K1", "K5"}),
    (cond("gender", "is_null"), {"K3", "K6"}),
    (cond("household_role", "not_null"), {"K1", "K2", "K4", "K6"}),
    (cond("household_role", "in", ["head", "spouse"]), {"K1", "K2", "K4"}),
    # age, from the birth date (K1 turned 60 today, K2 turns 60 tomorrow, K4 born 29 Feb 2000)
    (cond("age", "gte", 60), {"K1"}),
    (cond("age", "gt", 59), {"K1"}),
    (cond("age", "eq", 59), {"K2"}),
    (cond("age", "ne", 59), {"K1", "K4", "K5"}),
    (cond("age", "lt", 60), {"K2", "K4", "K5"}),
    (cond("age", "lte", 26), {"K4"}),
    (cond("age", "between", [40, 59]), {"K2", "K5"}),
    (cond("age", "is_null"), {"K3", "K6"}),
    # sets
    (cond("tags", "contains", "golf"), {"K1", "K2"}),
    (cond("tags", "not_contains", "golf"), {"K3", "K4", "K5", "K6"}),
    (cond("tags", "contains_any", ["car", "travel"]), {"K1", "K4"}),
    (cond("tags", "contains_all", ["golf", "travel"]), {"K1"}),
    (cond("products_held", "contains", "time_deposit"), {"K1", "K4", "K5"}),  # K3's is closed
    (cond("products_held", "contains_any", ["loan", "fund"]), {"K3", "K4"}),
    (cond("products_held", "contains_all", ["fund", "time_deposit"]), {"K4"}),
    (cond("products_held", "not_contains", "time_deposit"), {"K2", "K3", "K6"}),
    (cond("product_codes_held", "contains", "TD-3Y"), {"K1", "K4"}),
    (cond("account_branches", "contains", "BR1"), {"K1", "K2", "K4", "K6"}),
    (cond("account_branches", "contains_all", ["BR1", "BR2"]), {"K2", "K4"}),
    (cond("open_signal_types", "contains", "vip_outflow"), {"K1"}),
    (cond("open_signal_types", "contains", "near_upgrade"), set()),  # acknowledged: not open
    # maturities and card expiries, from today
    (cond("maturity_within_days", "lte", 30), {"K1", "K2", "K5"}),
    (cond("maturity_within_days", "lte", 0), {"K5"}),
    (cond("maturity_within_days", "lt", 22), {"K2", "K5"}),
    (cond("maturity_within_days", "lte", 22), {"K1", "K2", "K5"}),
    (cond("maturity_within_days", "between", [1, 7]), {"K2"}),
    (cond("maturity_within_days", "lte", 30, product_types=["time_deposit"]), {"K1", "K5"}),
    (cond("card_expiry_within_days", "lte", 60), {"K2"}),  # K6's card expired yesterday
    (cond("card_expiry_within_days", "lte", 60, product_types=["credit_card"]), set()),
    # counts and flags
    (cond("open_signals", "gte", 1), {"K1"}),
    (cond("open_signals", "eq", 0), EVERYONE - {"K1"}),
    (cond("points_balance", "gte", 0), {"K1", "K5"}),
    (cond("points_balance", "is_null"), {"K2", "K3", "K4", "K6"}),
    (cond("watch", "eq", True), {"K2"}),
    (cond("watch", "eq", "false"), EVERYONE - {"K2"}),
    # days since the last contact: never contacted counts as longer than any N
    (cond("days_since_last_contact", "gte", 90), {"K2", "K3", "K5", "K6"}),
    (cond("days_since_last_contact", "gte", 91), {"K2", "K3", "K5"}),  # K6: 29 Aug is 90 days ago
    (cond("days_since_last_contact", "gt", 0), {"K1", "K2", "K3", "K5", "K6"}),
    (cond("days_since_last_contact", "lte", 1), {"K1", "K4"}),
    (cond("days_since_last_contact", "lt", 1), {"K4"}),
    (cond("days_since_last_contact", "eq", 1), {"K1"}),
    (cond("days_since_last_contact", "ne", 1), EVERYONE - {"K1"}),
    (cond("days_since_last_contact", "between", [0, 90]), {"K1", "K4", "K6"}),
    (cond("days_since_last_contact", "is_null"), {"K3", "K5"}),
    (cond("days_since_last_contact", "not_null"), {"K1", "K2", "K4", "K6"}),
]


@pytest.mark.parametrize("raw,expected", CASES, ids=[f"{c['field']}-{c['op']}-{i}" for i, (c, _) in enumerate(CASES)])
def test_each_operator_selects_exactly_the_customers_it_describes(engine, raw, expected):
    assert members(engine, raw) == expected


def test_every_field_and_every_operator_of_each_kind_of_field_is_exercised():
    used = {(FIELDS[c["field"]].kind, c["op"]) for c, _ in CASES}
    declared = {(f.kind, op) for f in FIELDS.values() for op in f.ops()}
    assert declared - used == set()
    assert set(FIELDS) - {c["field"] for c, _ in CASES} == set()


def test_groups_nest_with_all_any_and_not(engine):
    raw = {"all": [
        cond("tier", "gte", "gold"),
        {"any": [cond("branch", "eq", "BR2"), cond("tags", "contains", "golf")]},
        {"not": cond("watch", "eq", True)},
    ]}
    assert members(engine, raw) == {"K1", "K4"}


def test_not_of_a_condition_on_a_missing_value_includes_the_customer(engine):
    assert members(engine, {"not": cond("risk_level", "gte", "C3")}) == {"K3", "K4", "K6"}


def test_the_shipped_example_template_selects_platinum_c3_time_deposits_maturing_in_30_days(engine):
    raw = {"all": [
        cond("maturity_within_days", "lte", {"param": "days"}, product_types=["time_deposit"]),
        cond("tier", "gte", {"param": "min_tier"}),
        cond("risk_level", "gte", {"param": "min_risk"}),
    ]}
    defaults = {"days": 30, "min_tier": "platinum", "min_risk": "C3"}
    assert members(engine, raw, defaults) == {"K1", "K5"}
    assert members(engine, raw, {**defaults, "min_tier": "private"}) == {"K5"}
    assert members(engine, raw, {**defaults, "days": "0"}) == {"K5"}


# --- parameters -----------------------------------------------------------------------------


def test_parameters_from_the_query_string_are_coerced_to_the_fields_type(engine):
    raw = {"all": [cond("aum", "between", {"param": "band"}), cond("branch", "in", {"param": "branches"})]}
    assert members(engine, raw, {"band": "50000,300000.00", "branches": "BR1,BR2"}) == {"K1", "K2", "K6"}
    assert members(engine, raw, {"band": ["50000", "300000"], "branches": ["BR1"]}) == {"K1", "K2", "K6"}


def test_a_parameter_may_be_one_element_of_a_list(engine):
    raw = cond("tier", "in", ["mass", {"param": "other"}])
    assert members(engine, raw, {"other": "private"}) == {"K3", "K5"}


def test_a_missing_parameter_is_named():
    node = parse_filter(cond("age", "gte", {"param": "min_age"}), VOCAB)
    with pytest.raises(FilterError) as err:
        bind(node, {}, VOCAB)
    assert "min_age" in str(err.value) and err.value.errors[0][0] == "filter"


def test_a_parameter_of_the_wrong_type_is_refused():
    node = parse_filter(cond("tier", "gte", {"param": "t"}), VOCAB)
    with pytest.raises(FilterError, match="parameter 't'.*not a tier"):
        bind(node, {"t": "gold'; --"}, VOCAB)


def test_query_parameters_override_defaults_and_refuse_unknown_names():
    values = query_parameters({"days", "min_tier"}, {"days": 30, "min_tier": "gold"},
                              {"days": ["7"], "cursor": ["x"]}, ("cursor", "limit", "format"))
    assert values == {"days": "7", "min_tier": "gold"}
    with pytest.raises(FilterError, match="no parameter 'dayz'"):
        query_parameters({"days"}, {"days": 30}, {"dayz": ["7"]}, ())


def test_a_template_refuses_a_default_its_filter_does_not_use():
    with pytest.raises(FilterError) as err:
        check_template(cond("age", "gte", {"param": "min_age"}), {"min_age": 60, "max_age": 70}, VOCAB)
    assert err.value.errors == [("parameters.max_age", "not used by the filter")]


def test_a_template_refuses_a_default_of_the_wrong_type_but_allows_none():
    with pytest.raises(FilterError, match="not a whole number"):
        check_template(cond("age", "gte", {"param": "min_age"}), {"min_age": "sixty"}, VOCAB)
    node = check_template(cond("age", "gte", {"param": "min_age"}), {}, VOCAB)
    assert parameter_names(node) == {"min_age"}


# --- bad input ------------------------------------------------------------------------------

BAD = [
    (cond("salary", "gte", 1), "filter.field", "unknown field 'salary'"),
    (cond("tier", "like", "gold"), "filter.op", "operator 'like' does not apply to tier"),
    (cond("tags", "gte", "golf"), "filter.op", "does not apply to tags"),
    (cond("maturity_within_days", "gt", 30), "filter.op", "does not apply"),
    (cond("tier", "gte", "titanium"), "filter.value", "not a tier"),
    (cond("risk_level", "gte", "C6"), "filter.value", "not a risk_level"),
    (cond("aum", "gte", 1.5), "filter.value", "not an amount"),
    (cond("aum", "gte", "1.005"), "filter.value", "at most two decimal places"),
    (cond("aum", "gte", True), "filter.value", "not an amount"),
    (cond("age", "gte", -1), "filter.value", "not a whole number"),
    (cond("age", "gte", "6 0"), "filter.value", "not a whole number"),
    (cond("age", "gte", 151), "filter.value", "from 0 to 150"),
    (cond("days_since_last_contact", "gte", 10**9), "filter.value", "from 0 to 36600"),
    (cond("maturity_within_days", "lte", 100000), "filter.value", "from 0 to"),
    (cond("watch", "eq", "yes"), "filter.value", "not true or false"),
    (cond("products_held", "contains", "crypto"), "filter.value", "not a product type"),
    (cond("branch", "eq", ""), "filter.value", "1 to 64 characters"),
    (cond("branch", "eq", 7), "filter.value", "1 to 64 characters"),
    (cond("branch", "in", []), "filter.value", "non-empty list"),
    (cond("aum", "between", ["1.00"]), "filter.value", "list of two"),
    (cond("aum", "gte"), "filter.value", "missing"),
    (cond("risk_level", "is_null", "C3"), "filter.value", "takes no value"),
    (cond("aum", "is_null"), "filter.op", "does not apply"),
    (cond("tier", "eq", {"param": "Robert'); DROP TABLE profile_customers;--"}), "filter.value",
     "parameter name"),
    (cond("tier", "eq", "gold", extra=1), "filter", "unknown keys"),
    (cond("tier", "eq", "gold", product_types=["time_deposit"]), "filter.product_types", "takes no product_types"),
    (cond("maturity_within_days", "lte", 30, product_types=["bonds"]), "filter.product_types", "expected"),
    ({"all": []}, "filter.all", "non-empty list"),
    ({"any": "tier"}, "filter.any", "non-empty list"),
    ({"all": [cond("tier", "eq", "gold")], "any": []}, "filter", "exactly one key"),
    ("tier = 'gold'", "filter", "expected an object"),
    ({"not": [cond("tier", "eq", "gold")]}, "filter.not", "expected an object"),
]


@pytest.mark.parametrize("raw,path,message", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_filters_are_refused_with_the_path_of_the_mistake(raw, path, message):
    with pytest.raises(FilterError) as err:
        parse_filter(raw, VOCAB)
    assert any(p == path and message in m for p, m in err.value.errors), err.value.errors


def test_every_mistake_is_reported_not_only_the_first():
    raw = {"all": [cond("salary", "gte", 1), cond("tier", "like", "x"), cond("age", "gte", "old")]}
    with pytest.raises(FilterError) as err:
        parse_filter(raw, VOCAB)
    assert [p for p, _ in err.value.errors] == ["filter.all[0].field", "filter.all[1].op", "filter.all[2].value"]


def test_nesting_and_size_are_limited():
    deep = cond("tier", "eq", "gold")
    for _ in range(7):
        deep = {"not": deep}
    with pytest.raises(FilterError, match="deeper than 6"):
        parse_filter(deep, VOCAB)
    many = {"any": [cond("tier", "eq", "gold")] * 51}
    with pytest.raises(FilterError, match="at most 50 conditions"):
        parse_filter(many, VOCAB)
    with pytest.raises(FilterError, match="at most 3 values"):
        parse_filter(cond("branch", "in", ["a", "b", "c", "d"]), VOCAB, Limits(max_list_values=3))


# --- injection attempts ---------------------------------------------------------------------

INJECTIONS = [
    "BR1' OR '1'='1",
    "BR1\" OR \"1\"=\"1",
    "x'); DROP TABLE profile_customers; --",
    "BR1' UNION SELECT customer_id FROM profile_customers --",
    "\\' OR 1=1 --",
    "%",
    "_",
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_attempts_in_values_match_nothing_and_change_nothing(engine, text):
    assert members(engine, cond("branch", "eq", text)) == set()
    assert members(engine, cond("tags", "contains_any", [text, "nothing"])) == set()
    assert members(engine, {"all": [cond("branch", "in", {"param": "b"})]}, {"b": [text]}) == set()
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(ProfileCustomer)) == 6


def test_a_quote_inside_a_value_is_just_a_character(engine):
    assert members(engine, cond("tags", "contains", "it's")) == {"K5"}


@pytest.mark.parametrize("text", INJECTIONS[:5])
def test_user_values_reach_the_statement_only_as_bind_parameters(text):
    node = bind(parse_filter({"all": [cond("branch", "eq", text), cond("tags", "contains", {"param": "t"})]},
                             VOCAB), {"t": text}, VOCAB)
    for dialect in (postgresql.dialect(),):
        sql = str(members_query(node, CTX).compile(dialect=dialect))
        assert text not in sql
        assert "DROP" not in sql and "UNION" not in sql
    params = members_query(node, CTX).compile().params
    assert params["home_branch_id_1"] == text and params["tag_1"] == [text]


def test_field_names_never_come_from_the_filter_text():
    with pytest.raises(FilterError, match="unknown field"):
        parse_filter(cond("aum) OR 1=1 --", "gte", "1.00"), VOCAB)
    with pytest.raises(FilterError, match="unknown field"):
        parse_filter(cond("__class__", "eq", "x"), VOCAB)
    with pytest.raises(FilterError, match="does not apply"):
        parse_filter(cond("aum", "__eq__", "1.00"), VOCAB)


def test_compiled_filter_is_never_null_so_not_is_a_true_complement(engine):
    for raw, expected in CASES:
        assert members(engine, {"not": raw}) == EVERYONE - expected, raw

