"""The shapes of profile's HTTP answers (the contract names the fields other systems read;
these carry more)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from shared.contracts.types import Money
from shared.settings.profile import SegmentTemplate


class Holding(BaseModel):
    account_id: str
    product_type: str
    product_code: str
    product_name: str | None = Field(description=(
        "the product's name in the bank's catalogue (profile.products); null for a code it does not list"))
    branch_id: str
    status: str
    balance: Money | None = Field(description=(
        "the account's balance now, from the latest AUM change that moved it; null until one has "
        "(an account that never held AUM, such as a loan or a card)"))
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
    customers: int = Field(description="customers of the view in this tier now")
    aum: Money = Field(description="their AUM now, summed (CNY)")


class ProductFigures(BaseModel):
    accounts: int = Field(description="accounts of this product type behind the view that are not closed "
                                      "(for the home-branch view: all the members' accounts; for account "
                                      "holders: the accounts at this branch)")
    customers: int = Field(description="distinct customers holding those accounts")
    balance: Money = Field(description="the members' balances of this product type, from their latest AUM "
                                       "(every account they hold, wherever it is kept)")
    holders_with_balance: int = Field(description="members whose balance of this product type is not zero "
                                                  "(an open account with nothing in it does not count)")


class Deposits(BaseModel):
    demand_deposit: Money = Field(description="the members' demand deposit balances (活期)")
    time_deposit: Money = Field(description="the members' time deposit balances (定期)")
    total: Money = Field(description="demand and time deposits together")


class TierChanges(BaseModel):
    upgrades: int = Field(description="members' upgrades effective from the 1st of the month to the report date")
    downgrades: int = Field(description="members' downgrades effective from the 1st of the month to the report date "
                                        "(a month-end close's downgrades take effect on the 1st of the next month)")


class DayFlows(BaseModel):
    date: date
    inflow: Money
    outflow: Money


class BranchView(BaseModel):
    """The figures of one set of members. A member's inflow (outflow) of a business day is the
    day's net AUM increase (decrease): moving money between their own products is no flow, and
    a customer counts for the branch with the flows of their whole month."""

    by_tier: dict[str, TierFigures] = Field(description="tier id -> the members in that tier now and their AUM; "
                                                        "every configured tier, zero where none")
    customers: int = Field(description="members of the view now")
    aum: Money = Field(description="the members' AUM now (deposits, wealth products, funds, insurance cash "
                                   "value, precious metals; loans and card debt are not AUM)")
    deposits: Deposits = Field(description="the members' deposit balances now")
    products: dict[str, ProductFigures] = Field(description="product type -> accounts, holders and balances")
    inflow_today: Money = Field(description="sum over members of their net AUM increase on the report's business date")
    outflow_today: Money = Field(description="sum over members of their net AUM decrease on the report's business date")
    net_today: Money = Field(description="inflow_today - outflow_today")
    inflow_mtd: Money = Field(description="sum over members and days, from the 1st of the month to the report "
                                          "date, of each day's net AUM increase")
    outflow_mtd: Money = Field(description="the same for each day's net AUM decrease")
    net_mtd: Money = Field(description="inflow_mtd - outflow_mtd")
    flows_by_day: list[DayFlows] = Field(description="each business day of the month to date that had a "
                                                     "flow, oldest first: the day's inflow and outflow")
    tier_changes_mtd: TierChanges = Field(description="the members' upgrades and downgrades this month")


class BranchReport(BranchView):
    """The home-branch view at the top level (customers whose home branch this is);
    ``account_holders`` for customers holding an account that is not closed at the branch. The
    members are those of the moment the report is asked; tiers, AUM, deposits and products are
    their current figures, flows are those of the report date and its month."""

    branch_id: str = Field(description="the branch reported on")
    business_date: date = Field(description="the report's business date (today on the business clock unless "
                                            "asked with ?date=)")
    month: str = Field(description="the month of the business date, YYYY-MM, which the *_mtd figures cover")
    account_holders: BranchView = Field(description="the same figures for the customers holding an account "
                                                    "(not closed) at this branch, wherever their home branch is")


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
