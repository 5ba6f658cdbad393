"""The single-process mode: every service in one process, on the in-memory bus and SQLite,
through the same handlers and consumer runtime as the distributed mode."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import sys

import uvicorn

from shared.auth import issue_token
from shared.http import create_app
from shared.logs import configure_logging
from shared.runtime.process import Runtime, tune_gc
from shared.settings import Settings
from strata.registry import load_all

log = logging.getLogger(__name__)


def build_runtime(settings: Settings) -> Runtime:
    return Runtime(settings, load_all())


def add_workbench(app, settings: Settings):
    """The workbench at ``/`` and ``/app/...``, calling this same app in-process, with the
    development sign-in (tokens minted with this process's key: only in this mode)."""
    from strata.workbench.app import api_client_for_app, create_workbench, mount_workbench

    auth = settings.auth

    def mint(role: str, rm_id: str | None = None, branch_id: str | None = None) -> str:
        return issue_token(auth.secret.get_secret_value(), role, rm_id=rm_id, branch_id=branch_id,
                           ttl_minutes=auth.token_ttl_minutes, issuer=auth.issuer, algorithm=auth.algorithm,
                           subject=f"dev:{rm_id or branch_id or role}")

    client = api_client_for_app(app, settings)
    mount_workbench(app, create_workbench(settings, client, mint=mint))
    return client


def run_single_process(settings: Settings, args) -> int:
    configure_logging("ERROR" if args.quiet else "WARNING")
    return asyncio.run(_serve(settings, args))


class PortBusy(Exception):
    """The port ``strata run`` was asked to listen on is taken."""


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything starts, so that a busy port is told plainly
    (and no database is migrated, no summary printed, for a server that cannot serve)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortBusy(f"port {port} on {host} is already in use (another strata run?); "
                           f"choose another with --port") from exc
        raise PortBusy(f"cannot listen on {host}:{port}: {exc.strerror}; choose another with --port "
                       f"or --host") from exc
    sock.listen(2048)
    return sock


async def _serve(settings: Settings, args) -> int:
    try:
        sock = listen(args.host, args.port)
    except PortBusy as exc:
        print(f"strata run: {exc}", file=sys.stderr)
        return 1
    runtime = build_runtime(settings)
    app = create_app(runtime, title="Strata (single process)", manage_runtime=False)
    workbench_client = add_workbench(app, settings)
    config = uvicorn.Config(app, log_config=None, log_level="warning", timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # we own Ctrl-C, to stop in order
    tune_gc(settings)
    await runtime.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(server.serve(sockets=[sock]), name="http")]
    base = f"http://{args.host}:{args.port}"
    print(f"Strata is running: {', '.join(s.name for s in runtime.services)} in one process", flush=True)
    print(f"  workbench  {base}/", flush=True)
    print(f"  API docs   {base}/docs", flush=True)
    print(f"  metrics    {base}/metrics", flush=True)
    print(f"  data       {settings.database_url.split(':///', 1)[-1]}", flush=True)
    print("  a token    strata token --role admin", flush=True)
    print("Ctrl-C stops it; running it again continues from the same data.", flush=True)
    if not args.no_simulate:
        from strata.simulator.live import start_live_feed

        tasks += start_live_feed(app, runtime, args, stop)
    await stop.wait()
    print("\nstopping: finishing the batch in hand...", file=sys.stderr, flush=True)
    server.should_exit = True
    for task in tasks[1:]:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await runtime.stop()
    await workbench_client.aclose()
    print("stopped cleanly.", file=sys.stderr, flush=True)
    return 0
