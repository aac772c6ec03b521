"""HTTP for tracking plans: ``/api/v1/tracking-plans`` (JSON, or YAML both ways), a source's
plan and its violation counters. Admin routes; the service does the checks and the BU scoping.

A plan body is read here rather than declared as a pydantic body, so that JSON and YAML are
parsed alike and a bad plan names its paths the same way in both (``events.X.properties``),
as the CLI does.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from starlette.exceptions import HTTPException

from oneloop.api.auth import CallerDep
from oneloop.api.deps import SessionDep
from oneloop.api.etag import ETAG, IfMatch, etag_of, tag
from oneloop.api.paging import Page, PageRequest, list_query, search
from oneloop.collect import plans
from oneloop.collect.plan_schemas import PlanIn, SourcePlanIn, TrackingPlan, ViolationCount
from oneloop.collect.schemas import Source
from oneloop.core.errors import FieldError, PayloadTooLarge, ValidationFailed

router = APIRouter(prefix="/api/v1", tags=["tracking plans"])

MAX_PLAN_BYTES = 1024 * 1024
YAML_TYPES = {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"}
YAML = "application/yaml"

PlanId = Annotated[str, Path(description="the tracking plan's id")]
SourceId = Annotated[str, Path(description="the source's id")]

_PLAN_SCHEMA = PlanIn.model_json_schema(ref_template="#/components/schemas/{model}")
_PLAN_SCHEMA.pop("$defs", None)  # EventPlan is in the components already, via TrackingPlan
_PLAN_EXAMPLE = {
    "name": "官网 Web",
    "bu": "appliances",
    "mode": "allow",
    "events": {"Order Completed": {"properties": {"total": {"type": "number", "required": True}}}},
}
_PLAN_BODY = {
    "requestBody": {
        "required": True,
        "description": "the plan as JSON, or as YAML with Content-Type: application/yaml",
        "content": {
            "application/json": {"schema": _PLAN_SCHEMA, "example": _PLAN_EXAMPLE},
            YAML: {"schema": _PLAN_SCHEMA},
        },
    }
}


async def _plan_body(
    request: Request,
    bu: Annotated[
        str | None, Query(description="the business unit's code, if the body does not say")
    ] = None,
) -> PlanIn:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_PLAN_BYTES:
        raise PayloadTooLarge(f"a tracking plan is at most {MAX_PLAN_BYTES // 1024} KB")
    body = await request.body()
    if len(body) > MAX_PLAN_BYTES:
        raise PayloadTooLarge(f"a tracking plan is at most {MAX_PLAN_BYTES // 1024} KB")
    media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media in YAML_TYPES:
        return plans.plan_from_yaml(body, bu=bu)
    if media != "application/json" and not media.endswith("+json"):
        raise HTTPException(415, f"send the plan as application/json or {YAML}; got {media}")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed(
            f"the body is not valid JSON: {exc}", [FieldError((), "not valid JSON")]
        ) from None
    return plans.parse_plan(document, bu=bu)


PlanBody = Annotated[PlanIn, Depends(_plan_body)]


def _wants_yaml(request: Request) -> bool:
    accepted = request.headers.get("accept", "")
    return any(part.split(";")[0].strip().lower() in YAML_TYPES for part in accepted.split(","))


def _yaml(text: str, status_code: int = 200) -> Response:
    return Response(text, status_code=status_code, media_type=f"{YAML}; charset=utf-8")


PlanList = Annotated[
    PageRequest, Depends(list_query("tracking-plans", plans.PLAN_SORTS, default="created_at"))
]


@router.get("/tracking-plans", summary="Tracking plans, oldest first")
def list_plans(
    session: SessionDep,
    ctx: CallerDep,
    page: PlanList,
    mode: Annotated[str | None, Query(max_length=8, description="e.g. warn, block")] = None,
    q: Annotated[str | None, search("the name")] = None,
) -> Page[TrackingPlan]:
    return plans.page_plans(session, ctx, page, mode=mode, q=q)


@router.post(
    "/tracking-plans",
    status_code=201,
    summary="Create a tracking plan (JSON, or YAML with Content-Type: application/yaml)",
    response_model=TrackingPlan,
    openapi_extra=_PLAN_BODY,
)
def create_plan(body: PlanBody, session: SessionDep, ctx: CallerDep) -> TrackingPlan:
    return plans.create_plan(session, ctx, body)


@router.get(
    "/tracking-plans/{plan_id}",
    summary="One tracking plan: JSON, or YAML with Accept: application/yaml",
    response_model=TrackingPlan,
    responses={200: {"content": {YAML: {"schema": {"type": "string"}}}}},
)
def get_plan(
    plan_id: PlanId, request: Request, session: SessionDep, ctx: CallerDep, response: Response
) -> TrackingPlan | Response:
    """Both formats carry the plan's one ETag: If-Match compares the plan, not its bytes."""
    plan = plans.get_plan(session, ctx, plan_id)
    if _wants_yaml(request):
        as_yaml = _yaml(plans.plan_to_yaml(plan))
        as_yaml.headers[ETAG] = etag_of(plan)
        return as_yaml
    return tag(response, plan)


@router.put(
    "/tracking-plans/{plan_id}",
    summary="Replace a tracking plan's content (a new version)",
    response_model=TrackingPlan,
    openapi_extra=_PLAN_BODY,
)
def replace_plan(
    plan_id: PlanId,
    body: PlanBody,
    session: SessionDep,
    ctx: CallerDep,
    if_match: IfMatch,
    response: Response,
) -> TrackingPlan:
    if_match.check(plans.get_plan(session, ctx, plan_id))
    return tag(response, plans.update_plan(session, ctx, plan_id, body))


@router.delete(
    "/tracking-plans/{plan_id}",
    status_code=204,
    summary="Delete a tracking plan no source uses",
    response_class=Response,
)
def delete_plan(plan_id: PlanId, session: SessionDep, ctx: CallerDep) -> Response:
    plans.delete_plan(session, ctx, plan_id)
    return Response(status_code=204)


@router.put(
    "/sources/{source_id}/tracking-plan",
    summary="Attach a tracking plan to a source ({'plan_id': null} detaches)",
)
def attach_plan(
    source_id: SourceId,
    body: Annotated[
        SourcePlanIn, Body(openapi_examples={"attach": {"value": {"plan_id": "01J…"}}})
    ],
    session: SessionDep,
    ctx: CallerDep,
) -> Source:
    return plans.attach_plan(session, ctx, source_id, body.plan_id)


ViolationList = Annotated[
    PageRequest,
    Depends(list_query("plan-violations", plans.VIOLATION_SORTS, default="-count")),
]


@router.get(
    "/sources/{source_id}/violations",
    summary="How often the source broke its plan, per event, property and kind; most first",
)
def list_violations(
    source_id: SourceId, session: SessionDep, ctx: CallerDep, page: ViolationList
) -> Page[ViolationCount]:
    return plans.page_violations(session, ctx, source_id, page)
