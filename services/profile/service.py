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

from shared.access import CustomerAccess
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
    ProfileAccount,
    ProfileAttribute,
    ProfileBranchFlow,
    ProfileCustomer,
    ProfileFeePosting,
    ProfileHousehold,
    ProfileProductBalance,
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
    await _flush_new_access_rows(uow)


async def _apply_master_data(uow: UnitOfWork, customer: ProfileCustomer, data: CustomerV1) -> None:
    if customer.household_id != data.household_id:
        await _move_household(uow, customer, data.household_id)
    tags = list(dict.fromkeys(data.tags))
    if json.loads(customer.tags) != tags:
        await uow.session.execute(delete(ProfileTag).where(ProfileTag.customer_id == customer.customer_id))
        if tags:
            await uow.session.execute(insert_for(uow.session)(ProfileTag).on_conflict_do_nothing(),
                                      [{"customer_id": customer.customer_id, "tag": t} for t in tags])
    customer.name = data.name
    customer.id_number = data.id_number
    customer.phone = data.phone
    customer.birth_date = data.birth_date
    customer.gender = data.gender
    customer.home_branch_id = data.home_branch_id
    customer.household_role = data.household_role
    customer.risk_level = data.risk_level
    customer.tags = json.dumps(tags, ensure_ascii=False)
    customer.auto_points_offset = data.auto_points_offset
    customer.master_updated_at = data.updated_at


async def _move_household(uow: UnitOfWork, customer: ProfileCustomer, household_id: str | None) -> None:
    """The customer's AUM leaves the old household's combined AUM and joins the new one's."""
    if customer.household_id:
        old = await _household(uow, customer.household_id)
        old.aum -= customer.aum
    customer.household_id = household_id
    if household_id:
        new = await _household(uow, household_id)
        new.aum += customer.aum


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
    await _store_product_balances(uow, customer, data)
    customer.aum = data.aum
    customer.mtd_average_daily_aum = data.mtd_average_daily_aum
    customer.aum_by_product_type = _money_json(data.by_product_type)
    customer.liabilities = _money_json(data.liabilities)
    customer.aum_business_date = data.business_date
    customer.aum_as_of = data.as_of
    if delta == 0:
        return
    if customer.household_id:
        household = await _household(uow, customer.household_id)
        household.aum += delta
    await _count_flow(uow, customer, data.business_date, delta)


async def _store_product_balances(uow: UnitOfWork, customer: ProfileCustomer, data: AumV1) -> None:
    before = {**json.loads(customer.aum_by_product_type), **json.loads(customer.liabilities)}
    after = {k: str(v) for k, v in {**data.by_product_type, **data.liabilities}.items()}
    changed = [{"customer_id": customer.customer_id, "product_type": k, "amount": Decimal(v)}
               for k, v in after.items() if before.get(k) != v]
    gone = [k for k in before if k not in after]
    if changed:
        stmt = insert_for(uow.session)(ProfileProductBalance)
        stmt = stmt.on_conflict_do_update(index_elements=["customer_id", "product_type"],
                                          set_={"amount": stmt.excluded.amount})
        await uow.session.execute(stmt, changed)
    if gone:
        await uow.session.execute(delete(ProfileProductBalance).where(
            ProfileProductBalance.customer_id == customer.customer_id,
            ProfileProductBalance.product_type.in_(gone)))


async def _count_flow(uow: UnitOfWork, customer: ProfileCustomer, day, delta: Decimal) -> None:
    state = DayFlow(customer.flow_day, customer.flow_net, customer.flow_home_branch,
                    tuple(json.loads(customer.flow_account_branches)))
    branches: list[str] = []
    if state.day is None or day > state.day:
        await uow.session.flush()  # accounts registered earlier in this batch count
        branches = list((await uow.session.execute(
            select(ProfileAccount.branch_id).where(ProfileAccount.customer_id == customer.customer_id,
                                                   ProfileAccount.status != "closed").distinct()
        )).scalars())
    state, changes = apply_aum_change(state, day, delta, customer.home_branch_id, branches)
    customer.flow_day = state.day
    customer.flow_net = state.net
    customer.flow_home_branch = state.home_branch
    customer.flow_account_branches = json.dumps(list(state.account_branches))
    await _add_flows(uow, changes)


