"""The audit log of reads that let customer data out: who, what, when and why.

Recorded: every read that shows identity numbers and phones unmasked (a customer 360 read by a
role in ``auth.unmasked_roles``) and every read of a segment's members (a JSON page or a CSV
export: a customer list leaving Strata), whatever the role.

- **who**: the token's subject and role;
- **what**: the endpoint, the customer id or the segment name with the query parameters, the
  number of rows, and whether identity data was shown unmasked;
- **when**: the time of the read;
- **why**: the purpose the caller states in the ``X-Strata-Purpose`` header (percent-encode
  non-ASCII text). Without one such a read is refused (400) and nothing is shown.

The entry is written in the same transaction as the read it records (for a CSV export, before
the first row is sent, with the number of rows the segment selects), so no audited data leaves
without its entry. The log is append-only: the API has no route that changes or removes an
entry (``GET /v1/audit`` reads it, admins only), and the database refuses UPDATE and DELETE on
the table (triggers of migration ``runtime_0003``).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Boolean, Index, Integer, String, Text, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from shared.auth import Principal, require_roles
from shared.db import Base, BigId, UtcDateTime
from shared.paging import decode_cursor, encode_cursor
from shared.problems import Problem

PURPOSE_HEADER = "X-Strata-Purpose"
MAX_PURPOSE = 500
Action = Literal["customer_360", "segment_members", "segment_export"]


class AuditEntry(Base):
    __tablename__ = "runtime_audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    service: Mapped[str] = mapped_column(String(50))
    subject: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(40))
    endpoint: Mapped[str] = mapped_column(String(300))
    customer_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    segment: Mapped[str | None] = mapped_column(String(100), nullable=True)
    parameters: Mapped[str] = mapped_column(Text)
    rows: Mapped[int] = mapped_column(Integer)
    unmasked: Mapped[bool] = mapped_column(Boolean)
    purpose: Mapped[str] = mapped_column(String(MAX_PURPOSE))

    __table_args__ = (Index("ix_runtime_audit_log_customer", "customer_id"),
                      Index("ix_runtime_audit_log_subject", "subject"))


def purpose_header(description: str = "Why you need this data (recorded in the audit log)."):
    """The ``X-Strata-Purpose`` header as a route parameter, so that it is in the OpenAPI."""
    return Header(None, alias=PURPOSE_HEADER, max_length=3 * MAX_PURPOSE, description=description)


def stated_purpose(value: str | None) -> str | None:
    """The purpose stated in the header (percent-decoded, trimmed), or None when there is none."""
    text = unquote(value or "").strip()
    return text[:MAX_PURPOSE] if text else None


def required_purpose(value: str | None) -> str:
    """The stated purpose, or a 400 problem when there is none."""
    text = stated_purpose(value)
    if text is None:
        raise Problem(400, "Purpose required",
                      f"This read is audited: say why you need the data in the {PURPOSE_HEADER} header.")
    return text


async def record(session: AsyncSession, request: Request, principal: Principal, *, service: str,
                 action: Action, purpose: str, rows: int, unmasked: bool, customer_id: str | None = None,
                 segment: str | None = None) -> None:
    """Add the entry of one audited read to ``session``'s transaction (the read's own)."""
    parameters = {k: request.query_params.getlist(k) for k in request.query_params.keys()}
    session.add(AuditEntry(
        at=datetime.now(timezone.utc), service=service, subject=principal.subject[:200], role=principal.role,
        action=action, endpoint=f"{request.method} {request.url.path}"[:300], customer_id=customer_id,
        segment=segment, parameters=json.dumps(parameters, ensure_ascii=False), rows=rows,
        unmasked=unmasked, purpose=purpose,
    ))


# --- reading the log -------------------------------------------------------------------------


class AuditItem(BaseModel):
    id: int
    at: datetime
    service: str
    subject: str
    role: str
    action: str
    endpoint: str
    customer_id: str | None
    segment: str | None
    parameters: dict[str, list[str]]
    rows: int
    unmasked: bool
    purpose: str


class AuditPage(BaseModel):
    items: list[AuditItem]
    next: str | None = Field(description="cursor of the next (older) page")


router = APIRouter(tags=["audit"])


@router.get("/v1/audit", response_model=AuditPage)
async def list_audit(request: Request,
                     customer_id: str | None = Query(None, max_length=64),
                     subject: str | None = Query(None, max_length=200),
                     action: Action | None = Query(None),
                     limit: int = Query(50, ge=1, le=500),
                     cursor: str | None = Query(None, max_length=200),
                     principal: Principal = Depends(require_roles("admin"))):
    """The audit log, newest first, filterable by customer, subject and action. Read-only: no
    route changes or removes an entry."""
    position = decode_cursor(cursor) or {}
    before = position.get("before")
    if before is not None and (not isinstance(before, int) or isinstance(before, bool) or not 0 < before < 2**62):
        raise Problem(422, "Invalid cursor", "The cursor is not one this API returned.")
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
    for column, value in ((AuditEntry.customer_id, customer_id), (AuditEntry.subject, subject),
                          (AuditEntry.action, action)):
        if value is not None:
            stmt = stmt.where(column == value)
    if before is not None:
        stmt = stmt.where(AuditEntry.id < before)
    async with request.app.state.runtime.db.sessions() as session:
        rows = (await session.execute(stmt)).scalars().all()
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(items=[_item(r) for r in rows],
                     next=encode_cursor({"before": rows[-1].id}) if more else None)


def _item(entry: AuditEntry) -> AuditItem:
    values: dict[str, Any] = {c.key: getattr(entry, c.key) for c in AuditEntry.__table__.columns}
    values["parameters"] = json.loads(entry.parameters)
    return AuditItem(**values)
