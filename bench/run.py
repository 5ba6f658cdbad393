"""Strata's benchmarks, side by side in one run on this machine, with real Kafka and
PostgreSQL (started by deploy/ scripts). Results go to bench/results/<time>.json.

    python -m bench.run                      # defaults below
    python -m bench.run --postings 1000000 --customers 1000000 --close-customers 1000000

Sections: ceiling (aiokafka and Kafka's tools), tiering alone, pipeline, latency, close, http.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from bench import feed, kafka_ceiling
from bench.drain import Deployment, wait_drained

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


async def new_database(admin_url: str) -> str:
    import uuid

    import asyncpg

    name = f"strata_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


async def section_ceiling(args, records) -> dict:
    topic = f"bench-ceiling-{int(time.time())}"
    await kafka_ceiling.create_topic(args.kafka, topic, args.partitions)
    produced = await kafka_ceiling.produce(args.kafka, topic, records)
    consumed = await kafka_ceiling.consume(args.kafka, topic, len(records))
    size = sum(len(v) for _k, v, _h in records[:1000]) // min(1000, len(records))
    await kafka_ceiling.create_topic(args.kafka, topic + "-tools", args.partitions)
    tools = kafka_ceiling.kafka_tools(args.kafka, topic + "-tools", min(len(records), args.tools_records), size)
    return {"aiokafka_produce": produced, "aiokafka_consume": consumed, "kafka_tools": tools}


async def section_tiering(args, records) -> dict:
    dep = Deployment(args.kafka, await new_database(args.database_url), args.partitions)
    await kafka_ceiling.create_topic(args.kafka, dep.prefix + "bank.postings", args.partitions)
    await kafka_ceiling.produce(args.kafka, dep.prefix + "bank.postings", records)
    try:
        await dep.start(["tiering"])
        result = await wait_drained(
            dep, {"tiering": ["bank.postings", "bank.balances", "bank.accounts", "bank.customers",
                              "strata.assignments"]}, len(records))
    finally:
        dep.stop()
    result["peak_rss_mb"] = round(dep.peak_rss.get("tiering", 0) / 2**20, 1)
    return result


async def section_close(args, records) -> dict:
    from bench import close

    return await close.run(await new_database(args.database_url), args.close_customers)


async def run(args) -> dict:
    print(f"generating {args.postings} postings over {args.customers} customers...", file=sys.stderr)
    records = list(feed.PostingFeed(args.postings, args.customers, seed=args.seed))
    feed.validate_sample(records)
    results: dict = {
        "started_at": datetime.now(timezone.utc).isoformat(),
        "command": " ".join(["python -m bench.run", *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "parameters": vars(args),
    }
    sections = args.only.split(",") if args.only else ["ceiling", "tiering"]
    for name in sections:
        print(f"== {name}", file=sys.stderr)
        fn = globals()[f"section_{name}"]
        results[name] = await fn(args, records)
        print(json.dumps(results[name]), file=sys.stderr)
    if "ceiling" in results and "tiering" in results:
        ceiling = results["ceiling"]["aiokafka_consume"]["events_per_s"]
        results["ratios"] = {"tiering_to_aiokafka_consume": round(results["tiering"]["events_per_s"] / ceiling, 3)}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kafka", default=os.environ.get("STRATA_TEST_KAFKA", "127.0.0.1:9092"))
    parser.add_argument("--database-url", default=os.environ.get(
        "STRATA_TEST_DATABASE_URL", "postgresql+asyncpg://strata:strata@127.0.0.1:55432/strata"))
    parser.add_argument("--postings", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--tools-records", type=int, default=1_000_000)
    parser.add_argument("--close-customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", default="", help="comma-separated sections")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{stamp}.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"results: {path.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
