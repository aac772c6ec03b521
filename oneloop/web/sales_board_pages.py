"""Sales for a manager: the team board (each team's load, each rep's open leads against
capacity and duty), the leads whose first-contact SLA warned or breached, and the sweeps a
manager may run now (recall untouched leads, route the pool again).

Duty and capacity change through ``config.set_member``, the same call as
``PUT /api/v1/sales/teams/{team}/members``: it checks ``sales.config.manage`` and audits.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from oneloop.api.deps import SessionDep
from oneloop.core.errors import FieldError, Forbidden, NotFound, ValidationFailed
from oneloop.sales import config, leads
from oneloop.sales.schemas import MemberIn
from oneloop.web.forms import FormErrors
from oneloop.web.nav import N_
from oneloop.web.sales_pages import in_unit_only, manages, people, sales_context, team_names
from oneloop.web.templating import page_lang, render
from oneloop.web.viewer import Viewer, ViewerDep

router = APIRouter(include_in_schema=False)

MAX_CAPACITY = 10_000
BAD_CAPACITY = N_("Enter a whole number from 0 to 10,000.")
Count = Annotated[int | None, Query(ge=0, le=1_000_000)]


def _require_manager(viewer: Viewer) -> None:
    """The board and the SLA list are a manager's pages; the services scope what they read
    either way (a rep would see only their own leads and the pool's)."""
    if not manages(viewer):
        raise Forbidden(
            "this page needs the permission 'sales.lead.read_all'", permission=leads.READ_ALL
        )


# --- the team board --------------------------------------------------------------------------


@router.get("/sales/board", response_class=HTMLResponse)
def board(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    recalled: Count = None,
    routed: Count = None,
    assigned: Count = None,
) -> Response:
    _require_manager(viewer)
    if (away := in_unit_only(request, viewer)) is not None:
        return away
    done = {"recalled": recalled, "routed": routed, "assigned": assigned}
    return _board(request, session, viewer, done=done)


def _board(
    request: Request,
    session: Session,
    viewer: Viewer,
    *,
    done: dict[str, int | None] | None = None,
    row_errors: dict[tuple[str, str], FormErrors] | None = None,
    status_code: int = 200,
) -> Response:
    teams = config.list_teams(session, viewer.ctx)
    loads = {load.team_id: load for load in leads.team_loads(session, viewer.ctx)}
    context = sales_context(
        viewer,
        teams=teams,
        loads=loads,
        unrouted=loads.get(None),
        team_names=team_names(teams, page_lang(request)),
        names=people(session, viewer, teams),
        may_configure=viewer.can(config.CONFIGURE),
        may_manage=viewer.can(leads.MANAGE),
        done=done or {},
        row_errors=row_errors or {},
    )
    return render(request, "sales/board.html", context, viewer=viewer, status_code=status_code)


@router.post("/sales/board/members", response_class=HTMLResponse)
def set_member(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    team: Annotated[str, Form(max_length=64)] = "",
    email: Annotated[str, Form(max_length=320)] = "",
    capacity: Annotated[str, Form(max_length=20)] = "",
    on_duty: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """One rep's duty or capacity; what the form leaves out keeps its current value (weight
    is not on the board, so it is never overwritten from a stale page)."""
    current = config.get_team(session, viewer.ctx, team)
    member = next((m for m in current.members if m.email == email.strip().lower()), None)
    if member is None:
        raise NotFound("the user is not in this team", email=email)
    try:
        data = MemberIn(
            email=member.email,
            capacity=_capacity(capacity) if capacity != "" else member.capacity,
            weight=member.weight,
            on_duty=member.on_duty if on_duty == "" else on_duty == "1",
        )
        with session.begin_nested():
            config.set_member(session, viewer.ctx, team, data)
    except ValidationFailed as exc:
        errors = {(team, member.email): FormErrors.of(exc, {"capacity"})}
        return _board(request, session, viewer, row_errors=errors, status_code=422)
    return RedirectResponse(f"/sales/board#team-{team}", status_code=303)


def _capacity(raw: str) -> int:
    text = raw.strip()
    if not text.isdigit() or int(text) > MAX_CAPACITY:
        raise ValidationFailed("bad capacity", [FieldError(("capacity",), BAD_CAPACITY)])
    return int(text)


@router.post("/sales/recall", response_class=HTMLResponse)
def recall(viewer: ViewerDep, session: SessionDep) -> Response:
    """The recall sweep now, for the viewer's unit (``POST /api/v1/sales/recall``)."""
    count = leads.recall(session, viewer.ctx)
    return RedirectResponse(f"/sales/board?recalled={count}", status_code=303)


@router.post("/sales/pool/route", response_class=HTMLResponse)
def route_pool(viewer: ViewerDep, session: SessionDep) -> Response:
    """Route the pooled leads again: after reps came back on duty or got room."""
    looked_at, owned = leads.route_pool(session, viewer.ctx)
    return RedirectResponse(f"/sales/board?routed={looked_at}&assigned={owned}", status_code=303)


# --- SLA: warnings and breaches ---------------------------------------------------------------


@router.get("/sales/sla", response_class=HTMLResponse)
def sla(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    team: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    _require_manager(viewer)
    if (away := in_unit_only(request, viewer)) is not None:
        return away
    teams = config.list_teams(session, viewer.ctx)
    found = leads.at_risk(session, viewer.ctx, team=team or None)
    context = sales_context(
        viewer,
        breached=[x for x in found if x.sla_state == "breached"],
        warning=[x for x in found if x.sla_state == "warning"],
        teams=teams,
        team=team,
        team_names=team_names(teams, page_lang(request)),
        names=people(session, viewer, teams),
    )
    return render(request, "sales/sla.html", context, viewer=viewer)
