"""Every service's FastAPI app: health, readiness, metrics, CloudEvents ingestion, and the
service's own routes, with problem+json errors and bearer-token auth."""

from __future__ import annotations

import html
import json
import logging
import re
import time
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import date, datetime
from pathlib import Path
from typing import Any, AsyncIterator
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import make_url
from starlette.routing import compile_path
from sqlalchemy.ext.asyncio import AsyncSession

from shared import audit
from shared.auth import Principal, current_principal, require_roles
from shared.clock import BusinessClock
from shared.bus.base import Message
from shared.calendar import bank_time
from shared.contracts.cloudevents import BATCH, MAX_EVENT_BYTES, STRUCTURED, InvalidEvent, decode_structured, encode_binary
from shared.metrics import HTTP_EVENTS_ACCEPTED, HTTP_EVENTS_REFUSED, HTTP_REQUEST_SECONDS, HTTP_REQUESTS
from shared.problems import Problem, install_problem_handlers, problem_response
from shared.runtime.consumer import PartitionCountMismatch
from shared.runtime.process import Runtime

log = logging.getLogger(__name__)

MAX_BATCH = 1000
MAX_BODY_BYTES = 5_000_000
SWAGGER_UI = Path(__file__).resolve().parent / "static" / "swagger-ui"
DOCS_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'")


def masked_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, for a log line or a message."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads: say nothing of it rather than print it
        return "(unreadable URL)"


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def business_clock(request: Request) -> BusinessClock:
    """The process's business clock (``shared.clock``): where every default date comes from."""
    return request.app.state.runtime.clock


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A read session for one request."""
    async with request.app.state.runtime.db.sessions() as session:
        yield session


class ProblemDetail(BaseModel):
    """An RFC 9457 problem: every error Strata answers has this shape."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


