"""HTTP for sharing policies between units: ``/api/v1/sharing-policies``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Response

from oneloop.api.auth import CallerDep
from oneloop.api.deps import SessionDep
from oneloop.api.paging import Page, PageRequest, list_query
from oneloop.governance import sharing
from oneloop.governance.schemas import Resource, SharingPolicy, SharingPolicyIn

router = APIRouter(prefix="/api/v1/sharing-policies", tags=["business units"])

PolicyList = Annotated[
    PageRequest, Depends(list_query("sharing-policies", sharing.POLICY_SORTS, default="created_at"))
]


@router.get("", summary="The policies your unit gives and receives (every one, for the group)")
def list_policies(
    session: SessionDep,
    ctx: CallerDep,
    page: PolicyList,
    resource: Annotated[Resource | None, Query(description="only policies sharing this")] = None,
) -> Page[SharingPolicy]:
    return sharing.page_policies(session, ctx, page, resource=resource)


@router.post("", summary="Let another unit read some of a unit's data", status_code=201)
def create_policy(
    data: Annotated[
        SharingPolicyIn,
        Body(
            openapi_examples={
                "order summary traits, not raw events": {
                    "value": {
                        "owner": "appliances",
                        "reader": "service",
                        "resource": "traits",
                        "names": ["orders_90d", "revenue_90d"],
                    }
                }
            }
        ),
    ],
    session: SessionDep,
    ctx: CallerDep,
) -> SharingPolicy:
    return sharing.create_policy(session, ctx, data)


@router.delete("/{policy_id}", summary="Withdraw a policy", status_code=204)
def delete_policy(
    policy_id: Annotated[str, Path(max_length=64)], session: SessionDep, ctx: CallerDep
) -> Response:
    sharing.delete_policy(session, ctx, policy_id)
    return Response(status_code=204)
