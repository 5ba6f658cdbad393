"""The workbench at scale: the RM home and the customer page of an RM with a 2,000-customer
book, over read models seeded with COPY for a million customers (``bench.reads.seed``), served
the way ``strata run`` serves them (all five services' routes and the workbench in one process,
the workbench calling the API in-process) but on PostgreSQL, and driven at a fixed rate from a
second process (``bench.loadgen``, open loop). The result is each page's latency percentiles;
a benchmark, never a test assertion.

    python -m bench.run --only workbench --workbench-customers 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import httpx

from bench.reads import columns_of, row_of, seed
from shared import migrate
from shared.auth import issue_token
from shared.db import Database
from shared.settings import Settings
from services.alerts.models import AlertsSignal
from services.assignment.models import AssignmentRm
from strata.processes import free_port
from strata.registry import available

REPO = Path(__file__).resolve().parent.parent
BOOK_RM = "RM-WORKBENCH-2000"
BOOK = 2000
SIGNALS = 60
ACCESS_SERVICES = ("profile", "tiering", "pricing", "alerts")


async def give_one_rm_a_big_book(dsn: str) -> list[str]:
    """Move 2,000 gold customers to one RM in every read model that says who sees whom, and
    give them open signals: the book an RM home pages through."""
    conn = await asyncpg.connect(dsn)
    now = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
    try:
        ids = [r["customer_id"] for r in await conn.fetch(
            "SELECT customer_id FROM assignment_customers WHERE tier = 'gold' ORDER BY customer_id LIMIT $1", BOOK)]
        await conn.execute("UPDATE assignment_customers SET primary_rm = $1 WHERE customer_id = ANY($2)", BOOK_RM, ids)
        await conn.execute("UPDATE profile_customers SET primary_rm = $1 WHERE customer_id = ANY($2)", BOOK_RM, ids)
        rm = row_of(AssignmentRm, {"rm_id": BOOK_RM, "name": "Workbench bench", "branch_id": "BR-BENCH",
                                   "level": "L1", "capacity": "4000", "active": True, "updated_at": now,
                                   "updated_by": "bench"})
        await conn.copy_records_to_table(AssignmentRm.__tablename__, records=[rm], columns=columns_of(AssignmentRm))
        access = [(service, cid, "BR-BENCH", BOOK_RM, None, now, None, now)
                  for service in ACCESS_SERVICES for cid in ids]
        await conn.copy_records_to_table("runtime_customer_access", records=access, columns=[
            "service", "customer_id", "branch_id", "primary_rm", "backup_rm", "primary_at", "backup_at", "branch_at"])
        signals = [row_of(AlertsSignal, {
            "id": f"WB-SIG-{n:04d}", "signal_type": ("near_upgrade", "maturity_due", "birthday")[n % 3],
            "customer_id": ids[n * 7 % len(ids)], "rm_id": BOOK_RM, "branch_id": "BR-BENCH", "status": "open",
            "raised_at": now - timedelta(minutes=n), "evidence": "{}", "subject": f"wb-{n}",
            "created_at": now, "status_at": now}) for n in range(SIGNALS)]
        await conn.copy_records_to_table(AlertsSignal.__tablename__, records=signals, columns=columns_of(AlertsSignal))
        for table in ("assignment_customers", "profile_customers", "runtime_customer_access", "alerts_signals"):
            await conn.execute(f"VACUUM (ANALYZE) {table}")
    finally:
        await conn.close()
    return ids


async def serve(database_url: str, port: int) -> None:
    """The single-process composition on PostgreSQL: every service's routes and the workbench,
    no consumers (the read models are seeded, not fed)."""
    import uvicorn

    from shared.http import create_app
    from shared.runtime.process import Runtime, tune_gc
    from strata.registry import load_all
    from strata.single import add_workbench

    settings = Settings(database_url=database_url, bus="memory", log_level="WARNING")
    runtime = Runtime(settings, load_all(), consume=False)
    app = create_app(runtime, title="Strata (bench)", manage_runtime=False)
    client = add_workbench(app, settings)
    await runtime.start()
    tune_gc(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, log_level="warning"))
    try:
        await server.serve()
    finally:
        await client.aclose()
        await runtime.stop()


async def _wait_ready(base: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the bench server exited with {proc.returncode}")
            try:
                if (await client.get(f"{base}/readyz", timeout=5)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3)
    raise TimeoutError("the bench server did not get ready")


async def _load(base: str, path: str, cookie: str, ids: list[str], rate: float, seconds: float) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        fh.write("\n".join(ids))
    argv = [sys.executable, "-m", "bench.loadgen", "--base", base, "--token", "unused", "--path", path,
            "--rate", str(rate), "--seconds", str(seconds), "--connections", "4",
            "--header", f"Cookie: strata_token={cookie}"]
    if ids:
        argv += ["--ids", fh.name]
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, cwd=str(REPO))
    stdout, _ = await proc.communicate()
    Path(fh.name).unlink()
    return json.loads(stdout)


async def run(database_url: str, customers: int, rate: float, seconds: float) -> dict:
    settings = Settings(database_url=database_url, bus="memory")
    db = Database(database_url)
    await migrate.upgrade(db, available())
    await db.dispose()
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    print(f"seeding {customers} customers...", file=sys.stderr)
    seeded = await seed(dsn, customers, settings)
    book = await give_one_rm_a_big_book(dsn)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "bench.workbench", "--serve", "--database-url", database_url,
                             "--port", str(port)], cwd=REPO, env={**os.environ, "STRATA_LOG_LEVEL": "WARNING"})
    try:
        await _wait_ready(base, proc)
        token = issue_token(Settings().auth.secret.get_secret_value(), "rm", rm_id=BOOK_RM)
        results = []
        for path, ids in (("/app/home", []), ("/app/customers/{id}", book),
                          ("/app/home?sort=aum&order=desc", [])):
            await _load(base, path, token, ids, rate, 2.0)  # warm-up: connections, caches, templates
            out = await _load(base, path, token, ids, rate, seconds)
            results.append(out)
            print(json.dumps(out), file=sys.stderr)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return {"customers": customers, "rms": seeded["rms"] + 1, "book": len(book), "signals": SIGNALS,
            "shape": "strata run's composition (API and workbench in one process, in-process calls) on PostgreSQL",
            "results": results}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    if args.serve:
        try:
            asyncio.run(serve(args.database_url, args.port))
        except KeyboardInterrupt:  # how the benchmark stops it
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
