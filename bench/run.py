"""Strata's benchmarks, side by side in one run on this machine, with real Kafka and
PostgreSQL (started by deploy/ scripts). Results go to bench/results/<time>.json.

    python -m bench.run                      # defaults below
    python -m bench.run --postings 1000000 --customers 1000000 --close-customers 1000000

Sections: ceiling (aiokafka and Kafka's tools), services alone, pipeline, latency, close, reads (HTTP),
workbench (the RM home and customer page, HTTP), simulate (a tier-policy simulation over a month).

    python -m bench.run --only simulate --postings 1 --simulate-customers 1000000 --simulate-postings 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from bench import feed, kafka_ceiling
from bench.drain import Deployment, wait_drained

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


CREATED: list[str] = []
"""The databases this run made (dropped at its end unless ``--keep-databases``)."""


async def new_database(admin_url: str) -> str:
    import uuid

    import asyncpg

    name = f"strata_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    CREATED.append(name)
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


async def drop_databases(admin_url: str) -> None:
    """Drop the databases this run made (a million customers' read models are gigabytes)."""
    import asyncpg

    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        while CREATED:
            await conn.execute(f'DROP DATABASE IF EXISTS "{CREATED.pop()}" WITH (FORCE)')
    finally:
        await conn.close()


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


def _groups(services: list[str]) -> dict[str, list[str]]:
    from shared.access import ACCESS_TOPICS
    from strata.registry import load

    out = {}
    for name in services:
        spec = load(name)
        topics = list(spec.subscriptions) + (list(ACCESS_TOPICS) if spec.keeps_access else [])
        out[name] = list(dict.fromkeys(topics))
    return out


async def _preloaded(args, records, services: list[str]) -> Deployment:
    dep = Deployment(args.kafka, await new_database(args.database_url), args.partitions)
    await kafka_ceiling.create_topic(args.kafka, dep.prefix + "bank.postings", args.partitions)
    await kafka_ceiling.produce(args.kafka, dep.prefix + "bank.postings", records)
    await dep.start(services)
    return dep


async def section_pipeline(args, records) -> dict:
    """All five services as separate processes draining the same preloaded postings."""
    from strata.registry import available

    services = available()
    dep = await _preloaded(args, records, services)
    try:
        result = await wait_drained(dep, _groups(services), len(records))
        result["services"] = services
    finally:
        dep.stop()
    result["peak_rss_mb"] = {k: round(v / 2**20, 1) for k, v in dep.peak_rss.items()}
    return result


async def section_reads(args, records) -> dict:
    """Customer 360, tier, worklist and segment reads over read models seeded for
    ``--read-customers`` customers, at a fixed rate from a second process."""
    from bench import reads

    return await reads.run(args.kafka, await new_database(args.database_url), args.read_customers,
                           args.http_rate, args.http_seconds)


async def section_workbench(args, records) -> dict:
    """The RM home and the customer page (2,000-customer book) over read models seeded for
    ``--workbench-customers`` customers, at ``--workbench-rate`` pages a second."""
    from bench import workbench

    return await workbench.run(await new_database(args.database_url), args.workbench_customers,
                               args.workbench_rate, args.http_seconds)


POSTING_ID = re.compile(rb'"posting_id":\s*"([^"]+)"')


async def section_latency(args, records) -> list[dict]:
    """Posting produced to tiered posting (the tier decision) and to fee event, at each of the
    fixed rates of ``--latency-rate`` (comma-separated: one the pipeline sustains, one it does
    not, shows where queueing starts)."""
    return [await _latency_at(args, float(rate)) for rate in str(args.latency_rate).split(",")]


async def _latency_at(args, rate: float, extra_env: dict[str, str] | None = None) -> dict:
    from aiokafka import AIOKafkaConsumer

    dep = Deployment(args.kafka, await new_database(args.database_url), args.partitions,
                     extra_env=extra_env or {})
    for topic in ("bank.postings", "strata.tiering.changes", "strata.fees"):
        await kafka_ceiling.create_topic(args.kafka, dep.prefix + topic, args.partitions)
    await dep.start(["tiering", "pricing"])
    count = int(rate * args.latency_seconds)
    feed_records = list(feed.PostingFeed(count, max(1000, count // 3), seed=args.seed + 1))
    sent: dict[str, float] = {}
    received: dict[str, dict[str, float]] = {"strata.tiering.changes": {}, "strata.fees": {}}

    async def watch(topic: str) -> None:
        consumer = AIOKafkaConsumer(dep.prefix + topic, bootstrap_servers=args.kafka,
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        try:
            while len(received[topic]) < count:
                batch = await consumer.getmany(timeout_ms=500)
                for recs in batch.values():
                    for r in recs:  # the first posting_id of the value (a regex: json.loads of every
                        found = POSTING_ID.search(r.value)  # record took a core from the services)
                        if found:
                            received[topic].setdefault(found.group(1).decode(), r.timestamp / 1000)
        finally:
            await consumer.stop()

    watchers = [asyncio.create_task(watch(t)) for t in received]

    ids = [json.loads(value)["posting_id"] for _key, value, _headers in feed_records]

    def stamped():
        for pid, record in zip(ids, feed_records):
            sent[pid] = time.time()
            yield record

    try:
        produced = await kafka_ceiling.produce(args.kafka, dep.prefix + "bank.postings", stamped(),
                                               rate=rate)
        await asyncio.wait_for(asyncio.gather(*watchers), timeout=600)
    finally:
        for w in watchers:
            w.cancel()
        dep.stop()
    from shared.settings import Settings

    bound = (extra_env or {}).get("STRATA_RUNTIME__MAX_LATENESS_S", Settings().runtime.max_lateness_s)
    out = {"offered_rate": rate, "achieved_rate": produced["events_per_s"], "postings": count,
           "max_lateness_s": float(bound)}
    for topic, name in (("strata.tiering.changes", "posting_to_tier"), ("strata.fees", "posting_to_fee")):
        ms = sorted((received[topic][p] - sent[p]) * 1000 for p in received[topic] if p in sent)
        out[name] = {"p50_ms": round(ms[len(ms) // 2], 1), "p99_ms": round(ms[int(len(ms) * 0.99)], 1),
                     "max_ms": round(ms[-1], 1), "n": len(ms)}
    out["peak_rss_mb"] = {k: round(v / 2**20, 1) for k, v in dep.peak_rss.items()}
    return out


async def section_services(args, records) -> dict:
    """Each service alone, in turn, on one deployment: tiering drains the preloaded postings,
    then pricing drains what tiering emitted, then alerts, assignment and profile drain every
    topic they read (their inputs are the earlier services' real outputs)."""
    from bench.drain import wait_drained as drained
    from strata.processes import ServiceProcess

    dep = Deployment(args.kafka, await new_database(args.database_url), args.partitions)
    await kafka_ceiling.create_topic(args.kafka, dep.prefix + "bank.postings", args.partitions)
    await kafka_ceiling.produce(args.kafka, dep.prefix + "bank.postings", records)
    out = {}
    from strata.registry import available

    for name in [n for n in ("tiering", "pricing", "alerts", "assignment", "profile") if n in available()]:
        groups = _groups([name])
        backlog = await _pending(dep, groups)
        proc = ServiceProcess(name, dep.env()).start()
        dep.processes.append(proc)
        try:
            await proc.wait_ready(120)
            result = await drained(dep, groups, backlog)
        finally:
            dep.stop()
        result["peak_rss_mb"] = round(dep.peak_rss.get(name, 0) / 2**20, 1)
        out[name] = result
    return out


async def _pending(dep: Deployment, groups: dict[str, list[str]]) -> int:
    from shared.bus.kafka import KafkaBus

    bus = KafkaBus(dep.bootstrap, topic_prefix=dep.prefix)
    await bus.start()
    try:
        await bus.ensure_topics(sorted({t for ts in groups.values() for t in ts}), dep.partitions)
        return sum([await bus.pending(dep.prefix + "strata." + g, ts) for g, ts in groups.items()])
    finally:
        await bus.stop()


async def section_lateness(args, records) -> list[dict]:
    """What waiting for quiet topics costs (``runtime.max_lateness_s`` at each of
    ``--lateness``): tiering draining the preloaded postings (postings/s, and how many of the
    feed's events arrived late, from tiering's strata_events_late_total), and posting-to-tier
    latency at ``--lateness-rate`` postings/s."""
    out = []
    for bound in str(args.lateness).split(","):
        env = {"STRATA_RUNTIME__MAX_LATENESS_S": bound}
        dep = Deployment(args.kafka, await new_database(args.database_url), args.partitions, extra_env=env)
        await kafka_ceiling.create_topic(args.kafka, dep.prefix + "bank.postings", args.partitions)
        await kafka_ceiling.produce(args.kafka, dep.prefix + "bank.postings", records)
        try:
            await dep.start(["tiering"])
            drained = await wait_drained(dep, _groups(["tiering"]), len(records))
            late = await _scrape(dep.processes[0].port, "strata_events_late_total")
        finally:
            dep.stop()
        latency = await _latency_at(args, float(args.lateness_rate), env)
        out.append({"max_lateness_s": float(bound), "tiering_postings_per_s": drained["events_per_s"],
                    "late_events": int(late), "postings": len(records),
                    "posting_to_tier": latency["posting_to_tier"], "posting_to_fee": latency["posting_to_fee"],
                    "latency_offered_rate": latency["offered_rate"]})
    return out


async def _scrape(port: int, metric: str) -> float:
    """The sum of a counter's samples on a service's /metrics."""
    import httpx

    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics", timeout=10)).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(metric + "{") or line.startswith(metric + " "))


async def section_ab(args, records) -> dict:
    """Another commit (``--ab-base``) and this checkout alternately: see bench/ab.py."""
    from bench import ab

    return await ab.run(args, records, new_database)


async def section_close(args, records) -> dict:
    from bench import close

    return await close.run(await new_database(args.database_url), args.close_customers)


async def section_simulate(args, records) -> dict:
    """The tier-policy simulation job over ``--simulate-customers`` customers' month of daily
    AUM history (seeded with COPY): the tier part alone, then with ``--simulate-postings``
    priced postings for the fee part."""
    from bench import simulate

    return await simulate.run(await new_database(args.database_url), args.simulate_customers,
                              args.simulate_postings)


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
    sections = args.only.split(",") if args.only else ["ceiling", "services", "pipeline", "latency", "lateness", "ab", "close", "reads",
                                                                "workbench", "simulate"]
    try:
        for name in sections:
            print(f"== {name}", file=sys.stderr)
            fn = globals()[f"section_{name}"]
            results[name] = await fn(args, records)
            print(json.dumps(results[name]), file=sys.stderr)
    finally:
        if not args.keep_databases:
            await drop_databases(args.database_url)
    if "ceiling" in results:
        ceiling = results["ceiling"]["aiokafka_consume"]["events_per_s"]
        measured = {name: results[name] for name in ("tiering", "pipeline") if name in results}
        measured.update({f"{name}_alone": r for name, r in results.get("services", {}).items()})
        results["ratios"] = {f"{name}_to_aiokafka_consume": round(r["events_per_s"] / ceiling, 4)
                             for name, r in measured.items()}
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
    parser.add_argument("--latency-rate", default="500,2000", help="postings/s, comma-separated")
    parser.add_argument("--latency-seconds", type=float, default=30)
    parser.add_argument("--read-customers", type=int, default=1_000_000)
    parser.add_argument("--http-rate", type=float, default=200)
    parser.add_argument("--http-seconds", type=float, default=20)
    parser.add_argument("--workbench-customers", type=int, default=1_000_000)
    parser.add_argument("--workbench-rate", type=float, default=5,
                        help="workbench pages a second (a branch of 50 RMs each opening a page every 10 s)")
    parser.add_argument("--simulate-customers", type=int, default=1_000_000)
    parser.add_argument("--simulate-postings", type=int, default=1_000_000,
                        help="priced postings with a fee for the simulation's fee part (0: tier part only)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lateness", default="0,1,5", help="runtime.max_lateness_s values, comma-separated")
    parser.add_argument("--lateness-rate", type=float, default=500, help="postings/s of the lateness latency runs")
    parser.add_argument("--ab-base", default="b0ec27b", help="the commit the ab section compares with")
    parser.add_argument("--ab-rounds", type=int, default=2)
    parser.add_argument("--keep-databases", action="store_true",
                        help="keep the PostgreSQL databases the run made (dropped at its end otherwise)")
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
