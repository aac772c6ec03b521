"""Opportunities: converted leads' deals, and their stage changes up to won or lost (lost
with a reason). A rep sees and moves their own; a manager the unit's. The calls are the
API's: ``opportunities.list_opportunities``, ``get_opportunity`` and ``set_stage``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from oneloop.api.deps import SessionDep
from oneloop.core.errors import Conflict, FieldError, ValidationFailed
from oneloop.sales import config, leads, opportunities
from oneloop.sales.schemas import Opportunity, StageIn
from oneloop.web.forms import FormErrors, parse_form
from oneloop.web.nav import N_
from oneloop.web.sales_pages import (
    STAGE_LABELS,
    conflict_errors,
    in_unit_only,
    parse_amount,
    people,
    sales_context,
)
from oneloop.web.templating import render
from oneloop.web.viewer import Viewer, ViewerDep

router = APIRouter(include_in_schema=False)

STATUS_FILTERS: tuple[tuple[str, str], ...] = (
    ("open", N_("Open")),
    ("won", N_("Won")),
    ("lost", N_("Lost")),
)
LOST_NEEDS_REASON = N_("Say why it was lost.")


@router.get("/sales/opportunities", response_class=HTMLResponse)
def opportunity_list(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    status: Annotated[str, Query(max_length=8)] = "",
) -> Response:
    viewer.ctx.require(leads.READ)
    if (away := in_unit_only(request, viewer)) is not None:
        return away
    if status and status not in dict(STATUS_FILTERS):
        raise ValidationFailed("unknown status", [FieldError(("status",), "open, won or lost")])
    found = opportunities.list_opportunities(session, viewer.ctx, status or None)
    context = sales_context(
        viewer,
        items=found,
        status=status,
        status_filters=STATUS_FILTERS,
        names=people(session, viewer, config.list_teams(session, viewer.ctx)),
        may_move=_may_move,
    )
    return render(request, "sales/opportunities.html", context, viewer=viewer)


@router.get("/sales/opportunities/{opportunity_id}", response_class=HTMLResponse)
def opportunity_page(
    request: Request, opportunity_id: str, viewer: ViewerDep, session: SessionDep
) -> Response:
    return _opportunity(request, session, viewer, opportunity_id)


def _opportunity(
    request: Request,
    session: Session,
    viewer: Viewer,
    opportunity_id: str,
    *,
    errors: FormErrors | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    found = opportunities.get_opportunity(session, viewer.ctx, opportunity_id)
    context = sales_context(
        viewer,
        opp=found,
        names=people(session, viewer, config.list_teams(session, viewer.ctx)),
        may_move=_may_move(viewer, found),
        stage_options=[(code, label) for code, label in STAGE_LABELS.items()],
        errors=errors or FormErrors(),
        values=values or {},
    )
    return render(
        request, "sales/opportunity.html", context, viewer=viewer, status_code=status_code
    )


def _may_move(viewer: Viewer, opp: Opportunity) -> bool:
    """What the service allows, said before the click: an open deal, by its owner or a
    manager."""
    mine = opp.owner_user_id == viewer.ctx.user_id or viewer.can(leads.MANAGE)
    return opp.status == "open" and viewer.can(leads.WORK) and mine


@router.post("/sales/opportunities/{opportunity_id}/stage", response_class=HTMLResponse)
def set_stage(
    request: Request,
    opportunity_id: str,
    viewer: ViewerDep,
    session: SessionDep,
    stage: Annotated[str, Form(max_length=16)] = "",
    amount: Annotated[str, Form(max_length=40)] = "",
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    values = {"stage": stage, "amount": amount, "reason": reason}
    try:
        money = parse_amount(amount, required=False)
        if stage == "lost" and not reason.strip():  # the service says so too, in English
            raise ValidationFailed("no reason", [FieldError(("reason",), LOST_NEEDS_REASON)])
        data = parse_form(StageIn, {"stage": stage, "amount": money, "reason": reason.strip()})
        with session.begin_nested():
            opportunities.set_stage(session, viewer.ctx, opportunity_id, data)
    except (ValidationFailed, Conflict) as exc:
        if isinstance(exc, ValidationFailed):
            errors, status = FormErrors.of(exc, {"stage", "amount", "reason"}), 422
        else:
            errors, status = conflict_errors(exc), 409
        return _opportunity(
            request,
            session,
            viewer,
            opportunity_id,
            errors=errors,
            values=values,
            status_code=status,
        )
    return RedirectResponse(f"/sales/opportunities#opp-{opportunity_id}", status_code=303)