async def _add_flows(uow: UnitOfWork, changes: list[FlowChange]) -> None:
    if not changes:
        return
    stmt = insert_for(uow.session)(ProfileBranchFlow)
    stmt = stmt.on_conflict_do_update(
        index_elements=["branch_id", "view", "day"],
        set_={"inflow": ProfileBranchFlow.inflow + stmt.excluded.inflow,
              "outflow": ProfileBranchFlow.outflow + stmt.excluded.outflow},
    )
    await uow.session.execute(stmt, [
        {"branch_id": c.branch_id, "view": c.view, "day": c.day, "inflow": c.inflow, "outflow": c.outflow}
        for c in changes
    ])


@read_model_handler
async def on_tier(event: Event, uow: UnitOfWork) -> None:
    """The tier and watch state in force, and the change for the branch's monthly counts."""
    data: TierChangedV1 = event.data
    inserted = await uow.session.execute(
        insert_for(uow.session)(ProfileTierChange).values(
            customer_id=data.customer_id, effective_at=data.effective_at, change=data.change,
            from_tier=data.from_, to_tier=data.to, reason=data.reason,
        ).on_conflict_do_nothing()
    )
    if not inserted.rowcount:
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
    inserted = await uow.session.execute(
        insert_for(uow.session)(ProfileFeePosting).values(
            posting_id=data.posting_id, customer_id=data.customer_id, fee_id=data.fee_id,
            net=data.net, points_used=data.points_used, posted_at=data.posted_at,
        ).on_conflict_do_nothing()
    )
    customer = await _customer(uow, data.customer_id)
    if not inserted.rowcount:
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
    await _flush_new_access_rows(uow)


async def _flush_new_access_rows(uow: UnitOfWork) -> None:
    """The runtime adds a customer's access row (``shared.access``) without flushing it, and
    looks it up again with ``session.get``, which does not see unflushed rows: a customer record
    and an assignment of a new customer in one batch would add the row twice and fail the whole
    batch at commit. Flushing a new row here makes the next event of the batch find it."""
    if any(isinstance(row, CustomerAccess) for row in uow.session.new):
        await uow.session.flush()


# --- rows the handlers share ----------------------------------------------------------------


async def prefetch(events: list[Event], uow: UnitOfWork) -> None:
    """Load the customers, accounts, signals and households a batch touches in a few queries;
    the handlers then find them (or their absence) in ``uow.batch``."""
    wanted: dict[type, set[str]] = {ProfileCustomer: set(), ProfileAccount: set(), ProfileSignal: set(),
                                    ProfileHousehold: set()}
    for event in events:
        data = event.data
        wanted[ProfileCustomer].add(data.customer_id)
        if isinstance(data, AccountV1):
            wanted[ProfileAccount].add(data.account_id)
        elif isinstance(data, SignalV1):
            wanted[ProfileSignal].add(data.id)
        elif isinstance(data, CustomerV1) and data.household_id:
            wanted[ProfileHousehold].add(data.household_id)
    await _load(uow, ProfileCustomer, wanted[ProfileCustomer])
    wanted[ProfileHousehold] |= {c.household_id for c in uow.batch[ProfileCustomer].values()
                                 if c is not None and c.household_id}
    for model in (ProfileAccount, ProfileSignal, ProfileHousehold):
        await _load(uow, model, wanted[model])


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


async def _household(uow: UnitOfWork, household_id: str) -> ProfileHousehold:
    household = await _cached(uow, ProfileHousehold, household_id)
    if household is None:
        household = ProfileHousehold(household_id=household_id, aum=ZERO)
        _remember(uow, household, household_id)
    return household


def _money_json(amounts: dict[str, Decimal]) -> str:
    return json.dumps({k: str(v) for k, v in sorted(amounts.items())})
