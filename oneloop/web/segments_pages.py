"""Segments: the unit's list, a visual rule builder with a live size estimate, a segment's
page (members, enter/exit trend, CSV export), edit and delete.

The builder (``static/console.js``) edits the segment language's JSON document in the form's
``rule`` field; the server parses it with the same ``language.parse_rule`` and ``bind`` the
REST API uses (inside the segments service), and hands the errors back by path
(``rule.and[1].op``) so the script can show each beside the condition it concerns. The
estimate is the service's own ``estimate`` over the rule being edited, asked for by htmx. The
suggestions (trait names, event names, tag and score-model codes) come from the services that
list them, with the viewer's Context: a user sees only names they could read anyway.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from oneloop.api.deps import SessionDep
from oneloop.collect import catalog
from oneloop.collect import service as collect
from oneloop.core.errors import Conflict, FieldError, ValidationFailed
from oneloop.governance import dictionary
from oneloop.governance import service as governance
from oneloop.profiles import score_models, trait_defs
from oneloop.profiles import service as profiles
from oneloop.segments import service as segments
from oneloop.segments.schemas import Segment, SegmentIn, SegmentUpdate
from oneloop.web.customers import masked
from oneloop.web.forms import FormErrors, parse_form
from oneloop.web.i18n import gettext
from oneloop.web.nav import N_
from oneloop.web.paging import cursor_pager
from oneloop.web.templating import page_lang, render
from oneloop.web.viewer import Viewer, ViewerDep

router = APIRouter(include_in_schema=False)

PAGE = 50
MEMBERS_PAGE = 25
TREND_DAYS = 30
MAX_RULE_TEXT = 200_000  # characters of a rule document a form may send
# Golden-record fields shown beside each member, masked as the services mask them.
MEMBER_FIELDS = ("name", "phone", "email")
FORM_FIELDS = {"code", "name", "description", "is_live", "rule"}
Text = Annotated[str, Query(max_length=200)]
RuleText = Annotated[str, Form(max_length=MAX_RULE_TEXT)]

# Data dictionary types → how the builder reads a value typed for a trait.
VALUE_TYPES = {
    "integer": "number",
    "number": "number",
    "money": "number",
    "percent": "number",
    "boolean": "bool",
    "date": "date",
    "datetime": "date",
    "string": "text",
}
NUMERIC_AGGREGATES = ("count", "sum", "avg", "distinct_count")

# What the builder's script shows; message ids, translated for the reader when rendered.
BUILDER_LABELS: dict[str, str] = {
    "all": N_("all of"),
    "any": N_("any of"),
    "none": N_("none of"),
    "these": N_("these conditions"),
    "add_condition": N_("Add a condition"),
    "add_group": N_("Add a group"),
    "remove": N_("Remove"),
    "remove_group": N_("Remove the group"),
    "kind": N_("Condition type"),
    "trait": N_("Trait"),
    "event": N_("Event"),
    "tag": N_("Tag"),
    "score": N_("Score"),
    "segment": N_("Segment"),
    "json": N_("JSON"),
    "trait_name": N_("Trait name"),
    "event_name": N_("Event name"),
    "operator": N_("Operator"),
    "value": N_("Value"),
    "values_hint": N_("Values, separated by commas"),
    "from": N_("from"),
    "to": N_("to"),
    "amount": N_("amount"),
    "unit": N_("time unit"),
    "did": N_("did"),
    "did_not": N_("did not do"),
    "any_count": N_("any number of times"),
    "at_least": N_("at least"),
    "at_most": N_("at most"),
    "exactly": N_("exactly"),
    "times": N_("times"),
    "ever": N_("ever"),
    "within": N_("in the last"),
    "has": N_("has"),
    "has_not": N_("does not have"),
    "is_member": N_("is in"),
    "is_not_member": N_("is not in"),
    "minutes": N_("minutes"),
    "hours": N_("hours"),
    "days": N_("days"),
    "weeks": N_("weeks"),
    "op_eq": N_("equals"),
    "op_ne": N_("does not equal"),
    "op_gt": N_("greater than"),
    "op_gte": N_("at least (≥)"),
    "op_lt": N_("less than"),
    "op_lte": N_("at most (≤)"),
    "op_in": N_("is one of"),
    "op_not_in": N_("is none of"),
    "op_contains": N_("contains"),
    "op_starts_with": N_("starts with"),
    "op_exists": N_("is set"),
    "op_not_exists": N_("is not set"),
    "op_between": N_("between"),
    "op_within_last": N_("within the last"),
    "op_not_within_last": N_("not within the last"),
    "empty": N_("Add a condition to see how many customers it finds."),
    "incomplete": N_("Fill in every condition to see an estimate."),
    "bad_json": N_("This is not valid JSON."),
    "required": N_("This field is required."),
}


@dataclass(frozen=True)
class Suggestions:
    """Names the builder offers; each list is what the viewer may read."""

    traits: list[dict[str, str]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    tags: list[dict[str, str]] = field(default_factory=list)
    scores: list[dict[str, str]] = field(default_factory=list)
    segments: list[dict[str, str]] = field(default_factory=list)


# --- the list ------------------------------------------------------------------------------


@router.get("/segments", response_class=HTMLResponse)
def segment_list(
    request: Request, viewer: ViewerDep, session: SessionDep, cursor: Text = ""
) -> Response:
    """The service lists every segment of the unit at once; the page shows them ``PAGE`` at a
    time, the cursor being the position of the first one shown."""
    if cursor and not cursor.isdigit():
        raise ValidationFailed("bad cursor", [FieldError(("cursor",), "not a page of this list")])
    found = segments.list_segments(session, viewer.ctx)
    start = int(cursor or 0)
    shown = found[start : start + PAGE]
    more = start + PAGE < len(found)
    return render(
        request,
        "segments/list.html",
        {
            "segments": shown,
            "total": len(found),
            "pager": cursor_pager(request.url, start + PAGE if more else None),
            "may_manage": viewer.can(segments.MANAGE),
            "unit_codes": governance.unit_codes(session) if viewer.ctx.is_group_wide else {},
        },
        viewer=viewer,
    )


# --- create and edit ------------------------------------------------------------------------


@router.get("/segments/new", response_class=HTMLResponse)
def new_segment(request: Request, viewer: ViewerDep, session: SessionDep) -> Response:
    viewer.ctx.require(segments.MANAGE)
    form = {"code": "", "name": "", "description": "", "is_live": True, "rule": ""}
    return _builder(request, session, viewer, None, form, FormErrors(), [], 200)


@router.post("/segments/new", response_class=HTMLResponse)
def create_segment(
    request: Request,
    viewer: ViewerDep,
    session: SessionDep,
    code: Annotated[str, Form(max_length=200)] = "",
    name: Annotated[str, Form(max_length=1000)] = "",
    description: Annotated[str, Form(max_length=5000)] = "",
    is_live: Annotated[str, Form(max_length=10)] = "",
    rule: RuleText = "",
) -> Response:
    viewer.ctx.require(segments.MANAGE)
    form = {
        "code": code,
        "name": name,
        "description": description,
        "is_live": bool(is_live),
        "rule": rule,
    }
    try:
        data = parse_form(
            SegmentIn,
            {
                "code": code,
                "name": name,
                "description": description,
                "is_live": bool(is_live),
                "rule": _rule_of(rule),
            },
        )
        with session.begin_nested():  # a refusal after a flush leaves nothing behind
            made = segments.create_segment(session, viewer.ctx, data)
    except (ValidationFailed, Conflict) as exc:
        errors, rule_errors, status = _form_errors(exc)
        return _builder(request, session, viewer, None, form, errors, rule_errors, status)
    return RedirectResponse(f"/segments/{made.id}", status_code=303)


@router.get("/segments/{segment_id}/edit", response_class=HTMLResponse)
def edit_segment(
    request: Request, segment_id: str, viewer: ViewerDep, session: SessionDep
) -> Response:
    viewer.ctx.require(segments.MANAGE)
    found = segments.get_segment(session, viewer.ctx, segment_id)
    form = {
        "code": found.code,
        "name": found.name,
        "description": found.description,
        "is_live": found.is_live,
        "rule": json.dumps(found.rule, ensure_ascii=False),
        "version": found.version,
    }
    return _builder(request, session, viewer, found, form, FormErrors(), [], 200)


@router.post("/segments/{segment_id}/edit", response_class=HTMLResponse)
def update_segment(
    request: Request,
    segment_id: str,
    viewer: ViewerDep,
    session: SessionDep,
    name: Annotated[str, Form(max_length=1000)] = "",
    description: Annotated[str, Form(max_length=5000)] = "",
    is_live: Annotated[str, Form(max_length=10)] = "",
    rule: RuleText = "",
    version: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """A change made against the version the form was opened on (the page's If-Match): when
    someone saved in between, the form comes back (409) with what was typed, to compare."""
    viewer.ctx.require(segments.MANAGE)
    found = segments.get_segment(session, viewer.ctx, segment_id)
    form = {
        "code": found.code,
        "name": name,
        "description": description,
        "is_live": bool(is_live),
        "rule": rule,
        "version": found.version,
    }
    try:
        if version != str(found.version):
            raise Conflict(
                N_("Someone changed this segment since you opened it; review it and save again.")
            )
        data = parse_form(
            SegmentUpdate,
            {
                "name": name,
                "description": description,
                "is_live": bool(is_live),
                "rule": _rule_of(rule),
            },
        )
        with session.begin_nested():  # a circle is found after the row changed: undo it
            segments.update_segment(session, viewer.ctx, segment_id, data)
    except (ValidationFailed, Conflict) as exc:
        errors, rule_errors, status = _form_errors(exc)
        return _builder(request, session, viewer, found, form, errors, rule_errors, status)
    return RedirectResponse(f"/segments/{segment_id}", status_code=303)


@router.post("/segments/estimate", response_class=HTMLResponse)
def estimate(
    request: Request, viewer: ViewerDep, session: SessionDep, rule: RuleText = ""
) -> Response:
    """The size of the rule being edited (htmx, debounced by the builder): the service's own
    estimate, exact over few customers, sampled over many. A rule the language refuses
    answers 422 with the errors by path, which the builder places beside their conditions."""
    try:
        found = segments.estimate(session, viewer.ctx, _rule_of(rule))
    except ValidationFailed as exc:
        rule_errors = [{"path": e.path, "msg": e.msg} for e in exc.errors] or [
            {"path": "rule", "msg": exc.detail}
        ]
        return render(
            request,
            "segments/_estimate.html",
            {"estimate": None, "rule_errors": rule_errors},
            viewer=viewer,
            status_code=422,
        )
    return render(
        request,
        "segments/_estimate.html",
        {"estimate": found, "rule_errors": []},
        viewer=viewer,
    )


def _rule_of(text: str) -> dict[str, Any]:  # Any: a JSON document, validated by the service
    """The form's rule document; what is not a JSON object is refused at ``rule``."""
    if not text.strip():
        raise ValidationFailed(
            "no rule", [FieldError(("rule",), N_("Add at least one condition."))]
        )
    try:
        document = json.loads(text)
    except ValueError:
        raise ValidationFailed(
            "the rule is not JSON", [FieldError(("rule",), N_("The rule is not valid JSON."))]
        ) from None
    if not isinstance(document, dict):
        raise ValidationFailed(
            "the rule is not an object",
            [FieldError(("rule",), N_("The rule must be a JSON object."))],
        )
    return document


def _form_errors(
    exc: ValidationFailed | Conflict,
) -> tuple[FormErrors, list[dict[str, str]], int]:
    """The form's field errors, the rule's errors by path (for the builder), the status."""
    if isinstance(exc, Conflict):
        return FormErrors(general=[exc.detail]), [], 409
    rule_errors = [
        {"path": e.path, "msg": e.msg} for e in exc.errors if e.loc and e.loc[0] == "rule"
    ]
    others = ValidationFailed(exc.detail, [e for e in exc.errors if e.loc[:1] != ("rule",)])
    errors = FormErrors.of(others, FORM_FIELDS) if others.errors else FormErrors()
    if rule_errors:
        errors.fields["rule"] = [N_("The rule has errors: see the marked conditions.")]
    elif not exc.errors:
        errors.general.append(exc.detail)
    return errors, rule_errors, 422


def _builder(
    request: Request,
    session: Session,
    viewer: Viewer,
    segment: Segment | None,
    form: dict[str, object],
    errors: FormErrors,
    rule_errors: list[dict[str, str]],
    status_code: int,
) -> Response:
    lang = page_lang(request)
    labels = {key: gettext(lang, message) for key, message in BUILDER_LABELS.items()}
    builder = {
        "labels": labels,
        "suggestions": _suggestions(session, viewer, lang, segment).__dict__,
        "errors": rule_errors,
    }
    return render(
        request,
        "segments/form.html",
        {"segment": segment, "form": form, "errors": errors, "builder": builder},
        viewer=viewer,
        status_code=status_code,
    )


def _suggestions(
    session: Session, viewer: Viewer, lang: str, editing: Segment | None
) -> Suggestions:
    """What the builder suggests, each from the service that lists it, read as the viewer."""
    ctx = viewer.ctx
    found = Suggestions()
    if ctx.can("profiles.read"):
        for trait in trait_defs.list_traits(session, ctx):
            aggregate = str(trait.definition.get("aggregate", ""))
            kind = "number" if aggregate in NUMERIC_AGGREGATES else ""
            found.traits.append({"name": trait.name, "type": kind, "label": trait.description})
        known = {t["name"] for t in found.traits}
        for entry in dictionary.list_entries(session, ctx, kind="field", limit=500).items:
            if entry.key not in known:
                name = entry.name_zh if lang == "zh-CN" else entry.name_en
                kind = VALUE_TYPES.get(entry.data_type, "")
                found.traits.append({"name": entry.key, "type": kind, "label": name})
        for tag in profiles.list_tags(session, ctx):
            name = tag.name_zh if lang == "zh-CN" else tag.name_en
            found.tags.append({"code": tag.code, "label": name})
        for model in score_models.list_models(session, ctx):
            name = model.name_zh if lang == "zh-CN" else model.name_en
            found.scores.append({"code": model.code, "label": name})
    if ctx.can("collect.source.read"):
        counts: dict[str, int] = {}
        for source in collect.list_sources(session, ctx):
            for entry in catalog.list_catalog(session, ctx, source.id):
                if entry.type == "track" and entry.name:
                    counts[entry.name] = counts.get(entry.name, 0) + entry.count
        found.events.extend(sorted(counts, key=lambda n: (-counts[n], n)))
    for other in segments.list_segments(session, ctx):
        if editing is None or other.id != editing.id:
            found.segments.append({"code": other.code, "label": other.name})
    return found


# --- a segment's page -----------------------------------------------------------------------


@router.get("/segments/{segment_id}", response_class=HTMLResponse)
def segment_page(
    request: Request, segment_id: str, viewer: ViewerDep, session: SessionDep, cursor: Text = ""
) -> Response:
    found = segments.get_segment(session, viewer.ctx, segment_id)
    _ = page_lang(request)
    trend = segments.daily_changes(session, viewer.ctx, found.id, days=TREND_DAYS)
    chart = {
        "kind": "bar",
        "categories": [d.day.isoformat() for d in trend],
        "series": [
            {"name": gettext(_, "Entered"), "values": [d.entered for d in trend]},
            {"name": gettext(_, "Left"), "values": [d.exited for d in trend]},
        ],
        "empty": gettext(_, "No entries or exits yet."),
    }
    context: dict[str, Any] = {  # Any: template values
        "segment": found,
        "rule_json": json.dumps(found.rule, ensure_ascii=False, indent=2),
        "trend_chart": chart,
        "trend_total": (sum(d.entered for d in trend), sum(d.exited for d in trend)),
        "may_manage": viewer.can(segments.MANAGE),
        "may_export": viewer.can(segments.EXPORT),
        "unit_code": governance.unit_codes(session).get(found.bu_id, ""),
        **_members(request, session, viewer, found.id, cursor),
    }
    return render(request, "segments/detail.html", context, viewer=viewer)


@router.get("/segments/{segment_id}/members", response_class=HTMLResponse)
def members_fragment(
    request: Request, segment_id: str, viewer: ViewerDep, session: SessionDep, cursor: Text = ""
) -> Response:
    """The members alone, for htmx paging."""
    context = _members(request, session, viewer, segment_id, cursor)
    return render(request, "segments/_members.html", context, viewer=viewer)


def _members(
    request: Request, session: Session, viewer: Viewer, segment_id: str, cursor: str
) -> dict[str, Any]:  # Any: template values
    """Read masked whatever the viewer may reveal (as the 360 view): the list is for
    working through, clear values are the customer page's audited "Reveal"."""
    page = segments.list_members(
        session,
        masked(viewer.ctx),
        segment_id,
        cursor=cursor or None,
        limit=MEMBERS_PAGE,
        fields=MEMBER_FIELDS,
    )
    path = f"/segments/{page.segment_id}"
    return {
        "members": page.members,
        "member_fields": MEMBER_FIELDS,
        "members_pager": cursor_pager(
            request.url, page.next_cursor, page_path=path, fragment_path=f"{path}/members"
        ),
    }


# --- delete, after a confirmation -----------------------------------------------------------


@router.get("/segments/{segment_id}/delete", response_class=HTMLResponse)
def confirm_delete(
    request: Request, segment_id: str, viewer: ViewerDep, session: SessionDep
) -> Response:
    return _confirm_delete(request, session, viewer, segment_id, FormErrors(), 200)


@router.post("/segments/{segment_id}/delete", response_class=HTMLResponse)
def delete_segment(
    request: Request, segment_id: str, viewer: ViewerDep, session: SessionDep
) -> Response:
    try:
        with session.begin_nested():
            segments.delete_segment(session, viewer.ctx, segment_id)
    except Conflict as exc:  # another segment or a rule tag uses it: nothing was deleted
        errors = FormErrors(general=[exc.detail])
        return _confirm_delete(request, session, viewer, segment_id, errors, 409)
    return RedirectResponse("/segments", status_code=303)


def _confirm_delete(
    request: Request,
    session: Session,
    viewer: Viewer,
    segment_id: str,
    errors: FormErrors,
    status_code: int,
) -> Response:
    viewer.ctx.require(segments.MANAGE)
    found = segments.get_segment(session, viewer.ctx, segment_id)
    return render(
        request,
        "confirm.html",
        {
            "title": N_("Delete a segment"),
            "message": N_(
                "Delete the segment %(name)s? Its %(size)s members leave it; its history stays."
            ),
            "message_args": {"name": found.name, "size": found.size},
            "action": f"/segments/{found.id}/delete",
            "cancel": f"/segments/{found.id}",
            "button": N_("Delete the segment"),
            "reason_label": None,
            "errors": errors,
        },
        viewer=viewer,
        status_code=status_code,
    )
