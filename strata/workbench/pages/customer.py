"""The customer page (客户视图): profile (masked as the API masks it), household, holdings, AUM
over time with the tier floors, tier history and why, fees and why, points, open signals, the
follow-up log and its form, claim. A role the API shows identity data unmasked to states the
purpose first."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import Response

from strata.workbench import i18n
from strata.workbench.api import ApiError
from strata.workbench.pages.common import business_today, by_priority, priority_of
from strata.workbench.session import User
from strata.workbench.web import BASE, Form, SignedIn, caller_for, one, problem, redirect, render, workbench_of

router = APIRouter()
CHANNELS = ("phone", "visit", "wechat", "sms", "email", "branch")
OUTCOMES = ("interested", "not_interested", "follow_up", "no_answer", "completed")


@router.get("/customers")
async def find(request: Request, id: str = "", user: User = SignedIn) -> Response:
    wanted = id.strip()
    if not wanted:
        return redirect(request, f"{BASE}/")
    return redirect(request, f"{BASE}/customers/{quote(wanted, safe='')}")


@router.get("/customers/{customer_id}")
async def customer_page(request: Request, customer_id: str, purpose: str = "", user: User = SignedIn) -> Response:
    api = caller_for(request, user)
    purpose = purpose.strip()
    try:
        view = await api.get(f"/v1/customers/{customer_id}", purpose=purpose or None)
    except ApiError as exc:
        if exc.status == 400 and exc.title == "Purpose required":
            return render(request, "purpose.html", action=f"{BASE}/customers/{customer_id}", hidden={},
                          reason=i18n.gettext("This customer's identity number and phone are shown to you "
                                              "unmasked: the read is recorded in the audit log with its purpose."),
                          error=problem(exc) if purpose else None, purpose=purpose)
        if exc.status in (403, 404):
            return render(request, "error.html", status=exc.status, message=i18n.problem_text(exc.detail))
        raise
    wb = workbench_of(request)
    today = await business_today(api, wb.settings)
    path = f"/v1/customers/{customer_id}"
    extra = await api.gather(
        tier=api.optional(f"{path}/tier"), explain=api.optional(f"{path}/tier/explain", {"lang": api.language}),
        daily=api.optional(f"{path}/aum/daily", {"from": (today - timedelta(days=92)).isoformat(),
                                                 "to": today.isoformat()}),
        fees=api.optional(f"{path}/fees", {"limit": 20}), points=api.optional(f"{path}/points", {"limit": 10}),
        follow_ups=api.optional(f"{path}/follow-ups", {"limit": 20}),
        open_signals=api.optional("/v1/signals", {"customer_id": customer_id, "status": ["open", "acknowledged"],
                                             "limit": 50}),
    )
    signals = by_priority((extra.pop("open_signals") or {}).get("items") or view.get("open_signals") or [])
    # the 360 comes masked; a role that may read it unmasked states its purpose first, audited
    may_unmask = not purpose and user.role in wb.settings.auth.unmasked_roles
    return render(request, "customer.html", c=view, today=today, signals=signals, priority_of=priority_of,
                  may_unmask=may_unmask, purpose=purpose,
                  chart=aum_chart(view, extra["daily"], extra["tier"], wb),
                  channels=CHANNELS, outcomes=OUTCOMES, values={}, error=None, **extra)


def aum_chart(view: dict, daily: dict | None, tier: dict | None, wb) -> dict | None:
    """The AUM line with a dashed line at each tier floor (ECharts option), or None when the API
    has no daily series."""
    if not daily or not daily.get("items"):
        return None
    floors = daily.get("floors") or {t.id: str(t.floor) for t in wb.settings.tiers}
    points = [[i["date"], i["aum"]] for i in daily["items"]]
    top = max(float(i["aum"]) for i in daily["items"]) if daily["items"] else 0.0
    shown = {k: v for k, v in floors.items() if float(v) > 0 and float(v) <= max(top * 1.6, 1.0)}
    return {
        "aria": {"enabled": True},
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 70, "right": 90, "top": 20, "bottom": 30},
        "xAxis": {"type": "time"},
        "yAxis": {"type": "value"},
        "series": [{
            "name": i18n.gettext("AUM"), "type": "line", "showSymbol": False, "data": points,
            "markLine": {"symbol": "none", "lineStyle": {"type": "dashed"},
                         "label": {"formatter": "{b}", "position": "end"},
                         "data": [{"name": wb.tier_name(k), "yAxis": float(v)} for k, v in shown.items()]},
        }],
    }


@router.get("/customers/{customer_id}/fees/{posting_id}/explain")
async def fee_explain(request: Request, customer_id: str, posting_id: str, user: User = SignedIn) -> Response:
    api = caller_for(request, user)
    try:
        why = await api.get(f"/v1/customers/{customer_id}/fees/{posting_id}/explain", {"lang": api.language})
        error = None
    except ApiError as exc:
        why, error = None, problem(exc)
    return render(request, "_explain.html", why=why, error=error)


@router.post("/customers/{customer_id}/follow-ups")
async def log_follow_up(request: Request, customer_id: str, form: dict = Form, user: User = SignedIn) -> Response:
    api = caller_for(request, user)
    values = {k: one(form, k) for k in ("channel", "note", "outcome", "next_date")}
    body = {"channel": values["channel"], "note": values["note"], "outcome": values["outcome"],
            "next_date": values["next_date"] or None}
    error = None
    try:
        await api.post(f"/v1/customers/{customer_id}/follow-ups", body)
        values = {}
    except ApiError as exc:
        error = problem(exc)
    if not request.headers.get("HX-Request") and error is None:
        return redirect(request, f"{BASE}/customers/{customer_id}")
    follow_ups = await api.optional(f"/v1/customers/{customer_id}/follow-ups", {"limit": 20})
    return render(request, "_followups.html", c={"customer_id": customer_id}, follow_ups=follow_ups,
                  values=values, error=error, channels=CHANNELS, outcomes=OUTCOMES, saved=error is None)


@router.post("/customers/{customer_id}/claim")
async def claim(request: Request, customer_id: str, form: dict = Form, user: User = SignedIn) -> Response:
    api = caller_for(request, user)
    rm_id = user.rm_id if user.role == "rm" else one(form, "rm_id")
    try:
        answer = await api.post("/v1/assignments/claims", {"rm_id": rm_id, "customer_id": customer_id,
                                                           "reason": one(form, "reason")})
        error = None
    except ApiError as exc:
        answer, error = None, problem(exc)
    return render(request, "_claim.html", answer=answer, error=error, rm_id=rm_id, c={"customer_id": customer_id},
                  reason=one(form, "reason"))
