"""The daily scan: the date-based signals of one business date (``maturity_due``, ``birthday``,
``card_expiry``), the expiry of signals whose day has passed or that nobody acknowledged in time,
and forgetting the large outflows judged long enough ago.

What the bank's scheduler calls each morning (``POST /v1/admin/daily-scan``). It must stay cheap
for millions of customers, so each rule is one indexed query that returns only what is due and
not yet raised (maturity and expiry dates are indexed; birthdays are an indexed ``MMDD`` column,
so a date window is one or two range scans), and Python only sees those rows, a page at a time.

Idempotent: a signal's id is derived from its fact (product + maturity date + threshold, card +
expiry date, customer + year), the queries skip facts already raised and the insert of an id that
exists does nothing, so a second run of a date, or runs of overlapping dates, raise nothing twice.

Each page is its own transaction, in which the page's customer rows are locked (PostgreSQL) before
the signals are routed: an RM change being applied by the consumer either completes first (and the
page routes to the new RM) or waits for the page (and then re-routes what it raised).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Awaitable, Callable, Sequence

from sqlalchemy import Select, delete, exists, or_, select, tuple_

from shared.db import insert_for
from shared.runtime.consumer import Backoff
from shared.runtime.errors import is_retryable
from shared.runtime.transaction import BatchTransaction
from shared.settings import Settings
from services.alerts import metrics
from services.alerts.domain import (
    ACTIVE,
    BIRTHDAY,
    CARD_EXPIRY,
    MATURITY_DUE,
    OPEN,
    Finding,
    birthday,
    birthday_month_days,
    card_expiry,
    expiry_reason,
    maturity_bands,
    maturity_due,
)
from services.alerts.models import AlertsAccount, AlertsCustomer, AlertsDailyScan, AlertsOutflow, AlertsSignal
from services.alerts.service import Routed, close, new_signal, raised
from services.alerts.state import SIGNALS, AlertsState, signal_of, signal_row

SCANNED_TYPES = (MATURITY_DUE, BIRTHDAY, CARD_EXPIRY)
_ATTEMPTS = 5
OUTFLOWS_MARGIN_DAYS = 30
"""How long past its ``vip_outflow`` suppression window a judged large outflow is remembered."""


@dataclass
class ScanSummary:
    date: date
    raised: dict[str, int] = field(default_factory=lambda: {t: 0 for t in SCANNED_TYPES})
    expired: int = 0
    runs: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {"date": self.date.isoformat(), "raised": self.raised, "expired": self.expired,
                "runs": self.runs}


@dataclass(frozen=True)
class ScanRule:
    """One date-based rule: the page query of what is due and not yet raised, the domain rule
    that turns a row into a finding, and the row's place in the keyset order."""

    signal_type: str
    query: Callable[[tuple | None, int], Select]
    finding: Callable[[Any], Finding | None]
    position: Callable[[Any], tuple]


async def daily_scan(runtime, day: date) -> ScanSummary:
    """Raise the date-based signals due on ``day``, expire the signals whose day is over and
    forget the large outflows judged long before it.

    ``runtime`` is the process's runtime, or a ``shared.dry_run.DryRun`` of it: then every page
    runs in one transaction that is rolled back, and the summary is what the scan would do."""
    settings = runtime.settings
    started = datetime.now(timezone.utc)
    summary = ScanSummary(day)
    for rule in scan_rules(settings, day):
        summary.raised[rule.signal_type] += await _run_rule(runtime, rule, day, started)
    summary.expired = await _expire_passed(runtime, day, settings.signals.scan_page_size)
    await _retrying(runtime, lambda: _forget_outflows(runtime, day))
    summary.runs = await _retrying(runtime, lambda: _record(runtime, summary))
    return summary


def reason_of(signal_type: str, evidence: dict[str, Any]) -> str:
    """Why a scanned signal is raised, in one line from its evidence (a dry run's preview)."""
    e = evidence
    if signal_type == MATURITY_DUE:
        return (f"{e.get('product_code')} ({e.get('product_type')}) matures on {e.get('maturity_date')}, "
                f"in {e.get('days_left')} days (the {e.get('days_ahead')}-day notice)")
    if signal_type == BIRTHDAY:
        return f"turns {e.get('age')} on {e.get('celebrated_on')}, in {e.get('days_left')} days (tier {e.get('tier')})"
    if signal_type == CARD_EXPIRY:
        return f"card {e.get('product_code')} expires on {e.get('card_expiry')}, in {e.get('days_left')} days"
    return ", ".join(f"{k} {v}" for k, v in sorted(e.items()))


def scan_rules(settings: Settings, day: date) -> list[ScanRule]:
    rules = settings.signals
    out = [_maturity_rule(settings, day, threshold, first, last)
           for threshold, first, last in maturity_bands(rules.maturity_due.days_ahead)]
    return out + [_birthday_rule(settings, day), _card_rule(settings, day)]


# --- the rules' queries ---------------------------------------------------------------------

