"""An open-loop HTTP load generator, run as its own process: requests are sent on a fixed
schedule whatever the answers' speed, and latency counts from the scheduled time, so a slow
server cannot hide its queueing (no coordinated omission).

    python -m bench.loadgen --base http://127.0.0.1:8001 --token T --rate 200 --seconds 20 \\
        --path '/v1/customers/{id}' --ids ids.txt

It speaks HTTP/1.1 over a few keep-alive connections with plain asyncio streams: a request is
written at its scheduled time on the next connection in turn (pipelined behind any request still
unanswered there), and each connection's reader matches answers to requests in order. A general
HTTP client costs a millisecond or more of this process's CPU per request, which on a small
machine is taken from the server being measured and shows up as the server's latency.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import sys
import time
from urllib.parse import urlsplit


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class Connection:
    """One keep-alive connection: requests written in order, answers read in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.scheduled: collections.deque[float] = collections.deque()

    def send(self, request: bytes, scheduled: float) -> None:
        self.scheduled.append(scheduled)
        self.writer.write(request)

    async def read_answers(self, expected: int, latencies: list[float], statuses: dict[int, int]) -> None:
        for _ in range(expected):
            status, _body = await read_response(self.reader)
            latencies.append(time.perf_counter() - self.scheduled.popleft())
            statuses[status] = statuses.get(status, 0) + 1


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a Content-Length or chunked body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return status, bytes(body)
            body += chunk[:-2]
    raise ValueError(f"response without a length: {lines[0]}")


async def run(args) -> dict:
    ids = [line.strip() for line in open(args.ids) if line.strip()] if args.ids else [""]
    rng = random.Random(args.seed)
    url = urlsplit(args.base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    connections = [Connection(*await asyncio.open_connection(host, port)) for _ in range(args.connections)]
    total = int(args.rate * args.seconds)
    plan = [args.path.replace("{id}", rng.choice(ids)) for _ in range(total)]
    common = f"Host: {host}:{port}\r\nAuthorization: Bearer {args.token}\r\n" + \
        "".join(f"{h}\r\n" for h in args.header)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counts = [len(range(i, total, len(connections))) for i in range(len(connections))]
    readers = [asyncio.create_task(c.read_answers(n, latencies, statuses)) for c, n in zip(connections, counts)]
    start = time.perf_counter() + 0.2
    for n, path in enumerate(plan):
        scheduled = start + n / args.rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        connections[n % len(connections)].send(f"GET {path} HTTP/1.1\r\n{common}\r\n".encode(), scheduled)
    try:
        await asyncio.wait_for(asyncio.gather(*readers), timeout=args.seconds + 120)
    finally:
        for c in connections:
            c.writer.close()
    ms = [v * 1000 for v in latencies]
    return {"path": args.path, "rate": args.rate, "seconds": args.seconds, "requests": len(ms),
            "statuses": statuses, "p50_ms": round(percentile(ms, 0.50), 2),
            "p95_ms": round(percentile(ms, 0.95), 2), "p99_ms": round(percentile(ms, 0.99), 2), "max_ms": round(max(ms) if ms else 0, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--path", required=True, help="may contain {id}, replaced by a random id")
    parser.add_argument("--ids", default="", help="file of ids, one per line")
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    json.dump(asyncio.run(run(args)), sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
