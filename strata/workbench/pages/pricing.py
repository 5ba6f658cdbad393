"""Pricing (差别化定价): the fee schedule and tier benefits, a quote for one transaction, why a
fee was charged as it was, the what-if of a proposed schedule over past postings, and the
simulation of a candidate tier policy over past months (head office)."""

from __future__ import annotations

import json
from datetime import timedelta

from urllib.parse import quote as quote_path

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from strata.workbench import i18n
from strata.workbench.api import ApiError
from strata.workbench.pages.common import business_today
from strata.workbench.session import User
from strata.workbench.web import Form, SignedIn, caller_for, one, problem, render, workbench_of

router = APIRouter()
CHANNELS = ("atm", "counter", "mobile", "online", "batch", "pos")


def tx_types_of(schedule: dict | None) -> list[str]:
    """The transaction types the schedule prices or rewards."""
    if not schedule:
        return []
    found = {t for f in schedule.get("fees", []) for t in f.get("match", {}).get("tx_types", [])}
    found |= {t for r in schedule.get("points", {}).get("earn", []) for t in r.get("tx_types", [])}
    return sorted(found)


@router.get("/pricing")
async def pricing_page(request: Request, user: User = SignedIn) -> Response:
    api = caller_for(request, user)
    schedule = await api.get("/v1/pricing/schedule")
    today = await business_today(api, workbench_of(request).settings)
    simulate = {"from": (today.replace(day=1) - timedelta(days=1)).replace(day=1).isoformat(),
                "to": today.isoformat(), "fees": json.dumps(schedule["fees"], ensure_ascii=False, indent=1),
                "benefits": json.dumps(schedule.get("benefits") or {}, ensure_ascii=False, indent=1)}
    return render(request, "pricing.html", schedule=schedule, quote_values={"channel": "atm", "tx_type": "atm_withdrawal",
                                                                             "counterparty_bank": "OTHER"},
                  sim_values=simulate, tx_types=tx_types_of(schedule), channels=CHANNELS, quote=None, result=None, error=None,
                  tier_values=tier_form_values(request, previous_month(today)), simulation=None, why=None,
                  why_values={})


