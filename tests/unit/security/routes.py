"""Every route an app answers, for the tests that must cover them all."""

from __future__ import annotations

from typing import Iterator

from fastapi import FastAPI
from starlette.routing import BaseRoute, Route

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _walk(routes: list[BaseRoute], prefix: str) -> Iterator[tuple[str, str, BaseRoute]]:
    for route in routes:
        inner = getattr(route, "original_router", None)  # FastAPI nests included routers
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from _walk(inner.routes, prefix + getattr(context, "prefix", ""))
        elif isinstance(route, Route):
            for method in sorted(route.methods or ()):
                if method in METHODS:
                    yield method, prefix + route.path, route


def all_routes(app: FastAPI) -> dict[tuple[str, str], BaseRoute]:
    """``{(method, path template): route}`` of every route, documented or not. Checked against
    the OpenAPI document, so a change in how FastAPI nests routers cannot hide one."""
    found = {(method, path): route for method, path, route in _walk(app.routes, "")}
    documented = {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}
    missing = documented - set(found)
    assert not missing, f"routes in the OpenAPI that the walk did not find: {sorted(missing)}"
    return found
