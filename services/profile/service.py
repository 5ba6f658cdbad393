"""Profile's handlers: master data from core banking and other sources, and the customer 360
read model kept from every Strata topic.

Every handler keeps a newer fact from being overwritten by an older one (master data by
``updated_at``, AUM by ``as_of``, tiers by ``effective_at``, assignments by ``changed_at``,
accounts by the event's time) and applies a business fact that arrives again under a new event
id (a priced posting, a tier change, a signal status) once.

The handlers work on the batch's plain values (``tx.state``, :mod:`services.profile.state`);
nothing touches the database until the batch commits, and metrics move only once it has.
"""

from __future__ import annotations

import json
from decimal import Decimal

from shared.contracts.cloudevents import Event
from shared.contracts.events import (
    AccountV1,
    AssignmentChangedV1,
    AumV1,
    ContactLoggedV1,
    CustomerV1,
    FeeAssessedV1,
    SignalV1,
    TierChangedV1,
)
from shared.money import ZERO
from shared.runtime.errors import Rejected
from shared.runtime.transaction import BatchTransaction
from services.profile import metrics
from services.profile.domain import is_newer, signal_status_after
from services.profile.models import BALANCE_COLUMNS
from services.profile.state import (
    FEES,
    TIER_CHANGES,
    Customer,
    ProfileState,
    Signal,
    fee_row,
    flow_day,
    tier_change_row,
)

MAX_ATTRIBUTE_NAME = 100


# --- master data ----------------------------------------------------------------------------


async def on_customer(event: Event, tx: BatchTransaction) -> None:
    """Core banking's record replaces the master data unless a newer one is applied; every
    source's ``attributes`` are kept per source, the latest value of each."""
    data: CustomerV1 = event.data
    long_names = [n for n in data.attributes if len(n) > MAX_ATTRIBUTE_NAME]
    if long_names:
        raise Rejected(f"attribute names longer than {MAX_ATTRIBUTE_NAME} characters: {long_names[0][:40]}...")
    state: ProfileState = tx.state
    customer = _customer(tx, data.customer_id)
    if data.source == "core":
        if is_newer(data.updated_at, customer.master_updated_at):
            _apply_master_data(state, customer, data)
        else:
            _stale(tx, event)
    for name, value in data.attributes.items():
        state.keep_attribute(data.customer_id, data.source, name, value, data.updated_at)


def _apply_master_data(state: ProfileState, customer: Customer, data: CustomerV1) -> None:
    tags = list(dict.fromkeys(data.tags))
    encoded = json.dumps(tags, ensure_ascii=False)
    if encoded != customer.tags and json.loads(customer.tags) != tags:
        state.replace_tags(customer.customer_id, tags)
    customer.name = data.name
    customer.id_number = data.id_number
    customer.phone = data.phone
    customer.birth_date = data.birth_date
    customer.gender = data.gender
    customer.home_branch_id = data.home_branch_id
    customer.household_id = data.household_id
    customer.household_role = data.household_role
    customer.risk_level = data.risk_level
    customer.tags = encoded
    customer.auto_points_offset = data.auto_points_offset
    customer.master_updated_at = data.updated_at


async def on_account(event: Event, tx: BatchTransaction) -> None:
    """An upsert of an account or product holding; the record carries no time of its own, so
    the event's time orders two records of one account. An account keeps its owner and product
    type: a record that changes either is refused, as tiering and alerts refuse it, so that no
    service counts the account for one customer while another counts it for someone else."""
    data: AccountV1 = event.data
    state: ProfileState = tx.state
    known = state.accounts.get(data.account_id)
    if known is not None and known.customer_id != data.customer_id:
        raise Rejected(f"account {data.account_id} belongs to customer {known.customer_id}, not {data.customer_id}")
    if known is not None and known.product_type not in (None, data.product_type):
        raise Rejected(f"account {data.account_id} is a {known.product_type}, not a {data.product_type}")
    _customer(tx, data.customer_id)
    if known is not None and known.event_at is not None and event.time < known.event_at:
        _stale(tx, event)
        return
    account = state.account(data.account_id, data.customer_id)
    account.product_type = data.product_type
    account.branch_id = data.branch_id
    account.product_code = data.product_code
    account.status = data.status
    account.opened_on = data.opened_on
    account.maturity_date = data.maturity_date
    account.card_expiry = data.card_expiry
    account.event_at = event.time


# --- the Strata topics ----------------------------------------------------------------------


