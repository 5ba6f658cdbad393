"""Reads at scale: the read models of profile, tiering and assignment seeded with COPY for N
customers (a million by default), the three services started as their own processes, and the
customer 360, tier, worklist and segment reads driven at a fixed rate from a second process
(``bench.loadgen``, open loop).

Seeding goes through the services' own migrations and the models' column types, so the tables
and indexes read are exactly the ones a running Strata has; rows are built from each model's
columns (defaults for what a row does not name), so a column added later is filled or fails
loudly instead of drifting."""

from __future__ import annotations

import asyncio
import json
import random
import sys
import tempfile
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeDecorator

from bench.drain import Deployment
from bench.feed import BRANCHES, opening_balance
from shared import migrate
from shared.audit import PURPOSE_HEADER
from shared.auth import issue_token
from shared.db import Database
from shared.settings import Settings
from services.assignment.models import AssignmentCustomer, AssignmentRm
from services.profile.models import ProfileCustomer
from services.tiering.domain import TierPolicy
from services.tiering.models import TieringCustomer

REPO = Path(__file__).resolve().parent.parent
DIALECT = postgresql.dialect()
BOOK = 300  # customers per RM, a usual book


def row_of(model, values: dict[str, Any]) -> tuple:
    """A COPY row of ``model``'s table: the given values, column defaults for the rest, each
    converted the way the column's type binds it (money to cents, times to UTC)."""
    out = []
    for column in model.__table__.columns:
        if column.name in values:
            value = values[column.name]
        elif column.default is not None and column.default.is_scalar:
            value = column.default.arg
        elif column.nullable:
            value = None
        else:
            raise KeyError(f"{model.__tablename__}.{column.name} needs a value")
        if isinstance(column.type, TypeDecorator) and value is not None:
            value = column.type.process_bind_param(value, DIALECT)
        out.append(value)
    return tuple(out)


def columns_of(model) -> list[str]:
    return [c.name for c in model.__table__.columns]


