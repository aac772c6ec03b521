"""HTTP for score models: list, create, show, change, delete, recompute. The service does
the checks. Saving a model rebuilds its
scores in the same transaction, so the answer is given once the scores follow it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Response

from oneloop.api.auth import CallerDep
from oneloop.api.deps import SessionDep
from oneloop.api.etag import IfMatch, tag
from oneloop.api.paging import Page, PageRequest, list_query, search
from oneloop.profiles import score_models as service
from oneloop.profiles.score_models import ScoreModel
from oneloop.profiles.score_rules import INTENT_EXAMPLE

router = APIRouter(prefix="/api/v1/score-models", tags=["scores"])

ModelRef = Annotated[str, Path(description="the model's id (or its code in your own unit)")]
Unit = Annotated[
    str | None, Query(description="business unit code; default: your own", examples=["north"])
]
Document = Annotated[
    dict[str, Any],  # Any: the model document, validated by the score language
    Body(
        description="the model: rules (event, where, points, cap), half_life_days, thresholds",
        openapi_examples={"purchase intent (购买意向)": {"value": INTENT_EXAMPLE}},
    ),
]


ModelList = Annotated[
    PageRequest, Depends(list_query("score-models", service.MODEL_SORTS, default="code"))
]


@router.get("", summary="Score models in your unit and the group")
def get_models(
    session: SessionDep,
    ctx: CallerDep,
    page: ModelList,
    bu: Unit = None,
    q: Annotated[str | None, search("the code or a name")] = None,
) -> Page[ScoreModel]:
    return service.page_models(session, ctx, page, bu=bu, q=q)


@router.post("", summary="Create a score model and score every profile", status_code=201)
def post_model(
    document: Document, session: SessionDep, ctx: CallerDep, bu: Unit = None
) -> ScoreModel:
    model = service.create_model(session, ctx, document, bu=bu)
    session.commit()
    return model


@router.get("/{model_id}", summary="A score model")
def get_model(
    model_id: ModelRef, session: SessionDep, ctx: CallerDep, response: Response
) -> ScoreModel:
    return tag(response, service.get_model(session, ctx, model_id))


@router.put("/{model_id}", summary="Store a new version of a model and rescore")
def put_model(
    model_id: ModelRef,
    document: Document,
    session: SessionDep,
    ctx: CallerDep,
    if_match: IfMatch,
    response: Response,
) -> ScoreModel:
    if_match.check(service.get_model(session, ctx, model_id))
    model = service.update_model(session, ctx, model_id, document)
    session.commit()
    return tag(response, model)


@router.delete(
    "/{model_id}",
    summary="Delete a model, its scores and history, and the tags it set",
    status_code=204,
)
def delete_model(model_id: ModelRef, session: SessionDep, ctx: CallerDep) -> None:
    service.delete_model(session, ctx, model_id)
    session.commit()


@router.post("/{model_id}/recompute", summary="Rebuild a model's scores from the events")
def post_recompute(model_id: ModelRef, session: SessionDep, ctx: CallerDep) -> dict[str, int]:
    profiles = service.recompute_model(session, ctx, model_id)
    session.commit()
    return {"profiles": profiles}
