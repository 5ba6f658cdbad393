"""Who may see which customer: a small projection every service keeps for itself.

Each service's consumer loop applies ``bank.customers`` (home branch) and
``strata.assignments`` (primary and backup RM) to its own rows of
``runtime_customer_access``, so an ownership check is one indexed read in the service's own
database, never a call to another service. An RM sees the customers they are primary or backup
RM of; a branch manager the customers whose home branch is theirs; analysts and admins all.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import Request
from sqlalchemy import DateTime, Index, String, select
from sqlalchemy.orm import Mapped, mapped_column

from shared.auth import Principal
from shared.contracts import topics
from shared.contracts.cloudevents import Event
from shared.contracts.events import AssignmentChangedV1, CustomerV1
from shared.db import Base, UtcDateTime
from shared.problems import Problem
from shared.runtime.unit_of_work import UnitOfWork


class CustomerAccess(Base):
    __tablename__ = "runtime_customer_access"

    service: Mapped[str] = mapped_column(String(50), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    branch_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    primary_rm: Mapped[str | None] = mapped_column(String(64), nullable=True)
    backup_rm: Mapped[str | None] = mapped_column(String(64), nullable=True)
    primary_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    backup_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    branch_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    __table_args__ = (
        Index("ix_runtime_customer_access_primary", "service", "primary_rm"),
        Index("ix_runtime_customer_access_branch", "service", "branch_id"),
    )


ACCESS_TOPICS = (topics.CUSTOMERS, topics.ASSIGNMENTS)


async def _row(uow: UnitOfWork, customer_id: str) -> CustomerAccess:
    # The batch cache, not only the session: sessions do not autoflush, so a row added by an
    # earlier event of the same batch is not found by a lookup.
    cache = uow.batch.setdefault(CustomerAccess, {})
    row = cache.get(customer_id)
    if row is None:
        row = await uow.session.get(CustomerAccess, (uow.service, customer_id))
    if row is None:
        row = CustomerAccess(service=uow.service, customer_id=customer_id)
        uow.session.add(row)
    cache[customer_id] = row
    return row


async def apply_access(event: Event, uow: UnitOfWork) -> None:
    """Keep the projection current; an older change never overwrites a newer one."""
    data = event.data
    if isinstance(data, CustomerV1):
        if data.source != "core" or data.home_branch_id is None:
            return
        row = await _row(uow, data.customer_id)
        if row.branch_at is None or data.updated_at >= row.branch_at:
            row.branch_id, row.branch_at = data.home_branch_id, data.updated_at
    elif isinstance(data, AssignmentChangedV1):
        row = await _row(uow, data.customer_id)
        if data.role == "primary" and (row.primary_at is None or data.changed_at >= row.primary_at):
            row.primary_rm, row.primary_at = data.to, data.changed_at
        elif data.role == "backup" and (row.backup_at is None or data.changed_at >= row.backup_at):
            row.backup_rm, row.backup_at = data.to, data.changed_at


def principal_may_see(principal: Principal, row: CustomerAccess | None) -> bool:
    if principal.sees_everyone:
        return True
    if row is None:
        return False
    if principal.role == "rm":
        return principal.rm_id in (row.primary_rm, row.backup_rm)
    if principal.role == "branch_manager":
        return row.branch_id == principal.branch_id
    return False


async def ensure_customer_visible(request: Request, principal: Principal, customer_id: str,
                                  service: str | None = None) -> None:
    """403 problem unless ``principal`` may see ``customer_id``."""
    if principal.sees_everyone:
        return
    runtime = request.app.state.runtime
    service = service or _owning_service(request)
    async with runtime.db.sessions() as session:
        row = await session.get(CustomerAccess, (service, customer_id))
    if not principal_may_see(principal, row):
        raise Problem(403, "Forbidden", f"Customer {customer_id} is not in your book.")


def visible_filter(principal: Principal, service: str):
    """A WHERE clause limiting a customer query to what ``principal`` may see (None: all)."""
    if principal.sees_everyone:
        return None
    q = select(CustomerAccess.customer_id).where(CustomerAccess.service == service)
    if principal.role == "rm":
        return q.where((CustomerAccess.primary_rm == principal.rm_id) | (CustomerAccess.backup_rm == principal.rm_id))
    return q.where(CustomerAccess.branch_id == principal.branch_id)


def _owning_service(request: Request) -> str:
    route = request.scope.get("route")
    tags = getattr(route, "tags", None) or []
    if not tags:
        raise RuntimeError("route has no service tag")
    return tags[0]
