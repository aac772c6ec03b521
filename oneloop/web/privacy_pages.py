"""Privacy requests (DSAR): the list with each deadline (overdue ones stand out), logging an
access, erasure or objection request for a customer, and executing or rejecting one after a
confirmation.

A unit logs and follows its requests; only the group (HQ) executes them, because a request
reaches every unit's data about the person: the service refuses a unit, and the page offers
the button to the group only. An access request's export is the answer to the POST that
executes it, a JSON file to download: the service keeps no copy, so neither does the page
(no address to fetch it again, nothing cached).
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from oneloop.api.deps import SessionDep
from oneloop.core.errors import NotFound
from oneloop.governance import privacy
from oneloop.governance.privacy_models import PrivacyRequestRow
from oneloop.governance.privacy_schemas import PrivacyRequest, PrivacyRequestIn, RejectIn
from oneloop.web.forms import FormErrors, parse_form
from oneloop.web.governance_pages import REFUSALS, Confirmation, confirm_page, refusal
from oneloop.web.nav import N_
from oneloop.web.templating import render
from oneloop.web.viewer import Viewer, ViewerDep

router = APIRouter(include_in_schema=False)

KINDS: tuple[tuple[str, str], ...] = (
    ("access", N_("Access: a copy of everything held")),
    ("erasure", N_("Erasure: remove the person's data")),
    ("objection", N_("Objection to profiling")),
)
KIND_NAMES = {"access": N_("Access"), "erasure": N_("Erasure"), "objection": N_("Objection")}
CHANNELS: tuple[tuple[str, str], ...] = (
    ("web", N_("Web form")),
    ("email", N_("Email")),
    ("letter", N_("Letter")),
    ("phone", N_("Phone")),
    ("in_person", N_("In person")),
    ("other", N_("Other")),
)
STATUSES: tuple[tuple[str, str], ...] = (
    ("received", N_("Open")),
    ("completed", N_("Completed")),
    ("rejected", N_("Rejected")),
)
FIELDS = {"kind", "profile_id", "channel", "note"}
Short = Annotated[str, Form(max_length=600)]


def _shown(row: PrivacyRequestRow, viewer: Viewer) -> PrivacyRequest:
    made = PrivacyRequest.model_validate(row)
    made.is_overdue = privacy.is_overdue(row, viewer.ctx.clock.now())
    return made


def _list(
    request: Request,
    session: Session,
    viewer: Viewer,
    *,
    status: str,
    overdue: bool,
    values: dict[str, str],
    errors: FormErrors,
    status_code: int,
) -> Response:
    rows = privacy.list_requests(
        session,
        viewer.ctx,
        status=status if status in dict(STATUSES) else None,
        overdue=overdue,
    )
    return render(
        request,
        "governance/privacy.html",
        {
            "requests": [_shown(r, viewer) for r in rows],
            "status": status,
            "overdue": overdue,
            "statuses": STATUSES,
            "kinds": KINDS,
            "kind_names": KIND_NAMES,
            "channels": CHANNELS,
            "channel_names": dict(CHANNELS),
            "status_names": dict(STATUSES),
            "values": values,
            "errors": errors,
            "may_execute": viewer.ctx.is_group_wide,
            "created": request.query_params.get("created", ""),
            "now": viewer.ctx.clock.now(),
        },
        viewer=viewer,
        status_code=status_code,
    )


@router.get("/privacy", response_class=HTMLResponse)
def privacy_page(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    status: Annotated[str, Query(max_length=16)] = "",
    overdue: Annotated[str, Query(max_length=5)] = "",
) -> Response:
    values = {"kind": "access", "channel": "web"}
    return _list(
        request,
        session,
        viewer,
        status=status,
        overdue=overdue == "1",
        values=values,
        errors=FormErrors(),
        status_code=200,
    )


@router.post("/privacy", response_class=HTMLResponse)
def create_request(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    kind: Short = "",
    profile_id: Short = "",
    channel: Short = "",
    note: Short = "",
) -> Response:
    values = {"kind": kind, "profile_id": profile_id.strip(), "channel": channel, "note": note}
    try:
        data = parse_form(PrivacyRequestIn, values)
        with session.begin_nested():
            row = privacy.create_request(
                session, viewer.ctx, data.kind, data.profile_id, data.channel, data.note
            )
    except NotFound:
        # A customer this unit cannot see is not found, whether or not it exists elsewhere.
        errors = FormErrors(fields={"profile_id": [N_("No customer with this OneID.")]})
        return _list_again(request, session, viewer, values, errors, 404)
    except REFUSALS as exc:
        errors, code = refusal(exc, FIELDS)
        return _list_again(request, session, viewer, values, errors, code)
    return RedirectResponse(f"/privacy?created={row.id}#request-{row.id}", status_code=303)


def _list_again(
    request: Request,
    session: Session,
    viewer: Viewer,
    values: dict[str, str],
    errors: FormErrors,
    status_code: int,
) -> Response:
    return _list(
        request,
        session,
        viewer,
        status="",
        overdue=False,
        values=values,
        errors=errors,
        status_code=status_code,
    )


# --- execute, reject ----------------------------------------------------------------------------


def _execute_question(row: PrivacyRequest) -> Confirmation:
    messages = {
        "access": N_(
            "Export everything held about %(profile)s? The file downloads now and is not "
            "kept: store it where the reply to the person is prepared."
        ),
        "erasure": N_(
            "Erase %(profile)s everywhere? Their personal data is removed from every unit "
            "and cannot be brought back."
        ),
        "objection": N_(
            "Stop profiling %(profile)s? Their scores, segments and rule tags are removed."
        ),
    }
    return Confirmation(
        title=N_("Execute a privacy request"),
        message=messages.get(row.kind, messages["objection"]),
        action=f"/privacy/{row.id}/execute",
        cancel=f"/privacy#request-{row.id}",
        button=N_("Execute"),
        args={"profile": row.profile_id},
    )


@router.get("/privacy/{request_id}/execute", response_class=HTMLResponse)
def confirm_execute(
    request: Request, request_id: str, viewer: ViewerDep, session: SessionDep
) -> Response:
    row = _shown(privacy.get_request(session, viewer.ctx, request_id), viewer)
    return confirm_page(request, viewer, _execute_question(row))


@router.post("/privacy/{request_id}/execute")
def execute(request: Request, request_id: str, viewer: ViewerDep, session: SessionDep) -> Response:
    try:
        with session.begin_nested():
            row, document = privacy.execute(session, viewer.ctx, request_id)
    except REFUSALS as exc:
        errors, code = refusal(exc, set())
        shown = _shown(privacy.get_request(session, viewer.ctx, request_id), viewer)
        return confirm_page(request, viewer, _execute_question(shown), errors, code)
    if document is None:
        return RedirectResponse(f"/privacy#request-{row.id}", status_code=303)
    body = json.dumps(jsonable_encoder(document), ensure_ascii=False, indent=2, sort_keys=True)
    return Response(
        body,
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="privacy-access-{row.id}.json"',
            "Cache-Control": "no-store",
        },
    )


def _reject_question(row: PrivacyRequest) -> Confirmation:
    return Confirmation(
        title=N_("Reject a privacy request"),
        message=N_("Reject the request %(id)s for %(profile)s? Say why; the reason is kept."),
        action=f"/privacy/{row.id}/reject",
        cancel=f"/privacy#request-{row.id}",
        button=N_("Reject"),
        args={"id": row.id, "profile": row.profile_id},
        reason_label=N_("Why (e.g. the person's identity could not be verified)"),
    )


@router.get("/privacy/{request_id}/reject", response_class=HTMLResponse)
def confirm_reject(
    request: Request, request_id: str, viewer: ViewerDep, session: SessionDep
) -> Response:
    row = _shown(privacy.get_request(session, viewer.ctx, request_id), viewer)
    return confirm_page(request, viewer, _reject_question(row))


@router.post("/privacy/{request_id}/reject", response_class=HTMLResponse)
def reject(
    request: Request,
    request_id: str,
    viewer: ViewerDep,
    session: SessionDep,
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    try:
        data = parse_form(RejectIn, {"reason": reason.strip()})
        with session.begin_nested():
            privacy.reject(session, viewer.ctx, request_id, data.reason)
    except REFUSALS as exc:
        errors, code = refusal(exc, {"reason"})
        shown = _shown(privacy.get_request(session, viewer.ctx, request_id), viewer)
        return confirm_page(request, viewer, _reject_question(shown), errors, code)
    return RedirectResponse(f"/privacy#request-{request_id}", status_code=303)
