"""HTTP for the group and its business units: ``/api/v1/business-units``. The service does
the checks. A bad field (a code, an unknown
``time_zone``) is a 422 whose ``errors`` name it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Response

from oneloop.api.auth import CallerDep
from oneloop.api.deps import SessionDep
from oneloop.api.etag import IfMatch, tag
from oneloop.api.paging import Page, PageRequest, list_query
from oneloop.governance import service
from oneloop.governance.schemas import BusinessUnit, BusinessUnitIn, BusinessUnitPatch

router = APIRouter(prefix="/api/v1/business-units", tags=["business units"])

Code = Annotated[str, Path(description="the unit's code", max_length=32)]
UnitList = Annotated[
    PageRequest, Depends(list_query("business-units", service.UNIT_SORTS, default="code"))
]


@router.get("", summary="The group and its business units (yours, for a unit), by code")
def list_units(session: SessionDep, ctx: CallerDep, page: UnitList) -> Page[BusinessUnit]:
    return service.page_business_units(session, ctx, page)


@router.post("", summary="Create the group (no parent) or a business unit", status_code=201)
def create_unit(
    data: Annotated[
        BusinessUnitIn,
        Body(
            openapi_examples={
                "a unit abroad": {
                    "value": {
                        "code": "europe",
                        "name_zh": "欧洲事业部",
                        "name_en": "Europe",
                        "parent": "galaxy",
                        "time_zone": "Europe/Berlin",
                    }
                }
            }
        ),
    ],
    session: SessionDep,
    ctx: CallerDep,
) -> BusinessUnit:
    made = service.create_business_unit(session, ctx, data)
    session.commit()
    return made


@router.get("/{code}", summary="A business unit")
def get_unit(code: Code, session: SessionDep, ctx: CallerDep, response: Response) -> BusinessUnit:
    return tag(response, service.get_business_unit(session, ctx, code))


@router.patch("/{code}", summary="Change a unit's names or time zone")
def patch_unit(
    code: Code,
    data: Annotated[
        BusinessUnitPatch,
        Body(openapi_examples={"move": {"value": {"time_zone": "Asia/Urumqi"}}}),
    ],
    session: SessionDep,
    ctx: CallerDep,
    if_match: IfMatch,
    response: Response,
) -> BusinessUnit:
    if_match.check(service.get_business_unit(session, ctx, code))
    changed = service.update_business_unit(session, ctx, code, data)
    session.commit()
    return tag(response, changed)
