"""Sources: their health at a glance, creating one (its write key shown once, with SDK
snippets pointing at this server), and a source's page: tracking-plan violations, dead
letters and their replay, key rotation.

A write key exists in clear only in the answer to the POST that made it (the service keeps
its SHA-256): the page showing it is that answer, never a GET address a browser could
bookmark, cache or share. Replay and rotation start at a confirmation page, like every
change that cannot be taken back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from oneloop.api.deps import SessionDep
from oneloop.collect import deadletters, plans, stats
from oneloop.collect import service as collect
from oneloop.collect.schemas import NewWriteKey, Source, SourceIn
from oneloop.core.errors import Conflict, FieldError, ValidationFailed
from oneloop.governance import service as governance
from oneloop.web.forms import FormErrors, parse_form
from oneloop.web.nav import N_
from oneloop.web.paging import cursor_pager
from oneloop.web.templating import render
from oneloop.web.viewer import Viewer, ViewerDep

router = APIRouter(include_in_schema=False)

READ = "collect.source.read"
MANAGE = "collect.source.manage"
DEAD_LETTERS_PAGE = 20
KINDS: tuple[tuple[str, str], ...] = (
    ("http", N_("Tracking SDK or HTTP API")),
    ("webhook", N_("Webhook")),
    ("file", N_("File imports")),
)
Text = Annotated[str, Query(max_length=200)]


@dataclass(frozen=True)
class Health:
    source: Source
    chart: dict[str, Any]  # Any: chart JSON for console.js
    events_last_hour: int
    violations: int
    dead_letters: int
    last_event_at: datetime | None


@dataclass(frozen=True)
class Snippet:
    id: str
    title: str
    language: str
    code: str


# --- the list -------------------------------------------------------------------------------


@router.get("/sources", response_class=HTMLResponse)
def source_list(request: Request, viewer: ViewerDep, session: SessionDep) -> Response:
    ctx = viewer.ctx
    now = ctx.clock.now()
    rows = [
        _health(session, viewer, source, now)
        for source in collect.list_sources(session, ctx)
        if source.kind != "internal"
    ]
    return render(
        request,
        "sources/list.html",
        {
            "sources": rows,
            "may_manage": viewer.can(MANAGE),
            "unit_codes": governance.unit_codes(session) if ctx.is_group_wide else {},
        },
        viewer=viewer,
    )


def _health(session: Session, viewer: Viewer, source: Source, now: datetime) -> Health:
    found = stats.source_stats(session, viewer.ctx, source.id, now=now)
    points = [(m.minute.isoformat(), m.events) for m in found.per_minute]
    return Health(
        source=source,
        chart={"kind": "sparkline", "name": source.name, "points": points},
        events_last_hour=sum(m.events for m in found.per_minute),
        violations=found.violations,
        dead_letters=deadletters.count_dead_letters(session, viewer.ctx, source=source.id),
        last_event_at=found.last_event_at,
    )


# --- create: the key once, with snippets ----------------------------------------------------


@router.get("/sources/new", response_class=HTMLResponse)
def new_source(request: Request, viewer: ViewerDep) -> Response:
    viewer.ctx.require(MANAGE)
    return _form(request, viewer, "", "http", FormErrors(), 200)


@router.post("/sources/new", response_class=HTMLResponse)
def create_source(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    name: Annotated[str, Form(max_length=1000)] = "",
    kind: Annotated[str, Form(max_length=40)] = "http",
) -> Response:
    """Answers the page with the key (201), not a redirect: the key is in this answer only."""
    viewer.ctx.require(MANAGE)
    try:
        data = parse_form(SourceIn, {"bu": viewer.unit.code, "name": name, "kind": kind})
        with session.begin_nested():
            made = collect.create_source(session, viewer.ctx, data)
    except ValidationFailed as exc:
        return _form(request, viewer, name, kind, FormErrors.of(exc, {"name", "kind"}), 422)
    except Conflict as exc:
        errors = FormErrors(fields={"name": [N_("This unit already has a source of that name.")]})
        if exc.context.get("field") != "name":
            errors = FormErrors(general=[exc.detail])
        return _form(request, viewer, name, kind, errors, 409)
    return _key_page(request, session, viewer, made, created=True, status_code=201)


def _form(
    request: Request, viewer: Viewer, name: str, kind: str, errors: FormErrors, status: int
) -> Response:
    return render(
        request,
        "sources/new.html",
        {"name": name, "kind": kind, "kinds": KINDS, "errors": errors},
        viewer=viewer,
        status_code=status,
    )


def _key_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    made: NewWriteKey,
    *,
    created: bool,
    status_code: int,
) -> Response:
    source = collect.get_source(session, viewer.ctx, made.id)
    return render(
        request,
        "sources/key.html",
        {
            "source": source,
            "write_key": made.write_key,
            "created": created,
            "snippets": snippets(_base_url(request), made.write_key, source),
        },
        viewer=viewer,
        status_code=status_code,
    )


def _base_url(request: Request) -> str:
    """This server as the browser reached it: what an SDK on the same network points at."""
    return str(request.base_url).rstrip("/")


def snippets(base: str, write_key: str, source: Source) -> list[Snippet]:
    """Set-up code for the SDKs a site most likely has, pointed at ``base`` (the tracking API
    is Segment's and RudderStack's, under ``/v1``). Values are JSON-quoted, so a source name
    with quotes still makes valid code; the page escapes it as text."""
    parts = urlsplit(base)
    key = json.dumps(write_key)
    api_host = json.dumps(f"{parts.netloc}{parts.path}/v1")
    protocol = json.dumps(parts.scheme or "https")
    url = json.dumps(base)
    config = json.dumps(
        {"id": source.id, "name": source.name, "enabled": True, "config": {}, "destinations": []},
        ensure_ascii=False,
    )
    return [
        Snippet(
            "snippet-segment-js",
            "Segment analytics.js (@segment/analytics-next)",
            "javascript",
            f"""import {{ AnalyticsBrowser }} from "@segment/analytics-next";

