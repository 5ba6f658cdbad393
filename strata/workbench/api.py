"""The workbench's only way to the bank's data: Strata's public HTTP API, called with the
signed-in user's token."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any, AsyncIterator
from urllib.parse import quote

import httpx

from shared.audit import PURPOSE_HEADER


@dataclass
class ApiError(Exception):
    """A problem+json answer (or a transport failure, as a 503)."""

    status: int
    title: str
    detail: str = ""
    errors: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    """The problem's other members (e.g. a refused handover's ``unplaced``)."""

    def __str__(self) -> str:
        return self.detail or self.title

    @property
    def missing_endpoint(self) -> bool:
        """The API answered as if the route did not exist (an older Strata)."""
        return self.status in (404, 405) and self.title in ("Not Found", "Method Not Allowed")


class Api:
    """One HTTP client shared by every request; each call carries the caller's token."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self._openapi: dict[str, Any] | None = None
        self._routes: list[re.Pattern[str]] | None = None

    def caller(self, token: str | None, language: str = "zh-CN") -> "Caller":
        return Caller(self, token, language)

    async def openapi(self) -> dict[str, Any]:
        """The API's OpenAPI document, read once: what the running API supports."""
        if self._openapi is None:
            response = await self.client.get("/openapi.json")
            self._openapi = response.json() if response.status_code == 200 else {}
        return self._openapi

    async def serves(self, path: str) -> bool:
        """Whether the API documents a route for ``path`` (unknown: assume it does), so a page
        does not ask an older Strata for what it lacks on every view."""
        if self._routes is None:
            doc = await self.openapi()
            self._routes = [re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(p)) + "$")
                            for p in doc.get("paths", {})]
        return not self._routes or any(r.match(path) for r in self._routes)

    async def accepts(self, schema: str, property_name: str) -> bool:
        """Whether the API's request model ``schema`` has ``property_name``."""
        doc = await self.openapi()
        return property_name in doc.get("components", {}).get("schemas", {}).get(schema, {}).get("properties", {})

    async def aclose(self) -> None:
        await self.client.aclose()


class Caller:
    def __init__(self, api: Api, token: str | None, language: str) -> None:
        self.api = api
        self.token = token
        self.language = language

    def _headers(self, purpose: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json", "Accept-Language": self.language}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if purpose:
            headers[PURPOSE_HEADER] = quote(purpose, safe="")  # the header is ASCII; the API unquotes
        return headers

    async def request(self, method: str, path: str, *, params: Any = None, json: Any = None,
                      purpose: str | None = None) -> Any:
        try:
            response = await self.api.client.request(method, path, params=_params(params), json=json,
                                                     headers=self._headers(purpose))
        except httpx.HTTPError as exc:
            raise ApiError(503, "API unavailable", f"Strata's API did not answer: {exc}") from exc
        if response.status_code >= 400:
            raise _problem(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    async def get(self, path: str, params: Any = None, *, purpose: str | None = None) -> Any:
        return await self.request("GET", path, params=params, purpose=purpose)

    async def post(self, path: str, json: Any = None, *, purpose: str | None = None) -> Any:
        return await self.request("POST", path, json=json if json is not None else {}, purpose=purpose)

    async def put(self, path: str, json: Any) -> Any:
        return await self.request("PUT", path, json=json)

    async def optional(self, path: str, params: Any = None, *, purpose: str | None = None) -> Any:
        """A read the page can do without: None when the API refuses or lacks it."""
        if not await self.api.serves(path):
            return None
        try:
            return await self.get(path, params, purpose=purpose)
        except ApiError:
            return None

    async def gather(self, **reads: Any) -> dict[str, Any]:
        """Several reads at once (each an awaitable), by name; an ApiError is kept as the value."""
        names = list(reads)
        results = await asyncio.gather(*reads.values(), return_exceptions=True)
        out = {}
        for name, result in zip(names, results):
            if isinstance(result, BaseException) and not isinstance(result, ApiError):
                raise result
            out[name] = result
        return out

    async def stream(self, path: str, params: Any = None, *, purpose: str | None = None,
                     accept: str = "text/csv") -> tuple[httpx.Response, AsyncIterator[bytes]]:
        """A streamed GET (a CSV export): the response (headers checked) and its body chunks."""
        headers = {**self._headers(purpose), "Accept": accept}
        request = self.api.client.build_request("GET", path, params=_params(params), headers=headers)
        try:
            response = await self.api.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise ApiError(503, "API unavailable", f"Strata's API did not answer: {exc}") from exc
        if response.status_code >= 400:
            await response.aread()
            await response.aclose()
            raise _problem(response)

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.aiter_raw():
                    yield chunk
            finally:
                await response.aclose()

        return response, body()


def _params(params: Any) -> Any:
    """Query parameters without the empty ones (a cleared filter is no filter)."""
    if params is None:
        return None
    items = params.items() if isinstance(params, dict) else params
    out = []
    for key, value in items:
        values = value if isinstance(value, (list, tuple)) else [value]
        out += [(key, v) for v in values if v is not None and v != ""]
    return out


def _problem(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    errors = body.get("errors") if isinstance(body.get("errors"), list) else []
    extra = {k: v for k, v in body.items() if k not in ("type", "title", "status", "detail", "instance", "errors")}
    return ApiError(response.status_code, str(body.get("title") or response.reason_phrase),
                    str(body.get("detail") or ""), errors, extra)
