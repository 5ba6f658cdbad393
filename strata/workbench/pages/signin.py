"""Sign-in with a bearer token, the development sign-in of ``strata run``, sign-out, language."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from strata.workbench import i18n
from strata.workbench.api import ApiError
from strata.workbench.session import LANGUAGE_COOKIE, LANGUAGES, forget_token, keep_token, read_claims, signed_in
from strata.workbench.web import BASE, Form, one, problem, redirect, render, workbench_of

router = APIRouter()


def home_of(role: str) -> str:
    return f"{BASE}/home" if role == "rm" else f"{BASE}/branch"


def safe_next(target: str, role: str) -> str:
    """Only a path of the workbench itself (never another site)."""
    if target.startswith(f"{BASE}/") and not target.startswith("//") and "signin" not in target:
        return target
    return home_of(role)


@router.get("/")
async def front(request: Request) -> Response:
    user = signed_in(request)
    return redirect(request, home_of(user.role) if user else f"{BASE}/signin")


@router.get("/signin")
async def signin_page(request: Request, next: str = "") -> Response:
    return render(request, "signin.html", next=next, people=await _people(request))


async def _people(request: Request) -> dict | None:
    """Whom the development sign-in offers: the registry's RMs, a manager per branch, an
    analyst, an admin (``strata run`` only)."""
    wb = workbench_of(request)
    if wb.mint is None:
        return None
    api = wb.api.caller(wb.mint("admin"), "en")
    rms: list[dict] = []
    cursor = None
    try:
        while len(rms) < 2000:
            page = await api.get("/v1/rms", {"limit": 500, "cursor": cursor})
            rms += page["items"]
            cursor = page.get("next")
            if not cursor:
                break
        branches = await api.optional("/v1/branches")
    except ApiError:
        rms, branches = [], None
    branch_ids = sorted({r["branch_id"] for r in rms} | {b["branch_id"] for b in (branches or {}).get("items", [])})
    active = [r for r in rms if r.get("active")]
    active.sort(key=lambda r: (-(r.get("customers") or 0), r["rm_id"]))
    return {"rms": active, "branches": branch_ids}


@router.post("/signin")
async def signin(request: Request, form: dict = Form) -> Response:
    token, target = one(form, "token"), one(form, "next")
    user = read_claims(token)
    error = None
    if user is None:
        error = {"detail": i18n.gettext("This is not a Strata token, or it has expired."), "fields": {}}
    else:
        try:  # the API is the judge of the token: any signed-in read will do
            await workbench_of(request).api.caller(token).get("/v1/segments/_fields")
        except ApiError as exc:
            error = problem(exc)
    if error:
        return render(request, "signin.html", status=401, next=target, token=token, error=error,
                      people=await _people(request))
    return _signed_in(request, user, safe_next(target, user.role))


@router.post("/signin/dev")
async def signin_dev(request: Request, form: dict = Form) -> Response:
    wb = workbench_of(request)
    if wb.mint is None:
        return render(request, "error.html", status=404, message=i18n.gettext("Not available here."))
    role = one(form, "role")
    try:
        token = wb.mint(role, rm_id=one(form, "rm_id") or None, branch_id=one(form, "branch_id") or None)
    except ValueError as exc:
        return render(request, "error.html", status=422, message=str(exc))
    user = read_claims(token)
    return _signed_in(request, user, home_of(user.role))


def _signed_in(request: Request, user, target: str) -> Response:
    response = redirect(request, target)
    keep_token(response, user, workbench_of(request).settings.workbench.secure_cookies)
    return response


@router.post("/signout")
async def signout(request: Request, form: dict = Form) -> Response:
    response = redirect(request, f"{BASE}/signin")
    forget_token(response, workbench_of(request).settings.workbench.secure_cookies)
    return response


@router.get("/lang")
async def choose_language(request: Request, to: str = "zh-CN", next: str = "") -> Response:
    user = signed_in(request)
    target = next if next.startswith(f"{BASE}/") and not next.startswith("//") else f"{BASE}/"
    response = redirect(request, target if user or "signin" in target else f"{BASE}/signin")
    if to in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, to, max_age=365 * 86400, samesite="lax", path="/",
                            secure=workbench_of(request).settings.workbench.secure_cookies)
    return response
