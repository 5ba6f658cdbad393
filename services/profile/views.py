"""Profile's HTTP routes: the customer 360, segment templates and their members, branch
reports."""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared import audit
from shared.access import ensure_customer_visible, visible_filter
from shared.auth import Principal, current_principal, mask_id_number, may_see_pii, require_roles
from shared.contracts.types import BankDate
from shared.http import business_clock, db_session, problems
from shared.paging import decode_cursor, encode_cursor
from shared.problems import Problem
from shared.settings.profile import SegmentTemplate
from services.profile import members, metrics, queries, segments
from services.profile.filters import FIELDS, FilterError, bind, check_template, parameter_names, query_parameters
from services.profile.schemas import (
    BranchPage,
    BranchReport,
    Customer360,
    FieldInfo,
    MemberPage,
    Segment,
    SegmentPage,
)

router = APIRouter(tags=["profile"])
RESERVED_QUERY = ("format", "cursor", "limit")


@router.get("/v1/customers/{customer_id}", response_model=Customer360, responses=problems(404))
async def get_customer(customer_id: str, request: Request,
                       principal: Principal = Depends(current_principal),
                       purpose: str | None = audit.purpose_header(
                           "For the roles that may see identity numbers and phones unmasked "
                           "(auth.unmasked_roles): why you need them. With it the answer is unmasked "
                           "and recorded in the audit log; without it, masked like everyone's."),
                       session: AsyncSession = Depends(db_session)):
    """Customer 360: profile, household, holdings with maturities and card expiries, loans and
    cards, AUM, tier, RMs, open signals, points. Identity numbers and phones are masked, for
    every role. A role that may see them unmasked gets them so by stating its purpose in
    ``X-Strata-Purpose``; that read is recorded in the audit log (``GET /v1/audit``)."""
    await ensure_customer_visible(request, principal, customer_id, service="profile")
    settings = request.app.state.settings
    today = business_clock(request).today()
    why = audit.stated_purpose(purpose) if may_see_pii(principal, settings.auth.unmasked_roles) else None
    if why is None:
        view = await queries.customer_360(session, settings, customer_id, today, unmasked=False)
        if view is not None:
            _mask_identity_attributes(view["profile"]["attributes"])
    else:
        async with request.app.state.runtime.db.transaction() as tx:  # the read and its entry commit together
            view = await queries.customer_360(tx, settings, customer_id, today, unmasked=True)
            if view is not None:
                await audit.record(tx, request, principal, service="profile", action="customer_360",
                                   purpose=why, rows=1, unmasked=True, customer_id=customer_id)
    if view is None:
        raise Problem(404, "Customer not found", f"Profile has no customer {customer_id}.")
    return view


IDENTITY_ATTRIBUTE = re.compile(r"id_?(number|card|no)|passport|phone|mobile|tel", re.IGNORECASE)


def _mask_identity_attributes(attributes: dict[str, dict[str, dict]]) -> None:
    """Other sources (social security, tax...) may send identity numbers and phones as free
    attributes: masked like the profile's own, for the roles that may not see them."""
    for values in attributes.values():
        for name, sourced in values.items():
            if IDENTITY_ATTRIBUTE.search(name) and isinstance(sourced.get("value"), (str, int)):
                sourced["value"] = mask_id_number(str(sourced["value"]))


@router.get("/v1/branches", response_model=BranchPage)
async def list_branches(principal: Principal = Depends(require_roles("branch_manager", "analyst", "admin")),
                        session: AsyncSession = Depends(db_session)):
    """The branches customers have as home branch, with their customers and AUM: a branch
    manager's own branch only, every branch for head office."""
    only = principal.branch_id if principal.role == "branch_manager" else None
    items = await queries.branches(session, only)
    if only is not None and not items:  # a branch with no customers yet is still theirs
        items = [{"branch_id": only, "customers": 0, "aum": "0.00"}]
    return {"items": items, "next": None}


