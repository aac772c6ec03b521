"""HTTP for the audit log: ``/api/v1/audit``, search and chain verification. Admin only until
roles land; the service checks ``governance.audit.read``, which compliance will hold."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from oneloop.api.auth import CallerDep
from oneloop.api.deps import SessionDep
from oneloop.governance import audit
from oneloop.governance.schemas import AuditPage, VerifyResult

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("", summary="Audit entries, newest first, paged by cursor")
def list_entries(
    session: SessionDep,
    ctx: CallerDep,
    action: Annotated[str | None, Query(max_length=64, description="e.g. segment.exported")] = None,
    object_type: Annotated[str | None, Query(max_length=64, description="e.g. segment")] = None,
    object_id: Annotated[str | None, Query(max_length=200, description="the object's id")] = None,
    actor: Annotated[str | None, Query(max_length=200, description="the user's id")] = None,
    since: Annotated[
        datetime | None, Query(description="from this time, with offset: 2026-01-01T00:00Z")
    ] = None,
    until: Annotated[datetime | None, Query(description="before this time, with offset")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[int | None, Query(ge=1, description="next_cursor of a previous page")] = None,
) -> AuditPage:
    return audit.list_entries(
        session,
        ctx,
        action=action,
        object_type=object_type,
        object_id=object_id,
        actor=actor,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )


@router.get("/verify", summary="Check the hash chain; name the first edited or deleted entry")
def verify(session: SessionDep, ctx: CallerDep) -> VerifyResult:
    ctx.require(audit.READ_PERMISSION)
    return audit.verify(session)
