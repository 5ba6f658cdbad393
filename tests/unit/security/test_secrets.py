"""The token key and the database password come from settings or the environment, never from
code, and reach no log line: not at start-up, not when the database refuses the connection, not
when a token is refused. The same with real processes: ``tests/integration/test_access_secrets.py``."""

from __future__ import annotations

import logging
import socket
import tempfile

import pytest

from shared.auth import issue_token
from shared.http import create_app, masked_url
from shared.logs import redact
from shared.runtime.process import Runtime
from shared.settings import Settings
from strata.registry import load_all
from strata.testing import Harness
from tests.conftest import single_process_settings
from tests.unit.security.logcapture import every_log_line

SECRET = "tok-key-Zq81vX-distinctive-4f0c9e2a"
PASSWORD = "db-pw-Kd73-distinctive-b19e"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_token_key_and_database_url_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("STRATA_AUTH__SECRET", SECRET)
    monkeypatch.setenv("STRATA_DATABASE_URL", f"postgresql+asyncpg://strata:{PASSWORD}@db.internal:5432/strata")
    settings = Settings()
    assert settings.auth.secret.get_secret_value() == SECRET
    assert PASSWORD in settings.database_url
    assert SECRET not in repr(settings) and SECRET not in str(settings.auth)


def test_the_formatter_masks_url_passwords_and_drops_secret_fields():
    record = logging.LogRecord("strata.x", logging.ERROR, "", 0, "cannot reach %s", (
        f"postgresql+asyncpg://strata:{PASSWORD}@db:5432/strata",), None)
    record.secret, record.auth = SECRET, {"password": PASSWORD, "url": f"amqp://u:{PASSWORD}@mq/"}
    from shared.logs import JsonFormatter

    line = JsonFormatter().format(record)
    assert PASSWORD not in line and SECRET not in line
    assert "postgresql+asyncpg://strata:***@db:5432/strata" in line
    assert redact(f"kafka://u:{PASSWORD}@k:9092") == "kafka://u:***@k:9092"
    assert masked_url(f"postgresql+asyncpg://strata:{PASSWORD}@db/strata") == "postgresql+asyncpg://strata:***@db/strata"


async def test_a_failing_database_at_start_up_logs_neither_the_password_nor_the_token_key():
    with tempfile.TemporaryDirectory() as tmp:
        url = f"postgresql+asyncpg://strata:{PASSWORD}@127.0.0.1:{closed_port()}/strata"
        settings = single_process_settings(tmp, database_url=url, auth={"secret": SECRET})
        app = create_app(Runtime(settings, load_all()))
        with every_log_line() as logs:
            with pytest.raises(OSError) as failure:
                async with app.router.lifespan_context(app):
                    pass
            # what uvicorn does with a failed start-up, on a logger no other test reconfigures
            logging.getLogger("strata.test.startup").error("Application startup failed",
                                                           exc_info=failure.value)
        text = logs.getvalue()
    assert "starting profile, tiering, alerts, pricing, assignment: database postgresql+asyncpg://strata:***@" in text
    assert "Application startup failed" in text and "Traceback" in text
    assert PASSWORD not in text and SECRET not in text


async def test_refused_and_accepted_tokens_log_and_answer_nothing_of_the_key():
    with tempfile.TemporaryDirectory() as tmp:
        settings = single_process_settings(tmp, auth={"secret": SECRET})
        harness = await Harness(settings, load_all()).start()
        try:
            with every_log_line() as logs:
                answers = [await harness.client.get("/v1/rms", headers=headers) for headers in (
                    harness.token("admin"),
                    {"Authorization": f"Bearer {issue_token('not-' + SECRET, 'admin')}"},
                    {"Authorization": f"Bearer {issue_token(SECRET, 'admin', ttl_minutes=-1)}"},
                    {"Authorization": f"Bearer {SECRET}"},
                )]
        finally:
            await harness.stop()
    assert [a.status_code for a in answers] == [200, 401, 401, 401]
    assert all(SECRET not in a.text for a in answers)
    assert SECRET not in logs.getvalue()
