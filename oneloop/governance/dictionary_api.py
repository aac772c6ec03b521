"""HTTP for the data dictionary: ``/api/v1/dictionary``. Every signed-in caller reads it;
changing an entry needs ``dictionary.manage`` (the service checks)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Response

from oneloop.api.auth import CallerDep
from oneloop.api.deps import SessionDep
from oneloop.api.etag import IfMatch, tag
from oneloop.api.paging import Page, PageRequest, list_query
from oneloop.core.errors import NotFound
from oneloop.governance import dictionary
from oneloop.governance.dictionary_schemas import (
    Classification,
    Entry,
    EntryIn,
    EntryKind,
    EntryVersion,
)

router = APIRouter(prefix="/api/v1/dictionary", tags=["dictionary"])

Key = Annotated[str, Path(max_length=100, description="the entry's key, e.g. phone or revenue")]
EntryList = Annotated[
    PageRequest, Depends(list_query("dictionary", dictionary.ENTRY_SORTS, default="key"))
]

EXAMPLE = {
    "kind": "metric",
    "name_zh": "销售额（含税）",
    "name_en": "Revenue (incl. VAT)",
    "description_zh": "订单实付金额之和，含增值税，单位人民币元。",
    "description_en": "The sum of what orders cost the customer, VAT included, in CNY.",
    "data_type": "money",
    "currency": "CNY",
    "includes_tax": True,
    "classification": "internal",
    "lineage": [{"kind": "property", "event": "Order Completed", "name": "total"}],
    "note": "revenue includes VAT in every unit",
}


@router.get("", summary="Fields and metrics of the data dictionary, by key, paged by cursor")
def list_entries(
    session: SessionDep,
    ctx: CallerDep,
    page: EntryList,
    kind: Annotated[EntryKind | None, Query(description="field or metric")] = None,
    classification: Annotated[
        Classification | None, Query(description="public, internal, pii or sensitive_pii")
    ] = None,
) -> Page[Entry]:
    return dictionary.page_entries(session, ctx, page, kind=kind, classification=classification)


@router.get("/{key}", summary="One entry as it stands (its newest version)")
def get_entry(key: Key, session: SessionDep, ctx: CallerDep, response: Response) -> Entry:
    return tag(response, dictionary.get_entry(session, ctx, key))


@router.put("/{key}", summary="Create an entry or change it (a new version)")
def put_entry(
    key: Key,
    data: Annotated[EntryIn, Body(openapi_examples={"revenue": {"value": EXAMPLE}})],
    session: SessionDep,
    ctx: CallerDep,
    if_match: IfMatch,
    response: Response,
) -> Entry:
    """``If-Match: *`` changes an existing entry only; without If-Match it may create one."""
    if if_match.if_match is not None:
        try:
            current: Entry | None = dictionary.get_entry(session, ctx, key)
        except NotFound:
            current = None
        if_match.check(current)
    return tag(response, dictionary.set_entry(session, ctx, key, data))


@router.get("/{key}/versions", summary="Every version of an entry, newest first")
def get_versions(key: Key, session: SessionDep, ctx: CallerDep) -> list[EntryVersion]:
    return dictionary.list_versions(session, ctx, key)
