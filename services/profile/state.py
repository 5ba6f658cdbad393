"""Profile's rows as one batch sees them: customers, accounts and signals as plain values,
loaded once for every key the batch's events name (a few set-based reads), changed by the
handlers, and written at commit, one statement per table.

Besides the rows, the state knows which business facts the database holds already (priced
postings and tier changes, by their keys), the attributes' times, and each customer's net AUM
change of the business days the batch's AUM records fall on, so that every decision a handler
makes is taken in memory. Nothing reaches the database before the batch commits, and a batch
that rolls back leaves nothing behind: a re-run loads afresh.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, delete

from shared.calendar import business_day
from shared.contracts.cloudevents import Event
from shared.contracts.events import AccountV1, AumV1, CustomerV1, FeeAssessedV1, SignalV1, TierChangedV1
from shared.db import read_rows, write_rows
from shared.money import ZERO
from shared.runtime.transaction import BatchTransaction
from services.profile import metrics
from services.profile.models import (
    ProfileAccount,
    ProfileAttribute,
    ProfileCustomer,
    ProfileCustomerFlow,
    ProfileFeePosting,
    ProfileSignal,
    ProfileTag,
    ProfileTierChange,
)

CUSTOMERS = ProfileCustomer.__table__
ACCOUNTS = ProfileAccount.__table__
SIGNALS = ProfileSignal.__table__
TAGS = ProfileTag.__table__
ATTRIBUTES = ProfileAttribute.__table__
FLOWS = ProfileCustomerFlow.__table__
FEES = ProfileFeePosting.__table__
TIER_CHANGES = ProfileTierChange.__table__
TIER_CHANGE_KEY = tuple(c.name for c in TIER_CHANGES.primary_key.columns)
CHUNK = 1000


@dataclass(slots=True)
class Customer:
    """A row of ``profile_customers`` (the fields are its columns)."""

    customer_id: str
    tier: str
    name: str | None = None
    id_number: str | None = None
    phone: str | None = None
    birth_date: date | None = None
    gender: str | None = None
    home_branch_id: str | None = None
    household_id: str | None = None
    household_role: str | None = None
    risk_level: str | None = None
    tags: str = "[]"
    """JSON list, as stored (the tag rows of ``profile_tags`` mirror it)."""
    auto_points_offset: bool = False
    master_updated_at: datetime | None = None
    aum: Decimal = ZERO
    mtd_average_daily_aum: Decimal = ZERO
    aum_by_product_type: str = "{}"
    liabilities: str = "{}"
    aum_business_date: date | None = None
    aum_as_of: datetime | None = None
    balance_demand_deposit: Decimal = ZERO
    balance_time_deposit: Decimal = ZERO
    balance_wealth_product: Decimal = ZERO
    balance_fund: Decimal = ZERO
    balance_insurance: Decimal = ZERO
    balance_precious_metal: Decimal = ZERO
    balance_loan: Decimal = ZERO
    balance_credit_card: Decimal = ZERO
    watch: bool = False
    tier_effective_at: datetime | None = None
    primary_rm: str | None = None
    primary_at: datetime | None = None
    backup_rm: str | None = None
    backup_at: datetime | None = None
    open_signals: int = 0
    points_balance: int | None = None
    points_at: datetime | None = None
    fees_charged: Decimal = ZERO
    fees_priced: int = 0
    last_contact_at: datetime | None = None


@dataclass(slots=True)
class Account:
    """A row of ``profile_accounts``: core banking's record of the account (``None`` while
    only a balance has named it) and its balance now."""

    account_id: str
    customer_id: str
    branch_id: str | None = None
    product_type: str | None = None
    product_code: str | None = None
    status: str | None = None
    opened_on: date | None = None
    maturity_date: date | None = None
    card_expiry: date | None = None
    event_at: datetime | None = None
    balance: Decimal | None = None


@dataclass(slots=True)
class Signal:
    """A row of ``profile_signals``."""

    id: str
    customer_id: str
    signal_type: str
    rm_id: str | None
    branch_id: str | None
    status: str
    raised_at: datetime
    evidence: str


def _columns_of(cls, table) -> tuple[str, ...]:
    """The dataclass's fields, which must be the table's columns (a column added to the model
    and not here would never be written)."""
    names = tuple(cls.__slots__)
    differ = set(names) ^ set(table.c.keys())
    if differ:
        raise TypeError(f"{cls.__name__} and {table.name} differ in {sorted(differ)}")
    return names


CUSTOMER_COLUMNS = _columns_of(Customer, CUSTOMERS)
ACCOUNT_COLUMNS = _columns_of(Account, ACCOUNTS)
SIGNAL_COLUMNS = _columns_of(Signal, SIGNALS)


def _row(value, columns: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(value, name) for name in columns}


def _selected(table, columns: tuple[str, ...]) -> tuple:
    """The table's columns in the order of a dataclass's fields, so a row read builds it
    positionally."""
    return tuple(table.c[name] for name in columns)


_CUSTOMER_SELECT = _selected(CUSTOMERS, CUSTOMER_COLUMNS)
_ACCOUNT_SELECT = _selected(ACCOUNTS, ACCOUNT_COLUMNS)
_SIGNAL_SELECT = _selected(SIGNALS, SIGNAL_COLUMNS)


@dataclass
class ProfileState:
    """What one batch of profile's events works on."""

    customers: dict[str, Customer | None] = field(default_factory=dict)
    accounts: dict[str, Account | None] = field(default_factory=dict)
    signals: dict[str, Signal | None] = field(default_factory=dict)
    fees: set[str] = field(default_factory=set)
    """Posting ids whose fee the database or this batch has recorded."""
    tier_changes: set[tuple] = field(default_factory=set)
    """Tier changes (by ``TIER_CHANGE_KEY``) the database or this batch has recorded."""
    attribute_times: dict[tuple[str, str, str], datetime] = field(default_factory=dict)
    """(customer, source, name) -> the time of the value kept, for the batch's customers."""
    flows: dict[tuple[str, date], Decimal] = field(default_factory=dict)
    """(customer, business day) -> the day's net AUM change so far, for the batch's AUM days."""
    dirty_customers: set[str] = field(default_factory=set)
    dirty_accounts: set[str] = field(default_factory=set)
    dirty_signals: set[str] = field(default_factory=set)
    dirty_flows: set[tuple[str, date]] = field(default_factory=set)
    tags: dict[str, list[str]] = field(default_factory=dict)
    """Customer -> the tags that replace theirs."""
    attributes: dict[tuple[str, str, str], tuple[str, datetime]] = field(default_factory=dict)
    """(customer, source, name) -> (JSON value, time): the attribute values to keep."""

    @classmethod
    async def load(cls, tx: BatchTransaction, events: list[Event]) -> "ProfileState":
        state = cls()
        customers, accounts, signals, fees, tiered, tier_times = set(), set(), set(), set(), set(), set()
        attributed, flow_days, last_seen = set(), set(), {}
        zone = tx.settings.zone
        for event in events:
            data = event.data
            customers.add(data.customer_id)
            last_seen[event.topic] = event.time
            if isinstance(data, AumV1):
                flow_days.add((data.customer_id, flow_day(data, zone)))
                accounts.update(data.balances)
            elif isinstance(data, FeeAssessedV1):
                fees.add(data.posting_id)
            elif isinstance(data, AccountV1):
                accounts.add(data.account_id)
            elif isinstance(data, SignalV1):
                signals.add(data.id)
            elif isinstance(data, TierChangedV1):
                tiered.add(data.customer_id)
                tier_times.add(data.effective_at)
            elif isinstance(data, CustomerV1) and data.attributes:
                attributed.add(data.customer_id)
        session = tx.session
        for r in await read_rows(session, CUSTOMERS, "customer_id", customers, columns=_CUSTOMER_SELECT):
            state.customers[r[0]] = Customer(*r)
        for r in await read_rows(session, ACCOUNTS, "account_id", accounts, columns=_ACCOUNT_SELECT):
            state.accounts[r[0]] = Account(*r)
        for r in await read_rows(session, SIGNALS, "id", signals, columns=_SIGNAL_SELECT):
            state.signals[r[0]] = Signal(*r)
        state.fees.update(r.posting_id for r in await read_rows(
            session, FEES, "posting_id", fees, columns=(FEES.c.posting_id,)))
        if tiered:
            state.tier_changes.update(tuple(r) for r in await read_rows(
                session, TIER_CHANGES, "customer_id", tiered,
                columns=[TIER_CHANGES.c[c] for c in TIER_CHANGE_KEY],
                where=TIER_CHANGES.c.effective_at.in_(sorted(tier_times))))
        for r in await read_rows(session, ATTRIBUTES, "customer_id", attributed,
                                 columns=(ATTRIBUTES.c.customer_id, ATTRIBUTES.c.source, ATTRIBUTES.c.name,
                                          ATTRIBUTES.c.updated_at)):
            state.attribute_times[(r.customer_id, r.source, r.name)] = r.updated_at
        if flow_days:
            for r in await read_rows(session, FLOWS, "customer_id", {c for c, _ in flow_days},
                                     where=FLOWS.c.day.in_(sorted({d for _, d in flow_days}))):
                state.flows[(r.customer_id, r.day)] = r.net
        tx.after_commit(lambda: _record_lag(last_seen))
        return state

    # --- changes the handlers make --------------------------------------------------------

    def customer(self, customer_id: str, tier: str) -> Customer:
        """The customer's row, created on the first event about them (master data may come
        later) in ``tier``, the lowest."""
        customer = self.customers.get(customer_id)
        if customer is None:
            customer = self.customers[customer_id] = Customer(customer_id, tier)
        self.dirty_customers.add(customer_id)
        return customer

    def account(self, account_id: str, customer_id: str) -> Account:
        """The account's row, created for ``customer_id`` on first sight (its record may come
        later)."""
        account = self.accounts.get(account_id)
        if account is None:
            account = self.accounts[account_id] = Account(account_id, customer_id)
        self.dirty_accounts.add(account_id)
        return account

    def add_signal(self, signal: Signal) -> None:
        self.signals[signal.id] = signal
        self.dirty_signals.add(signal.id)

    def changed_signal(self, signal: Signal) -> None:
        self.dirty_signals.add(signal.id)

    def replace_tags(self, customer_id: str, tags: list[str]) -> None:
        self.tags[customer_id] = list(tags)

    def keep_attribute(self, customer_id: str, source: str, name: str, value: Any, at: datetime) -> None:
        """Keep ``value`` unless a newer one of the same source is kept (the same time wins,
        as a correction sent again does)."""
        key = (customer_id, source, name)
        kept = self.attribute_times.get(key)
        if kept is not None and at < kept:
            return
        self.attribute_times[key] = at
        self.attributes[key] = (json.dumps(value, ensure_ascii=False), at)

    def add_flow(self, customer_id: str, day: date, delta: Decimal) -> None:
        """Add ``delta`` to the customer's net AUM change of business day ``day``: the row of a
        key the batch touched is written even when its changes cancel out (``+100`` then
        ``-100``), so the table ends the same however the events fall into batches."""
        key = (customer_id, day)
        self.flows[key] = self.flows.get(key, ZERO) + delta
        self.dirty_flows.add(key)

    def first_fee(self, data: FeeAssessedV1) -> bool:
        """Whether this priced posting is new (by posting id); a new one is recorded."""
        if data.posting_id in self.fees:
            return False
        self.fees.add(data.posting_id)
        return True

    def first_tier_change(self, data: TierChangedV1) -> bool:
        """Whether this tier change is new (by customer, time, kind and tiers); a new one is
        recorded."""
        key = (data.customer_id, data.effective_at, data.change, data.from_, data.to)
        if key in self.tier_changes:
            return False
        self.tier_changes.add(key)
        return True

    # --- commit ---------------------------------------------------------------------------

    async def write(self, tx: BatchTransaction) -> None:
        session = tx.session
        await write_rows(session, CUSTOMERS, [_row(self.customers[c], CUSTOMER_COLUMNS)
                                              for c in sorted(self.dirty_customers)], key=("customer_id",))
        await write_rows(session, ACCOUNTS, [_row(self.accounts[a], ACCOUNT_COLUMNS)
                                             for a in sorted(self.dirty_accounts)], key=("account_id",))
        await write_rows(session, SIGNALS, [_row(self.signals[s], SIGNAL_COLUMNS)
                                            for s in sorted(self.dirty_signals)], key=("id",))
        await self._write_tags(session)
        await write_rows(session, ATTRIBUTES, [
            {"customer_id": c, "source": s, "name": n, "value": value, "updated_at": at}
            for (c, s, n), (value, at) in sorted(self.attributes.items())], key=("customer_id", "source", "name"))
        await write_rows(session, FLOWS, [{"customer_id": c, "day": d, "net": self.flows[(c, d)]}
                                          for c, d in sorted(self.dirty_flows)], key=("customer_id", "day"))

    async def _write_tags(self, session) -> None:
        """The customers' tag rows replaced: theirs deleted, the new ones inserted."""
        if not self.tags:
            return
        ids = sorted(self.tags)
        for chunk in _chunks(ids):
            await session.execute(delete(TAGS).where(TAGS.c.customer_id.in_(bindparam("ids", expanding=True))),
                                  {"ids": chunk})
        await write_rows(session, TAGS, [{"customer_id": c, "tag": t} for c in ids for t in self.tags[c]],
                         key=("customer_id", "tag"), update=())