// The source's settings are given here, so nothing is fetched from Segment's CDN.
export const analytics = AnalyticsBrowser.load(
  {{ writeKey: {key}, cdnSettings: {{ integrations: {{ "Segment.io": {{ apiKey: {key} }} }} }} }},
  {{ integrations: {{ "Segment.io": {{ apiHost: {api_host}, protocol: {protocol} }} }} }},
);
analytics.track("Order Completed", {{ revenue: 99 }});""",
        ),
        Snippet(
            "snippet-rudder-js",
            "RudderStack JavaScript SDK (@rudderstack/analytics-js)",
            "javascript",
            f"""import {{ RudderAnalytics }} from "@rudderstack/analytics-js";

const analytics = new RudderAnalytics();
// OneLoop is the data plane and has no control plane: the source's configuration is here.
analytics.load({key}, {url}, {{
  getSourceConfig: () => ({{ source: {config} }}),
}});
analytics.track("Order Completed", {{ revenue: 99 }});""",
        ),
        Snippet(
            "snippet-segment-python",
            "Segment Python (segment-analytics-python)",
            "python",
            f"""import segment.analytics as analytics

analytics.write_key = {key}
analytics.host = {url}
analytics.track(user_id="u1", event="Order Completed", properties={{"revenue": 99}})
analytics.flush()""",
        ),
        Snippet(
            "snippet-rudder-python",
            "RudderStack Python (rudder-sdk-python)",
            "python",
            f"""import rudderstack.analytics as rudder_analytics

