"""Tiering's rows as one batch sees them: accounts, customers and households as plain values,
loaded once for every key the batch names (a few set-based reads), changed by the handlers, and
written at commit, one statement per table."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import text

from shared.contracts.events import CustomerV1
from shared.db import read_rows, write_rows
from shared.money import ZERO
from shared.runtime.transaction import BatchTransaction
from services.tiering.domain import AccountPosition, SeqRanges
from services.tiering.models import (
    TieringAccount,
    TieringCustomer,
    TieringDailyAum,
    TieringHousehold,
    TieringMonthlyAum,
)

ACCOUNTS = TieringAccount.__table__
CUSTOMERS = TieringCustomer.__table__
HOUSEHOLDS = TieringHousehold.__table__
MONTHS = TieringMonthlyAum.__table__
DAYS = TieringDailyAum.__table__


@dataclass(slots=True)
class Account:
    account_id: str
    customer_id: str
    product_type: str
    status: str
    position: AccountPosition
    balance: Decimal
    """The balance in force as stored (``position.balance`` once applied)."""
    seen: SeqRanges


@dataclass(slots=True)
class Customer:
    customer_id: str
    household_id: str | None
    aum: Decimal
    liabilities: Decimal
    holdings: dict[str, int]
    """Balance in cents per product type."""
    tier: str
    watch: bool
    months_below: int
    tier_since: datetime | None
    mtd_day: date
    mtd_sum: Decimal
    day_high: Decimal
    average_aum_12m: Decimal
    updated_at: datetime | None
    placed_at: datetime | None
    master_at: datetime | None


def _account_of(r) -> Account:
    return Account(r.account_id, r.customer_id, r.product_type, r.status,
                   AccountPosition(r.seq, r.posting_balance, r.posted_at, r.snapshot_balance, r.snapshot_at),
                   r.balance, SeqRanges.parse(r.seen))


def _customer_of(r) -> Customer:
    holdings = r.holdings if isinstance(r.holdings, dict) else json.loads(r.holdings or "{}")
    return Customer(r.customer_id, r.household_id, r.aum, r.liabilities, dict(holdings), r.tier, r.watch,
                    r.months_below, r.tier_since, r.mtd_day, r.mtd_sum, r.day_high, r.average_aum_12m,
                    r.updated_at, r.placed_at, r.master_at)


def account_row(a: Account) -> dict:
    p = a.position
    return {"account_id": a.account_id, "customer_id": a.customer_id, "product_type": a.product_type,
            "status": a.status, "balance": a.balance, "seq": p.seq, "posting_balance": p.posting_balance,
            "posted_at": p.posted_at, "snapshot_balance": p.snapshot_balance, "snapshot_at": p.snapshot_at,
            "seen": str(a.seen)}


def customer_row(c: Customer) -> dict:
    return {"customer_id": c.customer_id, "household_id": c.household_id, "aum": c.aum,
            "liabilities": c.liabilities, "holdings": c.holdings, "tier": c.tier, "watch": c.watch,
            "months_below": c.months_below, "tier_since": c.tier_since, "mtd_day": c.mtd_day,
            "mtd_sum": c.mtd_sum, "day_high": c.day_high, "average_aum_12m": c.average_aum_12m,
            "updated_at": c.updated_at, "placed_at": c.placed_at, "master_at": c.master_at}


@dataclass
class TieringState:
    """What one batch of tiering's events works on."""

    accounts: dict[str, Account | None] = field(default_factory=dict)
    customers: dict[str, Customer | None] = field(default_factory=dict)
    households: dict[str, Decimal] = field(default_factory=dict)
    """Household id -> the members' AUM summed (households locked for the transaction)."""
    members: dict[str, set[str]] = field(default_factory=dict)
    """Household id -> its members, for the households the batch touches (aggregation on)."""
    dirty_accounts: set[str] = field(default_factory=set)
    dirty_customers: set[str] = field(default_factory=set)
    dirty_households: set[str] = field(default_factory=set)
    months: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    """(customer, month) -> the month's total of end-of-day AUM, for months that ended."""
    days: dict[tuple[str, date], tuple[Decimal, Decimal]] = field(default_factory=dict)
    """(customer, day) -> (end-of-day AUM, the day's high) of the days the batch touched."""

    @classmethod
    async def load(cls, tx: BatchTransaction, events: list) -> "TieringState":
        state = cls()
        account_ids, customer_ids, households = set(), set(), set()
        for event in events:
            data = event.data
            customer_ids.add(data.customer_id)
            if hasattr(data, "account_id"):
                account_ids.add(data.account_id)
            if isinstance(data, CustomerV1) and data.household_id:
                households.add(data.household_id)
        await state.load_keys(tx, account_ids, customer_ids, households)
        return state

    async def load_keys(self, tx: BatchTransaction, account_ids, customer_ids, households=()) -> None:
        session = tx.session
        for r in await read_rows(session, ACCOUNTS, "account_id", set(account_ids) - set(self.accounts)):
            self.accounts[r.account_id] = _account_of(r)
        for account_id in account_ids:
            self.accounts.setdefault(account_id, None)
        await self._load_customers(session, set(customer_ids) - set(self.customers))
        wanted = set(households) | {c.household_id for c in self.customers.values() if c and c.household_id}
        await self._load_households(tx, wanted - set(self.households))

    async def _load_customers(self, session, ids) -> None:
        for r in await read_rows(session, CUSTOMERS, "customer_id", ids):
            self.customers[r.customer_id] = _customer_of(r)
        for customer_id in ids:
            self.customers.setdefault(customer_id, None)

    async def _load_households(self, tx: BatchTransaction, ids: set[str]) -> None:
        """The households' AUM, each locked to the end of the transaction: its members' facts
        sit in different partitions, which two instances apply at once, and it moves by
        read-add-write. With household aggregation the members are loaded too."""
        if not ids:
            return
        session = tx.session
        if session.get_bind().dialect.name == "postgresql":
            for household_id in sorted(ids):  # in one order, so two instances never wait in a cycle
                await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:h))"), {"h": household_id})
        for r in await read_rows(session, HOUSEHOLDS, "household_id", ids):
            self.households[r.household_id] = r.aum
        for household_id in ids:
            self.households.setdefault(household_id, ZERO)
        if tx.settings.tiering.household_aggregation:
            rows = await read_rows(session, CUSTOMERS, "household_id", ids, columns=(CUSTOMERS.c.customer_id,
                                                                                     CUSTOMERS.c.household_id))
            for household_id in ids:
                self.members.setdefault(household_id, set())
            for r in rows:
                self.members[r.household_id].add(r.customer_id)
            await self._load_customers(session, {r.customer_id for r in rows} - set(self.customers))

    # --- changes the handlers make --------------------------------------------------------

    def changed_account(self, account: Account) -> None:
        self.dirty_accounts.add(account.account_id)

    def changed_customer(self, customer: Customer) -> None:
        self.dirty_customers.add(customer.customer_id)

    def add_to_household(self, household_id: str, delta: Decimal) -> None:
        self.households[household_id] = self.households.get(household_id, ZERO) + delta
        self.dirty_households.add(household_id)

    def remember_day(self, customer: Customer) -> None:
        """The customer's current business day as it stands: its end-of-day AUM so far and its
        high (rewritten with every change of the day, so the last write is the day's end)."""
        self.days[(customer.customer_id, customer.mtd_day)] = (customer.aum, customer.day_high)

    # --- commit ---------------------------------------------------------------------------

    async def write(self, tx: BatchTransaction) -> None:
        session = tx.session
        await write_rows(session, ACCOUNTS, [account_row(self.accounts[a]) for a in sorted(self.dirty_accounts)],
                         key=("account_id",))
        await write_rows(session, CUSTOMERS,
                         [customer_row(self.customers[c]) for c in sorted(self.dirty_customers)],
                         key=("customer_id",))
        await write_rows(session, HOUSEHOLDS, [{"household_id": h, "aum": self.households[h]}
                                               for h in sorted(self.dirty_households)], key=("household_id",))
        await write_rows(session, MONTHS, [{"customer_id": c, "month": m, "total": total, "average": None}
                                           for (c, m), total in sorted(self.months.items())],
                         key=("customer_id", "month"), update=())
        await write_rows(session, DAYS, [{"customer_id": c, "day": d, "aum": aum, "high": high}
                                         for (c, d), (aum, high) in sorted(self.days.items())],
                         key=("customer_id", "day"))
