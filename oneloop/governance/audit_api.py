"""HTTP for the audit log: ``/api/v1/audit``, search and chain verification. Admin only until
roles land; the service checks ``governance.audit.read``, which compliance will hold."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from oneloop.api.auth import CallerDep
from oneloop.api.deps import SessionDep
from oneloop.api.paging import Page, PageRequest, list_query
from oneloop.core.paging import bad_cursor, write_cursor
from oneloop.governance import audit
from oneloop.governance.schemas import AuditEntry, VerifyResult

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


EntryList = Annotated[PageRequest, Depends(list_query("audit", audit.ENTRY_SORTS, default="-seq"))]


def _old_cursor(page: PageRequest) -> PageRequest:
    """Until the next release, a plain ``seq`` (the integer cursor this route gave out
    before issue 8) still reads as "the entries before that one", in the default order."""
    if page.cursor is None or not page.cursor.isdigit() or len(page.cursor) > 18:
        return page
    if page.sort_token != "-seq":  # noqa: S105  (a sort, not a secret)
        raise bad_cursor("an integer cursor pages with sort=-seq only")
    seq = int(page.cursor)
    return replace(page, cursor=write_cursor(page, seq, seq))


@router.get("", summary="Audit entries, newest first, paged by cursor")
def list_entries(
    session: SessionDep,
    ctx: CallerDep,
    page: EntryList,
    action: Annotated[str | None, Query(max_length=64, description="e.g. segment.exported")] = None,
    object_type: Annotated[str | None, Query(max_length=64, description="e.g. segment")] = None,
    object_id: Annotated[str | None, Query(max_length=200, description="the object's id")] = None,
    actor: Annotated[str | None, Query(max_length=200, description="the user's id")] = None,
    since: Annotated[
        datetime | None, Query(description="from this time, with offset: 2026-01-01T00:00Z")
    ] = None,
    until: Annotated[datetime | None, Query(description="before this time, with offset")] = None,
) -> Page[AuditEntry]:
    return audit.page_entries(
        session,
        ctx,
        _old_cursor(page),
        action=action,
        object_type=object_type,
        object_id=object_id,
        actor=actor,
        since=since,
        until=until,
    )


@router.get("/verify", summary="Check the hash chain; name the first edited or deleted entry")
def verify(session: SessionDep, ctx: CallerDep) -> VerifyResult:
    ctx.require(audit.READ_PERMISSION)
    return audit.verify(session)