def flow_day(data: AumV1, zone: ZoneInfo) -> date:
    """The business day an AUM record's change counts on: the day it happened in the bank's
    zone (a posting read late, after the customer's later ones, counts on its own day, not on
    tiering's running ``business_date``); records without ``changed_at`` count on their
    ``business_date``."""
    return business_day(data.changed_at, zone) if data.changed_at is not None else data.business_date


def fee_row(data: FeeAssessedV1) -> dict[str, Any]:
    return {"posting_id": data.posting_id, "customer_id": data.customer_id, "fee_id": data.fee_id,
            "net": data.net, "points_used": data.points_used, "posted_at": data.posted_at}


def tier_change_row(data: TierChangedV1) -> dict[str, Any]:
    return {"customer_id": data.customer_id, "effective_at": data.effective_at, "change": data.change,
            "from_tier": data.from_, "to_tier": data.to, "reason": data.reason}


def _record_lag(last_seen: dict[str, datetime]) -> None:
    """How far behind each topic the read model is, by the last event of the batch applied
    from it (the seconds between its time and now)."""
    now = datetime.now(timezone.utc)
    for topic, at in last_seen.items():
        metrics.READ_MODEL_LAG.labels(topic).set(max((now - at).total_seconds(), 0.0))


def _chunks(ids: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]
