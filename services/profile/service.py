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

from shared.contracts.cloudevents import Event
from shared.contracts.events import (
    AccountV1,
    AssignmentChangedV1,
    ContactLoggedV1,
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
from services.profile import batch, metrics
from services.profile.domain import is_newer, signal_status_after
from services.profile.models import (
    BALANCE_COLUMNS,
    ProfileAccount,
    ProfileAttribute,
    ProfileCustomer,
    ProfileFeePosting,
    ProfileSignal,
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
        await batch.replace_tags(uow, customer.customer_id, tags)
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
    the event's time orders two records of one account. An account keeps its owner and product
    type: a record that changes either is refused, as tiering and alerts refuse it, so that no
    service counts the account for one customer while another counts it for someone else."""
    data: AccountV1 = event.data
    account = await batch.cached(uow, ProfileAccount, data.account_id)
    if account is not None and account.customer_id != data.customer_id:
        raise Rejected(f"account {data.account_id} belongs to customer {account.customer_id}, not {data.customer_id}")
    if account is not None and account.product_type != data.product_type:
        raise Rejected(f"account {data.account_id} is a {account.product_type}, not a {data.product_type}")
    await _customer(uow, data.customer_id)
    if account is None:
        account = ProfileAccount(account_id=data.account_id)
        batch.remember(uow, account, data.account_id)
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
    a newer ``as_of`` is applied; the change is added to the customer's net AUM change of the
    record's business date, which the branch reports sum into flows.

    The flow is kept per customer and day and knows no branch: which branches a customer
    counts for is decided when a report is asked (their home branch and accounts then), so the
    order in which accounts and AUM arrive from their two topics changes nothing."""
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
        await batch.add_flow(uow, customer.customer_id, data.business_date, delta)


@read_model_handler
async def on_tier(event: Event, uow: UnitOfWork) -> None:
    """The tier and watch state in force, and the change for the branch's monthly counts."""
    data: TierChangedV1 = event.data
    if not await batch.first_time(uow, ProfileTierChange, batch.tier_change_row(data)):
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
    """Open signals by id; any other status closes one, and a closed one stays closed. An event
    with the status the signal already has re-announces it: a re-route (alerts hands a
    customer's signals to a new primary RM or branch) or a trigger that takes the signal over
    (an earlier one of the same day, read later): the signal takes what it says."""
    data: SignalV1 = event.data
    row = await batch.cached(uow, ProfileSignal, data.id)
    if row is not None and row.status == data.status:
        row.rm_id, row.branch_id = data.rm_id, data.branch_id
        row.raised_at = data.raised_at
        row.evidence = json.dumps(data.evidence, ensure_ascii=False, default=str)
        return
    status = signal_status_after(row.status if row else None, data.status)
    if status is None:
        return
    customer = await _customer(uow, data.customer_id)
    if row is None:
        batch.remember(uow, ProfileSignal(
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
    if not await batch.first_time(uow, ProfileFeePosting, batch.fee_row(data)):
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


async def on_contact(event: Event, uow: UnitOfWork) -> None:
    """The last contact an RM logged (assignment's follow-ups), for the 360 and segments."""
    data: ContactLoggedV1 = event.data
    customer = await _customer(uow, data.customer_id)
    if is_newer(data.contacted_at, customer.last_contact_at):
        customer.last_contact_at = data.contacted_at
    else:
        metrics.STALE_EVENTS.labels(event.topic).inc()


# --- rows the handlers share ----------------------------------------------------------------


async def _customer(uow: UnitOfWork, customer_id: str) -> ProfileCustomer:
    """The customer's row, created on the first event about them (master data may come later)."""
    customer = await batch.cached(uow, ProfileCustomer, customer_id)
    if customer is None:
        customer = ProfileCustomer(
            customer_id=customer_id, tags="[]", auto_points_offset=False, aum=ZERO,
            mtd_average_daily_aum=ZERO, aum_by_product_type="{}", liabilities="{}",
            tier=uow.settings.tiers[0].id, watch=False, open_signals=0, fees_charged=ZERO,
            fees_priced=0,
        )
        batch.remember(uow, customer, customer_id)
    return customer


def _money_json(amounts: dict[str, Decimal]) -> str:
    return json.dumps({k: str(v) for k, v in sorted(amounts.items())})
