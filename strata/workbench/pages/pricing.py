"""Pricing (差别化定价): the fee schedule and tier benefits, a quote for one transaction, and the
what-if of a proposed schedule over past postings."""

from __future__ import annotations

import json
from datetime import timedelta

from fastapi import APIRouter, Request
from starlette.responses import Response

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
                  sim_values=simulate, tx_types=tx_types_of(schedule), channels=CHANNELS, quote=None, result=None, error=None)


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
