"""The RM home (我的工作台): today's signals by priority with ack, snooze and done; contacts
due and overdue; the book by tier, sortable, filterable and paged; counts at the top. An open
page asks every few seconds whether the signals changed and updates them in place."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

from fastapi import APIRouter, Request
from starlette.responses import Response

from strata.workbench import i18n
from strata.workbench.api import ApiError, Caller
from strata.workbench.pages.common import business_today, by_priority, priority_of
from strata.workbench.session import User
from strata.workbench.web import BASE, Form, SignedIn, caller_for, one, parse_date, problem, redirect, render, \
    workbench_of

router = APIRouter()
SORTS = ("tier", "aum", "next_contact", "last_contact", "open_signals", "customer_id")
OPEN = ("open", "acknowledged")


def rm_of(user: User, asked: str | None) -> str | None:
    return asked or user.rm_id


def book_filters(request: Request) -> dict:
    q = request.query_params
    sort = q.get("sort") if q.get("sort") in SORTS else "tier"
    order = q.get("order") if q.get("order") in ("asc", "desc") else None
    return {"sort": sort, "order": order, "tier": [t for t in q.getlist("tier") if t],
            "watch": q.get("watch") if q.get("watch") in ("true", "false") else None,
            "q": (q.get("q") or "").strip()[:64], "cursor": q.get("cursor") or None}


async def read_book(api: Caller, rm_id: str, filters: dict, size: int) -> dict:
    params = {**filters, "limit": size}
    page = await api.get(f"/v1/rms/{rm_id}/worklist", params)
    items = page["items"]
    # an API without the filters answers the whole book: narrow the page as far as it can be
    if filters["tier"]:
        items = [i for i in items if i.get("tier") in filters["tier"]]
    if filters["watch"] is not None and all("watch" in i for i in items):
        items = [i for i in items if bool(i.get("watch")) == (filters["watch"] == "true")]
    if filters["q"]:
        needle = filters["q"].lower()
        items = [i for i in items if i["customer_id"].lower().startswith(needle)
                 or (i.get("name") or "").lower().startswith(needle)]
    return {"items": items, "next": page.get("next"), "counts": page.get("counts")}


async def read_signals(api: Caller, rm_id: str) -> list[dict]:
    page = await api.get("/v1/signals", {"rm_id": rm_id, "status": list(OPEN), "awake": "true", "limit": 200})
    return by_priority(page["items"])


async def read_contacts(api: Caller, rm_id: str, today: date) -> dict:
    page = await api.get(f"/v1/rms/{rm_id}/worklist", {"sort": "next_contact", "order": "asc", "limit": 50})
    due = [i for i in page["items"] if i.get("next_contact") and date.fromisoformat(i["next_contact"]) <= today]
    return {"overdue": [i for i in due if date.fromisoformat(i["next_contact"]) < today],
            "today": [i for i in due if date.fromisoformat(i["next_contact"]) == today]}


def counts_of(book: dict, rm: dict | None, signals: list[dict], contacts: dict) -> dict:
    given = book.get("counts") or {}
    return {
        "customers": given.get("customers", (rm or {}).get("customers")),
        "watch": given.get("watch"),
        "contacts_due_today": given.get("contacts_due_today", len(contacts["today"])),
        "contacts_overdue": given.get("contacts_overdue", len(contacts["overdue"])),
        "open_signals": given.get("open_signals", sum(1 for s in signals if s["status"] == "open")),
    }


def fingerprint(signals: list[dict], counts: dict) -> str:
    text = "|".join(f"{s['id']}:{s['status']}:{s.get('snoozed_until')}" for s in signals) + repr(sorted(counts.items()))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


@router.get("/home")
async def home(request: Request, rm: str | None = None, user: User = SignedIn) -> Response:
    rm_id = rm_of(user, rm)
    if rm_id is None:
        return redirect(request, f"{BASE}/branch")
    wb = workbench_of(request)
    api = caller_for(request, user)
    today = await business_today(api, wb.settings)
    filters = book_filters(request)
    got = await api.gather(book=read_book(api, rm_id, filters, wb.settings.workbench.page_size),
                           rm=api.get(f"/v1/rms/{rm_id}"), signals=read_signals(api, rm_id),
                           contacts=read_contacts(api, rm_id, today))
    for value in got.values():
        if isinstance(value, ApiError):
            raise value
    counts = counts_of(got["book"], got["rm"], got["signals"], got["contacts"])
    context = dict(rm=got["rm"], rm_id=rm_id, book=got["book"], filters=filters, signals=got["signals"],
                   contacts=got["contacts"], counts=counts, today=today, priority_of=priority_of,
                   version=fingerprint(got["signals"], counts), poll=wb.settings.workbench.poll_seconds,
                   snooze_default=(today + timedelta(days=7)).isoformat())
    if request.headers.get("HX-Target") == "book":
        return render(request, "_book.html", **context)
    return render(request, "home.html", **context)


async def live_state(api: Caller, rm_id: str, today: date) -> tuple[list[dict], dict, str]:
    """The signals, the counts and their fingerprint, as the open page should show them."""
    got = await api.gather(signals=read_signals(api, rm_id), contacts=read_contacts(api, rm_id, today),
                           book=api.get(f"/v1/rms/{rm_id}/worklist", {"limit": 1}), rm=api.get(f"/v1/rms/{rm_id}"))
    for value in got.values():
        if isinstance(value, ApiError):
            raise value
    counts = counts_of(got["book"], got["rm"], got["signals"], got["contacts"])
    return got["signals"], counts, fingerprint(got["signals"], counts)


@router.get("/home/live")
async def live(request: Request, rm: str | None = None, v: str = "", user: User = SignedIn) -> Response:
    """The signals and counts again, or 204 (htmx leaves the page alone) when nothing changed."""
    rm_id = rm_of(user, rm)
    wb = workbench_of(request)
    api = caller_for(request, user)
    today = await business_today(api, wb.settings)
    signals, counts, version = await live_state(api, rm_id, today)
    if version == v:
        return Response(status_code=204)
    return render(request, "_live.html", signals=signals, counts=counts, rm_id=rm_id, version=version,
                  priority_of=priority_of, poll=wb.settings.workbench.poll_seconds,
                  snooze_default=(today + timedelta(days=7)).isoformat(), today=today)


@router.post("/signals/{signal_id}/{action}")
async def act(request: Request, signal_id: str, action: str, form: dict = Form, user: User = SignedIn) -> Response:
    """Acknowledge, close or snooze a signal; the answer is its row, or the row with the API's
    message (the date typed is kept)."""
    api = caller_for(request, user)
    until = one(form, "until")
    error = None
    signal = None
    try:
        if action == "snooze":
            if parse_date(until) is None:
                error = {"detail": i18n.gettext("Choose the date to snooze until."), "fields": {}}
            else:
                signal = await api.post(f"/v1/signals/{signal_id}/snooze", {"until": until})
        elif action in ("ack", "done"):
            signal = await api.post(f"/v1/signals/{signal_id}/{action}")
        else:
            error = {"detail": i18n.gettext("Unknown action."), "fields": {}}
    except ApiError as exc:
        error = problem(exc)
    if signal is None:
        try:
            signal = await api.get(f"/v1/signals/{signal_id}")
        except ApiError as exc:
            return render(request, "error.html", status=exc.status, message=i18n.problem_text(exc.detail))
    if not request.headers.get("HX-Request"):
        return redirect(request, f"{BASE}/home")
    wb = workbench_of(request)
    today = await business_today(api, wb.settings)
    # the row, and the live list told what it now shows (so its next poll does not redraw it
    # and wipe the message in the row), with the counts
    rm_id = signal.get("rm_id") or user.rm_id
    _, counts, version = await live_state(api, rm_id, today) if rm_id else ([], {}, "")
    return render(request, "_signal_answer.html", status=200, s=signal, error=error, until=until,
                  priority_of=priority_of, snooze_default=until or (today + timedelta(days=7)).isoformat(),
                  today=today, rm_id=rm_id, version=version, counts=counts,
                  poll=wb.settings.workbench.poll_seconds)
