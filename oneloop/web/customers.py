"""Customers: search by identifier, name or OneID, and the 360 view with its timeline.

Every value comes from the profiles, identity, scores, segments and consent services, with
the viewer's Context. Personal values are shown masked by default even to a user who holds
``pii:read``: the page reads with a Context narrowed to drop that one permission, so the
services mask as they would for anyone without it. "Reveal" is a POST that reads again with
the viewer's own Context; the services show the values and audit the read (``pii.read``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from oneloop.api.deps import SessionDep
from oneloop.core.context import Context
from oneloop.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from oneloop.governance import consent_views
from oneloop.governance import service as governance
from oneloop.governance.consent_schemas import CHANNEL_LABELS, PURPOSE_LABELS, STATUS_LABELS
from oneloop.governance.roles import PII_READ, expand
from oneloop.profiles import departments, scores
from oneloop.profiles import service as profiles
from oneloop.profiles.schemas import ProfileMatch, TagAssignIn
from oneloop.web.forms import FormErrors, parse_form
from oneloop.web.nav import N_
from oneloop.web.paging import cursor_pager
from oneloop.web.templating import page_lang, render
from oneloop.web.viewer import Viewer, ViewerDep

router = APIRouter(include_in_schema=False)

# What a customer can be looked up by: (the service's type, the label's message id).
SEARCH_KINDS: tuple[tuple[str, str], ...] = (
    ("phone", N_("Phone")),
    ("email", N_("Email")),
    ("name", N_("Name")),
    ("wechat_unionid", N_("WeChat UnionID")),
    ("wechat_openid", N_("WeChat OpenID")),
    ("oneid", N_("OneID")),
)
TIMELINE_PAGE = 20
SCORE_HISTORY = 30
Text = Annotated[str, Query(max_length=300)]


def masked(ctx: Context) -> Context:
    """``ctx`` without ``pii:read``: the default view, whatever the viewer may reveal."""
    return replace(ctx, permissions=expand(ctx.permissions) - {PII_READ})


# --- search ---------------------------------------------------------------------------------


@router.get("/customers", response_class=HTMLResponse)
def search(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    type: Annotated[str, Query(max_length=40)] = "phone",
    q: Text = "",
) -> Response:
    viewer.ctx.require("profiles.read")
    errors = FormErrors()
    results: list[ProfileMatch] | None = None
    if q.strip():
        try:
            results = _find(session, masked(viewer.ctx), type, q.strip())
        except ValidationFailed as exc:
            errors = FormErrors.of(exc, {"q", "type"}, aliases={"value": "q"})
    return render(
        request,
        "customers/search.html",
        {"kinds": SEARCH_KINDS, "type": type, "q": q, "results": results, "errors": errors},
        viewer=viewer,
        status_code=422 if errors else 200,
    )


def _find(session: Session, ctx: Context, kind: str, value: str) -> list[ProfileMatch]:
    if kind not in dict(SEARCH_KINDS):
        raise ValidationFailed("unknown type", [FieldError(("type",), "choose a type")])
    if kind == "name":
        return profiles.find_by_name(session, ctx, value)
    try:
        return [profiles.find(session, ctx, kind, value)]
    except NotFound:
        return []


# --- the 360 view ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineFilter:
    department: str | None
    event: str | None
    cursor: str | None


@router.get("/customers/{profile_id}", response_class=HTMLResponse)
def profile_page(
    request: Request,
    profile_id: str,
    viewer: ViewerDep,
    session: SessionDep,
    department: Text = "",
    event: Text = "",
    cursor: Text = "",
) -> Response:
    where = TimelineFilter(department or None, event or None, cursor or None)
    return _profile(request, session, viewer, profile_id, where, reveal=False)


@router.post("/customers/{profile_id}/reveal", response_class=HTMLResponse)
def reveal(request: Request, profile_id: str, viewer: ViewerDep, session: SessionDep) -> Response:
    """Clear values, once, for this answer only: not at an address that could be bookmarked,
    shared or cached. The services audit what they show."""
    viewer.ctx.require(PII_READ)
    where = TimelineFilter(None, None, None)
    return _profile(request, session, viewer, profile_id, where, reveal=True)


@router.get("/customers/{profile_id}/timeline", response_class=HTMLResponse)
def timeline_fragment(
    request: Request,
    profile_id: str,
    viewer: ViewerDep,
    session: SessionDep,
    department: Text = "",
    event: Text = "",
    cursor: Text = "",
) -> Response:
    """The timeline alone, for htmx (filters and paging); masked, like the page."""
    where = TimelineFilter(department or None, event or None, cursor or None)
    context = _timeline(request, session, masked(viewer.ctx), profile_id, where)
    return render(request, "customers/_timeline.html", context, viewer=viewer)


def _profile(
    request: Request,
    session: Session,
    viewer: Viewer,
    profile_id: str,
    where: TimelineFilter,
    *,
    reveal: bool,
    tag_errors: FormErrors | None = None,
    status_code: int = 200,
) -> Response:
    ctx = viewer.ctx if reveal else masked(viewer.ctx)
    profile = profiles.get(session, ctx, profile_id)
    units = governance.scope_of(session, ctx)
    history = scores.history(session, profile.id, limit=SCORE_HISTORY, bu_ids=units)
    consent = (
        consent_views.current_state(session, ctx, profile.id).items
        if ctx.can("consent.read")
        else None
    )
    taggable = (
        [t for t in profiles.list_tags(session, ctx) if t.kind == "manual"]
        if ctx.can("profiles.tag")
        else []
    )
    context: dict[str, Any] = {  # Any: template values
        "profile": profile,
        "revealed": reveal,
        "may_reveal": viewer.can(PII_READ),
        "may_tag": ctx.can("profiles.tag"),
        "taggable": taggable,
        "tag_errors": tag_errors or FormErrors(),
        "score_chart": _score_chart(history),
        "score_history": history,
        "consent": consent,
        "purpose_labels": PURPOSE_LABELS,
        "channel_labels": CHANNEL_LABELS,
        "status_labels": STATUS_LABELS,
        "unit_codes": governance.unit_codes(session),
        **_timeline(request, session, ctx, profile.id, where),
    }
    return render(
        request, "customers/profile.html", context, viewer=viewer, status_code=status_code
    )


def _timeline(
    request: Request, session: Session, ctx: Context, profile_id: str, where: TimelineFilter
) -> dict[str, Any]:  # Any: template values
    found = profiles.timeline(
        session,
        ctx,
        profile_id,
        department=where.department,
        event=where.event,
        cursor=where.cursor,
        limit=TIMELINE_PAGE,
    )
    page_path = f"/customers/{found.profile_id}"
    return {
        "timeline": found,
        "timeline_filter": where,
        "departments": departments.current(session).departments,
        "timeline_pager": cursor_pager(
            request.url,
            found.next_cursor,
            page_path=page_path,
            fragment_path=f"{page_path}/timeline",
        ),
    }


def _score_chart(history: list[scores.Points]) -> dict[str, Any]:  # Any: chart JSON
    """Each model's value after each award, oldest first: the score's history as a line."""
    series: dict[str, list[tuple[str, float]]] = {}
    for point in reversed(history):
        series.setdefault(point.model_code, []).append(
            (point.at.isoformat(), round(point.value_after, 2))
        )
    return {
        "kind": "timeseries",
        "series": [{"name": code, "points": points} for code, points in series.items()],
    }


# --- tags: add, and remove after a confirmation ---------------------------------------------


class TagRemoval(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)


@router.post("/customers/{profile_id}/tags", response_class=HTMLResponse)
def add_tag(
    request: Request,
    profile_id: str,
    viewer: ViewerDep,
    session: SessionDep,
    tag_id: Annotated[str, Form(max_length=64)] = "",
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    try:
        if not tag_id:
            raise ValidationFailed("no tag", [FieldError(("tag_id",), N_("Choose a tag."))])
        data = parse_form(TagAssignIn, {"reason": reason})
        profiles.assign_tag(session, viewer.ctx, profile_id, tag_id, data)
    except (ValidationFailed, Conflict) as exc:  # refused before anything was written
        errors = (
            FormErrors.of(exc, {"tag_id", "reason"})
            if isinstance(exc, ValidationFailed)
            else FormErrors(general=[exc.detail])
        )
        where = TimelineFilter(None, None, None)
        status = 422 if isinstance(exc, ValidationFailed) else 409
        return _profile(
            request,
            session,
            viewer,
            profile_id,
            where,
            reveal=False,
            tag_errors=errors,
            status_code=status,
        )
    return RedirectResponse(f"/customers/{profile_id}#tags", status_code=303)


@router.get("/customers/{profile_id}/tags/{tag_id}/remove", response_class=HTMLResponse)
def confirm_remove_tag(
    request: Request, profile_id: str, tag_id: str, viewer: ViewerDep, session: SessionDep
) -> Response:
    return _confirm_removal(request, session, viewer, profile_id, tag_id, FormErrors(), 200)


def _confirm_removal(
    request: Request,
    session: Session,
    viewer: Viewer,
    profile_id: str,
    tag_id: str,
    errors: FormErrors,
    status_code: int,
) -> Response:
    viewer.ctx.require("profiles.tag")
    held = next(
        (t for t in profiles.profile_tags(session, viewer.ctx, profile_id) if t.tag_id == tag_id),
        None,
    )
    if held is None:
        raise NotFound(f"the customer has no tag {tag_id}", tag_id=tag_id)
    return render(
        request,
        "confirm.html",
        {
            "title": N_("Remove a tag"),
            "message": N_("Remove the tag %(tag)s from this customer?"),
            "message_args": {
                "tag": held.name_zh if page_lang(request) == "zh-CN" else held.name_en
            },
            "action": f"/customers/{profile_id}/tags/{tag_id}/remove",
            "cancel": f"/customers/{profile_id}#tags",
            "button": N_("Remove the tag"),
            "reason_label": N_("Why (kept in the tag's history)"),
            "errors": errors,
        },
        viewer=viewer,
        status_code=status_code,
    )


@router.post("/customers/{profile_id}/tags/{tag_id}/remove", response_class=HTMLResponse)
def remove_tag(
    request: Request,
    profile_id: str,
    tag_id: str,
    viewer: ViewerDep,
    session: SessionDep,
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    try:
        data = parse_form(TagRemoval, {"reason": reason})
    except ValidationFailed as exc:
        errors = FormErrors.of(exc, {"reason"})
        return _confirm_removal(request, session, viewer, profile_id, tag_id, errors, 422)
    profiles.remove_tag(session, viewer.ctx, profile_id, tag_id, data.reason)
    return RedirectResponse(f"/customers/{profile_id}#tags", status_code=303)
