#!/usr/bin/env python3
"""Wait until a Kafka broker really answers client requests.

Used by deploy/kafka/kafka.sh (start/status). A TCP port check is not enough:
a KRaft broker accepts connections before its metadata is loaded, and early
clients then fail with NOT_CONTROLLER/LEADER_NOT_AVAILABLE style errors. So we
connect with aiokafka's admin client (the same client library Strata uses),
describe the cluster, list topics and find a group coordinator (so consumer
groups work from the first test on), retrying until that works.

Exit codes: 0 ready, 1 timed out, 2 broker process died while waiting,
3 aiokafka not installed for this interpreter.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time

try:
    from aiokafka.admin import AIOKafkaAdminClient
except ImportError:  # fail fast instead of "not ready" after a minute
    print("wait_ready.py: aiokafka is not importable by this python "
          f"({sys.executable}); set STRATA_PYTHON or create the .venv "
          "(scripts/test does)", file=sys.stderr)
    sys.exit(3)


def _alive(pid: int | None) -> bool:
    if not pid:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _probe(bootstrap: str, request_timeout_ms: int) -> tuple[int, int]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=request_timeout_ms,
        client_id="strata-wait-ready",
    )
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
        topics = await admin.list_topics()
        brokers = cluster.get("brokers") or []
        if not brokers or cluster.get("controller_id", -1) < 0:
            raise RuntimeError(f"cluster not ready yet: {cluster!r}")
        # Consumer groups need __consumer_offsets, which the broker creates on the first
        # FindCoordinator request; until it is loaded, groups fail with COORDINATOR_NOT_AVAILABLE.
        await admin.find_coordinator("strata-wait-ready")
        return len(brokers), len(topics)
    finally:
        await admin.close()


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--pid", type=int, default=None,
                    help="give up early if this process exits")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()

    # aiokafka logs every refused connection at ERROR; keep the output clean.
    logging.basicConfig(level=logging.CRITICAL)

    deadline = time.monotonic() + args.timeout
    last_err: BaseException | None = None
    attempt = 0
    while True:
        attempt += 1
        if not _alive(args.pid):
            print(f"kafka process {args.pid} exited while waiting", file=sys.stderr)
            return 2
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            brokers, topics = await asyncio.wait_for(
                _probe(args.bootstrap, 5000), timeout=min(10.0, max(remaining, 1.0))
            )
            if not args.quiet:
                print(f"kafka ready at {args.bootstrap}: {brokers} broker(s), "
                      f"{topics} topic(s), after {attempt} attempt(s)")
            return 0
        except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
            last_err = exc
        await asyncio.sleep(min(0.5, max(deadline - time.monotonic(), 0)))
    if not args.quiet:
        print(f"kafka at {args.bootstrap} not ready after {args.timeout:.0f}s: "
              f"{type(last_err).__name__}: {last_err}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
