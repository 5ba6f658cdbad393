"""Operations (管理): the RM registry, handover with a look at the book that will move and the
RMs who can take it, month-end close and daily scan with their dry run and a confirmation, and
the audit log for admins."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi import APIRouter, Request
from starlette.responses import Response

from strata.workbench import i18n
from strata.workbench.api import ApiError, Caller
from strata.workbench.pages.common import business_today
from strata.workbench.session import User
from strata.workbench.web import BASE, Form, SignedIn, caller_for, one, problem, redirect, render, workbench_of

router = APIRouter()
JOBS = {
    "close": {"path": "/v1/admin/month-end-close", "schema": "MonthEndCloseRequest", "field": "month"},
    "scan": {"path": "/v1/admin/daily-scan", "schema": "DailyScanRequest", "field": "date"},
}


async def all_rms(api: Caller, **params) -> list[dict]:
    rms, cursor = [], None
    while len(rms) < 5000:
        page = await api.get("/v1/rms", {**params, "limit": 500, "cursor": cursor})
        rms += page["items"]
        cursor = page.get("next")
        if not cursor:
            break
    return rms


@router.get("/ops")
async def operations(request: Request, user: User = SignedIn) -> Response:
    api = caller_for(request, user)
    wb = workbench_of(request)
    today = await business_today(api, wb.settings)
    rms = await all_rms(api)
    last_month = (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    return render(request, "ops.html", rms=rms, levels=wb.settings.assignment.levels, rm_values=None,
                  rm_error=None, jobs={"close": last_month, "scan": today.isoformat()})


def _capacity(text: str):
    text = text.strip()
    if not text:
        return None
    if re.fullmatch(r"\d+", text):
        return int(text)
    pairs = {}
    for part in re.split(r"[,，\s]+", text):
        if part:
            tier, _, count = part.partition(":")
            pairs[tier.strip()] = int(count) if count.strip().isdigit() else count
    return pairs


@router.get("/ops/rms/{rm_id}/edit")
async def edit_rm(request: Request, rm_id: str, user: User = SignedIn) -> Response:
    api = caller_for(request, user)
    rm = await api.get(f"/v1/rms/{rm_id}")
    capacity = rm["capacity"]
    values = {**rm, "capacity": "" if rm.get("capacity_is_default") else (
        ", ".join(f"{k}:{v}" for k, v in capacity.items()) if isinstance(capacity, dict) else str(capacity))}
    return render(request, "_rm_form.html", values=values, levels=workbench_of(request).settings.assignment.levels,
                  error=None, editing=True)


@router.post("/ops/rms")
async def save_rm(request: Request, form: dict = Form, user: User = SignedIn) -> Response:
    api = caller_for(request, user)
    values = {k: one(form, k) for k in ("rm_id", "name", "branch_id", "level", "capacity")}
    values["active"] = one(form, "active") == "on"
    editing = one(form, "editing") == "1"
    error = None
    try:
        capacity = _capacity(values["capacity"])
    except ValueError:
        capacity, error = None, {"detail": i18n.gettext("Capacity is a number, or tier:number pairs."),
                                 "fields": {"capacity": i18n.gettext("Capacity is a number, or tier:number pairs.")}}
    if not values["rm_id"]:
        error = {"detail": i18n.gettext("The RM id is required."), "fields": {"rm_id": i18n.gettext("Required")}}
    if error is None:
        try:
            await api.put(f"/v1/rms/{values['rm_id']}", {"name": values["name"], "branch_id": values["branch_id"],
                                                         "level": values["level"], "capacity": capacity,
                                                         "active": values["active"]})
            return redirect(request, f"{BASE}/ops?saved={values['rm_id']}")
        except ApiError as exc:
            error = problem(exc)
    return render(request, "_rm_form.html", values=values, levels=workbench_of(request).settings.assignment.levels,
                  error=error, editing=editing)


@router.post("/ops/rms/{rm_id}/deactivate")
async def deactivate(request: Request, rm_id: str, form: dict = Form, user: User = SignedIn) -> Response:
    api = caller_for(request, user)
    try:
        rm = await api.get(f"/v1/rms/{rm_id}")
        await api.put(f"/v1/rms/{rm_id}", {"name": rm["name"], "branch_id": rm["branch_id"], "level": rm["level"],
                                           "capacity": None if rm.get("capacity_is_default") else rm["capacity"],
                                           "active": False})
    except ApiError as exc:
        return render(request, "_notice.html", error=problem(exc), id=f"rm-{rm_id}-notice")
    return redirect(request, f"{BASE}/ops?saved={rm_id}")


@router.get("/ops/handover")
async def handover_page(request: Request, rm: str, user: User = SignedIn) -> Response:
    """The book that will move and the RMs who may take it (the API balances over them)."""
    api = caller_for(request, user)
    leaving = await api.get(f"/v1/rms/{rm}")
    got = await api.gather(book=api.get(f"/v1/rms/{rm}/worklist", {"limit": 100}),
                           peers=all_rms(api, branch_id=leaving["branch_id"], active="true"))
    for value in got.values():
        if isinstance(value, ApiError):
            raise value
    candidates = [p for p in got["peers"] if p["rm_id"] != rm]
    return render(request, "handover.html", rm=leaving, book=got["book"], candidates=candidates, values={},
                  error=None, result=None)


@router.post("/ops/handover")
async def handover(request: Request, form: dict = Form, user: User = SignedIn) -> Response:
    api = caller_for(request, user)
    rm_id = one(form, "rm_id")
    values = {"reason": one(form, "reason"), "to": [t for t in form.get("to", []) if t],
              "deactivate": one(form, "deactivate") == "on"}
    body = {"reason": values["reason"], "deactivate": values["deactivate"]}
    if values["to"]:
        body["to"] = values["to"]
    try:
        result, error = await api.post(f"/v1/rms/{rm_id}/handover", body), None
    except ApiError as exc:
        result, error = None, problem(exc)
    leaving = await api.get(f"/v1/rms/{rm_id}")
    got = await api.gather(book=api.get(f"/v1/rms/{rm_id}/worklist", {"limit": 100}),
                           peers=all_rms(api, branch_id=leaving["branch_id"], active="true"))
    book = got["book"] if not isinstance(got["book"], ApiError) else {"items": [], "next": None}
    peers = got["peers"] if not isinstance(got["peers"], ApiError) else []
    return render(request, "handover.html", rm=leaving, book=book, candidates=[p for p in peers if p["rm_id"] != rm_id],
                  values=values, error=error, result=result, unplaced=((error or {}).get("extra") or {}).get("unplaced"))


@router.post("/ops/jobs/{job}")
async def run_job(request: Request, job: str, form: dict = Form, user: User = SignedIn) -> Response:
    """First a dry run (when the API has one) and its preview; the job itself only after the
    confirmation."""
    spec = JOBS.get(job)
    if spec is None:
        return render(request, "error.html", status=404, message=i18n.gettext("Unknown job."))
    api = caller_for(request, user)
    value = one(form, "value")
    confirmed = one(form, "step") == "run"
    can_preview = await api.api.accepts(spec["schema"], "dry_run")
    body = {spec["field"]: value}
    result, error = None, None
    if confirmed or can_preview:
        try:
            result = await api.post(spec["path"], {**body, "dry_run": True} if not confirmed else body)
        except ApiError as exc:
            error = problem(exc)
    return render(request, "_job.html", job=job, value=value, result=result, error=error, confirmed=confirmed,
                  can_preview=can_preview)


@router.get("/ops/audit")
async def audit(request: Request, customer_id: str = "", subject: str = "", action: str = "", cursor: str = "",
                user: User = SignedIn) -> Response:
    api = caller_for(request, user)
    filters = {"customer_id": customer_id.strip(), "subject": subject.strip(), "action": action}
    try:
        page, error = await api.get("/v1/audit", {**filters, "cursor": cursor,
                                                  "limit": workbench_of(request).settings.workbench.page_size}), None
    except ApiError as exc:
        if exc.status == 403:
            return render(request, "error.html", status=403, message=i18n.problem_text(exc.detail))
        page, error = {"items": [], "next": None}, problem(exc)
    return render(request, "audit.html", page=page, filters=filters, error=error)
