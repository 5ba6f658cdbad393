"""The state a run ends in, as plain sorted Python values, so two runs compare with ``==``.

Every table of the database is read (every service's, and the runtime's processed-event ids and
access projection), so a table added later is compared without anyone remembering to add it.
Left out are only the columns whose value is the wall clock at the moment a row was written
(:data:`WALL_CLOCK`); the few values that record how two services' streams happened to
interleave, legitimately different from run to run (:data:`INTERLEAVED`,
:data:`CLOSED_SIGNALS`, :data:`NORMALISED`); and surrogate ids, which number rows across all
customers in the order batches happened to commit: they are replaced by the row's position
among its customer's rows, which is part of the state (a customer's fee or audit order must
not change).

Money columns are integer cents in the database, so AUM and fees are compared to the cent.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from collections import defaultdict
from typing import Any, Callable

import asyncpg

SKIPPED_TABLES = {
    "alembic_version",
    "runtime_outbox",  # drained when a run has settled (the settle step checks it is empty)
}

WALL_CLOCK: dict[str, set[str]] = {
    # column names that hold the time a row was written or a job ran, in any table
    "*": {"created_at", "processed_at", "updated_at", "recorded_at", "priced_at", "status_at",
          "closed_at", "first_run_at", "last_run_at"},
    # the time assignment made a placement (its own clock), and the projections of it the
    # other services keep from strata.assignment_changed.v1
    "assignment_customers": {"primary_since", "backup_since", "waiting_since"},
    "assignment_changes": {"changed_at"},
    "runtime_customer_access": {"primary_at", "backup_at"},
    "profile_customers": {"primary_at", "backup_at"},
    "alerts_customers": {"primary_at"},
    "runtime_audit_log": {"at"},
    # the time tiering emitted the tier event (its ce time), which pricing orders tiers by
    "pricing_customers": {"tier_as_of"},
}

INTERLEAVED: dict[str, set[str]] = {
    # how many times a signal was announced: once more for each re-route, and a signal raised
    # before alerts has read the customer's assignment is re-routed when it does
    "alerts_signals": {"version"},
}

CLOSED_SIGNALS = ("alerts_signals", "profile_signals")
"""A closed signal keeps the RM it was routed to while it was active, which depends on whether
alerts had read the customer's assignment before the signal closed; an active one must follow
the RM, and is compared in full."""

NORMALISED: dict[tuple[str, str], Callable[[str], str]] = {
    # the audit sentence quotes the RM's book weight at the moment of the placement, which counts
    # the customers of other partitions placed before it: the interleaving, not the outcome
    ("assignment_changes", "detail"): lambda text: re.sub(r"book \(\d+, ", "book (n, ", text),
}


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(timezone.utc)
    return value


def _sort_key(row: tuple) -> tuple:
    return tuple((v is None, str(type(v).__name__), v if v is not None else 0) for v in row)


async def snapshot(database_url: str) -> dict[str, tuple[tuple[str, ...], list[tuple]]]:
    """``{table: (column names, sorted rows)}`` for every table of the database: PostgreSQL (the
    distributed mode) or SQLite (the single-process mode), the values of both in one form, so
    the two modes compare with ``==``."""
    if database_url.startswith("sqlite"):
        return _sqlite_snapshot(database_url.split(":///", 1)[1])
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        tables = [r["table_name"] for r in await conn.fetch(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name")]
        out = {}
        for table in tables:
            if table in SKIPPED_TABLES:
                continue
            out[table] = await _table(conn, table)
        return out
    finally:
        await conn.close()


async def _table(conn, table: str) -> tuple[tuple[str, ...], list[tuple]]:
    columns = await conn.fetch(
        "SELECT column_name, data_type, column_default FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position", table)
    skip = WALL_CLOCK["*"] | WALL_CLOCK.get(table, set()) | INTERLEAVED.get(table, set())
    surrogate = next((c["column_name"] for c in columns
                      if c["column_name"] == "id" and c["data_type"] in ("bigint", "integer")
                      and (c["column_default"] or "").startswith("nextval")), None)
    if surrogate is None:
        surrogate = await _identity_id(conn, table)
    names = [c["column_name"] for c in columns
             if c["column_name"] not in skip and c["column_name"] != surrogate]
    select = ", ".join(f'"{n}"' for n in names)
    order = f' ORDER BY "{surrogate}"' if surrogate else ""
    rows = [tuple(_plain(v) for v in r) for r in await conn.fetch(f'SELECT {select} FROM "{table}"{order}')]
    return _normalised(table, names, rows, surrogate)


def _sqlite_snapshot(path: str) -> dict[str, tuple[tuple[str, ...], list[tuple]]]:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        out = {}
        for table in tables:
            if table in SKIPPED_TABLES:
                continue
            info = conn.execute(f'PRAGMA table_info("{table}")').fetchall()  # cid, name, type, notnull, default, pk
            skip = WALL_CLOCK["*"] | WALL_CLOCK.get(table, set()) | INTERLEAVED.get(table, set())
            surrogate = next((c[1] for c in info if c[1] == "id" and c[5] == 1 and c[2].upper() in
                              ("INTEGER", "BIGINT")), None)
            kept = [(c[1], c[2].upper()) for c in info if c[1] not in skip and c[1] != surrogate]
            select = ", ".join(f'"{n}"' for n, _ in kept)
            order = f' ORDER BY "{surrogate}"' if surrogate else ""
            rows = [tuple(_sqlite_value(v, kind) for v, (_, kind) in zip(r, kept))
                    for r in conn.execute(f'SELECT {select} FROM "{table}"{order}')]
            out[table] = _normalised(table, [n for n, _ in kept], rows, surrogate)
        return out
    finally:
        conn.close()


def _sqlite_value(value: Any, kind: str) -> Any:
    """A SQLite value as asyncpg gives the PostgreSQL one (aware times, dates, booleans)."""
    if value is None:
        return None
    if kind.startswith(("DATETIME", "TIMESTAMP")):
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    if kind == "DATE":
        return date.fromisoformat(value)
    if kind == "BOOLEAN":
        return bool(value)
    return value


def _normalised(table: str, names: list[str], rows: list[tuple], surrogate: str | None):
    # columns by name: a column added by a migration sits last on PostgreSQL and may not on SQLite
    order = sorted(range(len(names)), key=lambda i: names[i])
    names = [names[i] for i in order]
    rows = [tuple(r[i] for i in order) for r in rows]
    for (where, column), normalise in NORMALISED.items():
        if where == table and column in names:
            at = names.index(column)
            rows = [r[:at] + (normalise(r[at]) if r[at] is not None else None,) + r[at + 1:] for r in rows]
    if table in CLOSED_SIGNALS:
        status, rm = names.index("status"), names.index("rm_id")
        rows = [r[:rm] + (r[rm] if r[status] in ("open", "acknowledged") else "(closed)",) + r[rm + 1:]
                for r in rows]
    if table == "runtime_processed_events":
        # the consumer group name carries the run's topic prefix: keep the service's name
        at = names.index("consumer")
        rows = [r[:at] + (r[at].rsplit(".", 1)[-1],) + r[at + 1:] for r in rows]
    if surrogate and "customer_id" in names:
        # the row's place among its customer's rows replaces the global insertion order
        at = names.index("customer_id")
        place: dict[Any, int] = defaultdict(int)
        numbered = []
        for r in rows:
            place[r[at]] += 1
            numbered.append(r + (place[r[at]],))
        rows = numbered
        names.append(f"{surrogate} (nth of customer)")
    return tuple(names), sorted(rows, key=_sort_key)


async def _identity_id(conn, table: str) -> str | None:
    row = await conn.fetchrow(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
        "AND table_name = $1 AND column_name = 'id' AND is_identity = 'YES'", table)
    return row["column_name"] if row else None


def differences(expected: dict, actual: dict, limit: int = 5) -> list[str]:
    """Human-readable differences, table by table (at most ``limit`` rows each way)."""
    out = []
    for table in sorted(set(expected) | set(actual)):
        if table not in actual or table not in expected:
            out.append(f"{table}: only in {'reference' if table in expected else 'this run'}")
            continue
        (names, want), (_names, got) = expected[table], actual[table]
        if want == got:
            continue
        got_rows, want_rows = set(got), set(want)
        missing = [r for r in want if r not in got_rows]
        extra = [r for r in got if r not in want_rows]
        out.append(f"{table} ({len(want)} rows in the reference, {len(got)} here) columns {names}:\n"
                   + "".join(f"  - {r}\n" for r in missing[:limit])
                   + "".join(f"  + {r}\n" for r in extra[:limit]))
    return out