@router.get("/v1/branches/{branch_id}/report", response_model=BranchReport, responses=problems(404))
async def get_branch_report(branch_id: str, request: Request,
                            day: BankDate | None = Query(None, alias="date",
                                                     description="business date; today by default"),
                            principal: Principal = Depends(require_roles("branch_manager", "analyst", "admin")),
                            session: AsyncSession = Depends(db_session)):
    """Customers and AUM by tier, deposits and products, AUM inflow and outflow today and month
    to date, tier changes this month: for the branch's own customers (top level) and for the
    customers holding accounts there (``account_holders``), as they are when asked. A
    customer's inflow or outflow of a day is the day's net change of their AUM. Without
    ``date`` the report is of today on the business clock (``GET /v1/clock``). A branch no
    customer or account names is 404. Every figure is described in the answer's schema."""
    if principal.role == "branch_manager" and principal.branch_id != branch_id:
        raise Problem(403, "Forbidden", f"A branch manager of {principal.branch_id} may not see {branch_id}.")
    if not await queries.branch_known(session, branch_id):
        raise Problem(404, "Branch not found", f"No customer has home branch {branch_id} and no account is kept there.")
    settings = request.app.state.settings
    return await queries.branch_report(session, settings, branch_id, day or business_clock(request).today())


# --- segment templates ----------------------------------------------------------------------


@router.get("/v1/segments", response_model=SegmentPage)
async def list_segments(request: Request, principal: Principal = Depends(current_principal),
                        session: AsyncSession = Depends(db_session)):
    """Every segment template: those shipped in configuration and those analysts stored."""
    settings = request.app.state.settings
    found = await segments.all_templates(session, settings)
    return {"items": [t.as_dict() for t in found], "next": None}


@router.get("/v1/segments/_fields", response_model=list[FieldInfo])
async def list_segment_fields(request: Request, principal: Principal = Depends(current_principal)):
    """The fields a segment filter may use, with their operators (no template name starts with
    an underscore, so this path never hides one)."""
    vocabulary = segments.vocabulary_of(request.app.state.settings)
    return [FieldInfo(field=f.name, kind=f.kind, description=f.description, ops=list(f.ops()),
                      values=list(vocabulary.ranks(f.ranks)) if f.ranks else None,
                      product_types=f.product_types) for f in FIELDS.values()]


@router.post("/v1/segments", response_model=Segment, status_code=201, responses=problems(409))
async def create_segment(body: SegmentTemplate, request: Request,
                         principal: Principal = Depends(require_roles("analyst", "admin"))):
    """Store a segment template. The filter is checked against the field whitelist first:
    an unknown field, an operator that does not apply or a value of the wrong type is a 422."""
    return await _save(body, request, principal, replace=False)


@router.put("/v1/segments/{name}", response_model=Segment, responses=problems(404, 409))
async def replace_segment(name: str, body: SegmentTemplate, request: Request,
                          principal: Principal = Depends(require_roles("analyst", "admin"))):
    """Replace a stored segment template (shipped ones change in configuration)."""
    if body.name != name:
        raise Problem(422, "Name mismatch", f"The body names {body.name!r}, the path {name!r}.")
    return await _save(body, request, principal, replace=True)


async def _save(body: SegmentTemplate, request: Request, principal: Principal, *, replace: bool) -> dict:
    settings = request.app.state.settings
    try:
        check_template(body.filter, body.parameters, segments.vocabulary_of(settings), segments.limits_of(settings))
    except FilterError as exc:
        raise _invalid(exc) from exc
    if body.name in segments.shipped_templates(settings):
        raise Problem(409, "Segment exists", f"{body.name!r} is shipped in configuration; choose another name.")
    exists = Problem(409, "Segment exists", f"A segment named {body.name!r} exists; PUT replaces it.")
    try:
        async with request.app.state.runtime.db.transaction() as session:
            saved = await segments.save_template(session, body, principal.subject, replace=replace)
    except (segments.SegmentExists, IntegrityError):  # IntegrityError: another request stored it first
        raise exists from None
    return saved.as_dict()


