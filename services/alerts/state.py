"""Alerts' rows as one batch sees them: customers, accounts, suppression windows, the large
outflows judged and the customers' active signals, as plain values loaded once for every key
the batch names (a few set-based reads), changed by the handlers and written at commit, one
statement per table.

What a batch loads follows from its events (:class:`Needs`): the customer of every fact a rule
judges, the windows of the customers whose AUM moved or who sent a large outflow, and the active
signals of the customers whose facts may close or re-route them. On PostgreSQL the customers
whose routing may change, and their active signals, are locked first: a daily scan raising a
signal for one of them (it locks the customer too) either waits for the batch, and routes to
the RM it wrote, or commits first, and the batch re-routes what it raised.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Iterable

from sqlalchemy import select, text

from shared.contracts.events import AssignmentChangedV1, TieringChangeV1
from shared.db import read_rows, write_rows
from shared.runtime.transaction import BatchTransaction
from services.alerts.domain import ACTIVE, AumHighs, is_large_interbank_outflow, month_day, tier_signal
from services.alerts.models import AlertsAccount, AlertsCustomer, AlertsOutflow, AlertsSignal, AlertsSuppression

CUSTOMERS = AlertsCustomer.__table__
ACCOUNTS = AlertsAccount.__table__
SIGNALS = AlertsSignal.__table__
WINDOWS = AlertsSuppression.__table__
OUTFLOWS = AlertsOutflow.__table__


@dataclass(slots=True)
class Customer:
    customer_id: str
    tier: str
    tier_at: datetime | None
    aum: Decimal
    aum_at: datetime | None
    highs: AumHighs
    """The daily highs of the AUM window (stored as ``AumHighs.encode``)."""
    primary_rm: str | None
    primary_at: datetime | None
    branch_id: str | None
    master_data_at: datetime | None
    birth_date: date | None
    name: str | None = None


def customer_of(r) -> Customer:
    return Customer(r.customer_id, r.tier, r.tier_at, r.aum, r.aum_at, AumHighs.decode(r.aum_highs),
                    r.primary_rm, r.primary_at, r.branch_id, r.master_data_at, r.birth_date, r.name)


def customer_row(c: Customer) -> dict:
    return {"customer_id": c.customer_id, "tier": c.tier, "tier_at": c.tier_at, "aum": c.aum,
            "aum_at": c.aum_at, "aum_highs": c.highs.encode(), "primary_rm": c.primary_rm,
            "primary_at": c.primary_at, "branch_id": c.branch_id, "master_data_at": c.master_data_at,
            "birth_date": c.birth_date, "birth_md": month_day(c.birth_date) if c.birth_date else None,
            "name": c.name}


@dataclass(slots=True)
class Account:
    account_id: str
    customer_id: str
    branch_id: str
    product_type: str
    product_code: str
    status: str
    maturity_date: date | None
    card_expiry: date | None


def account_row(a: Account) -> dict:
    return {"account_id": a.account_id, "customer_id": a.customer_id, "branch_id": a.branch_id,
            "product_type": a.product_type, "product_code": a.product_code, "status": a.status,
            "maturity_date": a.maturity_date, "card_expiry": a.card_expiry}


@dataclass(slots=True)
class Signal:
    id: str
    signal_type: str
    customer_id: str
    rm_id: str | None
    branch_id: str | None
    status: str
    raised_at: datetime
    evidence: dict[str, Any]
    subject: str
    occurs_on: date | None
    threshold: int
    expires_on: date | None
    version: int
    trigger_event_id: str | None
    created_at: datetime
    status_at: datetime
    acted_by: str | None
    closed_reason: str | None = None
    """Why Strata closed it itself."""
    priority: int = 3
    """1 (most urgent) to 5."""
    customer_name: str | None = None
    snoozed_until: date | None = None


def signal_of(r) -> Signal:
    return Signal(r.id, r.signal_type, r.customer_id, r.rm_id, r.branch_id, r.status, r.raised_at,
                  json.loads(r.evidence), r.subject, r.occurs_on, r.threshold, r.expires_on, r.version,
                  r.trigger_event_id, r.created_at, r.status_at, r.acted_by, r.closed_reason, r.priority,
                  r.customer_name, r.snoozed_until)


def signal_row(s: Signal) -> dict:
    return {"id": s.id, "signal_type": s.signal_type, "customer_id": s.customer_id, "rm_id": s.rm_id,
            "branch_id": s.branch_id, "status": s.status, "raised_at": s.raised_at,
            "evidence": json.dumps(s.evidence, sort_keys=True, ensure_ascii=False), "subject": s.subject,
            "occurs_on": s.occurs_on, "threshold": s.threshold, "expires_on": s.expires_on,
            "version": s.version, "trigger_event_id": s.trigger_event_id, "created_at": s.created_at,
            "status_at": s.status_at, "acted_by": s.acted_by, "closed_reason": s.closed_reason,
            "priority": s.priority, "customer_name": s.customer_name, "snoozed_until": s.snoozed_until}


@dataclass(slots=True)
class Window:
    """A rolling suppression window: the type is not raised again for the customer before
    ``until``."""

    customer_id: str
    signal_type: str
    target_tier: str
    """``near_upgrade``: the tier it was near (one window per target tier); "" otherwise."""
    raised_on: date
    until: date
    signal_id: str


def window_row(w: Window) -> dict:
    return {"customer_id": w.customer_id, "signal_type": w.signal_type, "target_tier": w.target_tier,
            "raised_on": w.raised_on, "until": w.until, "signal_id": w.signal_id}


def large_outflow(change: TieringChangeV1, settings) -> bool:
    """Whether a change's posting is a large outflow to another bank (what ``vip_outflow``'s
    second trigger judges)."""
    p = change.posting
    return p is not None and is_large_interbank_outflow(
        p.direction, p.counterparty_bank, p.amount, p.product_type, settings.signals.vip_outflow.large_outflow,
        settings.pricing.own_bank_codes)


@dataclass
class Needs:
    """The keys a batch's events name, by what is loaded for them."""

    customers: set[str] = field(default_factory=set)
    accounts: set[str] = field(default_factory=set)
    windows: set[str] = field(default_factory=set)
    """Customers who may raise a rolling signal (their suppression windows)."""
    active: set[str] = field(default_factory=set)
    """Customers whose active signals a fact may close or re-route."""
    routing: set[str] = field(default_factory=set)
    """Customers whose RM or branch a fact may change (locked on PostgreSQL)."""
    outflows: set[str] = field(default_factory=set)
    signal_ids: set[str] = field(default_factory=set)
    """Signals the batch's tier decisions would raise (a replayed decision raises nothing)."""

    @classmethod
    def of(cls, events: Iterable, settings) -> "Needs":
        needs = cls()
        for event in events:
            data = event.data
            if isinstance(data, AssignmentChangedV1):
                if data.role == "primary":
                    needs.customers.add(data.customer_id)
                    needs.routing.add(data.customer_id)
            elif isinstance(data, TieringChangeV1):
                needs.add_change(data, settings)
        needs.active |= needs.routing
        return needs

    def add_change(self, change: TieringChangeV1, settings) -> None:
        c = change.customer_id
        if change.customer is not None or change.account is not None:
            self.customers.add(c)
            self.routing.add(c)
            if change.account is not None:
                self.accounts.add(change.account.account_id)
        if large_outflow(change, settings):
            self.customers.add(c)
            self.windows.add(c)
            self.outflows.add(change.posting.posting_id)
        for t in change.tier_changes:
            self.customers.add(c)
            self.active.add(c)
            finding = tier_signal(t.change, customer_id=c, from_tier=t.from_, to_tier=t.to,
                                  effective_at=t.effective_at, evidence={})
            if finding is not None:
                self.signal_ids.add(finding.id)
        if change.aum != change.aum_before:
            self.customers.add(c)
            self.windows.add(c)
            if change.aum < change.aum_before:  # a near-upgrade may have fallen away
                self.active.add(c)


