"""Every service's FastAPI app: health, readiness, metrics, CloudEvents ingestion, and the
service's own routes, with problem+json errors and bearer-token auth."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.ext.asyncio import AsyncSession

from shared import audit
from shared.auth import Principal, require_roles
from shared.bus.base import Message
from shared.contracts.cloudevents import BATCH, MAX_EVENT_BYTES, InvalidEvent, decode_structured, encode_binary
from shared.metrics import HTTP_EVENTS_ACCEPTED, HTTP_EVENTS_REFUSED
from shared.problems import Problem, install_problem_handlers
from shared.runtime.process import Runtime

MAX_BATCH = 1000
MAX_BODY_BYTES = 5_000_000


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A read session for one request."""
    async with request.app.state.runtime.db.sessions() as session:
        yield session


def create_app(runtime: Runtime, title: str = "Strata", *, manage_runtime: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if manage_runtime:
            await runtime.start()
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
    )
    app.state.runtime = runtime
    app.state.settings = runtime.settings
    install_problem_handlers(app)
    app.include_router(_platform_router())
    app.include_router(_events_router())
    app.include_router(audit.router)  # read-only; each process shows the entries of its database
    for spec in runtime.services:
        for router in spec.routers:
            app.include_router(router)
    return app


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
        return JSONResponse(body, status_code=200 if ok else 503)

    @router.get("/asyncapi.json", include_in_schema=False)
    async def asyncapi(request: Request) -> JSONResponse:
        """The AsyncAPI 3 document of the topics this process reads and writes."""
        from shared.contracts.asyncapi import build

        return JSONResponse(build(request.app.state.runtime.services))

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def _events_router() -> APIRouter:
    router = APIRouter(tags=["events"])

    @router.post("/v1/events", status_code=202)
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
