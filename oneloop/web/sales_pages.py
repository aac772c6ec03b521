"""Sales for a rep: my leads, the pool (公海) with its claim, and one lead with what can be
done to it (contacted, qualified, disqualified, converted, returned, reassigned).

Every read and change goes through the leads and opportunities services with the viewer's
Context, exactly as the REST API does: a rep sees their own leads and the pool, a manager
the unit's, and another unit's lead is "not found". A claim that another rep won first is
the service's 409, shown on the pool page as a sentence, not as an error page.

The manager's board and SLA list (``sales_board_pages``), opportunities
(``sales_opportunity_pages``) and the reports (``sales_report_pages``) reuse the labels and
helpers declared here once.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from oneloop.api.deps import SessionDep
from oneloop.core.errors import Conflict, FieldError, ValidationFailed
from oneloop.governance import users
from oneloop.sales import config, leads, opportunities
from oneloop.sales.schemas import AssignIn, LeadOut, OpportunityIn, ReasonIn, StatusIn, Team
from oneloop.web.forms import FormErrors, local_path, parse_form
from oneloop.web.nav import N_
from oneloop.web.paging import cursor_pager
from oneloop.web.templating import page_lang, render
from oneloop.web.viewer import Viewer, ViewerDep

router = APIRouter(include_in_schema=False)

PAGE = 25
Text = Annotated[str, Query(max_length=64)]
FormText = Annotated[str, Form(max_length=1000)]

# --- labels, declared once for every sales page (message ids, translated where shown) --------

STATUS_LABELS: dict[str, str] = {
    "new": N_("New"),
    "pooled": N_("In the pool"),
    "assigned": N_("Assigned"),
    "contacted": N_("Contacted"),
    "qualified": N_("Qualified"),
    "converted": N_("Converted"),
    "disqualified": N_("Disqualified"),
}
SLA_LABELS: dict[str, str] = {
    "on_track": N_("On track"),
    "warning": N_("Due soon"),
    "breached": N_("Overdue"),
    "met": N_("Met"),
    "met_late": N_("Met late"),
}
STRATEGY_LABELS: dict[str, str] = {
    "round_robin": N_("Round robin"),
    "least_loaded": N_("Least loaded"),
    "capacity_weighted": N_("Weighted by capacity"),
    "claim": N_("Claimed from the pool"),
    "manual": N_("Reassigned by a manager"),
}
STAGE_LABELS: dict[str, str] = {
    "discovery": N_("Discovery"),
    "proposal": N_("Proposal"),
    "negotiation": N_("Negotiation"),
    "won": N_("Won"),
    "lost": N_("Lost"),
}
ACTIVITY_LABELS: dict[str, str] = {
    "created": N_("Created"),
    "enriched": N_("Triggered again"),
    "assigned": N_("Assigned by the routing table"),
    "pooled": N_("Put in the pool"),
    "claimed": N_("Claimed"),
    "returned": N_("Returned to the pool"),
    "recalled": N_("Recalled to the pool"),
    "reassigned": N_("Reassigned"),
    "contacted": N_("Contacted"),
    "qualified": N_("Qualified"),
    "disqualified": N_("Disqualified"),
    "converted": N_("Converted"),
    "sla_warned": N_("SLA warning"),
    "sla_breached": N_("SLA breached"),
    "sla_reassigned": N_("Routed again after the SLA breach"),
}
# What the routing record holds (oneloop/sales/leads.py ``route``), in reading order.
ROUTING_LABELS: dict[str, str] = {
    "table_version": N_("Routing table version"),
    "rule_row": N_("Rule row"),
    "rule": N_("Rule"),
    "team": N_("Team"),
    "strategy": N_("Strategy"),
    "reason": N_("Why this rep"),
    "why": N_("Why the pool"),
    "from": N_("Previous owner"),
}
SOURCE_KINDS: dict[str, str] = {
    "event": N_("Event"),
    "segment": N_("Entered segment"),
    "score": N_("Score reached"),
}
# The services' own words for a bad field, so a Chinese reader sees them translated too.
SERVICE_MESSAGES = (
    N_("no active user with this email holds a role here"),
    N_("no active user with this email holds a role in the unit"),
    N_("say why it was lost"),
)
CLAIMED_FIRST = N_("Someone else claimed this lead first. It is no longer in the pool.")
CLAIM_LIMIT = N_("You already hold %(limit)s open leads, the most the unit allows.")
BAD_AMOUNT = N_("Enter an amount of 0 or more, such as 480000.00.")


def source_label(source: str) -> tuple[str | None, str]:
    """``event:Demo Requested`` as (the kind's message id, the name): the kind is ours to
    translate, the name is data."""
    kind, _, name = source.partition(":")
    if name and kind in SOURCE_KINDS:
        return SOURCE_KINDS[kind], name
    return None, source


LABELS: dict[str, object] = {
    "status_labels": STATUS_LABELS,
    "sla_labels": SLA_LABELS,
    "strategy_labels": STRATEGY_LABELS,
    "stage_labels": STAGE_LABELS,
    "activity_labels": ACTIVITY_LABELS,
    "routing_labels": ROUTING_LABELS,
    "source_label": source_label,
}


# --- shared helpers --------------------------------------------------------------------------


@dataclass(frozen=True)
class SalesTab:
    path: str
    label: str


def sales_tabs(viewer: Viewer) -> list[SalesTab]:
    """The sales area's own tabs, each shown only to whom its page serves."""
    tabs = [
        SalesTab("/sales", N_("Leads") if manages(viewer) else N_("My leads")),
        SalesTab("/sales/pool", N_("Pool")),
        SalesTab("/sales/opportunities", N_("Opportunities")),
    ]
    if manages(viewer):
        tabs += [SalesTab("/sales/board", N_("Team board")), SalesTab("/sales/sla", N_("SLA"))]
    if viewer.can("sales.report.read"):
        tabs.append(SalesTab("/reports/sales", N_("Reports")))
    return tabs


def manages(viewer: Viewer) -> bool:
    return viewer.can(leads.READ_ALL) or viewer.can(leads.MANAGE)


def in_unit_only(request: Request, viewer: Viewer) -> Response | None:
    """Sales work happens in one unit; a group-wide viewer is asked to switch to one instead
    of meeting the service's "name the business unit" as an error page."""
    if not viewer.ctx.is_group_wide:
        return None
    return render(request, "sales/unit_needed.html", sales_context(viewer), viewer=viewer)


def sales_context(viewer: Viewer, **values: object) -> dict[str, object]:
    return {**LABELS, "sales_tabs": sales_tabs(viewer), **values}


def team_names(teams: list[Team], lang: str) -> dict[str, str]:
    return {t.id: (t.name_zh if lang == "zh-CN" else t.name_en) for t in teams}


def people(session: Session, viewer: Viewer, teams: list[Team]) -> dict[str, str]:
    """Display names of whoever may own or touch the unit's leads: the teams' reps and
    managers, and the viewer."""
    names = {m.user_id: m.display_name for t in teams for m in t.members}
    names[viewer.ctx.user_id] = viewer.user.display_name
    for manager in {t.manager_user_id for t in teams if t.manager_user_id} - names.keys():
        names[manager] = users.user_of(session, manager).display_name
    return names


def parse_amount(raw: str, *, required: bool) -> Decimal | None:
    """A money field as typed: refused beside the field in the reader's language, before
    pydantic's English words would be."""
    text = raw.strip().replace(",", "")
    if not text:
        if required:
            raise ValidationFailed("no amount", [FieldError(("amount",), BAD_AMOUNT)])
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0:
        raise ValidationFailed("bad amount", [FieldError(("amount",), BAD_AMOUNT)])
    return value


def conflict_errors(exc: Conflict) -> FormErrors:
    return FormErrors(general=[exc.detail])


# --- my leads --------------------------------------------------------------------------------


@router.get("/sales", response_class=HTMLResponse)
def my_leads(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    status: Text = "",
    scope: Text = "",
    team: Text = "",
    cursor: Text = "",
) -> Response:
    """A rep's own leads; a manager starts with the unit's, and may narrow to a team or to
    their own."""
    viewer.ctx.require(leads.READ)
    if (away := in_unit_only(request, viewer)) is not None:
        return away
    scope = scope if scope in ("mine", "all") and manages(viewer) else ""
    scope = scope or ("all" if manages(viewer) else "mine")
    if status and status not in STATUS_LABELS:
        raise ValidationFailed("unknown status", [FieldError(("status",), "choose a status")])
    found = leads.list_leads(
        session,
        viewer.ctx,
        status=status or None,
        owner="me" if scope == "mine" else None,
        team=team or None,
        cursor=cursor or None,
        limit=PAGE,
    )
    teams = config.list_teams(session, viewer.ctx)
    context = sales_context(
        viewer,
        page=found,
        pager=cursor_pager(request.url, found.next_cursor),
        status=status,
        scope=scope,
        team=team,
        teams=teams,
        team_names=team_names(teams, page_lang(request)),
        names=people(session, viewer, teams),
        may_work=viewer.can(leads.WORK),
    )
    return render(request, "sales/leads.html", context, viewer=viewer)


# --- the pool --------------------------------------------------------------------------------


@router.get("/sales/pool", response_class=HTMLResponse)
def pool(request: Request, viewer: ViewerDep, session: SessionDep, cursor: Text = "") -> Response:
    viewer.ctx.require(leads.READ)
    if (away := in_unit_only(request, viewer)) is not None:
        return away
    return _pool(request, session, viewer, cursor, None, None, 200)


def _pool(
    request: Request,
    session: Session,
    viewer: Viewer,
    cursor: str,
    notice: tuple[str, dict[str, object]] | None,
    failed_lead: str | None,
    status_code: int,
) -> Response:
    found = leads.list_leads(
        session, viewer.ctx, status="pooled", cursor=cursor or None, limit=PAGE
    )
    teams = config.list_teams(session, viewer.ctx)
    context = sales_context(
        viewer,
        page=found,
        pager=cursor_pager(request.url, found.next_cursor),
        team_names=team_names(teams, page_lang(request)),
        may_claim=viewer.can(leads.WORK),
        notice=notice,
        failed_lead=failed_lead,
    )
    return render(request, "sales/pool.html", context, viewer=viewer, status_code=status_code)


@router.post("/sales/leads/{lead_id}/claim", response_class=HTMLResponse)
def claim(request: Request, lead_id: str, viewer: ViewerDep, session: SessionDep) -> Response:
    """Won: the lead is the rep's now, and its page opens. Lost to another rep (or over the
    unit's limit): the pool again, saying so, with the service's 409."""
    try:
        with session.begin_nested():
            leads.claim(session, viewer.ctx, lead_id)
    except Conflict as exc:
        limit = exc.context.get("limit")
        notice = (CLAIM_LIMIT, {"limit": limit}) if limit is not None else (CLAIMED_FIRST, {})
        return _pool(request, session, viewer, "", notice, lead_id, 409)
    return RedirectResponse(f"/sales/leads/{lead_id}", status_code=303)


# --- one lead --------------------------------------------------------------------------------


@router.get("/sales/leads/{lead_id}", response_class=HTMLResponse)
def lead_page(request: Request, lead_id: str, viewer: ViewerDep, session: SessionDep) -> Response:
    return _lead(request, session, viewer, lead_id)


def _lead(
    request: Request,
    session: Session,
    viewer: Viewer,
    lead_id: str,
    *,
    errors: dict[str, FormErrors] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    if (away := in_unit_only(request, viewer)) is not None:
        return away
    lead = leads.get_lead(session, viewer.ctx, lead_id)
    teams = config.list_teams(session, viewer.ctx)
    names = people(session, viewer, teams)
    may_act = viewer.can(leads.WORK) and (
        lead.owner_user_id == viewer.ctx.user_id or viewer.can(leads.MANAGE)
    )
    reps = {
        m.email: f"{m.display_name} · {t.name_zh if page_lang(request) == 'zh-CN' else t.name_en}"
        for t in teams
        for m in t.members
    }
    found: dict[str, FormErrors] = errors or {}
    context = sales_context(
        viewer,
        lead=lead,
        activity=leads.activity(session, viewer.ctx, lead_id),
        team_names=team_names(teams, page_lang(request)),
        names=names,
        may_act=may_act,
        may_manage=viewer.can(leads.MANAGE),
        may_claim=viewer.can(leads.WORK) and lead.status == "pooled",
        rep_options=sorted(reps.items(), key=lambda kv: kv[1]),
        errors={k: found.get(k, FormErrors()) for k in ("status", "convert", "assign")},
        values=values or {},
        is_open=lead.status in ("pooled", "assigned", "contacted", "qualified"),
    )
    return render(request, "sales/lead.html", context, viewer=viewer, status_code=status_code)


def _failed(
    request: Request,
    session: Session,
    viewer: Viewer,
    lead_id: str,
    form: str,
    exc: ValidationFailed | Conflict,
    names: set[str],
    values: dict[str, str],
) -> Response:
    """The lead's page again, the refusal beside the field it names (422) or above the form
    when the lead changed meanwhile (409). The refused change was undone to its savepoint."""
    if isinstance(exc, ValidationFailed):
        found, status = FormErrors.of(exc, names), 422
    else:
        found, status = conflict_errors(exc), 409
    return _lead(
        request,
        session,
        viewer,
        lead_id,
        errors={form: found},
        values=values,
        status_code=status,
    )


@router.post("/sales/leads/{lead_id}/status", response_class=HTMLResponse)
def set_status(
    request: Request,
    lead_id: str,
    viewer: ViewerDep,
    session: SessionDep,
    status: Annotated[str, Form(max_length=16)] = "",
    reason: FormText = "",
    next: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    """Contacted and qualified are one click; disqualified needs a reason, asked beside its
    field (the API's ``StatusIn`` would refuse it without naming the field)."""
    try:
        if status == "disqualified":
            reason = parse_form(ReasonIn, {"reason": reason.strip()}).reason
        data = parse_form(StatusIn, {"status": status, "reason": reason.strip()})
        with session.begin_nested():
            leads.set_status(session, viewer.ctx, lead_id, data.status, data.reason)
    except (ValidationFailed, Conflict) as exc:
        values = {"reason": reason}
        return _failed(request, session, viewer, lead_id, "status", exc, {"reason"}, values)
    return RedirectResponse(local_path(next, f"/sales/leads/{lead_id}"), status_code=303)


@router.post("/sales/leads/{lead_id}/convert", response_class=HTMLResponse)
def convert(
    request: Request,
    lead_id: str,
    viewer: ViewerDep,
    session: SessionDep,
    name: FormText = "",
    amount: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    values = {"name": name, "amount": amount}
    try:
        errors: list[FieldError] = []
        try:
            money = parse_amount(amount, required=True)
        except ValidationFailed as exc:
            errors += exc.errors
            money = Decimal(0)
        try:
            data = parse_form(OpportunityIn, {"name": name.strip(), "amount": money})
        except ValidationFailed as exc:
            errors += exc.errors
        if errors:  # both fields' errors at once, not one per try
            raise ValidationFailed("the form has errors", errors)
        with session.begin_nested():
            made = opportunities.convert(session, viewer.ctx, lead_id, data)
    except (ValidationFailed, Conflict) as exc:
        return _failed(
            request, session, viewer, lead_id, "convert", exc, {"name", "amount"}, values
        )
    return RedirectResponse(f"/sales/opportunities#opp-{made.id}", status_code=303)


@router.post("/sales/leads/{lead_id}/assign", response_class=HTMLResponse)
def reassign(
    request: Request,
    lead_id: str,
    viewer: ViewerDep,
    session: SessionDep,
    email: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    """A manager hands the lead to a rep, or (no rep chosen) has the table route it again."""
    try:
        data = parse_form(AssignIn, {"email": email.strip()})
        with session.begin_nested():
            leads.reassign(session, viewer.ctx, lead_id, data.email)
    except (ValidationFailed, Conflict) as exc:
        values = {"email": email}
        return _failed(request, session, viewer, lead_id, "assign", exc, {"email"}, values)
    return RedirectResponse(f"/sales/leads/{lead_id}", status_code=303)


# --- returning a lead to the pool: a confirmation first --------------------------------------


@router.get("/sales/leads/{lead_id}/return", response_class=HTMLResponse)
def confirm_return(
    request: Request, lead_id: str, viewer: ViewerDep, session: SessionDep
) -> Response:
    lead = leads.get_lead(session, viewer.ctx, lead_id)
    return _confirm_return(request, viewer, lead, FormErrors(), 200)


def _confirm_return(
    request: Request, viewer: Viewer, lead: LeadOut, errors: FormErrors, status_code: int
) -> Response:
    company = lead.context.get("firmographics", {}).get("company") or lead.profile_id
    return render(
        request,
        "confirm.html",
        {
            "title": N_("Return a lead to the pool"),
            "message": N_("Return the lead of %(customer)s to the pool? Any rep may claim it."),
            "message_args": {"customer": str(company)},
            "action": f"/sales/leads/{lead.id}/return",
            "cancel": f"/sales/leads/{lead.id}",
            "button": N_("Return to the pool"),
            "reason_label": N_("Why (kept in the lead's history)"),
            "errors": errors,
        },
        viewer=viewer,
        status_code=status_code,
    )


@router.post("/sales/leads/{lead_id}/return", response_class=HTMLResponse)
def return_lead(
    request: Request, lead_id: str, viewer: ViewerDep, session: SessionDep, reason: FormText = ""
) -> Response:
    try:
        data = parse_form(ReasonIn, {"reason": reason.strip()})
        with session.begin_nested():
            leads.return_to_pool(session, viewer.ctx, lead_id, data.reason)
    except (ValidationFailed, Conflict) as exc:
        lead = leads.get_lead(session, viewer.ctx, lead_id)
        if isinstance(exc, ValidationFailed):
            return _confirm_return(request, viewer, lead, FormErrors.of(exc, {"reason"}), 422)
        return _confirm_return(request, viewer, lead, conflict_errors(exc), 409)
    return RedirectResponse("/sales", status_code=303)
