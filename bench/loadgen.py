"""An open-loop HTTP load generator, run as its own process: requests are sent on a fixed
schedule whatever the answers' speed, and latency counts from the scheduled time, so a slow
server cannot hide its queueing (no coordinated omission).

    python -m bench.loadgen --base http://127.0.0.1:8001 --token T --rate 200 --seconds 20 \\
        --path '/v1/customers/{id}' --ids ids.txt
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time

import httpx


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def run(args) -> dict:
    ids = [line.strip() for line in open(args.ids) if line.strip()]
    rng = random.Random(args.seed)
    headers = {"Authorization": f"Bearer {args.token}"}
    limits = httpx.Limits(max_connections=args.connections, max_keepalive_connections=args.connections)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    async with httpx.AsyncClient(base_url=args.base, headers=headers, limits=limits, timeout=10) as client:
        async def one(path: str, scheduled: float) -> None:
            try:
                response = await client.get(path)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            except httpx.HTTPError:
                statuses[0] = statuses.get(0, 0) + 1
            latencies.append(time.perf_counter() - scheduled)

        total = int(args.rate * args.seconds)
        start = time.perf_counter() + 0.2
        tasks = []
        for n in range(total):
            scheduled = start + n / args.rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            path = args.path.replace("{id}", rng.choice(ids))
            tasks.append(asyncio.create_task(one(path, scheduled)))
        await asyncio.gather(*tasks)
    ms = [v * 1000 for v in latencies]
    return {"path": args.path, "rate": args.rate, "requests": len(ms), "statuses": statuses,
            "p50_ms": round(percentile(ms, 0.50), 2), "p99_ms": round(percentile(ms, 0.99), 2),
            "max_ms": round(max(ms) if ms else 0, 2)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--path", required=True)
    p.add_argument("--ids", required=True)
    p.add_argument("--rate", type=float, default=200)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--seed", type=int, default=1)
    json.dump(asyncio.run(run(p.parse_args())), sys.stdout)


if __name__ == "__main__":
    main()