async def on_aum(event: Event, tx: BatchTransaction) -> None:
    """The customer's current AUM, month-to-date average and balances by product type, and the
    balance now of each account the change moved, unless a newer ``as_of`` is applied; the
    change is added to the customer's net AUM change of the business day it happened on
    (:func:`services.profile.state.flow_day`), which the branch reports sum into flows. The AUM of a first placement (``placement``: the holdings
    Strata first sees of the customer, at go-live or in a backfill) is no flow: it was there
    before, it did not come in that day.

    The flow is kept per customer and day and knows no branch: which branches a customer
    counts for is decided when a report is asked (their home branch and accounts then), so the
    order in which accounts and AUM arrive from their two topics changes nothing."""
    data: AumV1 = event.data
    customer = _customer(tx, data.customer_id)
    if customer.aum_as_of is not None and data.as_of < customer.aum_as_of:
        _stale(tx, event)
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
    state: ProfileState = tx.state
    for account_id, balance in data.balances.items():
        account = state.account(account_id, customer.customer_id)
        if account.customer_id == customer.customer_id:  # another's account is refused, as tiering does
            account.balance = balance
    if delta != 0 and not data.placement:
        state.add_flow(customer.customer_id, flow_day(data, tx.settings.zone), delta)


async def on_tier(event: Event, tx: BatchTransaction) -> None:
    """The tier and watch state in force, and the change for the branch's monthly counts."""
    data: TierChangedV1 = event.data
    if tx.state.first_tier_change(data):
        tx.append(TIER_CHANGES, tier_change_row(data))
    else:
        tx.after_commit(metrics.DUPLICATE_FACTS.labels(event.topic).inc)
    customer = _customer(tx, data.customer_id)
    if not is_newer(data.effective_at, customer.tier_effective_at):
        _stale(tx, event)
        return
    customer.tier = data.to
    customer.watch = data.watch
    customer.tier_effective_at = data.effective_at


async def on_signal(event: Event, tx: BatchTransaction) -> None:
    """Open signals by id; any other status closes one, and a closed one stays closed. An event
    with the status the signal already has re-announces it: a re-route (alerts hands a
    customer's signals to a new primary RM or branch) or a trigger that takes the signal over
    (an earlier one of the same day, read later): the signal takes what it says."""
    data: SignalV1 = event.data
    state: ProfileState = tx.state
    row = state.signals.get(data.id)
    if row is not None and row.status == data.status:
        row.rm_id, row.branch_id = data.rm_id, data.branch_id
        row.raised_at = data.raised_at
        row.evidence = _evidence(data)
        state.changed_signal(row)
        return
    status = signal_status_after(row.status if row else None, data.status)
    if status is None:
        return
    customer = _customer(tx, data.customer_id)
    if row is None:
        state.add_signal(Signal(data.id, data.customer_id, data.signal_type, data.rm_id, data.branch_id, status,
                                data.raised_at, _evidence(data)))
        if status == "open":
            customer.open_signals += 1
        return
    row.status = status
    state.changed_signal(row)
    customer.open_signals = max(customer.open_signals - 1, 0)


async def on_fee(event: Event, tx: BatchTransaction) -> None:
    """Fees charged (once per posting id) and the points balance after the latest posting."""
    data: FeeAssessedV1 = event.data
    customer = _customer(tx, data.customer_id)
    if not tx.state.first_fee(data):
        tx.after_commit(metrics.DUPLICATE_FACTS.labels(event.topic).inc)
        return
    tx.append(FEES, fee_row(data))
    customer.fees_charged += data.net
    customer.fees_priced += 1
    if data.points_balance is not None and is_newer(data.posted_at, customer.points_at):
        customer.points_balance = data.points_balance
        customer.points_at = data.posted_at


async def on_assignment(event: Event, tx: BatchTransaction) -> None:
    """The primary and backup RM in force."""
    data: AssignmentChangedV1 = event.data
    customer = _customer(tx, data.customer_id)
    if data.role == "primary" and is_newer(data.changed_at, customer.primary_at):
        customer.primary_rm, customer.primary_at = data.to, data.changed_at
    elif data.role == "backup" and is_newer(data.changed_at, customer.backup_at):
        customer.backup_rm, customer.backup_at = data.to, data.changed_at
    else:
        _stale(tx, event)


async def on_contact(event: Event, tx: BatchTransaction) -> None:
    """The last contact an RM logged (assignment's follow-ups), for the 360 and segments."""
    data: ContactLoggedV1 = event.data
    customer = _customer(tx, data.customer_id)
    if is_newer(data.contacted_at, customer.last_contact_at):
        customer.last_contact_at = data.contacted_at
    else:
        _stale(tx, event)


# --- the steps the handlers share -----------------------------------------------------------


def _customer(tx: BatchTransaction, customer_id: str) -> Customer:
    """The customer's row, created on the first event about them (master data may come later)."""
    return tx.state.customer(customer_id, tx.settings.tier_ladder.lowest.id)


def _stale(tx: BatchTransaction, event: Event) -> None:
    tx.after_commit(metrics.STALE_EVENTS.labels(event.topic).inc)


def _evidence(data: SignalV1) -> str:
    # keys sorted: the same evidence is the same text, whichever path announced the signal
    return json.dumps(data.evidence, ensure_ascii=False, default=str, sort_keys=True)


def _money_json(amounts: dict[str, Decimal]) -> str:
    return json.dumps({k: str(v) for k, v in sorted(amounts.items())})
