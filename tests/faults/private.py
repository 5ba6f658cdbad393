"""A private Kafka broker or PostgreSQL cluster for the one test that stops it.

Both are the project's own deploy scripts, pointed at another run dir and other ports
(``STRATA_RUN_DIR``, ``STRATA_KAFKA_PORT``, ``STRATA_KAFKA_CONTROLLER_PORT``,
``STRATA_PG_PORT``), so the shared broker and database other test runs use are never touched:
every command these classes run carries the private run dir and ports.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

from strata.processes import REPO, free_port

KAFKA_SH = REPO / "deploy" / "kafka" / "kafka.sh"
POSTGRES_SH = REPO / "deploy" / "postgres" / "postgres.sh"


class _Private:
    script: Path
    kind: str

    def __init__(self) -> None:
        self.run_dir = Path(tempfile.mkdtemp(prefix=f"strata-faults-{self.kind}-"))
        self.run_dir.chmod(0o755)  # PostgreSQL runs as the postgres user and must reach it
        self.env = {**os.environ, "STRATA_RUN_DIR": str(self.run_dir)}

    async def _script(self, command: str, timeout: float = 120.0) -> str:
        proc = await asyncio.create_subprocess_exec(
            "bash", str(self.script), command, env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            raise
        text = out.decode(errors="replace")
        if proc.returncode != 0:
            raise RuntimeError(f"{self.script.name} {command} failed ({proc.returncode}):\n{text}")
        return text

    async def start(self) -> None:
        began = time.monotonic()
        await self._script("start")
        self.started_in = time.monotonic() - began

    async def stop(self) -> None:
        await self._script("stop")

    async def destroy(self) -> None:
        try:
            await self.stop()
        finally:
            shutil.rmtree(self.run_dir, ignore_errors=True)


class PrivateKafka(_Private):
    """A single-node KRaft broker on 127.0.0.1:<free port>."""

    script = KAFKA_SH
    kind = "kafka"

    def __init__(self) -> None:
        super().__init__()
        self.port = free_port()
        self.env.update(STRATA_KAFKA_PORT=str(self.port), STRATA_KAFKA_CONTROLLER_PORT=str(free_port()))

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


class PrivatePostgres(_Private):
    """A PostgreSQL cluster on 127.0.0.1:<free port>, with the ``strata`` role and database."""

    script = POSTGRES_SH
    kind = "pg"

    def __init__(self) -> None:
        super().__init__()
        self.port = free_port()
        self.env["STRATA_PG_PORT"] = str(self.port)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://strata:strata@127.0.0.1:{self.port}/strata"
