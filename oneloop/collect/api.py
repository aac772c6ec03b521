"""HTTP for collection: the Segment-compatible tracking endpoints (``/v1/…``) and the admin
endpoints over sources and dead letters (``/api/v1/…``).

The tracking endpoints read the body themselves (capped while streaming, so a huge upload is
refused before it is held in memory), then run the whole store in a worker thread, inside one
transaction that has committed before ``{"success": true}`` is sent: acknowledged means durable.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, Path, Query, Request, Response

from oneloop.api.auth import CallerDep
from oneloop.api.deps import AppState, SessionDep, StateDep
from oneloop.api.paging import Page, PageRequest, list_query
from oneloop.collect import deadletters, stats
from oneloop.collect.schemas import DeadLetter, ReplayReport, SourceStats
from oneloop.collect.tracking import (
    ENDPOINTS,
    Outcome,
    Received,
    limit_for,
    parse,
    store,
    too_large,
)

tracking = APIRouter(prefix="/v1", tags=["tracking"])
admin = APIRouter(prefix="/api/v1", tags=["sources"])

# Compressed bodies can be slightly larger than what they inflate to; allow for the framing.
COMPRESSED_SLACK = 16 * 1024
SUCCESS = b'{"success":true}'
DeadLetterList = Annotated[
    PageRequest,
    Depends(list_query("dead-letters", deadletters.DEAD_LETTER_SORTS, default="-received_at")),
]


async def _read_capped(request: Request, endpoint: str) -> bytes:
    cap = limit_for(endpoint) + COMPRESSED_SLACK
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise too_large(endpoint, int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise too_large(endpoint)
        chunks.append(chunk)
    return b"".join(chunks)


def _basic_user(request: Request) -> str | None:
    """The write key as SDKs send it: HTTP Basic with the key as user name, empty password."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user = decoded.partition(":")[0]
    return user or None


def _store(state: AppState, received: Received) -> Outcome:
    parsed = parse(received)  # CPU only: outside the write lock
    with state.writing(), state.sessions() as session, session.begin():
        return store(session, parsed)


async def _track(request: Request, endpoint: str) -> Response:
    body = await _read_capped(request, endpoint)
    state: AppState = request.app.state.oneloop
    received = Received(
        endpoint=endpoint,
        body=body,
        content_encoding=request.headers.get("content-encoding"),
        basic_user=_basic_user(request),
        received_at=state.clock.now(),
        ref=f"{request.method} {request.url.path} request {request.state.request_id}",
    )
    outcome = await anyio.to_thread.run_sync(_store, state, received)
    if outcome.refusal is not None:
        raise outcome.refusal  # committed: the refused events are dead letters now
    return Response(SUCCESS, media_type="application/json")


def _add_tracking_route(endpoint: str) -> None:
    async def handler(request: Request) -> Response:
        return await _track(request, endpoint)

    handler.__name__ = f"track_{endpoint}"
    what = "a batch of calls" if endpoint in ("batch", "import") else f"one {endpoint} call"
    tracking.add_api_route(
        f"/{endpoint}",
        handler,
        methods=["POST"],
        summary=f"Send {what} (Segment / RudderStack HTTP API)",
        responses={
            400: {"description": "refused events, named by JSON path; kept as dead letters"},
            401: {"description": "unknown, revoked or disabled write key"},
            413: {"description": "over 32 KB per call or 500 KB per batch request"},
            503: {"description": "temporarily unavailable; retry after Retry-After seconds"},
        },
    )


for _endpoint in ENDPOINTS:
    _add_tracking_route(_endpoint)


@admin.get("/sources/{source_id}/stats", summary="Health of a source: counts and events/min")
def source_stats(
    source_id: Annotated[str, Path(description="the source's id")],
    session: SessionDep,
    ctx: CallerDep,
    state: StateDep,
) -> SourceStats:
    return stats.source_stats(session, ctx, source_id, now=state.clock.now())


@admin.get("/dead-letters", summary="Dead letters, newest first, paged by cursor")
def list_dead_letters(
    session: SessionDep,
    ctx: CallerDep,
    page: DeadLetterList,
    source: Annotated[str | None, Query(description="only this source's")] = None,
    reason: Annotated[str | None, Query(description="only this reason, e.g. invalid_event")] = None,
    status: Annotated[str | None, Query(description="waiting or replayed")] = "waiting",
) -> Page[DeadLetter]:
    return deadletters.page_dead_letters(
        session, ctx, page, source=source, reason=reason, status=status
    )


@admin.get("/dead-letters/{dead_letter_id}", summary="One dead letter with its raw payload")
def get_dead_letter(dead_letter_id: str, session: SessionDep, ctx: CallerDep) -> DeadLetter:
    return deadletters.get_dead_letter(session, ctx, dead_letter_id)


@admin.post("/dead-letters/replay", summary="Replay waiting dead letters into the log, once")
def replay_dead_letters(
    session: SessionDep,
    ctx: CallerDep,
    source: Annotated[str | None, Query(description="only this source's")] = None,
    reason: Annotated[str | None, Query(description="only this reason")] = None,
    ids: Annotated[list[str] | None, Query(description="only these dead letters")] = None,
) -> ReplayReport:
    return deadletters.replay(session, ctx, source=source, reason=reason, ids=ids)
