"""Side by side: another commit of Strata (the base) and this checkout, run alternately on the
same feed, broker and PostgreSQL, so the machine's noise falls on both.

For each round and each code: the whole pipeline (five processes) and tiering alone drain the
same preloaded postings; measured are postings per second, records the services produced per
posting (on every topic but the inbound ones), CPU seconds per 1,000 postings of each service
process, of the Kafka broker and of PostgreSQL (every ``postgres`` process), and the peak RSS.

The base runs from its own checkout (a git worktree with its own venv under
``.run/bench-code/<commit>``, made once); the feed, the driver and the measuring are this
checkout's, the same for both.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench import kafka_ceiling
from bench.drain import Deployment, wait_drained
from strata.processes import REPO, process_cpu_seconds, processes_named

INBOUND = ("bank.customers", "bank.accounts", "bank.postings", "bank.balances")


@dataclass(frozen=True)
class Code:
    label: str
    path: Path
    python: str


def this_checkout() -> Code:
    return Code("this checkout", REPO, sys.executable)


def checkout(commit: str) -> Code:
    """The commit's code in a worktree with its own venv (made the first time)."""
    root = Path(os.environ.get("STRATA_RUN_DIR", REPO / ".run")) / "bench-code" / commit
    if not (root / "pyproject.toml").exists():
        root.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(root), commit],
                       check=True, capture_output=True)
    python = root / ".venv" / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(root / ".venv")], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-e", str(root)],
                       check=True)
    return Code(commit, root, str(python))


def groups_of(code: Code, services: list[str]) -> dict[str, list[str]]:
    """The topics each service's consumer group reads, as that code has them."""
    script = ("import json,sys\nfrom shared.access import ACCESS_TOPICS\nfrom strata.registry import load\n"
              "out={}\nfor n in sys.argv[1:]:\n s=load(n)\n"
              " out[n]=list(dict.fromkeys(list(s.subscriptions)+(list(ACCESS_TOPICS) if s.keeps_access else [])))\n"
              "print(json.dumps(out))")
    done = subprocess.run([code.python, "-c", script, *services], cwd=code.path, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout)


def kafka_pid() -> int | None:
    path = Path(os.environ.get("STRATA_RUN_DIR", REPO / ".run")) / "kafka" / "kafka.pid"
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _postgres_cpu() -> dict[int, float]:
    return {pid: process_cpu_seconds(pid) for pid in processes_named("postgres")}


async def _produced(dep: Deployment) -> int:
    """Records on every topic of the deployment the services wrote (not the inbound ones)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=dep.bootstrap, client_id="bench-count")
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        topics = [t for t in await consumer.topics() if t.startswith(dep.prefix)
                  and t[len(dep.prefix):] not in INBOUND]
        parts = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or ())]
        ends = await consumer.end_offsets(parts) if parts else {}
        return sum(ends.values())
    finally:
        await consumer.stop()


async def measure(args, code: Code, services: list[str], records, database_url: str) -> dict:
    dep = Deployment(args.kafka, database_url, args.partitions, code=code.path, python=code.python)
    await kafka_ceiling.create_topic(args.kafka, dep.prefix + "bank.postings", args.partitions)
    await kafka_ceiling.produce(args.kafka, dep.prefix + "bank.postings", records)
    groups = groups_of(code, services)
    broker = kafka_pid()
    try:
        await dep.start(services)
        cpu0 = {p.service: p.cpu_seconds() for p in dep.processes}
        kafka0 = process_cpu_seconds(broker) if broker else 0.0
        pg0 = _postgres_cpu()
        drained = await wait_drained(dep, groups, len(records))
        cpu1 = {p.service: p.cpu_seconds() for p in dep.processes}
        kafka1 = process_cpu_seconds(broker) if broker else 0.0
        pg1 = _postgres_cpu()
        produced = await _produced(dep)
    finally:
        dep.stop()
    per_k = 1000 / len(records)
    cpu = {name: round((cpu1[name] - cpu0[name]) * per_k, 3) for name in cpu1}
    cpu["kafka"] = round((kafka1 - kafka0) * per_k, 3)
    cpu["postgresql"] = round(sum(v - pg0.get(pid, 0.0) for pid, v in pg1.items()) * per_k, 3)
    return {
        "code": code.label, "services": services, "postings": len(records),
        "postings_per_s": drained["events_per_s"], "seconds": drained["seconds"],
        "records_produced": produced, "records_per_posting": round(produced / len(records), 2),
        "cpu_s_per_1000_postings": cpu,
        "cpu_s_per_1000_postings_total": round(sum(cpu.values()), 3),
        "peak_rss_mb": {k: round(v / 2**20, 1) for k, v in dep.peak_rss.items()},
    }


async def run(args, records, new_database) -> dict:
    """``args.ab_rounds`` rounds, each the base then this checkout: the pipeline, then tiering."""
    codes = [checkout(args.ab_base), this_checkout()]
    from strata.registry import available

    pipeline = available()
    runs = []
    for n in range(args.ab_rounds):
        for code in codes:
            for services in (pipeline, ["tiering"]):
                print(f"  round {n + 1}: {code.label}, {'+'.join(services)}", file=sys.stderr)
                result = await measure(args, code, services, records, await new_database(args.database_url))
                result["round"] = n + 1
                print("  " + json.dumps(result), file=sys.stderr)
                runs.append(result)
    return {"base": args.ab_base, "runs": runs, "ratios": _ratios(runs, codes)}


def _ratios(runs: list[dict], codes: list[Code]) -> dict:
    """This checkout against the base, round by round (the two ran one after the other)."""
    out = {}
    for kind, services in (("pipeline", None), ("tiering", ["tiering"])):
        pairs = []
        for n in sorted({r["round"] for r in runs}):
            pick = {r["code"]: r for r in runs if r["round"] == n and (r["services"] == services if services
                                                                        else len(r["services"]) > 1)}
            base, new = pick.get(codes[0].label), pick.get(codes[1].label)
            if base and new:
                pairs.append({
                    "round": n,
                    "postings_per_s": round(new["postings_per_s"] / base["postings_per_s"], 2),
                    "records_per_posting": (base["records_per_posting"], new["records_per_posting"]),
                    "cpu_total": round(new["cpu_s_per_1000_postings_total"]
                                       / max(base["cpu_s_per_1000_postings_total"], 1e-9), 3),
                })
                if services:
                    keys = ("tiering", "postgresql")
                    cpu_base = sum(base["cpu_s_per_1000_postings"].get(k, 0) for k in keys)
                    cpu_new = sum(new["cpu_s_per_1000_postings"].get(k, 0) for k in keys)
                    pairs[-1]["tiering_plus_postgresql_cpu"] = round(cpu_new / max(cpu_base, 1e-9), 3)
        out[kind] = pairs
    return out
