"""The audit log, read-only: who did what, newest first, filtered by action or object.

A thin page over ``governance.audit.list_entries`` (which checks ``governance.audit.read``
and a unit's isolation); the governance pages will grow around it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from oneloop.api.deps import SessionDep
from oneloop.core.errors import FieldError, ValidationFailed
from oneloop.governance import audit
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
    cursor: Text = "",
) -> Response:
    if cursor and not cursor.isdigit():
        raise ValidationFailed("bad cursor", [FieldError(("cursor",), "not a page of this log")])
    found = audit.list_entries(
        session,
        viewer.ctx,
        action=action or None,
        object_id=object_id or None,
        cursor=int(cursor) if cursor else None,
        limit=PAGE,
    )
    return render(
        request,
        "audit.html",
        {
            "entries": found.items,
            "pager": cursor_pager(request.url, found.next_cursor),
            "action": action,
            "object_id": object_id,
        },
        viewer=viewer,
    )