rudder_analytics.write_key = {key}
rudder_analytics.dataPlaneUrl = {url}
rudder_analytics.track(user_id="u1", event="Order Completed", properties={{"revenue": 99}})
rudder_analytics.flush()""",
        ),
        Snippet(
            "snippet-curl",
            "HTTP (curl)",
            "shell",
            f"""curl -u '{write_key}:' -H 'Content-Type: application/json' \\
  -d '{{"userId": "u1", "event": "Order Completed", "properties": {{"revenue": 99}}}}' \\
  {base}/v1/track""",
        ),
    ]


# --- a source's page ------------------------------------------------------------------------


@router.get("/sources/{source_id}", response_class=HTMLResponse)
def source_page(
    request: Request,
    source_id: str,
    viewer: ViewerDep,
    session: SessionDep,
    cursor: Text = "",
    replayed: Annotated[int | None, Query(ge=0)] = None,
    already: Annotated[int | None, Query(ge=0)] = None,
    refused: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    ctx = viewer.ctx
    source = collect.get_source(session, ctx, source_id)
    now = ctx.clock.now()
    found = stats.source_stats(session, ctx, source.id, now=now)
    letters = deadletters.list_dead_letters(
        session, ctx, source=source.id, limit=DEAD_LETTERS_PAGE, cursor=cursor or None
    )
    chart = {
        "kind": "timeseries",
        "series": [
            {
                "name": source.name,
                "points": [(m.minute.isoformat(), m.events) for m in found.per_minute],
            }
        ],
    }
    report = None
    if replayed is not None:
        report = {"replayed": replayed, "already": already or 0, "refused": refused or 0}
    return render(
        request,
        "sources/detail.html",
        {
            "source": source,
            "stats": found,
            "events_chart": chart,
            "violations": plans.list_violations(session, ctx, source.id),
            "letters": letters.items,
            "waiting": deadletters.count_dead_letters(session, ctx, source=source.id),
            "letters_pager": cursor_pager(request.url, letters.next_cursor),
            "may_manage": viewer.can(MANAGE),
            "unit_code": governance.unit_codes(session).get(source.bu_id, ""),
            "report": report,
        },
        viewer=viewer,
    )


# --- replay dead letters, after a confirmation ----------------------------------------------


@router.get("/sources/{source_id}/replay", response_class=HTMLResponse)
def confirm_replay(
    request: Request, source_id: str, viewer: ViewerDep, session: SessionDep
) -> Response:
    viewer.ctx.require(MANAGE)
    source = collect.get_source(session, viewer.ctx, source_id)
    waiting = deadletters.count_dead_letters(session, viewer.ctx, source=source.id)
    return render(
        request,
        "confirm.html",
        {
            "title": N_("Replay dead letters"),
            "message": N_(
                "Replay the %(count)s waiting dead letters of %(source)s? Each is checked again; "
                "what passes enters the log once, what fails stays waiting with the new reason."
            ),
            "message_args": {"count": waiting, "source": source.name},
            "action": f"/sources/{source.id}/replay",
            "cancel": f"/sources/{source.id}#dead-letters",
            "button": N_("Replay"),
            "reason_label": None,
            "errors": FormErrors(),
        },
        viewer=viewer,
    )


@router.post("/sources/{source_id}/replay", response_class=HTMLResponse)
def replay(request: Request, source_id: str, viewer: ViewerDep, session: SessionDep) -> Response:
    """Replaying twice is harmless (the service de-duplicates on ``messageId``), so the
    outcome can ride on the redirect: counts, nothing personal."""
    source = collect.get_source(session, viewer.ctx, source_id)
    done = deadletters.replay(session, viewer.ctx, source=source.id)
    return RedirectResponse(
        f"/sources/{source.id}?replayed={done.replayed}&already={done.already_stored}"
        f"&refused={done.still_refused}#dead-letters",
        status_code=303,
    )


# --- rotate the write key, after a confirmation ---------------------------------------------


@router.get("/sources/{source_id}/rotate", response_class=HTMLResponse)
def confirm_rotate(
    request: Request, source_id: str, viewer: ViewerDep, session: SessionDep
) -> Response:
    viewer.ctx.require(MANAGE)
    source = collect.get_source(session, viewer.ctx, source_id)
    return render(
        request, "sources/rotate.html", {"source": source, "errors": FormErrors()}, viewer=viewer
    )


@router.post("/sources/{source_id}/rotate", response_class=HTMLResponse)
def rotate(
    request: Request,
    source_id: str,
    viewer: ViewerDep,
    session: SessionDep,
    revoke_old: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    if revoke_old not in ("", "1"):
        raise ValidationFailed(
            "bad choice", [FieldError(("revoke_old",), "tick the box or leave it empty")]
        )
    made = collect.rotate_key(session, viewer.ctx, source_id, revoke_old=revoke_old == "1")
    return _key_page(request, session, viewer, made, created=False, status_code=200)
