"""Everything any logger writes, through the production formatter."""

from __future__ import annotations

import io
import logging
from contextlib import contextmanager
from typing import Iterator

from shared.logs import JsonFormatter


@contextmanager
def every_log_line() -> Iterator[io.StringIO]:
    """All log records of every logger at DEBUG, SQLAlchemy's statements, bound values and result
    rows included, formatted as a Strata process formats them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.DEBUG)
    root, engine = logging.getLogger(), logging.getLogger("sqlalchemy.engine")
    saved = root.level, engine.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    engine.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        engine.setLevel(saved[1])