A, C, S = AlertsAccount, AlertsCustomer, AlertsSignal


def _account_query(columns: Sequence[Any], where: Sequence[Any], after: tuple | None, limit: int) -> Select:
    stmt = (select(*columns, C.primary_rm, C.branch_id.label("home_branch"), C.tier, C.name)
            .join(C, C.customer_id == A.customer_id)
            .where(*where))
    if after is not None:
        stmt = stmt.where(tuple_(A.customer_id, A.account_id) > tuple_(*after))
    return stmt.order_by(A.customer_id, A.account_id).limit(limit).with_for_update(of=C)


def _maturity_rule(settings: Settings, day: date, threshold: int, first: int, last: int) -> ScanRule:
    rules = settings.signals.maturity_due
    raised = exists().where(S.signal_type == MATURITY_DUE, S.subject == A.account_id,
                            S.occurs_on == A.maturity_date, S.threshold == threshold)

    def query(after: tuple | None, limit: int) -> Select:
        return _account_query(
            (A.account_id, A.customer_id, A.product_type, A.product_code, A.maturity_date,
             A.branch_id.label("account_branch")),
            (A.maturity_date.between(day + timedelta(days=first), day + timedelta(days=last)),
             A.product_type.in_(rules.product_types), A.status != "closed", ~raised),
            after, limit)

    def finding(row) -> Finding | None:
        return maturity_due(account_id=row.account_id, customer_id=row.customer_id,
                            product_type=row.product_type, product_code=row.product_code,
                            maturity_date=row.maturity_date, day=day, days_ahead=rules.days_ahead)

    return ScanRule(MATURITY_DUE, query, finding, lambda row: (row.customer_id, row.account_id))


def _card_rule(settings: Settings, day: date) -> ScanRule:
    rules = settings.signals.card_expiry
    raised = exists().where(S.signal_type == CARD_EXPIRY, S.subject == A.account_id,
                            S.occurs_on == A.card_expiry)

    def query(after: tuple | None, limit: int) -> Select:
        return _account_query(
            (A.account_id, A.customer_id, A.product_code, A.card_expiry,
             A.branch_id.label("account_branch")),
            (A.card_expiry.between(day, day + timedelta(days=rules.days_ahead)),
             A.product_type.in_(rules.product_types), A.status != "closed", ~raised),
            after, limit)

    def finding(row) -> Finding | None:
        return card_expiry(account_id=row.account_id, customer_id=row.customer_id,
                           product_code=row.product_code, expiry=row.card_expiry, day=day,
                           days_ahead=rules.days_ahead)

    return ScanRule(CARD_EXPIRY, query, finding, lambda row: (row.customer_id, row.account_id))


def _birthday_rule(settings: Settings, day: date) -> ScanRule:
    rules = settings.signals.birthday
    ladder = settings.tier_ladder
    ranges = birthday_month_days(day, rules.days_ahead, rules.leap_day_in_common_years)
    # A birthday signal for a celebration today or later is this year's: once a year.
    raised = exists().where(S.signal_type == BIRTHDAY, S.subject == C.customer_id, S.occurs_on >= day)

    def query(after: tuple | None, limit: int) -> Select:
        stmt = (select(C.customer_id, C.birth_date, C.tier, C.primary_rm,
                       C.branch_id.label("home_branch"), C.name)
                .where(or_(*[C.birth_md.between(lo, hi) for lo, hi in ranges]),
                       C.tier.in_(ladder.ids_at_least(rules.min_tier)), ~raised))
        if after is not None:
            stmt = stmt.where(C.customer_id > after[0])
        return stmt.order_by(C.customer_id).limit(limit).with_for_update(of=C)

    def finding(row) -> Finding | None:
        return birthday(customer_id=row.customer_id, birth_date=row.birth_date, tier=row.tier,
                        ladder=ladder, min_tier=rules.min_tier, day=day,
                        days_ahead=rules.days_ahead, leap_day=rules.leap_day_in_common_years)

    return ScanRule(BIRTHDAY, query, finding, lambda row: (row.customer_id,))


# --- running them ---------------------------------------------------------------------------


async def _run_rule(runtime, rule: ScanRule, day: date, started: datetime) -> int:
    page_size = runtime.settings.signals.scan_page_size
    raised_at = datetime.combine(day, time(0), runtime.settings.zone)
    after: tuple | None = None
    total = 0
    while True:
        async def page(after=after) -> tuple[int, tuple | None, int]:
            async with runtime.transaction("alerts", cause=f"daily-scan:{day}") as tx:
                rows = (await tx.session.execute(rule.query(after, page_size))).all()
                priority = runtime.settings.signals.priority
                routed = [Routed(finding, row.primary_rm, row.home_branch or getattr(row, "account_branch", None),
                                 priority.of(finding.signal_type, row.tier), row.name)
                          for row in rows if (finding := rule.finding(row)) is not None]
                stored = await store_signals(tx, routed, raised_at=raised_at, trigger_time=started)
                return len(rows), (rule.position(rows[-1]) if rows else None), len(stored)

        count, last, raised = await _retrying(runtime, page)
        total += raised
        if count < page_size:
            return total
        after = last


