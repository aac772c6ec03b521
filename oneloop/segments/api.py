"""HTTP for segments: CRUD, a preview while a rule is edited, members, CSV export, a full
evaluation on demand, and the enter/exit history. The service does
the checks. A bad rule is a 422 whose ``errors`` name the path
of the bad node (``rule.and[1].op``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Response
from fastapi.responses import StreamingResponse

from oneloop.api.auth import CallerDep
from oneloop.api.deps import SessionDep
from oneloop.api.etag import IfMatch, tag
from oneloop.api.paging import Page, PageRequest, list_query, search
from oneloop.segments import service
from oneloop.segments.schemas import (
    RULE_EXAMPLE,
    Evaluation,
    Preview,
    PreviewIn,
    Segment,
    SegmentChange,
    SegmentIn,
    SegmentMember,
    SegmentUpdate,
)

router = APIRouter(prefix="/api/v1/segments", tags=["segments"])

SegmentId = Annotated[str, Path(description="the segment's id", max_length=64)]
Bu = Annotated[str | None, Query(description="business unit code", max_length=32)]
# Membership moves with every event; an edit is made against the definition, not the count.
VOLATILE = ("size", "evaluated_at")


SegmentList = Annotated[
    PageRequest, Depends(list_query("segments", service.SEGMENT_SORTS, default="code"))
]
MemberList = Annotated[
    PageRequest, Depends(list_query("segment-members", service.MEMBER_SORTS, default="profile_id"))
]
ChangeList = Annotated[
    PageRequest, Depends(list_query("segment-changes", service.CHANGE_SORTS, default="seq"))
]


@router.get("", summary="Segments, by code, a page at a time")
def list_segments(
    session: SessionDep,
    ctx: CallerDep,
    page: SegmentList,
    bu: Bu = None,
    is_live: Annotated[bool | None, Query(description="only live (or only batch) ones")] = None,
    q: Annotated[str | None, search("the code or the name")] = None,
) -> Page[Segment]:
    return service.page_segments(session, ctx, page, bu=bu, is_live=is_live, q=q)


@router.post("", summary="Create a segment (evaluated at once)", status_code=201)
def create_segment(
    data: Annotated[
        SegmentIn,
        Body(
            openapi_examples={
                "repeat buyers": {
                    "value": {
                        "code": "repeat_buyers_sh",
                        "name": "上海复购客户 Repeat buyers SH",
                        "rule": RULE_EXAMPLE,
                    }
                }
            }
        ),
    ],
    session: SessionDep,
    ctx: CallerDep,
) -> Segment:
    made = service.create_segment(session, ctx, data)
    session.commit()
    return made


@router.post("/preview", summary="How many profiles a rule holds for, and a few of them")
def preview(
    data: PreviewIn,
    session: SessionDep,
    ctx: CallerDep,
    exact: Annotated[
        bool, Query(description="also count exactly when the answer is an estimate")
    ] = False,
) -> Preview:
    return service.preview(session, ctx, data.rule, bu=data.bu, exact=exact)


@router.get("/{segment_id}", summary="A segment")
def get_segment(
    segment_id: SegmentId, session: SessionDep, ctx: CallerDep, response: Response
) -> Segment:
    return tag(response, service.get_segment(session, ctx, segment_id), VOLATILE)


@router.put("/{segment_id}", summary="Change a segment (a new version, evaluated at once)")
def put_segment(
    segment_id: SegmentId,
    data: SegmentUpdate,
    session: SessionDep,
    ctx: CallerDep,
    if_match: IfMatch,
    response: Response,
) -> Segment:
    if_match.check(service.get_segment(session, ctx, segment_id), VOLATILE)
    changed = service.update_segment(session, ctx, segment_id, data)
    session.commit()
    return tag(response, changed, VOLATILE)


@router.delete("/{segment_id}", summary="Delete a segment nothing uses", status_code=204)
def delete_segment(segment_id: SegmentId, session: SessionDep, ctx: CallerDep) -> Response:
    service.delete_segment(session, ctx, segment_id)
    session.commit()
    return Response(status_code=204)


Fields = Annotated[
    str | None,
    Query(
        max_length=1000,
        description="golden-record fields to add, comma-separated (masked without pii:read)",
        examples=["name,phone,email"],
    ),
]


def _split(fields: str | None) -> list[str]:
    return [f for f in (fields or "").split(",") if f.strip()]


@router.get("/{segment_id}/members", summary="Members by profile id, a page at a time")
def get_members(
    segment_id: SegmentId,
    session: SessionDep,
    ctx: CallerDep,
    page: MemberList,
    fields: Fields = None,
) -> Page[SegmentMember]:
    return service.page_members(session, ctx, segment_id, page, fields=_split(fields))


@router.get(
    "/{segment_id}/export.csv",
    summary="Every member as CSV (profile_id, entered_at, and the fields asked for)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def export_members(
    segment_id: SegmentId, session: SessionDep, ctx: CallerDep, fields: Fields = None
) -> StreamingResponse:
    chunks = service.export_csv(session, ctx, segment_id, _split(fields))
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="segment-{segment_id}.csv"'},
    )


@router.post("/{segment_id}/evaluate", summary="Evaluate the rule over every profile now")
def post_evaluate(segment_id: SegmentId, session: SessionDep, ctx: CallerDep) -> Evaluation:
    done = service.evaluate(session, ctx, segment_id)
    session.commit()
    return done


@router.get("/{segment_id}/history", summary="Entries and exits, oldest first")
def get_history(
    segment_id: SegmentId,
    session: SessionDep,
    ctx: CallerDep,
    page: ChangeList,
    after: Annotated[int, Query(ge=0, description="only changes after this seq")] = 0,
    profile_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[SegmentChange]:
    return service.page_history(session, ctx, segment_id, page, after=after, profile_id=profile_id)