@dataclass
class AlertsState:
    """What one batch of alerts' events (or one API action, or one page of the daily scan's
    expiry) works on."""

    customers: dict[str, Customer | None] = field(default_factory=dict)
    accounts: dict[str, Account | None] = field(default_factory=dict)
    windows: dict[tuple[str, str, str], Window] = field(default_factory=dict)
    windows_of: set[str] = field(default_factory=set)
    """Customers whose windows are loaded (those absent from ``windows`` have none)."""
    outflows: set[str] = field(default_factory=set)
    """Large outflows judged: the posting ids stored before the batch and judged in it."""
    signals: dict[str, Signal] = field(default_factory=dict)
    active: dict[str, list[Signal]] = field(default_factory=dict)
    """Customer id -> their signals active when loaded and raised since, for the customers
    whose facts may close or re-route them."""
    existing: set[str] = field(default_factory=set)
    """Ids among ``Needs.signal_ids`` that are stored already."""
    new_outflows: list[dict] = field(default_factory=list)
    dirty_customers: set[str] = field(default_factory=set)
    dirty_accounts: set[str] = field(default_factory=set)
    dirty_windows: set[tuple[str, str, str]] = field(default_factory=set)
    new_signals: set[str] = field(default_factory=set)
    changed_signals: set[str] = field(default_factory=set)

    @classmethod
    async def load(cls, tx: BatchTransaction, events: list) -> "AlertsState":
        state = cls()
        await state.load_needs(tx, Needs.of(events, tx.settings))
        return state

    async def load_needs(self, tx: BatchTransaction, needs: Needs) -> None:
        session = tx.session
        await _lock(session, "alerts_customers", "customer_id", needs.routing)
        for r in await read_rows(session, CUSTOMERS, "customer_id", needs.customers):
            self.customers[r.customer_id] = customer_of(r)
        for customer_id in needs.customers:
            self.customers.setdefault(customer_id, None)
        for r in await read_rows(session, ACCOUNTS, "account_id", needs.accounts):
            self.accounts[r.account_id] = Account(r.account_id, r.customer_id, r.branch_id, r.product_type,
                                                  r.product_code, r.status, r.maturity_date, r.card_expiry)
        for account_id in needs.accounts:
            self.accounts.setdefault(account_id, None)
        for r in await read_rows(session, WINDOWS, "customer_id", needs.windows):
            self.windows[(r.customer_id, r.signal_type, r.target_tier)] = Window(
                r.customer_id, r.signal_type, r.target_tier, r.raised_on, r.until, r.signal_id)
        self.windows_of |= needs.windows
        self.outflows |= {r.posting_id for r in await read_rows(
            session, OUTFLOWS, "posting_id", needs.outflows, columns=(OUTFLOWS.c.posting_id,))}
        self.existing |= {r.id for r in await read_rows(session, SIGNALS, "id", needs.signal_ids,
                                                        columns=(SIGNALS.c.id,))}
        await self.load_active(tx, needs.active)

    async def load_active(self, tx: BatchTransaction, customer_ids: set[str]) -> None:
        """The customers' active signals (locked on PostgreSQL)."""
        ids = customer_ids - set(self.active)
        active = SIGNALS.c.status.in_(ACTIVE)
        await _lock(tx.session, "alerts_signals", "customer_id", ids, "t.status IN ('open', 'acknowledged')")
        for customer_id in ids:
            self.active[customer_id] = []
        for r in await read_rows(tx.session, SIGNALS, "customer_id", ids, where=active):
            self.active[r.customer_id].append(self.adopt(signal_of(r)))

    async def load_signal(self, tx: BatchTransaction, signal_id: str) -> Signal | None:
        """One signal, whatever its status, locked for the transaction (an RM's action)."""
        row = (await tx.session.execute(
            select(SIGNALS).where(SIGNALS.c.id == signal_id).with_for_update())).one_or_none()
        return None if row is None else self.adopt(signal_of(row))

    def adopt(self, signal: Signal) -> Signal:
        """A stored signal, now part of this state (changes to it are written at commit)."""
        self.signals[signal.id] = signal
        return signal

    # --- what the handlers read and change -------------------------------------------------

    def active_of(self, customer_id: str) -> list[Signal]:
        """The customer's active signals, in id order (the order their changes are announced)."""
        loaded = self.active.get(customer_id)
        if loaded is None:
            raise LookupError(f"the active signals of {customer_id} were not loaded for this batch")
        return sorted((s for s in loaded if s.status in ACTIVE), key=lambda s: s.id)

    def window(self, customer_id: str, signal_type: str, target_tier: str = "") -> Window | None:
        if customer_id not in self.windows_of:
            raise LookupError(f"the suppression windows of {customer_id} were not loaded for this batch")
        return self.windows.get((customer_id, signal_type, target_tier))

    def set_window(self, window: Window) -> None:
        key = (window.customer_id, window.signal_type, window.target_tier)
        self.windows[key] = window
        self.dirty_windows.add(key)

    def is_stored(self, signal_id: str) -> bool:
        return signal_id in self.signals or signal_id in self.existing

    def add_signal(self, signal: Signal) -> None:
        self.signals[signal.id] = signal
        self.new_signals.add(signal.id)
        loaded = self.active.get(signal.customer_id)
        if loaded is not None:
            loaded.append(signal)

    def changed_signal(self, signal: Signal) -> None:
        if signal.id not in self.new_signals:
            self.changed_signals.add(signal.id)

    def judged_outflow(self, posting_id: str, customer_id: str, posted_at: datetime) -> None:
        self.outflows.add(posting_id)
        self.new_outflows.append({"posting_id": posting_id, "customer_id": customer_id, "posted_at": posted_at})

    def changed_customer(self, customer: Customer) -> None:
        self.dirty_customers.add(customer.customer_id)

    def changed_account(self, account: Account) -> None:
        self.dirty_accounts.add(account.account_id)

    # --- commit ---------------------------------------------------------------------------

    async def write(self, tx: BatchTransaction) -> None:
        session = tx.session
        await write_rows(session, CUSTOMERS, [customer_row(self.customers[c]) for c in sorted(self.dirty_customers)],
                         key=("customer_id",))
        await write_rows(session, ACCOUNTS, [account_row(self.accounts[a]) for a in sorted(self.dirty_accounts)],
                         key=("account_id",))
        await write_rows(session, WINDOWS, [window_row(self.windows[k]) for k in sorted(self.dirty_windows)],
                         key=("customer_id", "signal_type", "target_tier"))
        await write_rows(session, OUTFLOWS, self.new_outflows, key=("posting_id",), update=())
        # a signal is inserted once: an id stored already (the same fact) keeps its row
        await write_rows(session, SIGNALS, [signal_row(self.signals[s]) for s in sorted(self.new_signals)],
                         key=("id",), update=())
        await write_rows(session, SIGNALS, [signal_row(self.signals[s]) for s in sorted(self.changed_signals)],
                         key=("id",))
        self.dirty_customers.clear()
        self.dirty_accounts.clear()
        self.dirty_windows.clear()
        self.new_outflows = []
        self.new_signals.clear()
        self.changed_signals.clear()


async def _lock(session, table: str, key: str, keys: set[str], where: str = "") -> None:
    """Lock the rows of ``table`` whose ``key`` is one of ``keys`` until the transaction ends, in
    key order (PostgreSQL; SQLite's transactions take the whole database for writing)."""
    if not keys or session.get_bind().dialect.name != "postgresql":
        return
    condition = f" WHERE {where}" if where else ""
    await session.execute(text(
        f"SELECT 1 FROM unnest(CAST(:keys AS VARCHAR[])) AS k(id) JOIN {table} t ON t.{key} = k.id"
        f"{condition} ORDER BY t.{key} FOR UPDATE OF t"), {"keys": sorted(keys)})
