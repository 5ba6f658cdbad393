"""Where a simulated bank stands, saved beside the database so ``strata run`` continues where it
stopped: the seed and size of the bank, the business day in progress, how many of that day's
events were already published, and the books as they were when that day began (a day is
produced again from them, and its first ``published`` events skipped)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

FILE_NAME = "simulator.json"
VERSION = 1


@dataclass
class Position:
    seed: int
    customers: int
    start: date
    live_from: date
    """Days before it are history, replayed at full speed; from it on, business time runs at
    the chosen speed."""
    phase: str = "master"
    """``master`` while master data and opening balances are being published, then ``stream``."""
    rms_registered: bool = False
    """The bank's RMs were registered (``PUT /v1/rms``): once per data directory, so a restart
    never undoes what an admin changed in the registry since."""
    day: date | None = None
    published: int = 0
    books: dict[str, Any] | None = None
    closed_through: str | None = None
    """The last month whose month-end close was asked for."""
    notes: list[str] = field(default_factory=list)

    def save(self, path: Path) -> None:
        """Write atomically: a crash leaves the previous position, never half a file."""
        body = asdict(self)
        body.update(version=VERSION, start=self.start.isoformat(), live_from=self.live_from.isoformat(),
                    day=self.day.isoformat() if self.day else None)
        body.pop("notes")
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body, separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Position | None:
        if not path.exists():
            return None
        body = json.loads(path.read_text(encoding="utf-8"))
        if body.pop("version", None) != VERSION:
            raise ValueError(f"{path} was written by another version of the simulator")
        body["start"] = date.fromisoformat(body["start"])
        body["live_from"] = date.fromisoformat(body["live_from"])
        body["day"] = date.fromisoformat(body["day"]) if body.get("day") else None
        # written before the field existed: a bank past its master data had its RMs registered
        body.setdefault("rms_registered", body.get("phase") != "master")
        return cls(**body)


def data_dir_of(database_url: str, fallback: str | os.PathLike) -> Path:
    """The directory of the SQLite database, where the single-process mode keeps its data; the
    given fallback for any other database."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).expanduser().resolve().parent
    return Path(fallback).expanduser().resolve()
