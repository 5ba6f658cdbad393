"""Alerts' handlers: keep what the signal rules need to know of each customer, raise each signal
once, route it to the customer's primary RM (or the branch's queue), follow RM changes.

Signals from events (``near_upgrade``, ``vip_outflow``, tier changes) are raised here; the
date-based ones come from :mod:`services.alerts.scan`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Sequence

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal
from shared.calendar import business_day
from shared.contracts.cloudevents import Event
from shared.contracts.events import (
    AccountFact,
    AssignmentChangedV1,
    CustomerFact,
    PostingFact,
    SignalV1,
    TierChange,
    TieringChangeV1,
)
from shared.db import insert_for
from shared.money import ZERO, format_money
from shared.runtime.errors import Rejected
from shared.runtime.unit_of_work import UnitOfWork
from shared.settings import Settings
from services.alerts import metrics
from services.alerts.domain import (
    ACTIVE,
    EXPIRED,
    OPEN,
    ROLLING_TYPES,
    VIP_OUTFLOW,
    AumHighs,
    Finding,
    TierLadder,
    closed_by_tier_change,
    is_large_interbank_outflow,
    month_day,
    near_upgrade,
    suppressed,
    tier_signal,
    track_high,
    transition,
    vip_drop,
    vip_large_outflow,
)
from services.alerts.models import (
    AlertsAccount,
    AlertsCustomer,
    AlertsOutflow,
    AlertsSignal,
    AlertsSuppression,
)

_LADDERS: dict[int, tuple[Settings, TierLadder]] = {}


def ladder_of(settings: Settings) -> TierLadder:
    """The tier ladder of these settings, built (and its signal tiers checked) once."""
    cached = _LADDERS.get(id(settings))
    if cached is None or cached[0] is not settings:
        ladder = TierLadder.from_rules(settings.tiers)
        for name, tier in (("vip_outflow.min_tier", settings.signals.vip_outflow.min_tier),
                           ("birthday.min_tier", settings.signals.birthday.min_tier)):
            if tier not in ladder.by_id:
                raise ValueError(f"signals.{name} is {tier!r}, which is not a tier id")
        cached = (settings, ladder)
        _LADDERS[id(settings)] = cached
    return cached[1]


def _now() -> datetime:
    return datetime.now(timezone.utc)


# --- handlers -------------------------------------------------------------------------------


async def on_tiering_change(event: Event, uow: UnitOfWork) -> None:
    """One fact of a customer as tiering applied it (``strata.tiering.changes``), in the order
    tiering applied them: core banking's customer and account records, then a posting, the tier
    decisions it caused and the AUM after it. Every judgment below is made in that order, so
    the same stream raises the same signals however it is batched or redelivered."""
    change: TieringChangeV1 = event.data
    if change.customer is not None:
        await on_customer(change.customer, uow)
    if change.account is not None:
        await on_account(change.account, uow)
    if change.posting is not None:
        await on_posting_tiered(change, event, uow)
    for decision in change.tier_changes:
        await on_tier(change, decision, event, uow)
    if change.aum != change.aum_before:
        await on_aum(change, event, uow)


async def on_aum(a: TieringChangeV1, event: Event, uow: UnitOfWork) -> None:
    """Move the customer's AUM and its window of daily highs, then judge ``near_upgrade`` and
    the fall-from-the-high trigger of ``vip_outflow`` with the tier tiering held right after
    this AUM change, which the event carries (tiering always sets it; an event without one is
    judged with the tier held so far, raised to the one its AUM reaches, as tiering does)."""
    settings = uow.settings
    rules = settings.signals
    customer = await _customer(uow, a.customer_id)
    if customer.aum_at is not None and a.at < customer.aum_at:
        _count_stale(uow, "aum")
        return
    day = business_day(a.at, settings.zone)
    highs = track_high(AumHighs.decode(customer.aum_highs), day, customer.aum, a.aum,
                       rules.vip_outflow.window_days)
    customer.aum, customer.aum_at, customer.aum_highs = a.aum, a.at, highs.encode()
    ladder = ladder_of(settings)
    if a.tier != customer.tier:
        customer.tier, customer.tier_at = a.tier, a.at
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
            await raise_signal(uow, customer, finding, at=a.at, event=event)


async def on_posting_tiered(tiered: TieringChangeV1, event: Event, uow: UnitOfWork) -> None:
    """A VIP's single large outflow to another bank raises ``vip_outflow``, judged with the tier
    tiering passed on with the posting (in force right after it) and quoting the AUM right
    after it. Tiering has already refused a posting that contradicts its account, so none
    reaches here. Each posting is judged once, whatever event id it arrives under.

    The tiered posting comes before the AUM event it caused: a large outflow and the drop it
    causes raise one signal, which names the posting."""
    p = tiered.posting
    vip = uow.settings.signals.vip_outflow
    if not _large_outflow(p, uow.settings):
        return
    session = uow.session
    if await session.get(AlertsOutflow, p.posting_id) is not None:
        _count(session, metrics.SIGNALS_SUPPRESSED, VIP_OUTFLOW)
        return
    session.add(AlertsOutflow(posting_id=p.posting_id, customer_id=p.customer_id, posted_at=p.posted_at))
    await session.flush()
    customer = await _customer(uow, p.customer_id)
    posting = {"posting_id": p.posting_id, "account_id": p.account_id, "amount": format_money(p.amount),
               "counterparty_bank": p.counterparty_bank, "tx_type": p.tx_type, "channel": p.channel,
               "posted_at": p.posted_at.isoformat(), "aum": format_money(tiered.aum)}
    finding = vip_large_outflow(ladder_of(uow.settings), tiered.tier, min_tier=vip.min_tier,
                                large_outflow=vip.large_outflow, customer_id=p.customer_id,
                                day=business_day(p.posted_at, uow.settings.zone),
                                suppress_days=vip.suppress_days, posting=posting)
    if finding is not None:
        await raise_signal(uow, customer, finding, at=p.posted_at, event=event)


def _large_outflow(p: PostingFact, settings: Settings) -> bool:
    return is_large_interbank_outflow(p.direction, p.counterparty_bank, p.amount, p.product_type,
                                      settings.signals.vip_outflow.large_outflow)


async def on_tier(change: TieringChangeV1, t: TierChange, event: Event, uow: UnitOfWork) -> None:
    """Every upgrade, downgrade and watch is a signal; a tier change also expires the open
    signals it makes moot (a near-upgrade once the tier is reached, an earlier watch). The
    customer is in the tier tiering holds after the change, even one dated before what was read
    already (a month-end close decides after the next month's first events)."""
    customer = await _customer(uow, change.customer_id)
    customer.tier, customer.tier_at = t.to, t.effective_at
    await uow.session.flush()
    evidence = {"from": t.from_, "to": t.to, "change": t.change, "reason": t.reason,
                "effective_at": t.effective_at.isoformat(), "watch": t.watch,
                "aum": format_money(change.aum), "basis": format_money(t.basis)}
    finding = tier_signal(t.change, customer_id=change.customer_id, from_tier=t.from_, to_tier=t.to,
                          effective_at=t.effective_at, evidence=evidence)
    closed = closed_by_tier_change(t.change)
    if closed:
        # Only what was raised before this change: a redelivered or replayed tier event must not
        # expire the signal it raised itself, nor a near-upgrade raised at the same moment for
        # the tier above the one just reached.
        await expire_where(uow, (AlertsSignal.customer_id == change.customer_id,
                                 AlertsSignal.signal_type.in_(closed),
                                 AlertsSignal.raised_at < t.effective_at))
    if finding is not None:
        await raise_signal(uow, customer, finding, at=t.effective_at, event=event)


async def on_account(a: AccountFact, uow: UnitOfWork) -> None:
    """Keep the maturity date and card expiry the daily scan looks at; a closed account's
    open reminders expire."""
    session = uow.session
    account = await session.get(AlertsAccount, a.account_id)
    if account is None:
        account = AlertsAccount(account_id=a.account_id, customer_id=a.customer_id)
        session.add(account)
    elif account.customer_id != a.customer_id:
        raise Rejected(f"account {a.account_id} belongs to customer {account.customer_id}, not {a.customer_id}")
    account.branch_id, account.product_type, account.product_code = a.branch_id, a.product_type, a.product_code
    account.status, account.maturity_date, account.card_expiry = a.status, a.maturity_date, a.card_expiry
    customer = await _customer(uow, a.customer_id)
    first_branch = customer.branch_id is None
    if first_branch:
        customer.branch_id = a.branch_id  # until core banking names the home branch
    await session.flush()
    if first_branch:
        await reroute(uow, customer)
    if a.status == "closed":
        await expire_where(uow, (AlertsSignal.customer_id == a.customer_id,
                                 AlertsSignal.subject == a.account_id))


async def on_customer(c: CustomerFact, uow: UnitOfWork) -> None:
    """Birthday (as an indexed month-day) and home branch; a new branch takes over the
    customer's active signals."""
    customer = await _customer(uow, c.customer_id)
    if customer.master_data_at is not None and c.updated_at < customer.master_data_at:
        _count_stale(uow, "customer")
        return
    customer.master_data_at = c.updated_at
    customer.birth_date = c.birth_date
    customer.birth_md = month_day(c.birth_date) if c.birth_date else None
    moved = c.home_branch_id is not None and c.home_branch_id != customer.branch_id
    if moved:
        customer.branch_id = c.home_branch_id
    await uow.session.flush()
    if moved:
        await reroute(uow, customer)


async def on_assignment(event: Event, uow: UnitOfWork) -> None:
    """A new primary RM takes over the customer's active signals (none: the branch's queue)."""
    a: AssignmentChangedV1 = event.data
    if a.role != "primary":
        return
    customer = await _customer(uow, a.customer_id)
    if customer.primary_at is not None and a.changed_at < customer.primary_at:
        _count_stale(uow, "assignment")
        return
    changed = customer.primary_rm != a.to
    customer.primary_rm, customer.primary_at = a.to, a.changed_at
    # The customer row is written (and, in PostgreSQL, locked) before the signals are read: a
    # daily scan raising a signal for this customer either waits for this change or is seen.
    await uow.session.flush()
    if changed:
        await reroute(uow, customer)


# --- the steps the handlers share ----------------------------------------------------------


async def prefetch(events: list[Event], uow: UnitOfWork) -> None:
    """Load the customers of a batch and their suppression windows in two queries per
    thousand customers; the handlers then find them (or their absence) in ``uow.batch``.

    It first checks the signal settings: a ``min_tier`` that is not a tier stops the consumer
    here, before any event is handled (nothing dead-lettered, offsets not committed, readiness
    reports the loop), rather than failing every event one by one."""
    ladder_of(uow.settings)
    ids = sorted({_customer_of(event.data) for event in events if _judged(event.data, uow.settings)})
    customers = uow.batch.setdefault(AlertsCustomer, {})
    windows = uow.batch.setdefault(AlertsSuppression, {})
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        found = {c.customer_id: c for c in (await uow.session.execute(
            select(AlertsCustomer).where(AlertsCustomer.customer_id.in_(chunk)))).scalars()}
        for customer_id in chunk:
            customers[customer_id] = found.get(customer_id)
            for signal_type in ROLLING_TYPES:
                windows[(customer_id, signal_type)] = None
        for window in (await uow.session.execute(
                select(AlertsSuppression).where(AlertsSuppression.customer_id.in_(chunk)))).scalars():
            windows[(window.customer_id, window.signal_type)] = window


def _customer_of(data) -> str:
    return data.customer_id


def _judged(data, settings: Settings) -> bool:
    """Whether a handler looks at the customer: not for a posting that is all a change is,
    unless it is a large outflow."""
    if not isinstance(data, TieringChangeV1):
        return True
    if data.posting is not None and not data.tier_changes and data.aum == data.aum_before:
        return _large_outflow(data.posting, settings)
    return True


async def _cached(uow: UnitOfWork, model, key):
    cache = uow.batch.setdefault(model, {})
    if key not in cache:
        cache[key] = await uow.session.get(model, key)
    return cache[key]


async def _customer(uow: UnitOfWork, customer_id: str) -> AlertsCustomer:
    customer = await _cached(uow, AlertsCustomer, customer_id)
    if customer is None:
        customer = AlertsCustomer(customer_id=customer_id, tier=ladder_of(uow.settings).lowest.id,
                                  aum=ZERO, aum_highs="")
        uow.session.add(customer)  # written with the batch's other rows (or by a handler's flush)
        uow.batch[AlertsCustomer][customer_id] = customer
    return customer


def _count_stale(uow: UnitOfWork, kind: str) -> None:
    metrics.after_commit(uow.session, metrics.STALE_EVENTS.labels(kind).inc)


async def raise_signal(uow: UnitOfWork, customer: AlertsCustomer, finding: Finding, *, at: datetime,
                       event: Event | None) -> AlertsSignal | None:
    """Store ``finding`` as a signal routed to the customer's primary RM (or the branch's
    queue) and announce it, unless it is suppressed: inside the type's rolling window for the
    customer, or already raised (its id, derived from the fact, exists)."""
    session = uow.session
    signal_type = finding.signal_type
    window = None
    if finding.suppress_until is not None:
        window = await _cached(uow, AlertsSuppression, (customer.customer_id, signal_type))
        if window is not None and suppressed(window.until, finding.occurs_on):
            _count(session, metrics.SIGNALS_SUPPRESSED, signal_type)
            return None
    stored = await store_signals(uow, [Routed(finding, customer.primary_rm, customer.branch_id)],
                                 raised_at=at, trigger_event_id=event.id if event else None,
                                 trigger_time=event.time if event else None)
    signal = stored[0] if stored else None
    if signal is not None and finding.suppress_until is not None:
        if window is None:
            window = AlertsSuppression(customer_id=customer.customer_id, signal_type=signal_type)
            session.add(window)
            uow.batch[AlertsSuppression][(customer.customer_id, signal_type)] = window
        window.raised_on, window.until = finding.occurs_on, finding.suppress_until
        window.signal_id = signal.id
        await session.flush()
    return signal


@dataclass(frozen=True)
class Routed:
    """A finding and who it goes to: the customer's primary RM, and their branch (whose queue
    it waits in when there is no RM)."""

    finding: Finding
    rm_id: str | None
    branch_id: str | None


_INSERT_ROWS = 1000


async def store_signals(uow: UnitOfWork, routed: Sequence[Routed], *, raised_at: datetime,
                        trigger_event_id: str | None = None,
                        trigger_time: datetime | None = None) -> list[AlertsSignal]:
    """Insert the signals once (an id that exists is left alone: the same fact raised again),
    in bulk (SQLAlchemy batches the rows into multi-row INSERTs), and announce the new ones."""
    session = uow.session
    now = _now()
    rows = [dict(
        id=r.finding.id, signal_type=r.finding.signal_type, customer_id=r.finding.customer_id,
        rm_id=r.rm_id, branch_id=r.branch_id, status=OPEN, raised_at=raised_at,
        evidence=json.dumps(r.finding.evidence, sort_keys=True, ensure_ascii=False),
        subject=r.finding.subject, occurs_on=r.finding.occurs_on, threshold=r.finding.threshold,
        expires_on=r.finding.expires_on, version=1, trigger_event_id=trigger_event_id,
        created_at=now, status_at=now, acted_by=None,
    ) for r in routed]
    stored: list[AlertsSignal] = []
    for start in range(0, len(rows), _INSERT_ROWS):
        chunk = rows[start:start + _INSERT_ROWS]
        inserted = set((await session.execute(
            insert_for(session)(AlertsSignal).on_conflict_do_nothing().returning(AlertsSignal.id),
            chunk,
        )).scalars())
        for row in chunk:
            if row["id"] in inserted:
                stored.append(AlertsSignal(**row))
            else:
                _count(session, metrics.SIGNALS_SUPPRESSED, row["signal_type"])
    latency = max(0.0, (now - trigger_time).total_seconds()) if trigger_time else None
    for signal in stored:
        announce(uow, signal)
        _count(session, metrics.SIGNALS_RAISED, signal.signal_type)
        if latency is not None:
            histogram = metrics.SIGNAL_LATENCY.labels(signal.signal_type)
            metrics.after_commit(session, lambda h=histogram: h.observe(latency))
    return stored


def _count(session: AsyncSession, counter, signal_type: str) -> None:
    metrics.after_commit(session, counter.labels(signal_type).inc)


def announce(uow: UnitOfWork, signal: AlertsSignal) -> None:
    """Emit ``strata.signal.v1`` for the signal as it is now; each version has its own stable
    event id, so a re-run or a replay of the same change reaches consumers once."""
    uow.emit(SignalV1(
        id=signal.id, signal_type=signal.signal_type, customer_id=signal.customer_id,
        rm_id=signal.rm_id, branch_id=signal.branch_id, status=signal.status,
        raised_at=signal.raised_at, evidence=json.loads(signal.evidence),
    ), stable_id=f"signal:{signal.id}:{signal.version}")


def change_status(uow: UnitOfWork, signal: AlertsSignal, status: str, acted_by: str | None = None) -> None:
    signal.status, signal.status_at, signal.version = status, _now(), signal.version + 1
    if acted_by is not None:
        signal.acted_by = acted_by
    announce(uow, signal)
    signal_type = signal.signal_type
    metrics.after_commit(uow.session, metrics.SIGNALS_STATUS_CHANGES.labels(signal_type, status).inc)


async def expire_where(uow: UnitOfWork, conditions: tuple[Any, ...]) -> int:
    """Expire the active signals matching ``conditions`` (a handful: one customer's)."""
    rows = (await uow.session.execute(
        select(AlertsSignal).where(AlertsSignal.status.in_(ACTIVE), *conditions)
        .order_by(AlertsSignal.id).with_for_update()
    )).scalars().all()
    for signal in rows:
        change_status(uow, signal, EXPIRED, acted_by="strata")
    return len(rows)


async def reroute(uow: UnitOfWork, customer: AlertsCustomer) -> int:
    """Hand the customer's active signals (open or acknowledged) to their primary RM and branch
    as they are now. The status stays: statuses only move forward (open, acknowledged, then
    done or expired), which is what consumers of ``strata.signal.v1`` may rely on."""
    rows = (await uow.session.execute(
        select(AlertsSignal).where(AlertsSignal.customer_id == customer.customer_id,
                                   AlertsSignal.status.in_(ACTIVE))
        .order_by(AlertsSignal.id).with_for_update()
    )).scalars().all()
    moved = 0
    for signal in rows:
        if (signal.rm_id, signal.branch_id) == (customer.primary_rm, customer.branch_id):
            continue
        signal.rm_id, signal.branch_id = customer.primary_rm, customer.branch_id
        signal.status_at, signal.version = _now(), signal.version + 1
        announce(uow, signal)
        metrics.after_commit(uow.session, metrics.SIGNALS_REROUTED.labels(signal.signal_type).inc)
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


def may_see(principal: Principal, signal: AlertsSignal) -> bool:
    """An RM sees the signals routed to them; a branch manager the branch's; analysts and
    admins all."""
    if principal.sees_everyone:
        return True
    if principal.role == "rm":
        return signal.rm_id is not None and signal.rm_id == principal.rm_id
    if principal.role == "branch_manager":
        return signal.branch_id is not None and signal.branch_id == principal.branch_id
    return False


def may_act(principal: Principal, signal: AlertsSignal) -> bool:
    """Who may acknowledge or close a signal: whoever may see it, except read-only analysts."""
    return principal.role != "analyst" and may_see(principal, signal)


async def list_signals(session: AsyncSession, query: SignalQuery, limit: int,
                       after: tuple[datetime, str] | None) -> list[AlertsSignal]:
    """Newest first (raised_at, then id, descending); ``after`` is the last item of the
    previous page."""
    S = AlertsSignal
    stmt = select(S)
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
    if after is not None:
        at, last_id = after
        stmt = stmt.where(or_(S.raised_at < at, and_(S.raised_at == at, S.id < last_id)))
    stmt = stmt.order_by(S.raised_at.desc(), S.id.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars().all())


async def act_on(uow: UnitOfWork, principal: Principal, signal_id: str, action: str) -> AlertsSignal:
    """Acknowledge or close a signal the caller may act on; the change is announced."""
    signal = (await uow.session.execute(
        select(AlertsSignal).where(AlertsSignal.id == signal_id).with_for_update()
    )).scalar_one_or_none()
    if signal is None:
        raise SignalNotFound(signal_id)
    if not may_act(principal, signal):
        raise NotYours(signal_id)
    after = transition(signal.status, action)
    if after != signal.status:
        change_status(uow, signal, after, acted_by=principal.rm_id or principal.subject)
    return signal


class SignalNotFound(Exception):
    pass


class NotYours(Exception):
    pass


def signal_view(signal: AlertsSignal) -> dict[str, Any]:
    return {
        "id": signal.id, "signal_type": signal.signal_type, "customer_id": signal.customer_id,
        "rm_id": signal.rm_id, "branch_id": signal.branch_id, "status": signal.status,
        "raised_at": signal.raised_at, "evidence": json.loads(signal.evidence),
        "expires_on": signal.expires_on, "status_at": signal.status_at, "acted_by": signal.acted_by,
        "version": signal.version,
    }
