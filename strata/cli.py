"""The ``strata`` command: run, serve, token, simulate, migrate."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from shared.auth import ROLES, issue_token
from shared.logs import configure_logging
from shared.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="strata", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="all services in one process (in-memory bus, SQLite)")
    run.add_argument("--port", type=int, default=8000)
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--data-dir", default="strata-data")
    run.add_argument("--no-simulate", action="store_true", help="no simulated core-banking feed")
    run.add_argument("--customers", type=int, default=2000, help="simulated customers")
    run.add_argument("--speed", type=float, default=1440.0,
                     help="simulated business seconds per real second (1440: a day a minute)")
    run.add_argument("--seed", type=int, default=7)
    run.add_argument("--quiet", action="store_true", help="no live summary, and only errors in the log")

    serve = sub.add_parser("serve", help="one service of the distributed mode, or the workbench")
    serve.add_argument("service", help="profile, tiering, alerts, pricing, assignment or workbench")
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--host", default=None)

    token = sub.add_parser("token", help="print a bearer token signed with the configured key")
    token.add_argument("--role", required=True, choices=ROLES)
    token.add_argument("--rm", dest="rm_id")
    token.add_argument("--branch", dest="branch_id")
    token.add_argument("--ttl-minutes", type=int, default=None)

    sub.add_parser("migrate", help="bring the database schema up to date for every service")

    simulate = sub.add_parser("simulate", help="publish a simulated core-banking feed to the bus")
    simulate.add_argument("--customers", type=int, default=10_000)
    simulate.add_argument("--days", type=int, default=30)
    simulate.add_argument("--rate", type=float, default=0.0, help="events per second; 0: as fast as possible")
    simulate.add_argument("--seed", type=int, default=7)
    simulate.add_argument("--start", default=None, help="first business date, YYYY-MM-DD")
    simulate.add_argument("--api-url", default=None,
                          help="a running deployment (e.g. the gateway): register RMs, run daily scans "
                               "and month-end closes as the business dates pass")

    args = parser.parse_args(argv)
    if args.command == "token":
        return _token(args)
    if args.command == "serve":
        return _serve(args)
    if args.command == "run":
        return _run(args)
    if args.command == "migrate":
        return _migrate()
    if args.command == "simulate":
        from strata.simulator.publish import simulate_command

        return simulate_command(args)
    return 2


def _token(args) -> int:
    settings = Settings()
    if args.ttl_minutes is not None and args.ttl_minutes < 1:
        print(f"strata token: --ttl-minutes must be at least 1 (got {args.ttl_minutes}): a token "
              "that lives no time is expired when it is printed", file=sys.stderr)
        return 2
    try:
        print(issue_token(
            settings.auth.secret.get_secret_value(), args.role, rm_id=args.rm_id,
            branch_id=args.branch_id, ttl_minutes=args.ttl_minutes or settings.auth.token_ttl_minutes,
            issuer=settings.auth.issuer, algorithm=settings.auth.algorithm,
        ))
    except ValueError as exc:
        print(f"strata token: {exc}", file=sys.stderr)
        return 2
    return 0


def _serve(args) -> int:
    import uvicorn

    from shared.http import create_app
    from shared.runtime.process import Runtime, tune_gc
    from strata.registry import load

    settings = Settings()
    configure_logging(settings.log_level)
    if args.service == "workbench":  # no bus, no database: the API at workbench.api_url
        from strata.workbench.app import standalone

        uvicorn.run(standalone(settings), host=args.host or settings.http.host,
                    port=args.port or settings.http.port, log_config=None, timeout_graceful_shutdown=10)
        return 0
    spec = load(args.service)
    runtime = Runtime(settings, [spec])
    app = create_app(runtime, title=f"Strata {spec.name}")
    tune_gc(settings)
    uvicorn.run(app, host=args.host or settings.http.host, port=args.port or settings.http.port,
                log_config=None, timeout_graceful_shutdown=30)
    return 0


def _migrate() -> int:
    from shared import migrate
    from shared.db import Database
    from strata.registry import available

    settings = Settings()
    configure_logging(settings.log_level)

    async def _go() -> None:
        db = Database(settings.database_url)
        try:
            await migrate.upgrade(db, available())
        finally:
            await db.dispose()

    asyncio.run(_go())
    return 0


def single_process_settings(data_dir: str | os.PathLike) -> Settings:
    """Settings of the single-process mode: in-memory bus and SQLite in ``data_dir``, unless the
    environment says otherwise."""
    path = Path(data_dir).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    overrides = {"bus": "memory", "database_url": f"sqlite+aiosqlite:///{path / 'strata.db'}"}
    overrides = {k: v for k, v in overrides.items() if f"STRATA_{k.upper()}" not in os.environ}
    return Settings(**overrides)


def _run(args) -> int:
    from strata.single import run_single_process

    settings = single_process_settings(args.data_dir)
    return run_single_process(settings, args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
