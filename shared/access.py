"""Who may see which customer: a small projection every service keeps for itself.

Each service's consumer loop applies ``bank.customers`` (home branch) and
``strata.assignments`` (primary and backup RM) to its own rows of
``runtime_customer_access``, so an ownership check is one indexed read in the service's own
database, never a call to another service. An RM sees the customers they are primary or backup
RM of; a branch manager the customers whose home branch is theirs; analysts and admins all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from fastapi import Request
from sqlalchemy import DateTime, Index, String, select
from sqlalchemy.orm import Mapped, mapped_column

from shared.auth import Principal
from shared.contracts import topics
from shared.contracts.cloudevents import Event
from shared.contracts.events import AssignmentChangedV1, CustomerV1
from shared.db import Base, UtcDateTime, read_rows, write_rows
from shared.problems import Problem


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

_COLUMNS = ("branch_id", "primary_rm", "backup_rm", "primary_at", "backup_at", "branch_at")


@dataclass(slots=True)
class AccessRow:
    customer_id: str
    branch_id: str | None = None
    primary_rm: str | None = None
    backup_rm: str | None = None
    primary_at: datetime | None = None
    backup_at: datetime | None = None
    branch_at: datetime | None = None


@dataclass
class AccessState:
    """A batch's rows of the projection: loaded once for the customers its access events name,
    changed in memory, written at commit in one statement. An older change never overwrites a
    newer one (each field keeps the time of the change it holds)."""

    service: str
    rows: dict[str, AccessRow] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)

    @classmethod
    async def load(cls, tx, events) -> "AccessState":
        state = cls(tx.service)
        ids = {e.data.customer_id for e in events}
        if ids:
            table = CustomerAccess.__table__
            for r in await read_rows(tx.session, table, "customer_id", ids,
                                     where=table.c.service == tx.service):
                state.rows[r.customer_id] = AccessRow(r.customer_id, *(getattr(r, c) for c in _COLUMNS))
        return state

    def _row(self, customer_id: str) -> AccessRow:
        row = self.rows.get(customer_id)
        if row is None:
            row = self.rows[customer_id] = AccessRow(customer_id)
        self.dirty.add(customer_id)
        return row

    def apply(self, event: Event) -> None:
        """Keep the projection current from ``bank.customers`` and ``strata.assignments``."""
        data = event.data
        if isinstance(data, CustomerV1):
            if data.source != "core" or data.home_branch_id is None:
                return
            row = self._row(data.customer_id)
            if row.branch_at is None or data.updated_at >= row.branch_at:
                row.branch_id, row.branch_at = data.home_branch_id, data.updated_at
        elif isinstance(data, AssignmentChangedV1):
            row = self._row(data.customer_id)
            if data.role == "primary" and (row.primary_at is None or data.changed_at >= row.primary_at):
                row.primary_rm, row.primary_at = data.to, data.changed_at
            elif data.role == "backup" and (row.backup_at is None or data.changed_at >= row.backup_at):
                row.backup_rm, row.backup_at = data.to, data.changed_at

    async def write(self, tx) -> None:
        rows = [{"service": self.service, "customer_id": c,
                 **{name: getattr(self.rows[c], name) for name in _COLUMNS}} for c in sorted(self.dirty)]
        await write_rows(tx.session, CustomerAccess.__table__, rows, key=("service", "customer_id"))
        self.dirty.clear()


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