async def seed(dsn: str, customers: int, settings: Settings, seed: int = 5) -> dict:
    policy = TierPolicy.from_rules(settings.tiers)
    levels = {t.id: t.rm_level for t in settings.tiers}
    rng = random.Random(seed)
    now = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
    tables = {TieringCustomer: [], ProfileCustomer: [], AssignmentCustomer: []}
    rms: dict[tuple[str, str], list[str]] = {}
    placed: dict[tuple[str, str], int] = {}
    conn = await asyncpg.connect(dsn)

    async def flush() -> None:
        for model, rows in tables.items():
            if rows:
                await conn.copy_records_to_table(model.__tablename__, records=rows, columns=columns_of(model))
                rows.clear()

    try:
        for n in range(customers):
            cid = f"C{n:08d}"
            aum = Decimal(opening_balance(rng)) / 100
            tier = policy.tier_for(aum).id
            branch = BRANCHES[n % len(BRANCHES)]
            rm = None
            level = levels.get(tier)
            if level:
                key = (branch, level)
                k = placed.get(key, 0)
                placed[key] = k + 1
                ids = rms.setdefault(key, [])
                if k // BOOK >= len(ids):
                    ids.append(f"RM-{branch}-{level}-{len(ids) + 1:03d}")
                rm = ids[k // BOOK]
            tables[TieringCustomer].append(row_of(TieringCustomer, {
                "customer_id": cid, "aum": aum, "liabilities": Decimal("0.00"), "holdings": "{}",
                "tier": tier, "watch": False, "months_below": 0, "mtd_day": date(2026, 11, 27),
                "mtd_sum": aum * 26, "day_high": aum, "average_aum_12m": aum, "updated_at": now,
                "placed_at": now, "recent_averages": ""}))
            tables[ProfileCustomer].append(row_of(ProfileCustomer, {
                "customer_id": cid, "name": f"Customer {n}", "birth_date": date(1960 + n % 45, 1 + n % 12, 1 + n % 28),
                "gender": "FM"[n % 2], "home_branch_id": branch, "risk_level": f"C{1 + n % 5}", "tags": "[]",
                "auto_points_offset": False, "aum": aum, "mtd_average_daily_aum": aum,
                "aum_by_product_type": json.dumps({"demand_deposit": str(aum)}), "liabilities": "{}",
                "balance_demand_deposit": aum, "aum_business_date": date(2026, 11, 27), "aum_as_of": now,
                "tier": tier, "tier_effective_at": now, "primary_rm": rm, "primary_at": now if rm else None}))
            tables[AssignmentCustomer].append(row_of(AssignmentCustomer, {
                "customer_id": cid, "tier": tier, "tier_rank": policy.tier_for(aum).rank,
                "home_branch_id": branch, "branch_at": now, "serving_branch": branch if rm else None,
                "standing": "assigned" if rm else "pool", "primary_rm": rm, "primary_since": now if rm else None,
                "aum": aum, "aum_at": now,
                "next_contact": date(2026, 12, 1) + timedelta(days=n % 60) if rm else None}))
            if len(tables[TieringCustomer]) == 20_000:
                await flush()
        await flush()
        registry = [row_of(AssignmentRm, {"rm_id": rm_id, "name": rm_id, "branch_id": branch, "level": level,
                                          "active": True, "updated_at": now, "updated_by": "bench"})
                    for (branch, level), ids in rms.items() for rm_id in ids]
        await conn.copy_records_to_table(AssignmentRm.__tablename__, records=registry, columns=columns_of(AssignmentRm))
        # a running Strata's tables have been vacuumed (hint bits set, visibility map built) and
        # checkpointed; freshly copied ones have not, and the first reads would pay for it
        for model in (*tables, AssignmentRm):
            await conn.execute(f"VACUUM (ANALYZE) {model.__tablename__}")
        try:
            await conn.execute("CHECKPOINT")
        except asyncpg.InsufficientPrivilegeError:  # needs superuser or pg_checkpoint
            print("no privilege for CHECKPOINT; a checkpoint may fall in the measurement", file=sys.stderr)
    finally:
        await conn.close()
    return {"customers": customers, "rms": sum(len(v) for v in rms.values()),
            "rm_ids": [rm_id for ids in rms.values() for rm_id in ids]}


async def run(bootstrap: str, database_url: str, customers: int, rate: float, seconds: float) -> dict:
    settings = Settings(database_url=database_url, bus="memory")
    db = Database(database_url)
    await migrate.upgrade(db, ["profile", "tiering", "assignment"])
    await db.dispose()
    print(f"seeding {customers} customers...", file=sys.stderr)
    seeded = await seed(database_url.replace("postgresql+asyncpg://", "postgresql://"), customers, settings)
    dep = Deployment(bootstrap, database_url)
    await dep.start(["profile", "tiering", "assignment"])
    try:
        secret = Settings().auth.secret.get_secret_value()
        analyst = issue_token(secret, "analyst")  # every customer, identity masked: no audit row per read
        admin = issue_token(secret, "admin")
        ports = {p.service: p.port for p in dep.processes}
        customer_ids = [f"C{n:08d}" for n in random.Random(9).sample(range(customers), min(customers, 20_000))]
        targets = [
            ("profile", "/v1/customers/{id}", analyst, customer_ids),
            ("tiering", "/v1/customers/{id}/tier", analyst, customer_ids),
            ("assignment", "/v1/rms/{id}/worklist?limit=50", admin, seeded["rm_ids"]),
            ("profile", "/v1/segments/near-upgrade-gold/members?limit=50", analyst, []),
            ("profile", "/v1/segments/core-value-band/members?limit=50", analyst, []),
        ]
        results = []
        for service, path, token, ids in targets:
            await _load(ports[service], path, token, ids, rate, 2.0)  # warm-up: connections, caches
            out = await _load(ports[service], path, token, ids, rate, seconds)
            results.append({"service": service, **out})
            print(json.dumps(results[-1]), file=sys.stderr)
            dep.sample_rss()
    finally:
        dep.stop()
    return {"customers": customers, "rms": seeded["rms"], "results": results,
            "peak_rss_mb": {k: round(v / 2**20, 1) for k, v in dep.peak_rss.items()}}


async def _load(port: int, path: str, token: str, ids: list[str], rate: float, seconds: float) -> dict:
    """One run of the open-loop generator (``bench.loadgen``) as a second process."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        fh.write("\n".join(ids))
    # segment members are an export: they need a stated purpose and write an audit row each
    argv = [sys.executable, "-m", "bench.loadgen", "--base", f"http://127.0.0.1:{port}", "--token", token,
            "--path", path, "--rate", str(rate), "--seconds", str(seconds),
            "--header", f"{PURPOSE_HEADER}: benchmark"]
    if ids:
        argv += ["--ids", fh.name]
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, cwd=str(REPO))
    stdout, _ = await proc.communicate()
    Path(fh.name).unlink()
    return json.loads(stdout)
