"""HTTP for computed-trait definitions: ``/api/v1/traits``. The service does
the checks and the business-unit scoping.

A definition body is read here rather than declared as a pydantic body, so that JSON and YAML
are parsed alike and a bad definition names its paths (``where[0].op``) the same way as the
CLI does: a body that is not JSON (or YAML) at all is a 400, a document that is not a valid
definition a 422.

Creating or changing a definition computes its values in the same request (one set-based pass
per page of profiles); for a unit with millions of profiles pass ``compute=false`` and run
``oneloop traits recompute --trait NAME`` instead, which shows its progress.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel

from oneloop.api.auth import CallerDep
from oneloop.api.deps import SessionDep
from oneloop.api.etag import IfMatch, tag
from oneloop.api.paging import Page, PageRequest, list_query, search
from oneloop.core.errors import PayloadTooLarge
from oneloop.profiles import trait_defs, traits
from oneloop.profiles.trait_defs import MAX_DOCUMENT_BYTES, Trait

router = APIRouter(prefix="/api/v1/traits", tags=["traits"])

YAML_TYPES = {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"}
TraitId = Annotated[str, Path(description="the computed trait's id")]
Compute = Annotated[
    bool, Query(description="compute the values now (false: run `oneloop traits recompute`)")
]

EXAMPLE = {
    "name": "orders_90d",
    "description": "近 90 天订单数 Orders in the last 90 days",
    "event": "Order Completed",
    "where": [{"property": "channel", "op": "ne", "value": "test"}],
    "aggregate": "count",
    "window": {"amount": 90, "unit": "days"},
}
_BODY = {
    "requestBody": {
        "required": True,
        "description": "the definition as JSON, or as YAML with Content-Type: application/yaml",
        "content": {
            "application/json": {"schema": {"type": "object"}, "example": EXAMPLE},
            "application/yaml": {"schema": {"type": "object"}},
        },
    }
}


class Recomputed(BaseModel):
    trait_id: str
    written: int


async def _document(request: Request) -> object:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_DOCUMENT_BYTES:
        raise PayloadTooLarge(f"a trait definition is at most {MAX_DOCUMENT_BYTES // 1024} KB")
    body = await request.body()
    media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    return traits.load_document(body, is_yaml=media in YAML_TYPES)


Document = Annotated[object, Depends(_document)]


TraitList = Annotated[
    PageRequest, Depends(list_query("traits", trait_defs.TRAIT_SORTS, default="name"))
]


@router.get("", summary="Computed traits: yours and the group's")
def list_traits(
    session: SessionDep,
    ctx: CallerDep,
    page: TraitList,
    bu: Annotated[str | None, Query(description="only this business unit's (its code)")] = None,
    q: Annotated[str | None, search("the name")] = None,
) -> Page[Trait]:
    return trait_defs.page_traits(session, ctx, page, bu=bu, q=q)


@router.post(
    "",
    status_code=201,
    summary="Define a computed trait (JSON, or YAML with Content-Type: application/yaml)",
    openapi_extra=_BODY,
)
def create_trait(
    document: Document,
    session: SessionDep,
    ctx: CallerDep,
    bu: Annotated[
        str | None, Query(description="business unit code; default: your own (or the group)")
    ] = None,
    compute: Compute = True,
) -> Trait:
    created = traits.create_trait(session, ctx, document, bu)
    if compute:
        traits.recompute_trait(session, ctx, created.id)
    return created


@router.get("/{trait_id}", summary="One computed trait's definition")
def get_trait(trait_id: TraitId, session: SessionDep, ctx: CallerDep, response: Response) -> Trait:
    return tag(response, traits.get_trait(session, ctx, trait_id))


@router.put("/{trait_id}", summary="Replace a computed trait's definition", openapi_extra=_BODY)
def put_trait(
    trait_id: TraitId,
    document: Document,
    session: SessionDep,
    ctx: CallerDep,
    if_match: IfMatch,
    response: Response,
    compute: Compute = True,
) -> Trait:
    if_match.check(traits.get_trait(session, ctx, trait_id))
    updated = traits.update_trait(session, ctx, trait_id, document)
    if compute:
        traits.recompute_trait(session, ctx, trait_id)
    return tag(response, updated)


@router.delete(
    "/{trait_id}",
    status_code=204,
    summary="Delete a computed trait and its values",
    response_class=Response,
)
def delete_trait(trait_id: TraitId, session: SessionDep, ctx: CallerDep) -> Response:
    traits.delete_trait(session, ctx, trait_id)
    return Response(status_code=204)


@router.post("/{trait_id}/recompute", summary="Compute every profile's value again")
def post_recompute(trait_id: TraitId, session: SessionDep, ctx: CallerDep) -> Recomputed:
    return Recomputed(trait_id=trait_id, written=traits.recompute_trait(session, ctx, trait_id))
