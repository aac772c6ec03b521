"""HTTP for privacy requests: ``/api/v1/privacy/requests``. A unit logs and follows its
requests; the group executes them (403 for a unit: the request reaches every unit's data).
An access request's export is in the answer that executes it, and is not kept."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query
from sqlalchemy.orm import Session

from oneloop.api.auth import CallerDep
from oneloop.api.deps import SessionDep
from oneloop.api.idempotency import shown_once
from oneloop.api.paging import Page, PageRequest, list_query
from oneloop.core.context import Context
from oneloop.governance import privacy
from oneloop.governance.privacy_models import PrivacyRequestRow
from oneloop.governance.privacy_schemas import Executed, PrivacyRequest, PrivacyRequestIn, RejectIn

router = APIRouter(prefix="/api/v1/privacy/requests", tags=["privacy requests"])

RequestId = Annotated[str, Path(description="the request's id", max_length=64)]


def _out(row: PrivacyRequestRow, ctx: Context) -> PrivacyRequest:
    made = PrivacyRequest.model_validate(row)
    made.is_overdue = privacy.is_overdue(row, ctx.clock.now())
    return made


RequestList = Annotated[
    PageRequest, Depends(list_query("privacy-requests", privacy.REQUEST_SORTS, default="due_at"))
]


@router.get("", summary="Privacy requests, nearest deadline first")
def list_requests(
    session: SessionDep,
    ctx: CallerDep,
    page: RequestList,
    status: Annotated[
        str | None, Query(description="received, completed or rejected", max_length=16)
    ] = None,
    kind: Annotated[
        str | None, Query(description="access, erasure or restriction", max_length=16)
    ] = None,
    overdue: Annotated[bool, Query(description="only open requests past their deadline")] = False,
) -> Page[PrivacyRequest]:
    rows, next_cursor = privacy.page_requests(
        session, ctx, page, status=status, kind=kind, overdue=overdue
    )
    return Page(items=[_out(r, ctx) for r in rows], next_cursor=next_cursor)


@router.post(
    "",
    summary="Log a request (and carry it out at once with execute)",
    status_code=201,
    openapi_extra=shown_once("request.id", "/api/v1/privacy/requests/{id}"),
)
def create_request(
    data: Annotated[
        PrivacyRequestIn,
        Body(
            openapi_examples={
                "erasure by email": {
                    "value": {
                        "kind": "erasure",
                        "profile_id": "01J…",
                        "channel": "email",
                        "note": "ticket 4711",
                    }
                }
            }
        ),
    ],
    session: SessionDep,
    ctx: CallerDep,
) -> Executed:
    row = privacy.create_request(session, ctx, data.kind, data.profile_id, data.channel, data.note)
    if not data.execute:
        return Executed(request=_out(row, ctx))
    return _executed(session, ctx, row.id)


@router.get("/{request_id}", summary="A request, its deadline and what was done")
def get_request(request_id: RequestId, session: SessionDep, ctx: CallerDep) -> PrivacyRequest:
    return _out(privacy.get_request(session, ctx, request_id), ctx)


@router.post(
    "/{request_id}/execute",
    summary="Carry a request out (the group only)",
    openapi_extra=shown_once("request.id", "/api/v1/privacy/requests/{id}"),
)
def execute(request_id: RequestId, session: SessionDep, ctx: CallerDep) -> Executed:
    return _executed(session, ctx, request_id)


@router.post("/{request_id}/reject", summary="Refuse a request, saying why")
def reject(
    request_id: RequestId, data: RejectIn, session: SessionDep, ctx: CallerDep
) -> PrivacyRequest:
    return _out(privacy.reject(session, ctx, request_id, data.reason), ctx)


def _executed(session: Session, ctx: Context, request_id: str) -> Executed:
    row, document = privacy.execute(session, ctx, request_id)
    return Executed(request=_out(row, ctx), document=document)
