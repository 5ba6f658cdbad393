"""Alerts' handlers: keep what the signal rules need to know of each customer, raise each signal
once, route it to the customer's primary RM (or the branch's queue), follow RM changes.

The handlers work on the batch's plain values (``tx.state``, :mod:`services.alerts.state`);
nothing touches the database until the batch commits. Signals from events (``near_upgrade``,
``vip_outflow``, tier changes) are raised here; the date-based ones come from
:mod:`services.alerts.scan`. The RMs' actions (ack, done) change a signal through the same
functions, on a state holding that one signal.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal
from shared.calendar import business_day
from shared.contracts.cloudevents import Event
from shared.contracts.events import (
    AccountFact,
    AssignmentChangedV1,
    CustomerFact,
    SignalV1,
    TierChange,
    TieringChangeV1,
)
from shared.money import ZERO, format_money
from shared.runtime.errors import Rejected
from shared.runtime.transaction import BatchTransaction
from services.alerts import metrics
from services.alerts.domain import (
    ACKNOWLEDGED,
    EXPIRED,
    NEAR_UPGRADE,
    OPEN,
    VIP_OUTFLOW,
    AumHighs,
    Finding,
    closed_by_tier_change,
    lapses_on,
    near_upgrade,
    no_longer_near,
    suppressed,
    tier_signal,
    track_high,
    transition,
    vip_drop,
    vip_large_outflow,
)
from services.alerts.state import (
    SIGNALS,
    Account,
    AlertsState,
    Customer,
    Signal,
    Window,
    large_outflow,
    signal_of,
)


def _now() -> datetime:
    return datetime.now(timezone.utc)


# --- handlers -------------------------------------------------------------------------------


async def on_tiering_change(event: Event, tx: BatchTransaction) -> None:
    """One fact of a customer as tiering applied it (``strata.tiering.changes``), in the order
    tiering applied them: core banking's customer and account records, then a posting, the tier
    decisions it caused and the AUM after it. Every judgment below is made in that order, so
    the same stream raises the same signals however it is batched or redelivered."""
    change: TieringChangeV1 = event.data
    if change.customer is not None:
        _on_customer(tx, change.customer)
    if change.account is not None:
        _on_account(tx, change.account)
    if change.posting is not None:
        _on_posting(tx, change, event)
    for decision in change.tier_changes:
        _on_tier(tx, change, decision, event)
    if change.aum != change.aum_before:
        _on_aum(tx, change, event)


async def on_assignment(event: Event, tx: BatchTransaction) -> None:
    """A new primary RM takes over the customer's active signals (none: the branch's queue)."""
    a: AssignmentChangedV1 = event.data
    if a.role != "primary":
        return
    state: AlertsState = tx.state
    customer = _customer(tx, a.customer_id)
    if customer.primary_at is not None and a.changed_at < customer.primary_at:
        _count_stale(tx, "assignment")
        return
    changed = customer.primary_rm != a.to
    customer.primary_rm, customer.primary_at = a.to, a.changed_at
    state.changed_customer(customer)
    if changed:
        reroute(tx, customer)


def _on_aum(tx: BatchTransaction, a: TieringChangeV1, event: Event) -> None:
    """Move the customer's AUM and its window of daily highs, then judge ``near_upgrade`` and
    the fall-from-the-high trigger of ``vip_outflow`` with the tier tiering held right after
    this AUM change, which the change carries."""
    settings = tx.settings
    rules = settings.signals
    customer = _customer(tx, a.customer_id)
    if customer.aum_at is not None and a.at < customer.aum_at:
        _count_stale(tx, "aum")
        return
    day = business_day(a.at, settings.zone)
    highs = track_high(customer.highs, day, customer.aum, a.aum, rules.vip_outflow.window_days)
    customer.aum, customer.aum_at, customer.highs = a.aum, a.at, highs
    if a.tier != customer.tier:
        customer.tier, customer.tier_at = a.tier, a.at
    tx.state.changed_customer(customer)
    ladder = settings.tier_ladder
    if a.aum < a.aum_before:
        for signal in tx.state.active_of(a.customer_id):
            if signal.signal_type == NEAR_UPGRADE:
                reason = no_longer_near(signal.evidence, a.aum, ladder, rules.near_upgrade.ratio)
                if reason is not None:
                    close(tx, signal, reason)
    near = near_upgrade(ladder, customer.tier, a.aum, rules.near_upgrade.ratio,
                        customer_id=a.customer_id, day=day,
                        suppress_days=rules.near_upgrade.suppress_days)
    vip = rules.vip_outflow
    drop = vip_drop(ladder, customer.tier, a.aum, highs, min_tier=vip.min_tier,
                    drop_ratio=vip.drop_ratio, window_days=vip.window_days,
                    customer_id=a.customer_id, day=day, suppress_days=vip.suppress_days)
    for finding in (near, drop):
        if finding is not None:
            finding = replace(finding, evidence={**finding.evidence, "as_of": a.at.isoformat()})
            raise_signal(tx, customer, finding, at=a.at, event=event)


def _on_posting(tx: BatchTransaction, change: TieringChangeV1, event: Event) -> None:
    """A VIP's single large outflow to another bank raises ``vip_outflow``, judged with the tier
    tiering passed on with the posting (in force right after it) and quoting the AUM right
    after it. Tiering has already refused a posting that contradicts its account, so none
    reaches here. Each posting is judged once, whatever event id it arrives under.

    The posting comes before the AUM change it caused: a large outflow and the drop it causes
    raise one signal, which names the posting."""
    if not large_outflow(change, tx.settings):
        return
    state: AlertsState = tx.state
    p = change.posting
    if p.posting_id in state.outflows:
        _count(tx, metrics.SIGNALS_SUPPRESSED, VIP_OUTFLOW)
        return
    state.judged_outflow(p.posting_id, p.customer_id, p.posted_at)
    customer = _customer(tx, p.customer_id)
    vip = tx.settings.signals.vip_outflow
    posting = {"posting_id": p.posting_id, "account_id": p.account_id, "amount": format_money(p.amount),
               "counterparty_bank": p.counterparty_bank, "tx_type": p.tx_type, "channel": p.channel,
               "posted_at": p.posted_at.isoformat(), "aum": format_money(change.aum)}
    finding = vip_large_outflow(tx.settings.tier_ladder, change.tier, min_tier=vip.min_tier,
                                large_outflow=vip.large_outflow, customer_id=p.customer_id,
                                day=business_day(p.posted_at, tx.settings.zone),
                                suppress_days=vip.suppress_days, posting=posting)
    if finding is not None:
        raise_signal(tx, customer, finding, at=p.posted_at, event=event)


def _on_tier(tx: BatchTransaction, change: TieringChangeV1, t: TierChange, event: Event) -> None:
    """Every upgrade, downgrade and watch is a signal; a tier change also closes the active
    signals it makes moot (a near-upgrade once its tier is reached, an earlier watch). The
    customer is in the tier tiering holds after the change, even one dated before what was read
    already (a month-end close decides after the next month's first events)."""
    state: AlertsState = tx.state
    customer = _customer(tx, change.customer_id)
    customer.tier, customer.tier_at = t.to, t.effective_at
    state.changed_customer(customer)
    evidence = {"from": t.from_, "to": t.to, "change": t.change, "reason": t.reason,
                "effective_at": t.effective_at.isoformat(), "watch": t.watch,
                "aum": format_money(change.aum), "basis": format_money(t.basis)}
    finding = tier_signal(t.change, customer_id=change.customer_id, from_tier=t.from_, to_tier=t.to,
                          effective_at=t.effective_at, evidence=evidence)
    day = business_day(t.effective_at, tx.settings.zone)
    for signal in state.active_of(change.customer_id):
        reason = closed_by_tier_change(signal.signal_type, signal.evidence, signal.raised_at, change=t.change,
                                       from_tier=t.from_, to_tier=t.to, effective_at=t.effective_at, day=day,
                                       ladder=tx.settings.tier_ladder)
        if reason is not None:
            close(tx, signal, reason)
    if finding is not None:
        raise_signal(tx, customer, finding, at=t.effective_at, event=event)


def _on_account(tx: BatchTransaction, a: AccountFact) -> None:
    """Keep the maturity date and card expiry the daily scan looks at; a closed account's
    open reminders expire."""
    state: AlertsState = tx.state
    account = state.accounts.get(a.account_id)
    if account is None:
        account = Account(a.account_id, a.customer_id, a.branch_id, a.product_type, a.product_code, a.status,
                          a.maturity_date, a.card_expiry)
        state.accounts[a.account_id] = account
    elif account.customer_id != a.customer_id:
        raise Rejected(f"account {a.account_id} belongs to customer {account.customer_id}, not {a.customer_id}")
    account.branch_id, account.product_type, account.product_code = a.branch_id, a.product_type, a.product_code
    account.status, account.maturity_date, account.card_expiry = a.status, a.maturity_date, a.card_expiry
    state.changed_account(account)
    customer = _customer(tx, a.customer_id)
    if customer.branch_id is None:
        customer.branch_id = a.branch_id  # until core banking names the home branch
        state.changed_customer(customer)
        reroute(tx, customer)
    if a.status == "closed":
        for signal in state.active_of(a.customer_id):
            if signal.subject == a.account_id:
                close(tx, signal, f"account {a.account_id} closed")


def _on_customer(tx: BatchTransaction, c: CustomerFact) -> None:
    """Birthday and home branch; a new branch takes over the customer's active signals."""
    state: AlertsState = tx.state
    customer = _customer(tx, c.customer_id)
    if customer.master_data_at is not None and c.updated_at < customer.master_data_at:
        _count_stale(tx, "customer")
        return
    customer.master_data_at = c.updated_at
    customer.birth_date = c.birth_date
    state.changed_customer(customer)
    if c.name != customer.name:
        customer.name = c.name
        for signal in state.active_of(c.customer_id):  # the RM's list shows the name as it is now
            signal.customer_name, signal.status_at, signal.version = c.name, _now(), signal.version + 1
            state.changed_signal(signal)
            announce(tx, signal)
    if c.home_branch_id is not None and c.home_branch_id != customer.branch_id:
        customer.branch_id = c.home_branch_id
        reroute(tx, customer)


# --- the steps the handlers share ----------------------------------------------------------


def _customer(tx: BatchTransaction, customer_id: str) -> Customer:
    state: AlertsState = tx.state
    customer = state.customers[customer_id]
    if customer is None:
        customer = Customer(customer_id, tx.settings.tier_ladder.lowest.id, None, ZERO, None, AumHighs(),
                            None, None, None, None, None, None)
        state.customers[customer_id] = customer
        state.changed_customer(customer)
    return customer


def _count_stale(tx: BatchTransaction, kind: str) -> None:
    tx.after_commit(metrics.STALE_EVENTS.labels(kind).inc)


def _count(tx: BatchTransaction, counter, signal_type: str) -> None:
    tx.after_commit(counter.labels(signal_type).inc)


def raise_signal(tx: BatchTransaction, customer: Customer, finding: Finding, *, at: datetime,
                 event: Event | None) -> Signal | None:
    """Store ``finding`` as a signal routed to the customer's primary RM (or the branch's
    queue) and announce it, unless it is suppressed: inside the type's rolling window for the
    customer, or already raised (its id, derived from the fact, is stored)."""
    state: AlertsState = tx.state
    signal_type = finding.signal_type
    if finding.suppress_until is not None:
        window = state.window(customer.customer_id, signal_type, finding.window)
        if window is not None and suppressed(window.until, finding.occurs_on):
            _count(tx, metrics.SIGNALS_SUPPRESSED, signal_type)
            return None
    if state.is_stored(finding.id):
        _count(tx, metrics.SIGNALS_SUPPRESSED, signal_type)
        return None
    lapses = tx.settings.signals.lapses_after(signal_type)
    if lapses is not None:
        finding = replace(finding, expires_on=lapses_on(business_day(at, tx.settings.zone), lapses))
    priority = tx.settings.signals.priority.of(signal_type, customer.tier)
    signal = new_signal(Routed(finding, customer.primary_rm, customer.branch_id, priority, customer.name),
                        raised_at=at, trigger_event_id=event.id if event else None)
    state.add_signal(signal)
    raised(tx, signal, trigger_time=event.time if event else None)
    if finding.suppress_until is not None:
        state.set_window(Window(customer.customer_id, signal_type, finding.window, finding.occurs_on,
                                finding.suppress_until, signal.id))
    return signal


@dataclass(frozen=True)
class Routed:
    """A finding and who it goes to: the customer's primary RM, and their branch (whose queue
    it waits in when there is no RM), with its priority and the customer's name."""

    finding: Finding
    rm_id: str | None
    branch_id: str | None
    priority: int
    customer_name: str | None


def new_signal(routed: Routed, *, raised_at: datetime, trigger_event_id: str | None = None) -> Signal:
    """A finding as a signal just raised: open, version 1."""
    f = routed.finding
    now = _now()
    return Signal(f.id, f.signal_type, f.customer_id, routed.rm_id, routed.branch_id, OPEN, raised_at,
                  f.evidence, f.subject, f.occurs_on, f.threshold, f.expires_on, 1, trigger_event_id,
                  now, now, None, None, routed.priority, routed.customer_name)


def raised(tx: BatchTransaction, signal: Signal, *, trigger_time: datetime | None) -> None:
    """Announce a signal just stored and count it (its latency from the triggering event)."""
    announce(tx, signal)
    _count(tx, metrics.SIGNALS_RAISED, signal.signal_type)
    if trigger_time is not None:
        latency = max(0.0, (signal.created_at - trigger_time).total_seconds())
        histogram = metrics.SIGNAL_LATENCY.labels(signal.signal_type)
        tx.after_commit(lambda: histogram.observe(latency))


def announce(tx: BatchTransaction, signal: Signal) -> None:
    """Emit ``strata.signal.v1`` for the signal as it is now; each version has its own stable
    event id, so a re-run or a replay of the same change reaches consumers once."""
    tx.emit(SignalV1.model_construct(
        id=signal.id, signal_type=signal.signal_type, customer_id=signal.customer_id,
        rm_id=signal.rm_id, branch_id=signal.branch_id, status=signal.status,
        raised_at=signal.raised_at, evidence=signal.evidence, closed_reason=signal.closed_reason,
        priority=signal.priority, customer_name=signal.customer_name, snoozed_until=signal.snoozed_until,
    ), stable_id=f"signal:{signal.id}:{signal.version}")


def change_status(tx: BatchTransaction, signal: Signal, status: str, acted_by: str | None = None) -> None:
    signal.status, signal.status_at, signal.version = status, _now(), signal.version + 1
    if acted_by is not None:
        signal.acted_by = acted_by
    tx.state.changed_signal(signal)
    announce(tx, signal)
    tx.after_commit(metrics.SIGNALS_STATUS_CHANGES.labels(signal.signal_type, status).inc)


def close(tx: BatchTransaction, signal: Signal, reason: str) -> None:
    """Strata closes (expires) an active signal itself, saying why: it is no longer worth
    acting on. The reason is stored and announced with it."""
    signal.closed_reason = reason
    change_status(tx, signal, EXPIRED, acted_by="strata")


def reroute(tx: BatchTransaction, customer: Customer) -> int:
    """Hand the customer's active signals (open or acknowledged) to their primary RM and branch
    as they are now. The status stays: statuses only move forward (open, acknowledged, then
    done or expired), which is what consumers of ``strata.signal.v1`` may rely on."""
    state: AlertsState = tx.state
    moved = 0
    for signal in state.active_of(customer.customer_id):
        if (signal.rm_id, signal.branch_id) == (customer.primary_rm, customer.branch_id):
            continue
        signal.rm_id, signal.branch_id = customer.primary_rm, customer.branch_id
        signal.status_at, signal.version = _now(), signal.version + 1
        state.changed_signal(signal)
        announce(tx, signal)
        tx.after_commit(metrics.SIGNALS_REROUTED.labels(signal.signal_type).inc)
        moved += 1
    return moved


# --- reads and actions (the API) -----------------------------------------------------------


@dataclass(frozen=True)
class SignalQuery:
    """``GET /v1/signals`` filters, already narrowed to what the caller may see."""

    rm_id: str | None = None
    branch_id: str | None = None
    unassigned: bool = False
    signal_types: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    customer_id: str | None = None
    raised_from: datetime | None = None
    raised_before: datetime | None = None
    awake_on: date | None = None
    """Leave out the signals snoozed beyond this business date."""


def may_see(principal: Principal, signal: Signal) -> bool:
    """An RM sees the signals routed to them; a branch manager the branch's; analysts and
    admins all."""
    if principal.sees_everyone:
        return True
    if principal.role == "rm":
        return signal.rm_id is not None and signal.rm_id == principal.rm_id
    if principal.role == "branch_manager":
        return signal.branch_id is not None and signal.branch_id == principal.branch_id
    return False


def may_act(principal: Principal, signal: Signal) -> bool:
    """Who may acknowledge or close a signal: whoever may see it, except read-only analysts."""
    return principal.role != "analyst" and may_see(principal, signal)


async def list_signals(session: AsyncSession, query: SignalQuery, limit: int,
                       after: tuple[datetime, str] | None) -> list[Signal]:
    """Newest first (raised_at, then id, descending); ``after`` is the last item of the
    previous page."""
    S = SIGNALS.c
    stmt = select(SIGNALS)
    if query.rm_id is not None:
        stmt = stmt.where(S.rm_id == query.rm_id)
    if query.unassigned:
        stmt = stmt.where(S.rm_id.is_(None))
    if query.branch_id is not None:
        stmt = stmt.where(S.branch_id == query.branch_id)
    if query.signal_types:
        stmt = stmt.where(S.signal_type.in_(query.signal_types))
    if query.statuses:
        stmt = stmt.where(S.status.in_(query.statuses))
    if query.customer_id is not None:
        stmt = stmt.where(S.customer_id == query.customer_id)
    if query.raised_from is not None:
        stmt = stmt.where(S.raised_at >= query.raised_from)
    if query.raised_before is not None:
        stmt = stmt.where(S.raised_at < query.raised_before)
    if query.awake_on is not None:
        stmt = stmt.where(or_(S.snoozed_until.is_(None), S.snoozed_until <= query.awake_on))
    if after is not None:
        at, last_id = after
        stmt = stmt.where(or_(S.raised_at < at, and_(S.raised_at == at, S.id < last_id)))
    stmt = stmt.order_by(S.raised_at.desc(), S.id.desc()).limit(limit)
    return [signal_of(r) for r in await session.execute(stmt)]


async def get_signal(session: AsyncSession, signal_id: str) -> Signal | None:
    row = (await session.execute(select(SIGNALS).where(SIGNALS.c.id == signal_id))).one_or_none()
    return None if row is None else signal_of(row)


async def _signal_to_act_on(tx: BatchTransaction, principal: Principal, signal_id: str) -> Signal:
    """The signal, loaded into the transaction's state, if the caller may act on it."""
    state = tx.state = AlertsState()
    signal = await state.load_signal(tx, signal_id)
    if signal is None:
        raise SignalNotFound(signal_id)
    if not may_act(principal, signal):
        raise NotYours(signal_id)
    return signal


async def act_on(tx: BatchTransaction, principal: Principal, signal_id: str, action: str) -> Signal:
    """Acknowledge or close a signal the caller may act on; the change is announced."""
    signal = await _signal_to_act_on(tx, principal, signal_id)
    after = transition(signal.status, action)
    if after != signal.status:
        if after == ACKNOWLEDGED and tx.settings.signals.lapses_after(signal.signal_type) is not None:
            signal.expires_on = None  # someone is on it: it stays until done
        change_status(tx, signal, after, acted_by=principal.rm_id or principal.subject)
    return signal


async def snooze(tx: BatchTransaction, principal: Principal, signal_id: str, until: date, today: date) -> Signal:
    """The RM puts an active signal aside until ``until`` (a business date after today): it is
    acknowledged, and the awake list leaves it out until that day. Snoozing again moves the date."""
    if until <= today:
        raise SnoozeRefused(f"snooze until a day after today ({today.isoformat()}), not {until.isoformat()}")
    signal = await _signal_to_act_on(tx, principal, signal_id)
    after = transition(signal.status, "ack")
    if (after, until) != (signal.status, signal.snoozed_until):
        if after == ACKNOWLEDGED and tx.settings.signals.lapses_after(signal.signal_type) is not None:
            signal.expires_on = None  # someone is on it: it stays until done
        signal.snoozed_until = until
        change_status(tx, signal, after, acted_by=principal.rm_id or principal.subject)
    return signal


class SnoozeRefused(Exception):
    pass


class SignalNotFound(Exception):
    pass


class NotYours(Exception):
    pass


def signal_view(signal: Signal) -> dict[str, Any]:
    return {
        "id": signal.id, "signal_type": signal.signal_type, "customer_id": signal.customer_id,
        "rm_id": signal.rm_id, "branch_id": signal.branch_id, "status": signal.status,
        "raised_at": signal.raised_at, "evidence": signal.evidence,
        "expires_on": signal.expires_on, "status_at": signal.status_at, "acted_by": signal.acted_by,
        "version": signal.version, "closed_reason": signal.closed_reason, "priority": signal.priority,
        "customer_name": signal.customer_name, "snoozed_until": signal.snoozed_until,
    }
