"""What every workbench page shares: the templates, the signed-in user, forms checked against
CSRF, and API problems shown in place."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlencode

from fastapi import Depends, Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from shared.settings import Settings
from strata.workbench import i18n
from strata.workbench.api import Api, ApiError, Caller
from strata.workbench.session import CSRF_FIELD, User, csrf_token, csrf_valid, keep_csrf, language_of, signed_in

TEMPLATES = Path(__file__).resolve().parent / "templates"
BASE = "/app"


@dataclass
class Workbench:
    """The workbench's wiring, on ``app.state.workbench``."""

    settings: Settings
    api: Api
    mint: Callable[..., str] | None = None
    """Mints a token (``strata run`` only): the development sign-in."""

    def __post_init__(self) -> None:
        self.templates = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(),
                                     extensions=["jinja2.ext.i18n"], enable_async=False,
                                     trim_blocks=True, lstrip_blocks=True)
        self.templates.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=False)
        self.templates.filters.update(money=money, day=day, moment=moment, tojson_attr=tojson_attr,
                                      problem=i18n.problem_text)
        self.templates.globals.update(BASE=BASE, tier_name=self.tier_name, signal_name=signal_name,
                                      query=query)
        self.tiers = [t.id for t in self.settings.tiers]

    def tier_name(self, tier_id: str | None) -> str:
        return i18n.gettext(f"tier:{tier_id}").removeprefix("tier:") if tier_id else ""


class SignInRequired(Exception):
    pass


def workbench_of(request: Request) -> Workbench:
    return request.app.state.workbench


def language(request: Request) -> str:
    return language_of(request, workbench_of(request).settings.workbench.language)


async def current_user(request: Request) -> User:
    user = signed_in(request)
    if user is None:
        raise SignInRequired()
    return user


def caller_for(request: Request, user: User) -> Caller:
    return workbench_of(request).api.caller(user.token, language(request))


async def form_of(request: Request) -> dict[str, list[str]]:
    """The posted form (urlencoded), refused (403) unless it carries the CSRF token."""
    body = (await request.body()).decode("utf-8", errors="replace")
    form = parse_qs(body, keep_blank_values=True)
    if not csrf_valid(request, (form.get(CSRF_FIELD) or [None])[0]):
        raise CsrfRefused()
    return form


class CsrfRefused(Exception):
    pass


Form = Depends(form_of)
SignedIn = Depends(current_user)


def one(form: dict[str, list[str]], name: str, default: str = "") -> str:
    return (form.get(name) or [default])[0].strip()


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    wb = workbench_of(request)
    user = signed_in(request)
    context = {"request": request, "user": user, "lang": language(request), "csrf": csrf_token(request),
               "path": request.url.path, "settings": wb.settings, "tiers": wb.tiers,
               "dev_signin": wb.mint is not None, **context}
    html = wb.templates.get_template(template).render(context)
    response = HTMLResponse(html, status_code=status)
    keep_csrf(request, response, wb.settings.workbench.secure_cookies)
    return response


def redirect(request: Request, url: str) -> Response:
    """A redirect that htmx follows as a full page load."""
    if request.headers.get("HX-Request"):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def problem(exc: ApiError) -> dict[str, Any]:
    """An API problem for a template: the message and the per-field errors, translated."""
    fields: dict[str, str] = {}
    for error in exc.errors:
        where = str(error.get("field") or error.get("path") or "")
        name = where.split(".")[-1] if where else ""
        message = i18n.problem_text(str(error.get("message") or error.get("reason") or ""))
        fields[name] = f"{fields[name]}; {message}" if name in fields else message
    return {"status": exc.status, "title": exc.title, "detail": i18n.problem_text(exc.detail or exc.title),
            "fields": fields, "extra": exc.extra}


# --- filters ---------------------------------------------------------------------------------


def money(value: Any) -> str:
    """``"1234567.80"`` -> ``1,234,567.80`` (money stays a string; never a float)."""
    if value is None or value == "":
        return ""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    return f"{amount:,.2f}"


def day(value: Any) -> str:
    if not value:
        return ""
    return str(value)[:10]


def moment(value: Any) -> str:
    """An RFC 3339 time as ``2026-11-28 10:15`` (the API already speaks the bank's zone)."""
    if not value:
        return ""
    try:
        return datetime.fromisoformat(str(value)).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return str(value)


def tojson_attr(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def query(**params: Any) -> str:
    return urlencode([(k, v) for k, v in params.items() if v not in (None, "", False)], doseq=True)


def signal_name(signal_type: str) -> str:
    return i18n.gettext(f"signal:{signal_type}").removeprefix("signal:")


def parse_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None
