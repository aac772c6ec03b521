"""HTTP for the consent registry: a profile's consent in force, its history, recording a
decision, ``may-contact``, and a unit's opt-in summary. The service does the checks: reading
needs ``consent.read``, recording ``consent.manage``, and another unit's profile is a 404."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Path, Query

from oneloop.api.auth import CallerDep
from oneloop.api.deps import SessionDep
from oneloop.api.paging import Page, PageRequest, list_query
from oneloop.governance import consent, consent_views
from oneloop.governance.consent_schemas import (
    Channel,
    ConsentIn,
    ConsentRecord,
    ConsentState,
    ConsentSummary,
    ContactDecision,
    Purpose,
    Vocabulary,
)

router = APIRouter(prefix="/api/v1", tags=["consent"])

ProfileId = Annotated[str, Path(description="a OneID; an absorbed profile's id still works")]
HistoryList = Annotated[
    PageRequest,
    Depends(list_query("consent-history", consent_views.HISTORY_SORTS, default="-given_at")),
]


@router.get("/profiles/{profile_id}/consent", summary="Consent in force per purpose × channel")
def get_consent(profile_id: ProfileId, session: SessionDep, ctx: CallerDep) -> ConsentState:
    return consent_views.current_state(session, ctx, profile_id)


@router.get(
    "/profiles/{profile_id}/consent/history",
    summary="Every consent decision of a profile, newest first",
)
def get_history(
    profile_id: ProfileId,
    session: SessionDep,
    ctx: CallerDep,
    page: HistoryList,
    purpose: Purpose | None = None,
    channel: Channel | None = None,
) -> Page[ConsentRecord]:
    return consent_views.page_history(
        session, ctx, profile_id, page, purpose=purpose, channel=channel
    )


@router.post(
    "/profiles/{profile_id}/consent",
    summary="Record a grant, withdrawal or denial on the person's behalf",
    status_code=201,
)
def post_consent(
    profile_id: ProfileId,
    data: Annotated[
        ConsentIn,
        Body(
            openapi_examples={
                "unsubscribe from marketing e-mail (退订营销邮件)": {
                    "value": {
                        "purpose": "marketing",
                        "channel": "email",
                        "status": "withdrawn",
                        "proof": "hotline call 2026-03-01, ticket T-1029",
                    }
                }
            }
        ),
    ],
    session: SessionDep,
    ctx: CallerDep,
    idempotency_key: Annotated[
        str | None,
        Header(max_length=200, description="a retry with the same key records nothing new"),
    ] = None,
) -> ConsentRecord:
    made = consent.record_consent(session, ctx, profile_id, data, idempotency_key=idempotency_key)
    session.commit()
    return made


@router.get(
    "/profiles/{profile_id}/may-contact",
    summary="Whether the person may be contacted for a purpose over a channel, and why",
)
def get_may_contact(
    profile_id: ProfileId,
    session: SessionDep,
    ctx: CallerDep,
    purpose: Purpose,
    channel: Channel = "any",
) -> ContactDecision:
    return consent.check_contact(session, ctx, profile_id, purpose, channel)


@router.get(
    "/consent/summary",
    summary="Opt-in per purpose × channel over the profiles you may see",
)
def get_summary(
    session: SessionDep,
    ctx: CallerDep,
    bu: Annotated[
        str | None, Query(max_length=32, description="a unit's code; default: your own")
    ] = None,
) -> ConsentSummary:
    return consent_views.summary(session, ctx, bu)


@router.get("/consent/vocabulary", summary="Purposes, channels, statuses and legal bases")
def get_vocabulary(ctx: CallerDep) -> Vocabulary:
    ctx.require(consent.READ)
    return consent_views.vocabulary()
