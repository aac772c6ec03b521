"""HTTP for profiles: search by identifier, the 360 view, the timeline, traits, scores, tags,
and the event-to-department mapping. The service does
the checks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from oneloop.api.auth import CallerDep
from oneloop.api.deps import SessionDep
from oneloop.api.paging import Page, PageRequest, list_query, search
from oneloop.core.errors import FieldError, ValidationFailed
from oneloop.governance import service as governance
from oneloop.profiles import departments, scores, service
from oneloop.profiles.schemas import (
    BulkTagResult,
    Profile,
    ProfileMatch,
    ProfileTag,
    Tag,
    TagAssignIn,
    TagCategory,
    TagCategoryIn,
    TagIn,
    TimelineEntry,
    TraitValue,
)

router = APIRouter(prefix="/api/v1", tags=["profiles"])

ProfileId = Annotated[str, Path(description="a OneID; an absorbed profile's id still works")]
MAX_CSV = 20 * 1024 * 1024
TimelineList = Annotated[
    PageRequest, Depends(list_query("timeline", service.TIMELINE_SORTS, default="-at"))
]


@router.get("/profiles", summary="Find a profile by any identifier or its OneID")
def find_profile(
    session: SessionDep,
    ctx: CallerDep,
    type: Annotated[str, Query(description="phone, email, wechat_openid, …, or oneid")],
    value: Annotated[str, Query(min_length=1, max_length=300, examples=["13800138000"])],
) -> ProfileMatch:
    return service.find(session, ctx, type, value)


@router.get("/profiles/{profile_id}", summary="The 360 view of a profile")
def get_profile(profile_id: ProfileId, session: SessionDep, ctx: CallerDep) -> Profile:
    return service.get(session, ctx, profile_id)


@router.get(
    "/profiles/{profile_id}/timeline",
    summary="What happened across marketing, sales and service, newest first",
)
def get_timeline(
    profile_id: ProfileId,
    session: SessionDep,
    ctx: CallerDep,
    page: TimelineList,
    department: Annotated[str | None, Query(examples=["sales"])] = None,
    source: Annotated[str | None, Query(description="source id")] = None,
    event: Annotated[str | None, Query(examples=["Order Completed"])] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[TimelineEntry]:
    for name, at in (("since", since), ("until", until)):
        if at is not None and at.tzinfo is None:
            raise ValidationFailed(
                "a time needs its zone",
                [FieldError((name,), "write e.g. 2026-03-01T00:00:00+08:00")],
            )
    return service.page_timeline(
        session,
        ctx,
        profile_id,
        page,
        department=department,
        source_id=source,
        event=event,
        since=since,
        until=until,
    )


@router.get("/profiles/{profile_id}/traits", summary="Computed traits and golden-record fields")
def get_traits(profile_id: ProfileId, session: SessionDep, ctx: CallerDep) -> list[TraitValue]:
    return service.profile_traits(session, ctx, profile_id)


@router.get("/profiles/{profile_id}/scores", summary="Scores now, and the points behind them")
def get_scores(
    profile_id: ProfileId,
    session: SessionDep,
    ctx: CallerDep,
    history: Annotated[int, Query(ge=0, le=500, description="history entries to include")] = 50,
) -> dict[str, Any]:
    current = service.visible_id(session, ctx, profile_id)
    units = governance.scope_of(session, ctx)
    return {
        "profile_id": current,
        "scores": list(scores.scores_of(session, current, units)),
        "history": (
            list(scores.history(session, current, limit=history, bu_ids=units)) if history else []
        ),
    }


@router.get("/profiles/{profile_id}/tags", summary="The tags a profile carries, and why")
def get_profile_tags(
    profile_id: ProfileId, session: SessionDep, ctx: CallerDep
) -> list[ProfileTag]:
    return service.profile_tags(session, ctx, profile_id)


@router.put("/profiles/{profile_id}/tags/{tag_id}", summary="Tag a profile by hand")
def put_profile_tag(
    profile_id: ProfileId,
    tag_id: str,
    data: Annotated[TagAssignIn, Body(examples=[{"reason": "met at the Shanghai summit"}])],
    session: SessionDep,
    ctx: CallerDep,
    response: Response,
) -> dict[str, bool]:
    created = service.assign_tag(session, ctx, profile_id, tag_id, data)
    response.status_code = 201 if created else 200
    return {"created": created}


@router.delete("/profiles/{profile_id}/tags/{tag_id}", summary="Take a tag away", status_code=204)
def delete_profile_tag(
    profile_id: ProfileId,
    tag_id: str,
    session: SessionDep,
    ctx: CallerDep,
    reason: Annotated[str, Query(min_length=1, max_length=500)],
) -> None:
    service.remove_tag(session, ctx, profile_id, tag_id, reason)


CategoryList = Annotated[
    PageRequest, Depends(list_query("tag-categories", service.CATEGORY_SORTS, default="code"))
]


@router.get("/tag-categories", summary="Tag categories (标签体系), by code")
def get_categories(
    session: SessionDep,
    ctx: CallerDep,
    page: CategoryList,
    bu: Annotated[str | None, Query(max_length=32, description="only this unit's (code)")] = None,
) -> Page[TagCategory]:
    return service.page_categories(session, ctx, page, bu=bu)


@router.post("/tag-categories", summary="Create a tag category", status_code=201)
def post_category(data: TagCategoryIn, session: SessionDep, ctx: CallerDep) -> TagCategory:
    return service.create_category(session, ctx, data)


TagList = Annotated[PageRequest, Depends(list_query("tags", service.TAG_SORTS, default="code"))]


@router.get("/tags", summary="Tags, by code")
def get_tags(
    session: SessionDep,
    ctx: CallerDep,
    page: TagList,
    bu: Annotated[str | None, Query(max_length=32, description="only this unit's (code)")] = None,
    kind: Annotated[str | None, Query(max_length=16, description="manual or rule")] = None,
    category: Annotated[str | None, Query(max_length=64, description="a category's code")] = None,
    q: Annotated[str | None, search("the code or a name")] = None,
) -> Page[Tag]:
    return service.page_tags(session, ctx, page, bu=bu, kind=kind, category=category, q=q)


@router.post("/tags", summary="Create a manual or rule tag", status_code=201)
def post_tag(data: TagIn, session: SessionDep, ctx: CallerDep) -> Tag:
    return service.create_tag(session, ctx, data)


@router.delete(
    "/tags/{tag_id}", summary="Delete a tag (and take it from everyone)", status_code=204
)
def delete_tag(tag_id: str, session: SessionDep, ctx: CallerDep) -> None:
    service.delete_tag(session, ctx, tag_id)


@router.post(
    "/tags/{tag_id}/bulk",
    summary="Tag the profiles a CSV of identifiers names (text/csv: type,value)",
    openapi_extra={
        "requestBody": {
            "content": {"text/csv": {"example": "type,value\nphone,13800138000\nemail,a@b.cn\n"}}
        }
    },
)
async def post_bulk(
    tag_id: str,
    request: Request,
    session: SessionDep,
    ctx: CallerDep,
    reason: Annotated[str, Query(min_length=1, max_length=500)],
) -> BulkTagResult:
    body = await request.body()
    if len(body) > MAX_CSV:
        raise ValidationFailed("file too large", [FieldError(("file",), "at most 20 MiB")])
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed(
            "not UTF-8", [FieldError(("file",), "save the CSV as UTF-8")]
        ) from exc
    return service.bulk_tag(session, ctx, tag_id, text, reason)


@router.get("/departments", summary="Which department each event belongs to")
def get_departments(session: SessionDep, ctx: CallerDep) -> dict[str, Any]:
    return departments.document(session, ctx)


@router.put("/departments", summary="Change the event-to-department mapping")
def put_departments(
    session: SessionDep,
    ctx: CallerDep,
    data: Annotated[
        dict[str, Any],  # Any: the mapping document, validated by departments.parse
        Body(openapi_examples={"the defaults": {"value": departments.default_document()}}),
    ],
) -> dict[str, int]:
    return {"restamped": departments.set_document(session, ctx, data)}
