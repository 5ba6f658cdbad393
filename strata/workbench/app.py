"""The workbench's ASGI app, mounted at ``/app`` beside the API (``strata run``) or served on
its own (``strata serve workbench``), with ``/`` leading to it."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import Callable
from urllib.parse import quote

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import RedirectResponse, Response

from shared.settings import Settings
from strata.workbench import i18n
from strata.workbench.api import Api, ApiError
from strata.workbench.web import BASE, CsrfRefused, SignInRequired, Workbench, language, redirect, render

STATIC = Path(__file__).resolve().parent / "static"
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
          "font-src 'self'; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; "
          "base-uri 'self'; form-action 'self'")
HEADERS = [(b"content-security-policy", POLICY.encode()), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"DENY")]


class SecurityHeaders:
    """Every response of the workbench carries its Content-Security-Policy: scripts, styles and
    everything else from this origin only, no inline script."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [h for h in HEADERS if h[0] not in names]
            await send(message)

        await self.app(scope, receive, with_headers)


def create_workbench(settings: Settings, api_client: httpx.AsyncClient,
                     mint: Callable[..., str] | None = None) -> FastAPI:
    """The workbench app (paths relative to ``/app``). ``mint`` enables the development sign-in
    (``strata run`` only)."""
    from strata.workbench.pages import ROUTERS

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.workbench = Workbench(settings, Api(api_client), mint)
    app.add_middleware(SecurityHeaders)

    @app.middleware("http")
    async def speak_the_users_language(request: Request, call_next):
        token = i18n.current_language.set(language(request))
        try:
            return await call_next(request)
        finally:
            i18n.current_language.reset(token)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired):
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return redirect(request, f"{BASE}/signin?next={quote(here, safe='')}")

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, exc: CsrfRefused):
        return render(request, "error.html", status=403, message=i18n.gettext(
            "This form has expired (its security token is missing or stale). Reload the page and try again."))

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError):
        if exc.status == 401:
            return redirect(request, f"{BASE}/signin")
        return render(request, "error.html", status=exc.status if exc.status >= 400 else 502,
                      message=i18n.problem_text(exc.detail or exc.title))

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in ROUTERS:
        app.include_router(router)
    return app


def mount_workbench(parent: FastAPI, workbench: FastAPI) -> None:
    """``/app/...`` to the workbench and ``/`` to its front page; every other path stays the
    parent's (the API's own routes and its 404s)."""

    @parent.get("/", include_in_schema=False)
    async def front_page() -> Response:
        response = RedirectResponse(f"{BASE}/", status_code=307)
        for name, value in HEADERS:
            response.headers[name.decode()] = value.decode()
        return response

    parent.mount(BASE, workbench, name="workbench")


def api_client_for_app(api_app, settings: Settings) -> httpx.AsyncClient:
    """An HTTP client that calls ``api_app`` in-process (no network hop)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=api_app), base_url="http://strata.internal",
                             timeout=settings.workbench.api_timeout_s)


def standalone(settings: Settings) -> FastAPI:
    """``strata serve workbench``: the workbench alone, calling the API at ``workbench.api_url``.
    No bus, no database, no development sign-in."""
    client = httpx.AsyncClient(base_url=settings.workbench.api_url.rstrip("/"),
                               timeout=settings.workbench.api_timeout_s,
                               limits=httpx.Limits(max_connections=100, max_keepalive_connections=50))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        try:
            yield
        finally:
            await client.aclose()

    parent = FastAPI(title="Strata workbench", openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan)

    @parent.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @parent.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        try:
            api_ok = (await client.get("/healthz", timeout=5)).status_code == 200
        except httpx.HTTPError:
            api_ok = False
        return JSONResponse({"status": "ready" if api_ok else "not ready", "checks": {"api": api_ok}},
                            status_code=200 if api_ok else 503)

    mount_workbench(parent, create_workbench(settings, client))
    return parent
