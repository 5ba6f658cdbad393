"""Secrets in real processes: ``strata serve`` started with a distinctive token key
(``STRATA_AUTH__SECRET``) and database URLs holding a distinctive password, on the real
PostgreSQL and Kafka. Everything the processes write (start-up, requests with good and bad
tokens, a database that refuses the password, a database that is not there, shutdown) is read
back, and neither the key nor the password is in it; the database URL appears masked.

The shared PostgreSQL has one login (``strata``), so the process that starts fully uses its
known password, and the distinctive passwords are those the database refuses or never sees.
"""

from __future__ import annotations

import socket
import uuid

import httpx
import pytest

from shared.auth import issue_token
from strata.processes import ServiceProcess
from tests.integration.conftest import KAFKA, create_database

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("integration_env")]

SECRET = f"tok-key-{uuid.uuid4().hex}"
PASSWORD = f"db-pw-{uuid.uuid4().hex[:20]}"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_password(url: str, password: str, port: int | None = None) -> str:
    head, rest = url.split("://", 1)
    credentials, location = rest.split("@", 1)
    host_port, database = location.split("/", 1)
    if port is not None:
        host_port = f"{host_port.split(':')[0]}:{port}"
    return f"{head}://{credentials.split(':')[0]}:{password}@{host_port}/{database}"


def environment(database_url: str) -> dict[str, str]:
    prefix = f"s{uuid.uuid4().hex[:8]}."
    return {"STRATA_AUTH__SECRET": SECRET, "STRATA_DATABASE_URL": database_url, "STRATA_BUS": "kafka",
            "STRATA_KAFKA__BOOTSTRAP_SERVERS": KAFKA, "STRATA_KAFKA__TOPIC_PREFIX": prefix,
            "STRATA_KAFKA__GROUP_PREFIX": f"{prefix}strata", "STRATA_KAFKA__PARTITIONS": "1",
            "STRATA_LOG_LEVEL": "DEBUG"}


async def output_of_a_failed_start(database_url: str) -> str:
    process = ServiceProcess("tiering", environment(database_url)).start()
    try:
        code = await process.wait_exit(60)
    finally:
        process.kill()
    assert code != 0, "a process whose database refuses it does not serve"
    return process.log_path.read_text(errors="replace")


async def test_a_service_process_logs_neither_its_token_key_nor_its_database_password():
    database_url = await create_database()
    process = ServiceProcess("tiering", environment(database_url)).start()
    try:
        await process.wait_ready(60)
        base = f"http://127.0.0.1:{process.port}"
        async with httpx.AsyncClient(base_url=base) as client:
            good = await client.get("/v1/customers/NOBODY/tier",
                                    headers={"Authorization": f"Bearer {issue_token(SECRET, 'admin')}"})
            forged = await client.get("/v1/customers/NOBODY/tier",
                                      headers={"Authorization": f"Bearer {issue_token('x' + SECRET, 'admin')}"})
            echoed = await client.get("/v1/customers/NOBODY/tier", headers={"Authorization": f"Bearer {SECRET}"})
        assert (good.status_code, forged.status_code, echoed.status_code) == (404, 401, 401)
        assert all(SECRET not in r.text for r in (good, forged, echoed))
    finally:
        process.terminate()
    serving = process.log_path.read_text(errors="replace")
    refused = await output_of_a_failed_start(with_password(database_url, PASSWORD))
    absent = await output_of_a_failed_start(with_password(database_url, PASSWORD, port=closed_port()))

    assert "Uvicorn running" in serving and "starting tiering: database postgresql+asyncpg://" in serving
    assert "password authentication failed" in refused, refused[-2000:]
    assert "Application startup failed" in absent, absent[-2000:]
    for name, output in (("serving", serving), ("wrong password", refused), ("no database", absent)):
        assert SECRET not in output, f"the token key is in the output of the {name} process"
        assert PASSWORD not in output, f"the database password is in the output of the {name} process"
        assert ":strata@" not in output, f"a database URL with its password is in the output of the {name} process"
        assert ":***@" in output, f"the {name} process says which database it uses, masked"
