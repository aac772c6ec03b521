"""HTTP for identity: a profile's identity explained, its golden record, unmerge, do-not-merge
pins, lookup by identifier, the refused links to review, and the rules. The service does
the checks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query

from oneloop.api.auth import CallerDep
from oneloop.api.deps import SessionDep
from oneloop.api.paging import Page, PageRequest, list_query
from oneloop.core.errors import NotFound
from oneloop.identity import probabilistic, service
from oneloop.identity.rules import default_document
from oneloop.identity.schemas import (
    GoldenRecord,
    IdentityExplanation,
    Link,
    MatchRun,
    Pin,
    PinIn,
    Rejection,
    Review,
    ReviewDecision,
    UnmergeIn,
    UnmergeOut,
)

router = APIRouter(prefix="/api/v1", tags=["identity"])

ProfileId = Annotated[str, Path(description="a OneID; an absorbed profile's id still works")]
ConflictList = Annotated[
    PageRequest,
    Depends(list_query("identity-conflicts", service.CONFLICT_SORTS, default="-updated_at")),
]
RejectionList = Annotated[
    PageRequest,
    Depends(list_query("identity-rejections", service.REJECTION_SORTS, default="-count")),
]
ReviewList = Annotated[
    PageRequest,
    Depends(list_query("identity-reviews", probabilistic.REVIEW_SORTS, default="-match_weight")),
]


@router.get(
    "/profiles/{profile_id}/identity",
    summary="A profile's identifiers, the links between them and its merge history",
)
def get_identity(profile_id: ProfileId, session: SessionDep, ctx: CallerDep) -> IdentityExplanation:
    return service.explain(session, ctx, profile_id)


@router.get(
    "/profiles/{profile_id}/golden-record",
    summary="The surviving value of each field, with its source, event and time",
)
def get_golden_record(profile_id: ProfileId, session: SessionDep, ctx: CallerDep) -> GoldenRecord:
    return service.golden(session, ctx, profile_id)


@router.post(
    "/profiles/{profile_id}/unmerge",
    summary="Split a profile along one merge of its history or one identifier",
)
def post_unmerge(
    profile_id: ProfileId,
    data: Annotated[
        UnmergeIn,
        Body(
            openapi_examples={
                "undo a merge": {"value": {"merge_id": "01J…", "reason": "two brothers"}},
                "detach an identifier": {
                    "value": {
                        "identifier": {"type": "phone", "value": "021-6888 0000"},
                        "reason": "the office switchboard",
                    }
                },
            }
        ),
    ],
    session: SessionDep,
    ctx: CallerDep,
) -> UnmergeOut:
    out = service.unmerge(session, ctx, profile_id, data)
    session.commit()
    return out


@router.post("/identity/pins", summary="Keep two profiles apart (do not merge)", status_code=201)
def post_pin(
    data: Annotated[
        PinIn,
        Body(
            openapi_examples={
                "twins": {"value": {"a": "01J…A", "b": "01J…B", "reason": "twin brothers"}}
            }
        ),
    ],
    session: SessionDep,
    ctx: CallerDep,
) -> Pin:
    pin = service.pin_apart(session, ctx, data)
    session.commit()
    return pin


@router.get("/identity/lookup", summary="The profile an identifier belongs to")
def get_lookup(
    session: SessionDep,
    ctx: CallerDep,
    type: Annotated[str, Query(description="identifier type, e.g. phone", max_length=40)],
    value: Annotated[str, Query(description="as written anywhere, e.g. 138 0013 8000")],
) -> dict[str, str]:
    profile_id = service.find_profile(session, ctx, type, value)
    if profile_id is None:
        raise NotFound(f"no profile has the {type} {value}", type=type)
    return {"profile_id": profile_id}


@router.get(
    "/identity/conflicts", summary="Links refused by a limit or a pin, to review, newest first"
)
def get_conflicts(session: SessionDep, ctx: CallerDep, page: ConflictList) -> Page[Link]:
    return service.page_conflicts(session, ctx, page)


@router.get(
    "/identity/rejections",
    summary="Identifiers sources send that do not normalise, most frequent first",
)
def get_rejections(
    session: SessionDep,
    ctx: CallerDep,
    page: RejectionList,
    source_id: Annotated[
        str | None, Query(max_length=64, description="one source only (its id)")
    ] = None,
) -> Page[Rejection]:
    return service.page_rejections(session, ctx, page, source_id=source_id)


@router.get("/identity/rules", summary="The identity rules in force")
def get_rules(session: SessionDep, ctx: CallerDep) -> dict[str, Any]:  # Any: the rules document
    return service.rules_document(session, ctx)


@router.put("/identity/rules", summary="Store a new version of the identity rules")
def put_rules(
    document: Annotated[
        dict[str, Any],
        Body(
            description="the rules document (see rules.yaml)",
            openapi_examples={"the defaults": {"value": default_document()}},
        ),
    ],
    session: SessionDep,
    ctx: CallerDep,
) -> dict[str, str]:
    rules = service.set_rules(session, ctx, document)
    session.commit()
    return {"version": rules.version}


@router.post("/identity/match", summary="Run probabilistic matching over the profiles now")
def post_match(
    session: SessionDep,
    ctx: CallerDep,
    retrain: Annotated[bool, Query(description="train a new model first")] = False,
) -> MatchRun:
    summary = probabilistic.run_match(session, ctx, service.active_rules(session), retrain=retrain)
    session.commit()
    return summary


@router.get(
    "/identity/reviews", summary="Candidate pairs waiting for a data steward, strongest first"
)
def get_reviews(
    session: SessionDep,
    ctx: CallerDep,
    page: ReviewList,
    status: Annotated[str, Query(pattern="^(open|accepted|rejected)$")] = "open",
) -> Page[Review]:
    return probabilistic.page_review_queue(session, ctx, page, status=status)


@router.post("/identity/reviews/{review_id}", summary="Accept (merge) or reject (keep apart)")
def post_review(
    review_id: Annotated[str, Path(description="the review's id")],
    data: Annotated[
        ReviewDecision,
        Body(openapi_examples={"merge": {"value": {"accept": True, "note": "same ID card"}}}),
    ],
    session: SessionDep,
    ctx: CallerDep,
) -> Review:
    review = probabilistic.decide_review(
        session, ctx, service.active_rules(session), review_id, accept=data.accept, note=data.note
    )
    session.commit()
    return review
