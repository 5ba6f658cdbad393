"""Separate service processes of the distributed mode, for the fault tests and benchmarks."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServiceProcess:
    """``strata serve <service>`` as its own OS process on 127.0.0.1."""

    service: str
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    code: Path = REPO
    """The checkout whose code runs (another commit's, for a benchmark side by side)."""
    python: str = sys.executable

    def start(self, faults: str | None = None) -> "ServiceProcess":
        env = {**os.environ, **self.env, "STRATA_HTTP__PORT": str(self.port)}
        env.pop("STRATA_FAULTS", None)
        if faults:
            env["STRATA_FAULTS"] = faults
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"strata-{self.service}-{self.port}.log"
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [self.python, "-m", "strata.cli", "serve", self.service, "--port", str(self.port)],
            cwd=self.code, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        return self

    async def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                if self.proc and self.proc.poll() is not None:
                    raise RuntimeError(f"{self.service} exited with {self.proc.returncode}: {self.tail()}")
                try:
                    # generous: a loaded machine starting many processes answers slowly
                    r = await client.get(f"http://127.0.0.1:{self.port}/readyz", timeout=10)
                    if r.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise TimeoutError(f"{self.service} not ready: {self.tail()}")

    async def wait_exit(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.service} still running")
            await asyncio.sleep(0.1)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.kill()

    def cpu_seconds(self) -> float:
        """User and system CPU the process has used so far."""
        return process_cpu_seconds(self.proc.pid) if self.proc and self.proc.poll() is None else 0.0

    def rss_bytes(self) -> tuple[int, int]:
        """Current and peak resident set size of the process (VmRSS, VmHWM)."""
        if not self.proc or self.proc.poll() is not None:
            return 0, 0
        values = {}
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith(("VmRSS:", "VmHWM:")):
                    name, amount, _unit = line.split()
                    values[name[:-1]] = int(amount) * 1024
        except OSError:
            return 0, 0
        return values.get("VmRSS", 0), values.get("VmHWM", 0)

    def tail(self, lines: int = 20) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def processes_named(name: str) -> list[int]:
    """The pids of the processes whose command is ``name`` (e.g. every PostgreSQL backend)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids
