"""Profile's handlers: master data from core banking and other sources, and the customer 360
read model kept from every Strata topic.

Every handler keeps a newer fact from being overwritten by an older one (master data by
``updated_at``, AUM by ``as_of``, tiers by ``effective_at``, assignments by ``changed_at``,
accounts by the event's time) and applies a business fact that arrives again under a new event
id (a priced posting, a tier change, a signal status) once.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import delete, select
from sqlalchemy import event as sql_events

from shared.access import ACCESS_TOPICS, CustomerAccess
from shared.contracts.cloudevents import Event
from shared.contracts.events import (
    AccountV1,
    AssignmentChangedV1,
    AumV1,
    CustomerV1,
    FeeAssessedV1,
    SignalV1,
    TierChangedV1,
)
from shared.db import insert_for
from shared.money import ZERO
from shared.runtime.errors import Rejected
from shared.runtime.unit_of_work import UnitOfWork
from services.profile import metrics
from services.profile.domain import DayFlow, FlowChange, apply_aum_change, is_newer, signal_status_after
from services.profile.models import (
    BALANCE_COLUMNS,
    ProfileAccount,
    ProfileAttribute,
    ProfileBranchFlow,
    ProfileCustomer,
    ProfileFeePosting,
    ProfileSignal,
    ProfileTag,
    ProfileTierChange,
)

MAX_ATTRIBUTE_NAME = 100


def read_model_handler(handler):
    """Record how far behind its topic the read model is once the handler has applied an
    event (the seconds between the event's time and now)."""

    @functools.wraps(handler)
    async def wrapped(event: Event, uow: UnitOfWork) -> None:
        await handler(event, uow)
        lag = (datetime.now(timezone.utc) - event.time).total_seconds()
        metrics.READ_MODEL_LAG.labels(event.topic).set(max(lag, 0.0))

    return wrapped


# --- master data ----------------------------------------------------------------------------


@read_model_handler
async def on_customer(event: Event, uow: UnitOfWork) -> None:
    """Core banking's record replaces the master data unless a newer one is applied; every
    source's ``attributes`` are kept per source, the latest value of each."""
    data: CustomerV1 = event.data
    long_names = [n for n in data.attributes if len(n) > MAX_ATTRIBUTE_NAME]
    if long_names:
        raise Rejected(f"attribute names longer than {MAX_ATTRIBUTE_NAME} characters: {long_names[0][:40]}...")
    customer = await _customer(uow, data.customer_id)
    if data.source == "core":
        if is_newer(data.updated_at, customer.master_updated_at):
            await _apply_master_data(uow, customer, data)
        else:
            metrics.STALE_EVENTS.labels(event.topic).inc()
    await _apply_attributes(uow, data)


async def _apply_master_data(uow: UnitOfWork, customer: ProfileCustomer, data: CustomerV1) -> None:
    tags = list(dict.fromkeys(data.tags))
    before = json.loads(customer.tags)
    if before != tags:
        if before:
            await uow.session.flush()  # tags added earlier in the batch go too
            await uow.session.execute(delete(ProfileTag).where(ProfileTag.customer_id == customer.customer_id))
        uow.session.add_all(ProfileTag(customer_id=customer.customer_id, tag=t) for t in tags)
    customer.name = data.name
    customer.id_number = data.id_number
    customer.phone = data.phone
    customer.birth_date = data.birth_date
    customer.gender = data.gender
    customer.home_branch_id = data.home_branch_id
    customer.household_id = data.household_id
    customer.household_role = data.household_role
    customer.risk_level = data.risk_level
    customer.tags = json.dumps(tags, ensure_ascii=False)
    customer.auto_points_offset = data.auto_points_offset
    customer.master_updated_at = data.updated_at


async def _apply_attributes(uow: UnitOfWork, data: CustomerV1) -> None:
    if not data.attributes:
        return
    stmt = insert_for(uow.session)(ProfileAttribute)
    stmt = stmt.on_conflict_do_update(
        index_elements=["customer_id", "source", "name"],
        set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        where=stmt.excluded.updated_at >= ProfileAttribute.updated_at,
    )
    await uow.session.execute(stmt, [
        {"customer_id": data.customer_id, "source": data.source, "name": name,
         "value": json.dumps(value, ensure_ascii=False), "updated_at": data.updated_at}
        for name, value in data.attributes.items()
    ])


@read_model_handler
async def on_account(event: Event, uow: UnitOfWork) -> None:
    """An upsert of an account or product holding; the record carries no time of its own, so
    the event's time orders two records of one account."""
    data: AccountV1 = event.data
    await _customer(uow, data.customer_id)
    account = await _cached(uow, ProfileAccount, data.account_id)
    if account is None:
        account = ProfileAccount(account_id=data.account_id)
        _remember(uow, account, data.account_id)
    elif event.time < account.event_at:
        metrics.STALE_EVENTS.labels(event.topic).inc()
        return
    else:
        (await _accounts_of(uow, account.customer_id)).remove(account)
    (await _accounts_of(uow, data.customer_id)).append(account)
    account.customer_id = data.customer_id
    account.branch_id = data.branch_id
    account.product_type = data.product_type
    account.product_code = data.product_code
    account.status = data.status
    account.opened_on = data.opened_on
    account.maturity_date = data.maturity_date
    account.card_expiry = data.card_expiry
    account.event_at = event.time


# --- the Strata topics ----------------------------------------------------------------------


@read_model_handler
async def on_aum(event: Event, uow: UnitOfWork) -> None:
    """The customer's current AUM, month-to-date average and balances by product type, unless
    a newer ``as_of`` is applied; the change feeds the household's AUM and the branches'
    flows of the business day."""
    data: AumV1 = event.data
    customer = await _customer(uow, data.customer_id)
    if customer.aum_as_of is not None and data.as_of < customer.aum_as_of:
        metrics.STALE_EVENTS.labels(event.topic).inc()
        return
    delta = data.aum - customer.aum
    amounts = {**data.by_product_type, **data.liabilities}
    for product_type, column in BALANCE_COLUMNS.items():
        setattr(customer, column, amounts.get(product_type, ZERO))
    customer.aum = data.aum
    customer.mtd_average_daily_aum = data.mtd_average_daily_aum
    customer.aum_by_product_type = _money_json(data.by_product_type)
    customer.liabilities = _money_json(data.liabilities)
    customer.aum_business_date = data.business_date
    customer.aum_as_of = data.as_of
    if delta != 0:
        await _count_flow(uow, customer, data.business_date, delta)


async def _count_flow(uow: UnitOfWork, customer: ProfileCustomer, day, delta: Decimal) -> None:
    state = DayFlow(customer.flow_day, customer.flow_net, customer.flow_home_branch,
                    tuple(json.loads(customer.flow_account_branches)))
    branches: list[str] = []
    if state.day is None or day > state.day:
        branches = [a.branch_id for a in await _accounts_of(uow, customer.customer_id) if a.status != "closed"]
    state, changes = apply_aum_change(state, day, delta, customer.home_branch_id, branches)
    customer.flow_day = state.day
    customer.flow_net = state.net
    customer.flow_home_branch = state.home_branch
    customer.flow_account_branches = json.dumps(list(state.account_branches))
    await _add_flows(uow, changes)


async def _add_flows(uow: UnitOfWork, changes: list[FlowChange]) -> None:
    """Add to the branches' daily figures: with the batch's changes collected and written once
    when it commits (see :func:`prefetch`), or at once."""
    pending = uow.batch.get(_FLOWS)
    if pending is not None:
        pending.extend(changes)
    elif changes:
        await uow.session.execute(_flows_upsert(uow.session), _flow_rows(changes))


def _flows_upsert(session):
    """Added atomically in the database, so instances consuming different partitions never
    overwrite each other's figures."""
    stmt = insert_for(session)(ProfileBranchFlow)
    return stmt.on_conflict_do_update(
        index_elements=["branch_id", "view", "day"],
        set_={"inflow": ProfileBranchFlow.inflow + stmt.excluded.inflow,
              "outflow": ProfileBranchFlow.outflow + stmt.excluded.outflow},
    )


def _flow_rows(changes: list[FlowChange]) -> list[dict]:
    summed: dict[tuple, list[Decimal]] = {}
    for c in changes:
        total = summed.setdefault((c.branch_id, c.view, c.day), [ZERO, ZERO])
        total[0] += c.inflow
        total[1] += c.outflow
    return [{"branch_id": b, "view": v, "day": d, "inflow": i, "outflow": o}
            for (b, v, d), (i, o) in sorted(summed.items())]


def _write_pending_flows(session, pending: list[FlowChange]) -> None:
    """``before_commit`` of a batch's session: one upsert of the whole batch's flow changes, in
    the batch's transaction (a rolled-back attempt writes nothing)."""
    if pending:
        session.execute(_flows_upsert(session), _flow_rows(pending))
        pending.clear()


@read_model_handler
async def on_tier(event: Event, uow: UnitOfWork) -> None:
    """The tier and watch state in force, and the change for the branch's monthly counts."""
    data: TierChangedV1 = event.data
    if not await _first_time(uow, ProfileTierChange, _tier_change_row(data)):
        metrics.DUPLICATE_FACTS.labels(event.topic).inc()
    customer = await _customer(uow, data.customer_id)
    if not is_newer(data.effective_at, customer.tier_effective_at):
        metrics.STALE_EVENTS.labels(event.topic).inc()
        return
    customer.tier = data.to
    customer.watch = data.watch
    customer.tier_effective_at = data.effective_at


@read_model_handler
async def on_signal(event: Event, uow: UnitOfWork) -> None:
    """Open signals by id; any other status closes one, and a closed one stays closed."""
    data: SignalV1 = event.data
    row = await _cached(uow, ProfileSignal, data.id)
    status = signal_status_after(row.status if row else None, data.status)
    if status is None:
        return
    customer = await _customer(uow, data.customer_id)
    if row is None:
        _remember(uow, ProfileSignal(
            id=data.id, customer_id=data.customer_id, signal_type=data.signal_type, rm_id=data.rm_id,
            branch_id=data.branch_id, status=status, raised_at=data.raised_at,
            evidence=json.dumps(data.evidence, ensure_ascii=False, default=str),
        ), data.id)
        if status == "open":
            customer.open_signals += 1
        return
    row.status = status
    customer.open_signals = max(customer.open_signals - 1, 0)


@read_model_handler
async def on_fee(event: Event, uow: UnitOfWork) -> None:
    """Fees charged (once per posting id) and the points balance after the latest posting."""
    data: FeeAssessedV1 = event.data
    customer = await _customer(uow, data.customer_id)
    if not await _first_time(uow, ProfileFeePosting, _fee_row(data)):
        metrics.DUPLICATE_FACTS.labels(event.topic).inc()
        return
    customer.fees_charged += data.net
    customer.fees_priced += 1
    if data.points_balance is not None and is_newer(data.posted_at, customer.points_at):
        customer.points_balance = data.points_balance
        customer.points_at = data.posted_at


@read_model_handler
async def on_assignment(event: Event, uow: UnitOfWork) -> None:
    """The primary and backup RM in force."""
    data: AssignmentChangedV1 = event.data
    customer = await _customer(uow, data.customer_id)
    if data.role == "primary" and is_newer(data.changed_at, customer.primary_at):
        customer.primary_rm, customer.primary_at = data.to, data.changed_at
    elif data.role == "backup" and is_newer(data.changed_at, customer.backup_at):
        customer.backup_rm, customer.backup_at = data.to, data.changed_at
    else:
        metrics.STALE_EVENTS.labels(event.topic).inc()


# --- business facts recorded once ----------------------------------------------------------

_FLOWS = "flows"


def _fee_row(data: FeeAssessedV1) -> dict:
    return {"posting_id": data.posting_id, "customer_id": data.customer_id, "fee_id": data.fee_id,
            "net": data.net, "points_used": data.points_used, "posted_at": data.posted_at}


def _tier_change_row(data: TierChangedV1) -> dict:
    return {"customer_id": data.customer_id, "effective_at": data.effective_at, "change": data.change,
            "from_tier": data.from_, "to_tier": data.to, "reason": data.reason}


def _fact_key(model, row: dict) -> tuple:
    return tuple(row[c.key] for c in model.__mapper__.primary_key)


async def _record_facts(uow: UnitOfWork, model, rows: list[dict]) -> None:
    """Insert a batch's facts (priced postings, tier changes) in a few statements; the keys the
    database did not have yet are the batch's new facts, each to be applied once."""
    fresh = uow.batch.setdefault(("fresh", model), set())
    unique = list({_fact_key(model, r): r for r in rows}.values())
    keys = list(model.__mapper__.primary_key)
    for start in range(0, len(unique), 200):
        stmt = insert_for(uow.session)(model).values(unique[start:start + 200]).on_conflict_do_nothing()
        fresh.update(tuple(r) for r in await uow.session.execute(stmt.returning(*keys)))


async def _first_time(uow: UnitOfWork, model, row: dict) -> bool:
    """Whether this fact is new, by its key: from what :func:`_record_facts` inserted for the
    batch (the first event of the batch carrying it takes it), or by inserting it now."""
    fresh = uow.batch.get(("fresh", model))
    if fresh is None:
        result = await uow.session.execute(insert_for(uow.session)(model).values(**row).on_conflict_do_nothing())
        return bool(result.rowcount)
    key = _fact_key(model, row)
    if key in fresh:
        fresh.discard(key)
        return True
    return False


# --- rows the handlers share ----------------------------------------------------------------


async def prefetch(events: list[Event], uow: UnitOfWork) -> None:
    """Load what a batch touches in a few queries: customers, their accounts, signals and access
    rows; the handlers then find them (or their absence) in ``uow.batch`` and the session. Record
    the batch's priced postings and tier changes in one insert each, and have the flow changes
    the handlers compute written in one upsert when the batch commits.

    Access rows missing for a customer record or an assignment are created here and flushed
    once: the runtime's ``apply_access`` looks a row up with ``session.get``, which does not see
    a row it added earlier in the batch without a flush, and would add it twice."""
    customers, accounts, signals, access = set(), set(), set(), set()
    fees, tier_changes = [], []
    for event in events:
        data = event.data
        customers.add(data.customer_id)
        if isinstance(data, AccountV1):
            accounts.add(data.account_id)
        elif isinstance(data, SignalV1):
            signals.add(data.id)
        elif isinstance(data, FeeAssessedV1):
            fees.append(_fee_row(data))
        elif isinstance(data, TierChangedV1):
            tier_changes.append(_tier_change_row(data))
        if event.topic in ACCESS_TOPICS and (not isinstance(data, CustomerV1) or data.source == "core"):
            access.add(data.customer_id)
    await _load(uow, ProfileCustomer, customers)
    await _load_accounts_of(uow, customers)
    await _load(uow, ProfileAccount, accounts)
    await _load(uow, ProfileSignal, signals)
    await _create_access_rows(uow, access)
    await _record_facts(uow, ProfileFeePosting, fees)
    await _record_facts(uow, ProfileTierChange, tier_changes)
    pending = uow.batch.setdefault(_FLOWS, [])
    sql_events.listen(uow.session.sync_session, "before_commit",
                 lambda session: _write_pending_flows(session, pending))


async def _create_access_rows(uow: UnitOfWork, customer_ids: set[str]) -> None:
    ids = sorted(customer_ids)
    rows = uow.batch.setdefault(CustomerAccess, {})  # the session holds rows weakly: keep them
    for start in range(0, len(ids), 1000):
        found = await uow.session.execute(select(CustomerAccess).where(
            CustomerAccess.service == uow.service, CustomerAccess.customer_id.in_(ids[start:start + 1000])))
        rows.update({r.customer_id: r for r in found.scalars()})
    missing = [i for i in ids if i not in rows]
    for customer_id in missing:
        rows[customer_id] = CustomerAccess(service=uow.service, customer_id=customer_id)
        uow.session.add(rows[customer_id])
    if missing:
        await uow.session.flush()


async def _load_accounts_of(uow: UnitOfWork, customer_ids: set[str]) -> None:
    """Every account of these customers, by customer (the branches an AUM change counts for)."""
    lists = uow.batch.setdefault("accounts_of", {})
    by_id = uow.batch.setdefault(ProfileAccount, {})
    ids = sorted(i for i in customer_ids if i not in lists)
    for i in ids:
        lists[i] = []
    for start in range(0, len(ids), 1000):
        rows = await uow.session.execute(
            select(ProfileAccount).where(ProfileAccount.customer_id.in_(ids[start:start + 1000])))
        for account in rows.scalars():
            lists[account.customer_id].append(account)
            by_id[account.account_id] = account


async def _accounts_of(uow: UnitOfWork, customer_id: str) -> list[ProfileAccount]:
    lists = uow.batch.setdefault("accounts_of", {})
    if customer_id not in lists:
        await _load_accounts_of(uow, {customer_id})
    return lists[customer_id]


async def _load(uow: UnitOfWork, model, ids: set[str]) -> None:
    cache = uow.batch.setdefault(model, {})
    key = model.__mapper__.primary_key[0]
    ids = sorted(i for i in ids if i not in cache)
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        found = {getattr(r, key.key): r
                 for r in (await uow.session.execute(select(model).where(key.in_(chunk)))).scalars()}
        for i in chunk:
            cache[i] = found.get(i)


async def _cached(uow: UnitOfWork, model, key: str):
    cache = uow.batch.setdefault(model, {})
    if key not in cache:
        cache[key] = await uow.session.get(model, key)
    return cache[key]


def _remember(uow: UnitOfWork, row, key: str) -> None:
    uow.session.add(row)
    uow.batch.setdefault(type(row), {})[key] = row


async def _customer(uow: UnitOfWork, customer_id: str) -> ProfileCustomer:
    """The customer's row, created on the first event about them (master data may come later)."""
    customer = await _cached(uow, ProfileCustomer, customer_id)
    if customer is None:
        customer = ProfileCustomer(
            customer_id=customer_id, tags="[]", auto_points_offset=False, aum=ZERO,
            mtd_average_daily_aum=ZERO, aum_by_product_type="{}", liabilities="{}",
            tier=uow.settings.tiers[0].id, watch=False, open_signals=0, fees_charged=ZERO,
            fees_priced=0, flow_net=ZERO, flow_account_branches="[]",
        )
        _remember(uow, customer, customer_id)
    return customer


def _money_json(amounts: dict[str, Decimal]) -> str:
    return json.dumps({k: str(v) for k, v in sorted(amounts.items())})