PROBLEM_DESCRIPTIONS = {
    400: "Malformed request: a body that is not JSON, a NUL character, a required header missing",
    401: "No valid bearer token",
    403: "The role, or the caller's book, does not allow it",
    404: "Not found",
    409: "Conflicts with the current state",
    413: "Too large",
    422: "Invalid request: the problem names each wrong field",
    503: "The database or the bus does not answer now; retry shortly",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route's own error answers; every error is documented as problem+json
    (see :func:`_document_problems`)."""
    return {status: {"description": PROBLEM_DESCRIPTIONS[status]} for status in statuses}


def _document_problems(app: FastAPI) -> None:
    """Say in the OpenAPI what every route really answers when it refuses: problem+json (not
    FastAPI's default validation shape) for each error, and the errors every route shares: 400
    (a NUL character, a body that does not parse), 401 and 403 where a token is needed, 413 for
    a body too large, 503 during an outage."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = \
            ProblemDetail.model_json_schema(ref_template="#/components/schemas/{model}")
        problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                shared = [400, 503] if path != "/healthz" else [400]
                if operation.get("security"):
                    shared += [401, 403]
                if "requestBody" in operation:
                    shared += [413]
                for status in shared:
                    responses.setdefault(str(status), {"description": PROBLEM_DESCRIPTIONS[status]})
                for status, response in responses.items():
                    if status[0] in "45":
                        response["content"] = problem
                        if status == "422":
                            response["description"] = PROBLEM_DESCRIPTIONS[422]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


_TIME_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")
_ANSWER_ZONE: ContextVar[ZoneInfo | None] = ContextVar("strata_answer_zone", default=None)


def in_bank_zone(content: Any, zone: ZoneInfo) -> Any:
    """``content`` (an answer as JSON values) with every time, at any depth, written in the
    bank's zone: ``2026-11-28T02:15:02Z`` becomes ``2026-11-28T10:15:02+08:00``. Dates and every
    other value stay as they are."""
    if isinstance(content, str):
        if 20 <= len(content) <= 40 and _TIME_TEXT.fullmatch(content):
            return bank_time(datetime.fromisoformat(content), zone)
        return content
    if isinstance(content, dict):
        return {k: in_bank_zone(v, zone) for k, v in content.items()}
    if isinstance(content, list):
        return [in_bank_zone(v, zone) for v in content]
    return content


class BankTimeJSONResponse(JSONResponse):
    """Every JSON answer of Strata: times in the bank's zone (``settings.timezone``), whatever
    zone they were computed or stored in (the database hands them back in UTC)."""

    def render(self, content: Any) -> bytes:
        zone = _ANSWER_ZONE.get()
        return super().render(in_bank_zone(content, zone) if zone is not None else content)


class AnswerInBankZone:
    """Tells :class:`BankTimeJSONResponse` the zone of the app answering this request."""

    def __init__(self, app, zone: ZoneInfo) -> None:
        self.app = app
        self.zone = zone

    async def __call__(self, scope, receive, send) -> None:
        token = _ANSWER_ZONE.set(self.zone)
        try:
            await self.app(scope, receive, send)
        finally:
            _ANSWER_ZONE.reset(token)


UNMATCHED = "unmatched"
"""The route label of a request no route serves (a 404): never its path, which could carry ids."""


class RequestMetrics:
    """Counts every request by route template and status class, and times it to the end of its
    answer (``strata_http_requests_total``, ``strata_http_request_duration_seconds``). Outermost,
    so that requests refused before routing (a body too large) and unhandled errors (500) count
    too. The route is the template (``/v1/customers/{customer_id}``): no customer id reaches a
    label. ``owners`` names the service of each route template (the single-process app serves
    all five); others are counted under ``default``."""

    def __init__(self, app, owners: dict[str, str], default: str) -> None:
        self.app = app
        self.owners = owners
        self.default = default

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def sending(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = _route_template(scope)
            service = self.owners.get(route, self.default)
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            HTTP_REQUESTS.labels(service, method, route, f"{status // 100}xx").inc()
            HTTP_REQUEST_SECONDS.labels(service, method, route).observe(time.perf_counter() - started)


_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def _route_template(scope) -> str:
    route = scope.get("route")
    if isinstance(getattr(route, "path", None), str):
        return route.path
    # not routed: refused on the way in (RefuseNul), or no route has this path
    app = scope["app"]
    templates = getattr(app.state, "route_templates", None)
    if templates is None:
        templates = app.state.route_templates = [(compile_path(t)[0], t) for t in _templates(app.routes, "")]
    path = scope["path"]
    return next((template for regex, template in templates if regex.match(path)), UNMATCHED)


def _templates(routes, prefix: str):
    """The path template of every route, through FastAPI's included routers."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _templates(inner.routes, prefix + getattr(getattr(route, "include_context", None), "prefix", ""))
        elif isinstance(getattr(route, "path", None), str):
            yield prefix + route.path


_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


DISCARD_BYTES = 64_000_000
"""How much more of a body too large is read (and thrown away) before its 413 is sent."""


async def _discard_rest(receive, size: int) -> None:
    """Read the rest of a refused body, keeping none of it, up to ``DISCARD_BYTES``. An answer
    sent while the client is still sending is lost to most clients: the server closes the
    connection with the body unread, the kernel resets it, and the client's write fails before
    it reads the 413. Past the bound, the client is cut off anyway."""
    while size <= DISCARD_BYTES:
        message = await receive()
        if message["type"] != "http.request":
            return
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class RefuseNul:
    """PostgreSQL cannot store or even compare text holding a NUL character: a request carrying
    one (in its path, its query or its JSON body) would reach a query and end as a 500. It is
    refused first, with a 400 problem. The body is read whole for this, so one larger than
    ``MAX_BODY_BYTES`` is refused (413) as it arrives, before it fills the memory: the rest is
    read and thrown away (up to ``DISCARD_BYTES``) so that the client gets to read the 413."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if "\x00" in scope["path"] or b"%00" in scope["query_string"]:
            return await self._refuse(scope, receive, send)
        chunks, size, more = [], 0, True  # every body is JSON (POST /v1/events reads it whatever its type)
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return await self.app(scope, _replay([], message, receive), send)
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > MAX_BODY_BYTES:
                if more:
                    await _discard_rest(receive, size)
                return await self._refuse(scope, receive, send, 413)
        if any(b"\x00" in c for c in chunks) or _ESCAPED_NUL.search(b"".join(chunks)):
            return await self._refuse(scope, receive, send)
        await self.app(scope, _replay(chunks, None, receive), send)

    @staticmethod
    async def _refuse(scope, receive, send, status: int = 400) -> None:
        title, detail = {400: ("NUL character", "Text in a request must not contain NUL characters."),
                         413: ("Payload too large", f"At most {MAX_BODY_BYTES} bytes per request.")}[status]
        response = problem_response(status, title, detail, instance=scope["path"].replace("\x00", "\\0"))
        await response(scope, receive, send)


def _replay(chunks: list[bytes], pending, receive):
    """A ``receive`` that hands the buffered body over again, then the original's messages."""
    queue = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}] if pending is None else [pending]

    async def replayed():
        return queue.pop(0) if queue else await receive()

    return replayed


def create_app(runtime: Runtime, title: str = "Strata", *, manage_runtime: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if manage_runtime:
            settings = runtime.settings
            bus = settings.kafka.bootstrap_servers if settings.bus == "kafka" else "in memory"
            log.info("starting %s: database %s, bus %s", ", ".join(s.name for s in runtime.services),
                     masked_url(settings.database_url), bus)
            try:
                await runtime.start()
            except PartitionCountMismatch as exc:
                log.error("refusing to start: %s", exc)
                raise SystemExit(2) from None
        try:
            yield
        finally:
            if manage_runtime:
                await runtime.stop()

    app = FastAPI(
        title=title,
        version="1.0.0",
        description="Strata: real-time tiered maintenance of a retail bank's individual customers.",
        lifespan=lifespan,
        default_response_class=BankTimeJSONResponse,
        docs_url=None,  # served from the vendored Swagger UI below, never from a CDN
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.settings = runtime.settings
    install_problem_handlers(app)
    app.add_middleware(RefuseNul)
    app.add_middleware(AnswerInBankZone, zone=runtime.settings.zone)
    owners = {route.path: spec.name for spec in runtime.services for router in spec.routers for route in router.routes}
    app.add_middleware(RequestMetrics, owners=owners,
                       default=runtime.services[0].name if len(runtime.services) == 1 else "strata")
    app.include_router(_platform_router())
    install_docs(app)
    app.include_router(_events_router())
    app.include_router(audit.router)  # read-only; each process shows the entries of its database
    for spec in runtime.services:
        for router in spec.routers:
            app.include_router(router)
    _document_problems(app)
    return app


class ClockView(BaseModel):
    today: date = Field(description="the business date in the bank's zone")
    now: datetime = Field(description="the business time now, RFC 3339 with the bank's offset")
    zone: str = Field(description="the bank's time zone (settings.timezone)")
    simulated: bool = Field(description="true when a simulated bank drives business time (strata run)")


def install_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI from the files vendored in ``shared/static/swagger-ui`` (no CDN, no
    inline script), reading the app's own ``/openapi.json``."""
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<title>{html.escape(app.title)}: API</title>'
        '<link rel="icon" href="/docs/assets/favicon-32x32.png">'
        '<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>'
        '<body><div id="swagger-ui"></div>'
        '<script src="/docs/assets/swagger-ui-bundle.js"></script>'
        '<script src="/docs/assets/docs.js"></script></body></html>'
    )

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_POLICY})

    app.mount("/docs/assets", StaticFiles(directory=SWAGGER_UI), name="docs-assets")


