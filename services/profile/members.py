"""A segment's members as the caller may see them: a JSON page, or a CSV export streamed from
a server-side cursor so that memory stays bounded whatever the size of the segment."""

from __future__ import annotations

import csv
import io
import time
from datetime import date, datetime
from typing import Any, AsyncIterator
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.calendar import bank_time
from shared.db import Database
from shared.money import format_money
from services.profile import metrics
from services.profile.domain import Identity, age_on, identity_for

CSV_COLUMNS = (
    "customer_id", "name", "home_branch_id", "tier", "watch", "aum", "mtd_average_daily_aum",
    "household_id", "household_aum", "risk_level", "gender", "age", "phone", "primary_rm",
    "backup_rm", "open_signals", "points_balance", "last_contact",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def member(row: Any, *, role: str, unmasked_roles: list[str], today: date) -> dict[str, Any]:
    """One member as the caller may see it: the phone masked unless the role is unmasked."""
    phone = identity_for(role, unmasked_roles, Identity(None, row.phone)).phone
    return {
        "customer_id": row.customer_id, "name": row.name, "home_branch_id": row.home_branch_id,
        "tier": row.tier, "watch": row.watch, "aum": row.aum,
        "mtd_average_daily_aum": row.mtd_average_daily_aum, "household_id": row.household_id,
        "household_aum": row.household_aum, "risk_level": row.risk_level, "gender": row.gender,
        "age": age_on(row.birth_date, today) if row.birth_date else None, "phone": phone,
        "primary_rm": row.primary_rm, "backup_rm": row.backup_rm, "open_signals": row.open_signals,
        "points_balance": row.points_balance, "last_contact": row.last_contact_at,
    }


async def count(session: AsyncSession, stmt) -> int:
    """How many members ``stmt`` selects (what an export is about to send, for its audit entry)."""
    return await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0


async def page(session: AsyncSession, stmt, **how: Any) -> list[dict[str, Any]]:
    started = time.perf_counter()
    rows = (await session.execute(stmt)).all()
    metrics.SEGMENT_QUERY_SECONDS.labels("json").observe(time.perf_counter() - started)
    metrics.SEGMENT_ROWS.labels("json").inc(len(rows))
    return [member(r, **how) for r in rows]


CSV_BOM = "\ufeff"
"""The UTF-8 byte-order mark first: Excel on a Chinese Windows reads a CSV without one in the
system's code page (GBK) and garbles every name."""


async def stream_csv(db: Database, stmt, *, batch_rows: int, zone: ZoneInfo, **how: Any) -> AsyncIterator[str]:
    """The header, then one chunk of CSV per ``batch_rows`` rows fetched from a server-side
    cursor (``yield_per``): at most one batch is in memory at a time. Closing the response early
    (the client went away) closes the cursor and its connection."""
    started = time.perf_counter()
    count = 0
    try:
        yield CSV_BOM + _csv_line(CSV_COLUMNS)
        async with db.engine.connect() as conn:
            result = await conn.stream(stmt.execution_options(yield_per=batch_rows))
            async for rows in result.partitions():
                out = io.StringIO()
                writer = csv.writer(out, lineterminator="\r\n")
                for row in rows:
                    writer.writerow(_csv_cells(member(row, **how), zone))
                count += len(rows)
                yield out.getvalue()
    finally:
        metrics.SEGMENT_QUERY_SECONDS.labels("csv").observe(time.perf_counter() - started)
        metrics.SEGMENT_ROWS.labels("csv").inc(count)


def _csv_line(cells) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    return out.getvalue()


def _csv_cells(item: dict[str, Any], zone: ZoneInfo) -> list[str]:
    cells = []
    for column in CSV_COLUMNS:
        value = item[column]
        if value is None:
            cells.append("")
        elif isinstance(value, bool):
            cells.append("true" if value else "false")
        elif column in ("aum", "mtd_average_daily_aum", "household_aum"):
            cells.append(format_money(value))
        elif isinstance(value, str):
            cells.append(_inert(value))
        elif isinstance(value, datetime):
            cells.append(bank_time(value, zone))
        elif hasattr(value, "isoformat"):
            cells.append(value.isoformat())
        else:
            cells.append(str(value))
    return cells


def _inert(text: str) -> str:
    """A cell a spreadsheet would read as a formula is prefixed with an apostrophe."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
