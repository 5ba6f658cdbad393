"""The branch dashboard (网点驾驶舱): customers and AUM by tier, inflow and outflow today and
month to date, tier moves this month, open signals by type, RM books against capacity. A
branch manager sees their branch; head office picks any."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from strata.workbench import i18n
from strata.workbench.api import ApiError, Caller
from strata.workbench.pages.common import clock_today
from strata.workbench.session import User
from strata.workbench.web import BASE, SignedIn, caller_for, redirect, render, workbench_of

router = APIRouter()


async def branch_ids(api: Caller) -> list[dict]:
    """The branches to pick from: ``GET /v1/branches``, else the RM registry's branches."""
    listed = await api.optional("/v1/branches")
    if listed and listed.get("items"):
        return listed["items"]
    rms = await api.optional("/v1/rms", {"limit": 500})
    return [{"branch_id": b} for b in sorted({r["branch_id"] for r in (rms or {}).get("items", [])})]


async def signal_counts(api: Caller, branch_id: str) -> dict:
    """``GET /v1/signals/summary``, else counted from the branch's open signals."""
    summary = await api.optional("/v1/signals/summary", {"branch_id": branch_id})
    if summary:
        return summary
    page = await api.get("/v1/signals", {"branch_id": branch_id, "status": ["open", "acknowledged"], "limit": 500})
    by_type: dict[str, dict[str, int]] = {}
    for s in page["items"]:
        by_type.setdefault(s["signal_type"], {"open": 0, "acknowledged": 0})[s["status"]] += 1
    return {"by_type": by_type, "open": sum(v["open"] for v in by_type.values()),
            "acknowledged": sum(v["acknowledged"] for v in by_type.values()), "partial": bool(page.get("next"))}


@router.get("/branch")
async def dashboard(request: Request, branch: str = "", user: User = SignedIn) -> Response:
    if user.role == "rm":
        return redirect(request, f"{BASE}/home")
    api = caller_for(request, user)
    choices = [{"branch_id": user.branch_id}] if user.role == "branch_manager" else await branch_ids(api)
    branch_id = user.branch_id if user.role == "branch_manager" else (branch or (choices[0]["branch_id"] if choices else ""))
    if not branch_id:
        return render(request, "branch.html", branch_id=None, choices=choices, report=None)
    today = await clock_today(api)  # the report's own default is the calendar date
    got = await api.gather(report=api.get(f"/v1/branches/{branch_id}/report",
                                          {"date": today.isoformat() if today else None}),
                           signals=signal_counts(api, branch_id),
                           rms=api.get("/v1/rms", {"branch_id": branch_id, "limit": 500}))
    for value in got.values():
        if isinstance(value, ApiError):
            raise value
    wb = workbench_of(request)
    report = got["report"]
    return render(request, "branch.html", branch_id=branch_id, choices=choices, report=report,
                  signals=got["signals"], rms=got["rms"]["items"],
                  tier_chart=tier_chart(report, wb), flow_chart=flow_chart(report))


def tier_chart(report: dict, wb) -> dict:
    tiers = list(report["by_tier"])
    return {
        "aria": {"enabled": True}, "tooltip": {"trigger": "axis"},
        "legend": {"data": [i18n.gettext("Customers"), i18n.gettext("AUM (10k)")]},
        "grid": {"left": 60, "right": 60, "top": 40, "bottom": 30},
        "xAxis": {"type": "category", "data": [wb.tier_name(t) for t in tiers], "axisLabel": {"interval": 0}},
        "yAxis": [{"type": "value", "name": i18n.gettext("Customers")},
                  {"type": "value", "name": i18n.gettext("AUM (10k)")}],
        "series": [
            {"name": i18n.gettext("Customers"), "type": "bar", "data": [report["by_tier"][t]["customers"] for t in tiers]},
            {"name": i18n.gettext("AUM (10k)"), "type": "bar", "yAxisIndex": 1,
             "data": [round(float(report["by_tier"][t]["aum"]) / 10000, 2) for t in tiers]},
        ],
    }


def flow_chart(report: dict) -> dict:
    """Inflow and outflow by day this month (``flows_by_day``), else today and month to date."""
    days = report.get("flows_by_day")
    if days:
        labels = [d["date"][5:] for d in days]
        inflow = [float(d["inflow"]) for d in days]
        outflow = [-float(d["outflow"]) for d in days]
    else:
        labels = [i18n.gettext("Today"), i18n.gettext("Month to date")]
        inflow = [float(report["inflow_today"]), float(report["inflow_mtd"])]
        outflow = [-float(report["outflow_today"]), -float(report["outflow_mtd"])]
    return {
        "aria": {"enabled": True}, "tooltip": {"trigger": "axis"},
        "legend": {"data": [i18n.gettext("Inflow"), i18n.gettext("Outflow")]},
        "grid": {"left": 80, "right": 20, "top": 40, "bottom": 30},
        "xAxis": {"type": "category", "data": labels}, "yAxis": {"type": "value"},
        "series": [{"name": i18n.gettext("Inflow"), "type": "bar", "stack": "flow", "data": inflow},
                   {"name": i18n.gettext("Outflow"), "type": "bar", "stack": "flow", "data": outflow}],
    }
