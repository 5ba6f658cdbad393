"""One logger set-up for every process: JSON lines on stderr.

The formatter is the last line of defence for what must never reach a log: identity numbers,
phone numbers and secrets. Whatever a caller passes, it

- writes ``[redacted]`` for any extra field named like a secret or a piece of identity
  (``id_number``, ``phone``, ``password``, ``secret``, ``token``, ``authorization``...);
- hides the bound values and result rows that SQLAlchemy and aiosqlite log at INFO and DEBUG
  (the SQL text stays), and the ``[parameters: ...]`` of a database error;
- masks the password of any URL (``postgresql://strata:***@db/strata``);
- masks anything shaped like a mainland identity number or mobile phone number in the message,
  the extra fields and the traceback (``3601**********0023``, ``138****0000``).

So the code logs ids (customer, account, event) and never a request body or a customer record.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone
from typing import Any

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

SENSITIVE_FIELDS = re.compile(r"(id_number|phone|mobile|password|passwd|secret|token|authorization|"
                              r"cookie|credential|api_key)", re.IGNORECASE)
REDACTED = "[redacted]"

_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s'\"]+:)[^@\s'\"]+(?=@)")
_SQL_PARAMETERS = re.compile(r"\[parameters: [^\n]*")
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{4})\d{10}(\d{3}[0-9Xx])(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<![0-9A-Za-z])(\+?86[- ]?)?(1[3-9]\d)\d{4}(\d{4})(?![0-9A-Za-z])")


def redact(text: str) -> str:
    """``text`` with URL passwords, SQL parameters, identity numbers and mobile numbers masked.

    >>> redact("postgresql+asyncpg://strata:s3cret@db:5432/strata")
    'postgresql+asyncpg://strata:***@db:5432/strata'
    """
    text = _URL_PASSWORD.sub(r"\g<head>***", text)
    text = _SQL_PARAMETERS.sub("[parameters: hidden]", text)
    text = _ID_NUMBER.sub(r"\1**********\2", text)
    return _MOBILE.sub(lambda m: f"{m.group(1) or ''}{m.group(2)}****{m.group(3)}", text)


def _safe(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {k: REDACTED if SENSITIVE_FIELDS.search(str(k)) else _safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_safe(v) for v in value]
    return redact(str(value))


VALUE_LOGGERS = ("sqlalchemy.engine", "aiosqlite")
"""Loggers whose arguments carry bound values or result rows: SQLAlchemy ("[%s] %r", "Row %r")
and aiosqlite ("operation %s completed", with the statement's parameters)."""


def _message(record: logging.LogRecord) -> str:
    if record.name.startswith(VALUE_LOGGERS) and record.args:
        # keep the statement and the timing, never the values
        args = record.args if isinstance(record.args, tuple) else (record.args,)
        hidden = tuple(a if isinstance(a, str) else "(values hidden)" for a in args)
        try:
            return str(record.msg) % hidden
        except (TypeError, ValueError):
            return str(record.msg)
    return record.getMessage()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(_message(record)),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD:
                entry[key] = REDACTED if SENSITIVE_FIELDS.search(key) else _safe(value)
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exc"] = redact(record.exc_text)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka", "sqlalchemy.engine", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