def _platform_router() -> APIRouter:
    router = APIRouter(tags=["platform"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Live: the process answers."""
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(request: Request):
        """Ready: the bus and the database answer a real request now."""
        runtime: Runtime = request.app.state.runtime
        checks = await runtime.ready()
        ok = all(checks.values()) and runtime.started
        body = {"status": "ready" if ok else "not ready", "checks": checks, "started": runtime.started}
        return BankTimeJSONResponse(body, status_code=200 if ok else 503)

    @router.get("/v1/clock", response_model=ClockView)
    async def clock(request: Request, principal: Principal = Depends(current_principal)):
        """The business clock this process answers by: today's business date and the time now
        in the bank's zone. Under the simulated bank (``strata run``) it is the simulated
        business time, so "today" is the day whose postings are being published."""
        clock = business_clock(request)
        now = clock.now()
        return ClockView(today=now.date(), now=now, zone=request.app.state.settings.timezone,
                         simulated=clock.simulated)

    @router.get("/asyncapi.json", include_in_schema=False)
    async def asyncapi(request: Request) -> JSONResponse:
        """The AsyncAPI 3 document of the topics this process reads and writes."""
        from shared.contracts.asyncapi import build

        return JSONResponse(build(request.app.state.runtime.services))

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


class EventsAccepted(BaseModel):
    accepted: int
    ids: list[str]


def _events_router() -> APIRouter:
    router = APIRouter(tags=["events"])

    @router.post("/v1/events", status_code=202, response_model=EventsAccepted, responses=problems(400, 413, 422),
                 openapi_extra={"requestBody": {"required": True, "content": {
                     STRUCTURED: {"schema": {"type": "object"}},
                     BATCH: {"schema": {"type": "array", "items": {"type": "object"}}}}}})
    async def post_events(request: Request, principal: Principal = Depends(require_roles("admin"))):
        """CloudEvents over HTTP (structured ``application/cloudevents+json`` or batch
        ``application/cloudevents-batch+json``), validated against the contract and published to
        the bus. A batch with one bad event is refused whole: nothing of it is published."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            HTTP_EVENTS_REFUSED.inc()
            raise Problem(413, "Payload too large", f"At most {MAX_BODY_BYTES} bytes per request.")
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            HTTP_EVENTS_REFUSED.inc()
            raise Problem(400, "Malformed JSON", str(exc)) from exc
        if content_type == BATCH:
            if not isinstance(body, list):
                HTTP_EVENTS_REFUSED.inc()
                raise Problem(422, "Invalid batch", "A batch is a JSON array of CloudEvents.")
            if len(body) > MAX_BATCH:
                HTTP_EVENTS_REFUSED.inc()
                raise Problem(413, "Batch too large", f"At most {MAX_BATCH} events per batch.")
            candidates = body
        else:
            candidates = [body]
        events, errors, oversized = [], [], False
        for index, candidate in enumerate(candidates):
            try:
                # the limit consumers hold a record to: an event they would dead-letter for its
                # size is refused here, before it reaches the bus (where it could also exceed
                # the broker's message size)
                size = len(json.dumps(candidate, ensure_ascii=False, separators=(",", ":")).encode())
                if size > MAX_EVENT_BYTES:
                    oversized = True
                    raise InvalidEvent(f"event of {size} bytes exceeds {MAX_EVENT_BYTES}")
                event = decode_structured(candidate)
                if not event.event_type.inbound:
                    raise InvalidEvent(f"{event.type} is emitted by Strata and cannot be posted")
                events.append(event)
            except InvalidEvent as exc:
                errors.append({"index": index, "reason": str(exc)})
        if errors:
            HTTP_EVENTS_REFUSED.inc()
            detail = "; ".join(f"event {e['index']}: {e['reason']}" for e in errors[:5])
            if oversized:
                raise Problem(413, "Event too large", detail, errors=errors)
            raise Problem(422, "Invalid CloudEvent", detail, errors=errors)
        messages = []
        for event in events:
            key, value, headers = encode_binary(event)
            messages.append(Message(event.topic, key, value, headers))
        runtime: Runtime = request.app.state.runtime
        try:
            await runtime.bus.publish(messages)
        except Exception as exc:
            raise Problem(503, "Bus unavailable", "Events were not accepted; retry with the same ids.") from exc
        for event in events:
            HTTP_EVENTS_ACCEPTED.labels(event.topic).inc()
        return {"accepted": len(events), "ids": [e.id for e in events]}

    return router
