"""What a bank's scheduler does with Strata's admin API while the simulated bank runs: register
the RMs, ask each business morning for the date-based signals, close each month.

Every call is idempotent on Strata's side, so calling again after a restart is harmless. A
service that is not deployed (its route missing) is skipped, not an error. Nothing is asked on
the wrong day: the deployment's business clock (``GET /v1/clock``) is read first, and a scan of
a date after its today, or the close of a month that has not ended by it, is not sent (under
``strata run`` that clock is the simulated bank's own, so every day is the right one; a feed
published ahead of a deployment's wall clock leaves those jobs to the days they fall on).
"""

from __future__ import annotations

import logging
import calendar
from datetime import date
from typing import Iterable

import httpx

from shared.auth import issue_token
from shared.settings import Settings
from strata.simulator.bank import Rm

log = logging.getLogger(__name__)

RMS = "/v1/rms/{rm_id}"
DAILY_SCAN = "/v1/admin/daily-scan"
MONTH_END_CLOSE = "/v1/admin/month-end-close"
CLOCK = "/v1/clock"


def admin_headers(settings: Settings) -> dict[str, str]:
    auth = settings.auth
    token = issue_token(auth.secret.get_secret_value(), "admin", ttl_minutes=auth.token_ttl_minutes,
                        issuer=auth.issuer, algorithm=auth.algorithm, subject="simulator")
    return {"Authorization": f"Bearer {token}"}


def routes_of(app) -> set[tuple[str, str]]:
    """(method, path) of every route an in-process app serves, from its OpenAPI document (the
    public view of the routes, whatever the framework nests them in)."""
    found = set()
    for path, operations in app.openapi().get("paths", {}).items():
        for method in operations:
            found.add((method.upper(), path))
    return found


class BankScheduler:
    def __init__(self, client: httpx.AsyncClient, settings: Settings,
                 routes: set[tuple[str, str]] | None = None) -> None:
        """``routes``: what the API serves, when known (in process); otherwise a 404 tells."""
        self.client = client
        self.settings = settings
        self.routes = routes
        self.missing: set[str] = set()
        self.last: dict[str, str] = {}
        """The latest outcome of each kind of call, for the summary."""

    def serves(self, method: str, path: str) -> bool:
        if path in self.missing:
            return False
        return self.routes is None or (method, path) in self.routes

    async def _call(self, method: str, route: str, url: str, body: dict) -> httpx.Response | None:
        if not self.serves(method, route):
            return None
        response = await self.client.request(method, url, json=body, headers=admin_headers(self.settings))
        if response.status_code in (404, 405) and self.routes is None:
            self.missing.add(route)  # that service is not deployed
            return None
        return response

    async def register_rms(self, rms: Iterable[Rm]) -> int:
        """PUT every RM; returns how many were accepted (0 when assignment is not deployed)."""
        accepted = 0
        for rm in rms:
            response = await self._call("PUT", RMS, RMS.format(rm_id=rm.rm_id), rm.as_json())
            if response is None:
                break
            if response.is_success:
                accepted += 1
            else:
                log.warning("RM not registered", extra={"rm_id": rm.rm_id, "status": response.status_code,
                                                         "body": response.text[:200]})
        if accepted:
            self.last["rms"] = f"{accepted} RMs registered"
        return accepted

    async def today(self) -> date | None:
        """The deployment's business date (``GET /v1/clock``); None if it does not say."""
        try:
            response = await self.client.get(CLOCK, headers=admin_headers(self.settings))
            return date.fromisoformat(response.json()["today"]) if response.is_success else None
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None

    async def daily_scan(self, day: date) -> bool:
        if not self.serves("POST", DAILY_SCAN):
            return False
        today = await self.today()
        if today is not None and day > today:
            self.last["daily_scan"] = f"{day} not scanned: the deployment's today is {today}"
            return False
        response = await self._call("POST", DAILY_SCAN, DAILY_SCAN, {"date": day.isoformat()})
        if response is None:
            return False
        self.last["daily_scan"] = f"{day} {_outcome(response)}"
        return response.is_success

    async def close_month(self, month: str) -> dict | None:
        """Close ``month`` once it has ended on the deployment's clock; the summary, or None
        when it was not closed (not due yet, refused, or tiering not deployed)."""
        if not self.serves("POST", MONTH_END_CLOSE):
            return None
        year, number = (int(p) for p in month.split("-"))
        last = date(year, number, calendar.monthrange(year, number)[1])
        today = await self.today()
        if today is not None and today <= last:
            self.last["month_end"] = f"{month} not closed: it ends on {last}, the deployment's today is {today}"
            return None
        response = await self._call("POST", MONTH_END_CLOSE, MONTH_END_CLOSE, {"month": month})
        if response is None:
            return None
        if response.is_success:
            summary = response.json()
            self.last["month_end"] = (f"{month} closed: {summary.get('customers', '?')} customers, "
                                      f"{summary.get('watch', 0)} to watch, {summary.get('downgrades', 0)} downgraded")
            return summary
        self.last["month_end"] = f"{month} {_outcome(response)}"
        log.warning("month-end close refused", extra={"month": month, "status": response.status_code,
                                                      "body": response.text[:300]})
        return None


def _outcome(response: httpx.Response) -> str:
    if response.is_success:
        return "done"
    try:
        detail = response.json().get("detail") or response.json().get("title")
    except ValueError:
        detail = response.text[:80]
    return f"refused ({response.status_code}: {detail})"
