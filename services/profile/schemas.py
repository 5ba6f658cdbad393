"""The shapes of profile's HTTP answers (CONTRACT.md names the fields other systems read;
these carry more)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel

from shared.contracts.types import Money
from shared.settings.profile import SegmentTemplate


class Holding(BaseModel):
    account_id: str
    product_type: str
    product_code: str
    branch_id: str
    status: str
    opened_on: date
    maturity_date: date | None
    card_expiry: date | None


class HouseholdMember(BaseModel):
    customer_id: str
    name: str | None
    role: str | None
    aum: Money


class Household(BaseModel):
    household_id: str
    role: str | None
    members: list[HouseholdMember]
    combined_aum: Money


class SourcedValue(BaseModel):
    value: Any
    updated_at: datetime


class Profile(BaseModel):
    name: str | None
    id_number: str | None
    phone: str | None
    birth_date: date | None
    age: int | None
    gender: str | None
    home_branch_id: str | None
    household: Household | None
    risk_level: str | None
    tags: list[str]
    auto_points_offset: bool
    attributes: dict[str, dict[str, SourcedValue]]
    """``{source: {attribute: {value, updated_at}}}``: the latest value from each source."""
    updated_at: datetime | None


class OpenSignal(BaseModel):
    id: str
    signal_type: str
    customer_id: str
    rm_id: str | None
    branch_id: str | None
    status: str
    raised_at: datetime
    evidence: dict[str, Any]


class Rms(BaseModel):
    primary: str | None
    backup: str | None


class Fees(BaseModel):
    charged_total: Money
    charged_mtd: Money
    priced_postings: int


class Customer360(BaseModel):
    customer_id: str
    profile: Profile
    holdings: list[Holding]
    loans: list[Holding]
    credit_cards: list[Holding]
    aum: Money
    mtd_average_daily_aum: Money
    aum_by_product_type: dict[str, Money]
    liabilities: dict[str, Money]
    aum_as_of: datetime | None
    business_date: date | None
    tier: str
    watch: bool
    tier_effective_at: datetime | None
    rm: Rms
    open_signals: list[OpenSignal]
    points_balance: int | None
    fees: Fees
    last_contact: datetime | None


class TierFigures(BaseModel):
    customers: int
    aum: Money


class ProductFigures(BaseModel):
    accounts: int
    customers: int
    balance: Money
    holders_with_balance: int


class Deposits(BaseModel):
    demand_deposit: Money
    time_deposit: Money
    total: Money


class TierChanges(BaseModel):
    upgrades: int
    downgrades: int


class DayFlows(BaseModel):
    date: date
    inflow: Money
    outflow: Money


class BranchView(BaseModel):
    by_tier: dict[str, TierFigures]
    customers: int
    aum: Money
    deposits: Deposits
    products: dict[str, ProductFigures]
    inflow_today: Money
    outflow_today: Money
    net_today: Money
    inflow_mtd: Money
    outflow_mtd: Money
    net_mtd: Money
    flows_by_day: list[DayFlows]
    """Each business day of the month to date that had a flow, oldest first."""
    tier_changes_mtd: TierChanges


class BranchReport(BranchView):
    """The home-branch view at the top level; ``account_holders`` for customers holding an
    account at the branch."""

    branch_id: str
    business_date: date
    month: str
    account_holders: BranchView


class BranchSummary(BaseModel):
    branch_id: str
    customers: int
    aum: Money


class BranchPage(BaseModel):
    items: list[BranchSummary]
    next: str | None = None


class Segment(SegmentTemplate):
    parameter_names: list[str]
    source: str
    created_by: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class SegmentPage(BaseModel):
    items: list[Segment]
    next: str | None = None


class SegmentMember(BaseModel):
    customer_id: str
    name: str | None
    home_branch_id: str | None
    tier: str
    watch: bool
    aum: Money
    mtd_average_daily_aum: Money
    household_id: str | None
    household_aum: Money
    risk_level: str | None
    gender: str | None
    age: int | None
    phone: str | None
    primary_rm: str | None
    backup_rm: str | None
    open_signals: int
    points_balance: int | None
    last_contact: datetime | None


class MemberPage(BaseModel):
    items: list[SegmentMember]
    next: str | None = None


class FieldInfo(BaseModel):
    field: str
    kind: str
    description: str
    ops: list[str]
    values: list[str] | None = None
    product_types: bool = False