def previous_month(today) -> str:
    return (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")


def tier_form_values(request: Request, month: str) -> dict:
    """The tier-policy form as today's policy: each tier's floor and downgrade months."""
    settings = workbench_of(request).settings
    return {"from": month, "to": month, "household_aggregation": "",
            "tiers": [{"id": t.id, "floor": format(t.floor, "f"), "downgrade_after_months": t.downgrade_after_months}
                      for t in settings.tiers]}


@router.get("/pricing/explain")
async def fee_explain(request: Request, customer_id: str = "", posting_id: str = "",
                      user: User = SignedIn) -> Response:
    """Why a posting's fee is what it is, looked up by customer and posting."""
    api = caller_for(request, user)
    values = {"customer_id": customer_id.strip(), "posting_id": posting_id.strip()}
    why, error = None, None
    if values["customer_id"] and values["posting_id"]:
        try:
            why = await api.get(f"/v1/customers/{quote_path(values['customer_id'], safe='')}/fees/"
                                f"{quote_path(values['posting_id'], safe='')}/explain", {"lang": api.language})
        except ApiError as exc:
            error = problem(exc)
    return render(request, "_fee_why.html", why=why, error=error, why_values=values)


@router.post("/pricing/tier-simulate")
async def tier_simulate(request: Request, form: dict = Form, user: User = SignedIn) -> Response:
    """Start a tier-policy simulation with the tiers' floors and downgrade months of the form."""
    api = caller_for(request, user)
    values = tier_form_values(request, one(form, "from"))
    values["to"] = one(form, "to")
    values["household_aggregation"] = one(form, "household_aggregation")
    tiers = []
    for tier in values["tiers"]:
        tier["floor"] = one(form, f"floor:{tier['id']}", tier["floor"])
        months = one(form, f"months:{tier['id']}", str(tier["downgrade_after_months"]))
        tier["downgrade_after_months"] = months
        changed: dict = {"id": tier["id"], "floor": tier["floor"]}
        if months:
            changed["downgrade_after_months"] = int(months) if months.isdigit() else months
        tiers.append(changed)
    body: dict = {"from": values["from"], "to": values["to"], "tiers": tiers}
    if values["household_aggregation"] in ("on", "off"):
        body["household_aggregation"] = values["household_aggregation"] == "on"
    simulation, error = None, None
    try:
        simulation = await api.post("/v1/tiering/simulate", body)
    except ApiError as exc:
        error = problem(exc)
    return render(request, "_tier_simulate.html", tier_values=values, simulation=simulation, error=error)


@router.get("/pricing/tier-simulations/{simulation_id}")
async def tier_simulation(request: Request, simulation_id: str, user: User = SignedIn) -> Response:
    """A simulation's progress, then its answer (polled by the form's result)."""
    api = caller_for(request, user)
    try:
        simulation, error = await api.get(f"/v1/tiering/simulations/{quote_path(simulation_id, safe='')}"), None
    except ApiError as exc:
        simulation, error = None, problem(exc)
    return render(request, "_tier_simulation.html", simulation=simulation, error=error)


@router.get("/pricing/tier-simulations/{simulation_id}/{part}.csv")
async def tier_simulation_csv(request: Request, simulation_id: str, part: str, user: User = SignedIn) -> Response:
    """The answer (``answer``) or each customer's outcome (``customers``) as the API's CSV."""
    if part not in ("answer", "customers"):
        return render(request, "error.html", status=404, message=i18n.gettext("Unknown export."))
    path = f"/v1/tiering/simulations/{quote_path(simulation_id, safe='')}" + ("/customers" if part == "customers" else "")
    api = caller_for(request, user)
    try:
        response, body = await api.stream(path, {"format": "csv"})
    except ApiError as exc:
        return render(request, "error.html", status=exc.status, message=i18n.problem_text(exc.detail))
    headers = {"Content-Disposition": response.headers.get("content-disposition",
                                                           f'attachment; filename="tier-simulation-{part}.csv"')}
    return StreamingResponse(body, media_type=response.headers.get("content-type", "text/csv; charset=utf-8"),
                             headers=headers)


@router.post("/pricing/quote")
async def quote(request: Request, form: dict = Form, user: User = SignedIn) -> Response:
    api = caller_for(request, user)
    values = {k: one(form, k) for k in ("customer_id", "tx_type", "amount", "channel", "counterparty_bank",
                                        "product_type", "direction")}
    values["cross_region"] = one(form, "cross_region") == "on"
    body = {k: v for k, v in values.items() if v not in ("", None)}
    body["cross_region"] = values["cross_region"]
    try:
        answer, error = await api.post("/v1/pricing/quote", body), None
    except ApiError as exc:
        answer, error = None, problem(exc)
    schedule = await api.optional("/v1/pricing/schedule")
    return render(request, "_quote.html", quote=answer, error=error, quote_values=values,
                  tx_types=tx_types_of(schedule), channels=CHANNELS)


@router.post("/pricing/simulate")
async def simulate(request: Request, form: dict = Form, user: User = SignedIn) -> Response:
    api = caller_for(request, user)
    values = {k: one(form, k) for k in ("from", "to", "fees", "benefits")}
    body: dict = {"from": values["from"], "to": values["to"]}
    error = None
    for key in ("fees", "benefits"):
        if values[key]:
            try:
                body[key] = json.loads(values[key])
            except json.JSONDecodeError as exc:
                error = {"detail": i18n.gettext("The {field} is not valid JSON: {reason}").format(
                    field=i18n.gettext(key), reason=exc.msg), "fields": {key: exc.msg}}
    result = None
    if error is None:
        try:
            result = await api.post("/v1/pricing/simulate", body)
        except ApiError as exc:
            error = problem(exc)
    return render(request, "_simulate.html", result=result, error=error, sim_values=values)