async def _expire_passed(runtime, day: date, page_size: int) -> int:
    """Active signals whose last useful day is before ``day`` become ``expired``, saying why;
    of the types that lapse unacknowledged, only those still open (an acknowledged one stays
    until it is done)."""
    rules = runtime.settings.signals
    lapsing = sorted(t for t in rules.expires_after_days if rules.lapses_after(t) is not None)
    total = 0
    while True:
        async def page() -> int:
            async with runtime.transaction("alerts", cause=f"daily-scan:{day}:expire") as tx:
                state = tx.state = AlertsState()
                rows = (await tx.session.execute(
                    select(SIGNALS).where(SIGNALS.c.status.in_(ACTIVE), SIGNALS.c.expires_on < day,
                                          or_(SIGNALS.c.status == OPEN, SIGNALS.c.signal_type.not_in(lapsing)))
                    .order_by(SIGNALS.c.id).limit(page_size).with_for_update()
                )).all()
                for row in rows:
                    signal = state.adopt(signal_of(row))
                    close(tx, signal, expiry_reason(signal.signal_type, signal.expires_on,
                                                    lapsing=signal.signal_type in lapsing))
                return len(rows)

        count = await _retrying(runtime, page)
        total += count
        if count < page_size:
            return total


async def _forget_outflows(runtime, day: date) -> int:
    """Delete the large outflows posted before the ``vip_outflow`` suppression window ending on
    ``day`` and a margin. They are kept so that a posting resent under another event id is not
    judged (or counted) twice; one judged again past its window raises nothing anyway: the
    customer's window, which only ever moves forward, still covers its day, or it raised
    nothing the first time and is judged the same way (the tier travels with the posting)."""
    settings = runtime.settings
    kept = settings.signals.vip_outflow.suppress_days + OUTFLOWS_MARGIN_DAYS
    before = datetime.combine(day - timedelta(days=kept), time(0), settings.zone)
    async with runtime.transaction("alerts", cause=f"daily-scan:{day}:outflows") as tx:
        result = await tx.session.execute(delete(AlertsOutflow).where(AlertsOutflow.posted_at < before))
        return result.rowcount


async def _record(runtime, summary: ScanSummary) -> int:
    now = datetime.now(timezone.utc)
    async with runtime.transaction("alerts", cause=f"daily-scan:{summary.date}:record") as tx:
        session = tx.session
        insert = insert_for(session)(AlertsDailyScan).values(
            business_date=summary.date, first_run_at=now, last_run_at=now, runs=1,
            summary=_stored(summary))
        await session.execute(insert.on_conflict_do_update(
            index_elements=[AlertsDailyScan.business_date],
            set_={"last_run_at": now, "runs": AlertsDailyScan.runs + 1,
                  "summary": _stored(summary)},
        ))
        tx.after_commit(metrics.DAILY_SCANS.inc)
        return await session.scalar(select(AlertsDailyScan.runs)
                                    .where(AlertsDailyScan.business_date == summary.date))


def _stored(summary: ScanSummary) -> str:
    return json.dumps({"raised": summary.raised, "expired": summary.expired})


_INSERT_ROWS = 1000


async def store_signals(tx: BatchTransaction, routed: list[Routed], *, raised_at: datetime,
                        trigger_time: datetime | None = None) -> list:
    """Insert the page's signals once (an id that exists is left alone: the same fact, raised
    by an earlier run), in bulk, and announce the new ones."""
    session = tx.session
    signals = [new_signal(r, raised_at=raised_at) for r in routed]
    stored = []
    for start in range(0, len(signals), _INSERT_ROWS):
        chunk = signals[start:start + _INSERT_ROWS]
        inserted = set((await session.execute(
            insert_for(session)(AlertsSignal).on_conflict_do_nothing().returning(AlertsSignal.id),
            [signal_row(s) for s in chunk])).scalars())
        for signal in chunk:
            if signal.id in inserted:
                stored.append(signal)
            else:
                tx.after_commit(metrics.SIGNALS_SUPPRESSED.labels(signal.signal_type).inc)
    for signal in stored:
        raised(tx, signal, trigger_time=trigger_time)
    return stored


async def _retrying(runtime, work: Callable[[], Awaitable[Any]]) -> Any:
    """Run one page's transaction again after a passing outage or a lock conflict (a deadlock
    with the consumer is possible: both lock customer rows); the page is idempotent."""
    cfg = runtime.settings.runtime
    backoff = Backoff(cfg.retry_initial_ms / 1000, cfg.retry_max_ms / 1000)
    for attempt in range(_ATTEMPTS):
        try:
            return await work()
        except Exception as exc:
            if not is_retryable(exc) or attempt == _ATTEMPTS - 1:
                raise
            await backoff.wait()
