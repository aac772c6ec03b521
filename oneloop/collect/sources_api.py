"""HTTP for sources and their write keys: ``/api/v1/sources``. A write key is in the answer
that makes it and nowhere else: lists show a key's prefix only. Another unit's source is a
404, as if it did not exist."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from oneloop.api.auth import CallerDep
from oneloop.api.deps import SessionDep
from oneloop.api.etag import IfMatch, tag
from oneloop.api.idempotency import shown_once
from oneloop.api.paging import Page, PageRequest, list_query, search
from oneloop.collect import service
from oneloop.collect.schemas import NewWriteKey, Source, SourceIn

router = APIRouter(prefix="/api/v1/sources", tags=["sources"])

SourceId = Annotated[str, Path(description="the source's id", max_length=64)]


class SourcePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    is_enabled: bool = Field(description="a disabled source's keys are refused (401)")


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    revoke_old: bool = Field(
        default=False, description="revoke every earlier key now (else they keep working)"
    )


SourceList = Annotated[
    PageRequest, Depends(list_query("sources", service.SOURCE_SORTS, default="created_at"))
]


@router.get("", summary="Sources of your unit (every unit's for the group), with key prefixes")
def list_sources(
    session: SessionDep,
    ctx: CallerDep,
    page: SourceList,
    kind: Annotated[str | None, Query(max_length=16, description="e.g. web, server")] = None,
    is_enabled: Annotated[bool | None, Query(description="only enabled (or disabled) ones")] = None,
    q: Annotated[str | None, search("the name")] = None,
) -> Page[Source]:
    return service.page_sources(session, ctx, page, kind=kind, is_enabled=is_enabled, q=q)


@router.post(
    "",
    summary="Create a source; its write key is shown once",
    status_code=201,
    openapi_extra=shown_once(location="/api/v1/sources/{id}"),
)
def create_source(
    data: Annotated[
        SourceIn,
        Body(openapi_examples={"web": {"value": {"bu": "appliances", "name": "官网 Web"}}}),
    ],
    session: SessionDep,
    ctx: CallerDep,
) -> NewWriteKey:
    return service.create_source(session, ctx, data)


@router.get("/{source_id}", summary="A source and its keys' prefixes")
def get_source(
    source_id: SourceId, session: SessionDep, ctx: CallerDep, response: Response
) -> Source:
    return tag(response, service.get_source(session, ctx, source_id))


@router.patch("/{source_id}", summary="Enable or disable a source")
def patch_source(
    source_id: SourceId,
    data: Annotated[
        SourcePatch, Body(openapi_examples={"disable": {"value": {"is_enabled": False}}})
    ],
    session: SessionDep,
    ctx: CallerDep,
    if_match: IfMatch,
    response: Response,
) -> Source:
    if_match.check(service.get_source(session, ctx, source_id))
    return tag(response, service.set_enabled(session, ctx, source_id, enabled=data.is_enabled))


@router.post(
    "/{source_id}/keys",
    summary="Make a new write key (shown once)",
    status_code=201,
    openapi_extra=shown_once(location="/api/v1/sources/{id}"),
)
def rotate_key(
    source_id: SourceId,
    data: Annotated[
        RotateIn, Body(openapi_examples={"rotate now": {"value": {"revoke_old": True}}})
    ],
    session: SessionDep,
    ctx: CallerDep,
) -> NewWriteKey:
    return service.rotate_key(session, ctx, source_id, revoke_old=data.revoke_old)


@router.delete("/{source_id}/keys/{prefix}", summary="Revoke one write key", status_code=204)
def revoke_key(
    source_id: SourceId,
    prefix: Annotated[str, Path(description="the key's prefix, as listed", max_length=32)],
    session: SessionDep,
    ctx: CallerDep,
) -> Response:
    service.revoke_key(session, ctx, source_id, prefix)
    return Response(status_code=204)