@router.get("/v1/segments/{name}", response_model=Segment, responses=problems(404))
async def get_segment(name: str, request: Request, principal: Principal = Depends(current_principal),
                      session: AsyncSession = Depends(db_session)):
    settings = request.app.state.settings
    found = await segments.find_template(session, settings, name)
    if found is None:
        raise Problem(404, "Segment not found", f"No segment template named {name!r}.")
    return found.as_dict()


@router.get("/v1/segments/{name}/members", response_model=MemberPage,
            responses={200: {"content": {"text/csv": {}}, "description": "JSON page, or CSV export"},
                       **problems(400, 404)})
async def segment_members(name: str, request: Request,
                          format: str | None = Query(None, pattern="^(json|csv)$",
                                                     description="csv streams the whole segment"),
                          cursor: str | None = None, limit: int | None = Query(None, ge=1),
                          purpose: str | None = audit.purpose_header(
                              "Required: why you need this customer list (recorded in the audit log)."),
                          principal: Principal = Depends(current_principal)):
    """The customers a template selects, within the caller's book (an RM's own customers, a
    branch manager's branch). Other query parameters bind the template's parameters. JSON is
    paged; CSV (``Accept: text/csv`` or ``?format=csv``) streams every member. Every read states
    its purpose and is recorded in the audit log (``GET /v1/audit``) with its row count."""
    why = audit.required_purpose(purpose)
    settings = request.app.state.settings
    runtime = request.app.state.runtime
    async with runtime.db.sessions() as session:
        found = await segments.find_template(session, settings, name)
    if found is None:
        raise Problem(404, "Segment not found", f"No segment template named {name!r}.")
    vocabulary = segments.vocabulary_of(settings)
    bound = _bound_filter(found.template, request, vocabulary, segments.limits_of(settings))
    ctx = segments.CompileContext(business_clock(request).today(), settings.zone, vocabulary)
    visible = visible_filter(principal, "profile")
    how = {"role": principal.role, "unmasked_roles": settings.auth.unmasked_roles, "today": ctx.today}
    entry = {"service": "profile", "purpose": why, "segment": name,
             "unmasked": may_see_pii(principal, settings.auth.unmasked_roles)}
    if format == "csv" or (format is None and "text/csv" in request.headers.get("accept", "")):
        stmt = segments.members_query(bound, ctx, visible)
        async with runtime.db.transaction() as tx:  # recorded before the first row leaves
            rows = await members.count(tx, stmt)
            await audit.record(tx, request, principal, action="segment_export", rows=rows, **entry)
        return StreamingResponse(
            members.stream_csv(runtime.db, stmt, batch_rows=settings.profile.export_batch_rows,
                               zone=settings.zone, **how),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    size = limit or settings.profile.page_size
    if size > settings.profile.max_page_size:
        raise Problem(422, "Page too large", f"limit is at most {settings.profile.max_page_size}.")
    after = (decode_cursor(cursor) or {}).get("after")
    if after is not None and not isinstance(after, str):
        raise Problem(422, "Invalid cursor", "The cursor is not one this API returned.")
    stmt = segments.members_query(bound, ctx, visible, after=after, limit=size + 1)
    async with runtime.db.transaction() as tx:  # the page and its audit entry commit together
        items = await members.page(tx, stmt, **how)
        more = len(items) > size
        items = items[:size]
        await audit.record(tx, request, principal, action="segment_members", rows=len(items), **entry)
    return {"items": items, "next": encode_cursor({"after": items[-1]["customer_id"]}) if more else None}


def _bound_filter(template: SegmentTemplate, request: Request, vocabulary, limits):
    """The template's filter with its parameters bound: defaults, overridden by the query."""
    try:
        node = check_template(template.filter, template.parameters, vocabulary, limits)
        given = {k: request.query_params.getlist(k) for k in request.query_params.keys()}
        values = query_parameters(parameter_names(node), template.parameters, given, RESERVED_QUERY)
        return bind(node, values, vocabulary, limits)
    except FilterError as exc:
        raise _invalid(exc) from exc


def _invalid(exc: FilterError) -> Problem:
    metrics.SEGMENT_REFUSED.inc()
    return Problem(422, "Invalid segment filter", str(exc),
                   errors=[{"path": path, "message": message} for path, message in exc.errors])
