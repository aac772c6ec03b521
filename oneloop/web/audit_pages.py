"""The audit log, read-only: who did what, newest first, filtered by actor, action, object
and days.

A thin page over ``governance.audit.list_entries`` (which checks ``governance.audit.read``
and a unit's isolation). The days are the reader's unit's calendar days, both included:
``from`` is the start of the first, ``to`` the end of the last.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from oneloop.api.deps import SessionDep
from oneloop.core.errors import FieldError, ValidationFailed
from oneloop.governance import audit
from oneloop.web.forms import FormErrors
from oneloop.web.nav import N_
from oneloop.web.paging import cursor_pager
from oneloop.web.templating import render
from oneloop.web.viewer import ViewerDep

router = APIRouter(include_in_schema=False)
PAGE = 50
Text = Annotated[str, Query(max_length=200)]


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    action: Text = "",
    object_id: Text = "",
    actor: Text = "",
    object_type: Text = "",
    since: Annotated[str, Query(max_length=10, alias="from")] = "",
    until: Annotated[str, Query(max_length=10, alias="to")] = "",
    cursor: Text = "",
) -> Response:
    if cursor and not cursor.isdigit():
        raise ValidationFailed("bad cursor", [FieldError(("cursor",), "not a page of this log")])
    shown = {
        "action": action,
        "object_id": object_id,
        "actor": actor,
        "object_type": object_type,
        "since": since,
        "until": until,
    }
    zone = ZoneInfo(viewer.unit.time_zone)
    try:
        start, end = _day(since, "from", zone), _day(until, "to", zone)
    except ValidationFailed as exc:  # said beside the field, with the form as it was typed
        errors = FormErrors.of(exc, {"from", "to"})
        context = {"entries": [], "pager": cursor_pager(request.url, None), "errors": errors}
        return render(request, "audit.html", context | shown, viewer=viewer, status_code=422)
    found = audit.list_entries(
        session,
        viewer.ctx,
        action=action.strip() or None,
        object_id=object_id.strip() or None,
        actor=actor.strip() or None,
        object_type=object_type.strip() or None,
        since=start,
        until=end + timedelta(days=1) if end is not None else None,
        cursor=int(cursor) if cursor else None,
        limit=PAGE,
    )
    context = {
        "entries": found.items,
        "pager": cursor_pager(request.url, found.next_cursor),
        "errors": FormErrors(),
    }
    return render(request, "audit.html", context | shown, viewer=viewer)


def _day(value: str, field: str, zone: ZoneInfo) -> datetime | None:
    """The start of the day ``value`` (``YYYY-MM-DD``, as a date input sends it) in ``zone``."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(
            "bad day", [FieldError((field,), N_("Give a day such as 2026-03-01."))]
        ) from None
    return datetime.combine(day, time(), tzinfo=zone)
