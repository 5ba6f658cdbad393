"""Segments (营销名单): the templates, creating and editing them in the segment language with
the API's errors in place, members paged and exported as CSV after the purpose is stated."""

from __future__ import annotations

import json
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from strata.workbench import i18n
from strata.workbench.api import ApiError
from strata.workbench.session import User
from strata.workbench.web import BASE, Form, SignedIn, caller_for, one, problem, redirect, render, workbench_of

router = APIRouter()
COUNT_CAP = 100_000
EXAMPLE_FILTER = {"all": [{"field": "tier", "op": "in", "value": ["gold", "platinum"]},
                          {"field": "aum", "op": "gte", "value": {"param": "min_aum"}}]}


def _purpose_page(request: Request, name: str, action: str, purpose: str, error=None, hidden=None) -> Response:
    return render(request, "purpose.html", action=action, hidden=hidden or {}, purpose=purpose, error=error,
                  reason=i18n.gettext("A customer list is leaving Strata: each read of segment {name} is "
                                      "recorded in the audit log with its purpose.").format(name=name))


@router.get("/segments")
async def segment_list(request: Request, user: User = SignedIn) -> Response:
    api = caller_for(request, user)
    got = await api.gather(segments=api.get("/v1/segments"), fields=api.get("/v1/segments/_fields"))
    for value in got.values():
        if isinstance(value, ApiError):
            raise value
    return render(request, "segments.html", segments=got["segments"]["items"], fields=got["fields"])


@router.get("/segments/new")
async def new_segment(request: Request, user: User = SignedIn) -> Response:
    api = caller_for(request, user)
    fields = await api.get("/v1/segments/_fields")
    values = {"name": "", "description": "", "filter": json.dumps(EXAMPLE_FILTER, ensure_ascii=False, indent=2),
              "parameters": json.dumps({"min_aum": "50000.00"}, indent=2)}
    return render(request, "segment_form.html", mode="create", values=values, fields=fields, error=None)


@router.get("/segments/{name}/edit")
async def edit_segment(request: Request, name: str, user: User = SignedIn) -> Response:
    api = caller_for(request, user)
    got = await api.gather(segment=api.get(f"/v1/segments/{quote(name, safe='')}"),
                           fields=api.get("/v1/segments/_fields"))
    for value in got.values():
        if isinstance(value, ApiError):
            raise value
    s = got["segment"]
    values = {"name": s["name"], "description": s.get("description", ""),
              "filter": json.dumps(s["filter"], ensure_ascii=False, indent=2),
              "parameters": json.dumps(s.get("parameters") or {}, ensure_ascii=False, indent=2)}
    return render(request, "segment_form.html", mode="edit", values=values, fields=got["fields"], error=None,
                  shipped=s.get("source") != "stored")


@router.post("/segments/save")
async def save_segment(request: Request, form: dict = Form, user: User = SignedIn) -> Response:
    api = caller_for(request, user)
    mode = "edit" if one(form, "mode") == "edit" else "create"
    values = {k: one(form, k) for k in ("name", "description", "filter", "parameters")}
    error = None
    body = {"name": values["name"], "description": values["description"]}
    for key in ("filter", "parameters"):
        try:
            body[key] = json.loads(values[key] or ("{}" if key == "parameters" else ""))
        except json.JSONDecodeError as exc:
            error = {"detail": i18n.gettext("The {field} is not valid JSON: {reason}").format(
                field=i18n.gettext(key), reason=exc.msg), "fields": {key: f"{exc.msg} ({exc.lineno}:{exc.colno})"}}
            break
    if error is None:
        try:
            if mode == "edit":
                await api.put(f"/v1/segments/{quote(values['name'], safe='')}", body)
            else:
                await api.post("/v1/segments", body)
            return redirect(request, f"{BASE}/segments?saved={quote(values['name'])}")
        except ApiError as exc:
            error = problem(exc)
    fields = await api.optional("/v1/segments/_fields") or []
    return render(request, "segment_form.html", status=422, mode=mode, values=values, fields=fields, error=error)


@router.get("/segments/{name}/members")
async def members(request: Request, name: str, purpose: str = "", cursor: str = "", user: User = SignedIn) -> Response:
    action = f"{BASE}/segments/{quote(name, safe='')}/members"
    purpose = purpose.strip()
    if not purpose:
        return _purpose_page(request, name, action, purpose)
    api = caller_for(request, user)
    size = workbench_of(request).settings.workbench.page_size
    try:
        page = await api.get(f"/v1/segments/{quote(name, safe='')}/members", {"limit": size, "cursor": cursor},
                             purpose=purpose)
    except ApiError as exc:
        if exc.status == 400:
            return _purpose_page(request, name, action, purpose, error=problem(exc))
        raise
    return render(request, "segment_members.html", name=name, page=page, purpose=purpose, cursor=cursor)


@router.get("/segments/{name}/count")
async def count(request: Request, name: str, purpose: str = "", user: User = SignedIn) -> Response:
    """How many customers the segment selects in the caller's book: the rows of its CSV export
    counted as they stream (at most ``COUNT_CAP``), one audited read."""
    api = caller_for(request, user)
    rows, capped = -1, False
    try:
        response, body = await api.stream(f"/v1/segments/{quote(name, safe='')}/members", {"format": "csv"},
                                          purpose=purpose.strip() or None)
        async for chunk in body:
            rows += chunk.count(b"\n")
            if rows >= COUNT_CAP:
                capped = True
                await body.aclose()
                break
        error = None
    except ApiError as exc:
        error = problem(exc)
    return render(request, "_count.html", rows=max(rows, 0), capped=capped, error=error)


@router.get("/segments/{name}/export.csv")
async def export(request: Request, name: str, purpose: str = "", user: User = SignedIn) -> Response:
    purpose = purpose.strip()
    if not purpose:
        return _purpose_page(request, name, f"{BASE}/segments/{quote(name, safe='')}/export.csv", purpose)
    api = caller_for(request, user)
    try:
        response, body = await api.stream(f"/v1/segments/{quote(name, safe='')}/members", {"format": "csv"},
                                          purpose=purpose)
    except ApiError as exc:
        return render(request, "error.html", status=exc.status, message=i18n.problem_text(exc.detail))
    headers = {"Content-Disposition": response.headers.get("content-disposition",
                                                           f'attachment; filename="{name}.csv"')}
    return StreamingResponse(body, media_type=response.headers.get("content-type", "text/csv; charset=utf-8"),
                             headers=headers)
