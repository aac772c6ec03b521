"""Tracking plans (issue 4): what a source promises to send, checked as its events arrive.

A plan names, per track event, a JSON Schema (2020-12) for its ``properties``, optionally one
for identify ``traits``, and a ``mode``: *allow* keeps a violating event and counts the
violation, *block* dead-letters it (reason ``plan_violation``, with the paths that failed) so
it can be replayed once the plan or the tracking code is fixed. Track events the plan does not
name follow ``unplanned``, allow or block, independently of ``mode``. Other calls (page,
screen, group, alias) are not checked.

Management (create, replace, import and export as YAML, attach to a source) is BU-isolated
like sources: another unit's plan is NotFound. Every schema is checked against the JSON
Schema meta-schema when a plan is saved, with errors named by their path in the plan
(``events.Order Completed.properties.properties.total.type``), so a bad plan never reaches the
ingest path. Remote ``$ref``\\s are refused on save and never fetched: the server must not fetch
URLs that anyone with plan access can choose.

``check`` and ``record_violations``, which ``ingest`` calls for sources with a plan, are in
collect/plan_check.py and re-exported here.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import ValidationError as PydanticValidationError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from oneloop.collect import service
from oneloop.collect.models import PlanViolationRow, SourceRow, TrackingPlanRow
from oneloop.collect.plan_check import (
    PLAN_VIOLATION,
    Loc,
    PlanVerdict,
    check,
    json_kind,
    record_violations,
    schema_refs,
)
from oneloop.collect.plan_schemas import JsonSchema, PlanIn, PlanSpec, TrackingPlan, ViolationCount
from oneloop.collect.schemas import Source
from oneloop.core.context import Context
from oneloop.core.db import in_tenancy
from oneloop.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from oneloop.core.ids import new_id
from oneloop.core.paging import Column, Page, PageRequest, keyset_page
from oneloop.governance import audit
from oneloop.governance import service as governance

# The hot path lives in plan_check (ingest imports it from there); named here as well, since
# this is where a reader looks for "the plan".
__all__ = [
    "PLAN_VIOLATION",
    "PlanVerdict",
    "attach_plan",
    "check",
    "check_schemas",
    "create_plan",
    "delete_plan",
    "export_plan",
    "get_plan",
    "import_plan",
    "list_plans",
    "list_violations",
    "parse_plan",
    "plan_from_yaml",
    "plan_to_yaml",
    "record_violations",
    "update_plan",
]

log = logging.getLogger(__name__)

MAX_PLAN_NODES = 50_000  # values in one plan document: far past any real plan, short of a bomb
MAX_PLAN_DEPTH = 64
# What a plan read back from the API carries besides its content: ignored when it is sent
# again, so GET, edit, PUT works.
READ_ONLY = ("id", "bu_id", "version", "created_at", "updated_at")


# --- the plan document: parse, check, YAML ----------------------------------------------------


class _JsonYamlLoader(yaml.SafeLoader):
    """YAML that says only what JSON can: ``2026-04-16`` stays a string, not a date."""


_JsonYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def plan_from_yaml(
    text: str | bytes,
    *,
    bu: str | None = None,
    name: str | None = None,
    mode: str | None = None,
) -> PlanIn:
    """Parse a plan file; ``bu``, ``name`` and ``mode``, when given, override the file's."""
    try:
        document = yaml.load(text, Loader=_JsonYamlLoader)  # noqa: S506  # a SafeLoader
    except RecursionError:
        raise ValidationFailed(
            "the tracking plan is nested too deeply",
            [FieldError((), f"nested more than {MAX_PLAN_DEPTH} levels")],
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValidationFailed(
            f"the tracking plan is not valid YAML{where}: {problem}",
            [FieldError((), f"not valid YAML{where}: {problem}")],
        ) from None
    return parse_plan(document, bu=bu, name=name, mode=mode)


def parse_plan(
    document: object,
    *,
    bu: str | None = None,
    name: str | None = None,
    mode: str | None = None,
) -> PlanIn:
    """A plan from a parsed JSON or YAML document, or ValidationFailed naming each bad path.

    Only the shape is checked here; the schemas inside are checked when the plan is saved.
    """
    if not isinstance(document, dict):
        raise ValidationFailed(
            "a tracking plan is a mapping with name, mode, unplanned, traits and events",
            [FieldError((), f"must be a mapping; got {json_kind(document)}")],
        )
    errors = list(_json_only(document, (), [0]))
    if errors:
        raise ValidationFailed(_summary("value(s) JSON cannot hold", errors), errors)
    given = {"bu": bu, "name": name, "mode": mode}
    merged = {k: v for k, v in document.items() if k not in READ_ONLY}
    merged.update({k: v for k, v in given.items() if v is not None})
    try:
        return PlanIn.model_validate(merged)
    except PydanticValidationError as exc:
        errors = [FieldError(tuple(e["loc"]), e["msg"]) for e in exc.errors()]
        raise ValidationFailed(_summary("invalid field(s)", errors), errors) from None


def plan_to_yaml(plan: PlanSpec) -> str:
    """The portable plan as YAML, in the order a person reads it; ``plan_from_yaml`` reads it
    back to an equal plan."""
    data: dict[str, object] = {"name": plan.name, "mode": plan.mode, "unplanned": plan.unplanned}
    if plan.traits is not None:
        data["traits"] = plan.traits
    data["events"] = _events(plan)
    return yaml.safe_dump(
        data, allow_unicode=True, sort_keys=False, default_flow_style=None, width=100
    )


def check_schemas(plan: PlanSpec) -> None:
    """Every schema in the plan is a valid JSON Schema 2020-12 with only local ``$ref``\\s."""
    errors: list[FieldError] = []
    if plan.traits is not None:
        errors += _schema_errors(plan.traits, ("traits",))
    for event, event_plan in plan.events.items():
        errors += _schema_errors(event_plan.properties, ("events", event, "properties"))
    if errors:
        raise ValidationFailed(_summary("invalid schema(s)", errors), errors)


def _schema_errors(schema: JsonSchema, loc: Loc) -> list[FieldError]:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return [FieldError((*loc, *exc.absolute_path), exc.message)]
    errors = [
        FieldError((*loc, *where), f"must be a reference inside the plan (#/…); got {ref!r}")
        for where, ref in schema_refs(schema)
        if not ref.startswith("#")
    ]
    if errors:
        return errors
    # Resolve every local $ref now, so a broken one fails the save rather than an event.
    resolver = Registry().with_resource("", DRAFT202012.create_resource(schema)).resolver()
    for where, ref in schema_refs(schema):
        try:
            resolver.lookup(ref)
        except Unresolvable:
            errors.append(FieldError((*loc, *where), f"{ref!r} points at nothing in the schema"))
    return errors


def _json_only(node: object, loc: Loc, seen: list[int]) -> Iterator[FieldError]:
    """YAML can say more than JSON (non-string keys, NaN, sets, aliases that multiply into a
    billion values); a plan is JSON, so the rest is refused with its path."""
    seen[0] += 1
    if len(loc) > MAX_PLAN_DEPTH:
        yield FieldError(loc[:MAX_PLAN_DEPTH], f"nested more than {MAX_PLAN_DEPTH} levels")
        return
    if seen[0] > MAX_PLAN_NODES:
        if seen[0] == MAX_PLAN_NODES + 1:
            yield FieldError(loc, f"the plan has more than {MAX_PLAN_NODES:,} values")
        return
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                yield FieldError((*loc, str(key)), f"keys must be text; quote {key!r}")
            else:
                yield from _json_only(value, (*loc, key), seen)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _json_only(value, (*loc, index), seen)
    elif isinstance(node, float) and not math.isfinite(node):
        yield FieldError(loc, "must be a finite number")
    elif node is not None and not isinstance(node, str | int | float | bool):
        yield FieldError(loc, "must be JSON: a string, number, boolean, null, list or mapping")


def _summary(what: str, errors: Sequence[FieldError]) -> str:
    named = "; ".join(f"{e.path}: {e.msg}" if e.path else e.msg for e in errors[:3])
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return f"the tracking plan has {len(errors)} {what}: {named}{more}"


# --- management: BU-isolated like sources; the caller commits ----------------------------------


def create_plan(session: Session, ctx: Context, data: PlanIn) -> TrackingPlan:
    ctx.require("collect.plan.manage")
    if data.bu is None:
        raise ValidationFailed(
            "say which business unit the plan is for (bu)", [FieldError(("bu",), "is required")]
        )
    bu = governance.get_business_unit(session, ctx, data.bu)
    check_schemas(data)
    _require_free_name(session, bu.id, data.name)
    now = ctx.clock.now()
    row = TrackingPlanRow(
        id=new_id(now),
        bu_id=bu.id,
        name=data.name,
        mode=data.mode,
        document=_document(data),
        version=1,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    log.info("plan.created", extra={"plan_id": row.id, "bu_id": row.bu_id, "by": ctx.user_id})
    audit.record(session, ctx, "plan.created", "tracking_plan", row.id, bu_id=row.bu_id)
    return _plan(row)


def update_plan(session: Session, ctx: Context, plan_id: str, data: PlanSpec) -> TrackingPlan:
    """Replace the plan's content (a new version); it stays in its business unit."""
    ctx.require("collect.plan.manage")
    row = _get_row(session, ctx, plan_id)
    bu = data.bu if isinstance(data, PlanIn) else None
    if bu is not None and governance.get_business_unit(session, ctx, bu).id != row.bu_id:
        raise ValidationFailed(
            "a plan stays in its business unit; import it into the other unit instead",
            [FieldError(("bu",), "is not the plan's business unit")],
        )
    check_schemas(data)
    if data.name != row.name:
        _require_free_name(session, row.bu_id, data.name)
    row.name = data.name
    row.mode = data.mode
    row.document = _document(data)
    # In SQL, so two concurrent saves cannot both make the same version.
    row.version = TrackingPlanRow.version + 1  # type: ignore[assignment]  # a SQL expression
    row.updated_at = ctx.clock.now()
    session.flush()
    session.refresh(row)
    log.info("plan.replaced", extra={"plan_id": row.id, "version": row.version, "by": ctx.user_id})
    audit.record(
        session,
        ctx,
        "plan.updated",
        "tracking_plan",
        row.id,
        detail={"version": row.version},
        bu_id=row.bu_id,
    )
    return _plan(row)


def import_plan(session: Session, ctx: Context, data: PlanIn) -> tuple[TrackingPlan, bool]:
    """Create the plan, or replace the unit's plan of the same name; True when created. So
    editing a plan file and importing it again is how a plan changes."""
    ctx.require("collect.plan.manage")
    if data.bu is None:
        return create_plan(session, ctx, data), True
    bu = governance.get_business_unit(session, ctx, data.bu)
    existing = session.scalar(
        select(TrackingPlanRow.id).where(
            TrackingPlanRow.bu_id == bu.id, TrackingPlanRow.name == data.name
        )
    )
    if existing is None:
        return create_plan(session, ctx, data), True
    return update_plan(session, ctx, existing, data), False


def get_plan(session: Session, ctx: Context, plan_id: str) -> TrackingPlan:
    ctx.require("collect.plan.read")
    return _plan(_get_row(session, ctx, plan_id))


def list_plans(session: Session, ctx: Context) -> list[TrackingPlan]:
    """The caller's unit's plans (every unit's for group-wide roles), oldest first."""
    ctx.require("collect.plan.read")
    query = in_tenancy(
        select(TrackingPlanRow).order_by(TrackingPlanRow.id), TrackingPlanRow.bu_id, ctx
    )
    return [_plan(row) for row in session.scalars(query)]


def export_plan(session: Session, ctx: Context, plan_id: str) -> str:
    return plan_to_yaml(get_plan(session, ctx, plan_id))


def delete_plan(session: Session, ctx: Context, plan_id: str) -> None:
    """A plan some source uses cannot be deleted: detach it first (this is what keeps
    ``collect_source.tracking_plan_id`` valid; there is no foreign key, see the model)."""
    ctx.require("collect.plan.manage")
    row = _get_row(session, ctx, plan_id)
    users = list(session.scalars(select(SourceRow.id).where(SourceRow.tracking_plan_id == row.id)))
    if users:
        raise Conflict(
            f"tracking plan {plan_id} is attached to source(s) {', '.join(users)}; detach it first",
            plan_id=plan_id,
        )
    session.delete(row)
    session.flush()
    log.info("plan.deleted", extra={"plan_id": plan_id, "by": ctx.user_id})
    audit.record(session, ctx, "plan.deleted", "tracking_plan", row.id, bu_id=row.bu_id)


def attach_plan(session: Session, ctx: Context, source_id: str, plan_id: str | None) -> Source:
    """Check the source's events against the plan from its next batch on (``None`` detaches).
    The plan must belong to the source's business unit."""
    ctx.require("collect.source.manage")
    source = service.get_source(session, ctx, source_id)
    if plan_id is not None:
        ctx.require("collect.plan.read")
        plan = _get_row(session, ctx, plan_id)
        if plan.bu_id != source.bu_id:
            raise Conflict(
                f"tracking plan {plan_id} belongs to another business unit than source "
                f"{source_id}; import the plan into the source's unit",
                plan_id=plan_id,
                source_id=source_id,
            )
    session.execute(
        update(SourceRow)
        .where(SourceRow.id == source.id)
        .values(tracking_plan_id=plan_id, updated_at=ctx.clock.now())
    )
    log.info(
        "plan.attached" if plan_id else "plan.detached",
        extra={"source_id": source.id, "plan_id": plan_id, "by": ctx.user_id},
    )
    audit.record(
        session,
        ctx,
        "source.plan_attached" if plan_id else "source.plan_detached",
        "source",
        source.id,
        detail={"plan_id": plan_id},
        bu_id=source.bu_id,
    )
    return service.get_source(session, ctx, source_id)


def list_violations(session: Session, ctx: Context, source_id: str) -> list[ViolationCount]:
    """The source's violation counters, most frequent first: what to fix first."""
    ctx.require("collect.source.read")
    source = service.get_source(session, ctx, source_id)
    rows = session.scalars(
        select(PlanViolationRow)
        .where(PlanViolationRow.source_id == source.id)
        .order_by(
            PlanViolationRow.count.desc(),
            PlanViolationRow.event,
            PlanViolationRow.path,
            PlanViolationRow.kind,
        )
    )
    return [_violation(r) for r in rows]


VIOLATION_SORTS: dict[str, Column] = {
    "count": PlanViolationRow.count,
    "first_seen_at": PlanViolationRow.first_seen_at,
    "last_seen_at": PlanViolationRow.last_seen_at,
}


def page_violations(
    session: Session, ctx: Context, source_id: str, page: PageRequest
) -> Page[ViolationCount]:
    """``list_violations`` a keyset page at a time (issue 8). A counter is one per event,
    path and kind, so those tell counters with the same sort key apart."""
    ctx.require("collect.source.read")
    source = service.get_source(session, ctx, source_id)
    query = select(PlanViolationRow).where(PlanViolationRow.source_id == source.id)
    return keyset_page(
        session,
        query,
        page,
        VIOLATION_SORTS,
        (PlanViolationRow.event, PlanViolationRow.path, PlanViolationRow.kind),
        lambda rows: [_violation(r) for r in rows],
    )


def _violation(row: PlanViolationRow) -> ViolationCount:
    return ViolationCount(
        source_id=row.source_id,
        call="track" if row.event else "identify",
        event=row.event or None,
        path=row.path,
        kind=row.kind,
        count=row.count,
        first_seen_at=row.first_seen_at,
        last_seen_at=row.last_seen_at,
        example_message_id=row.example_message_id,
    )


def _get_row(session: Session, ctx: Context, plan_id: str) -> TrackingPlanRow:
    query = select(TrackingPlanRow).where(TrackingPlanRow.id == plan_id)
    row = session.scalar(in_tenancy(query, TrackingPlanRow.bu_id, ctx))
    if row is None:
        raise NotFound(f"no tracking plan with id {plan_id!r}", plan_id=plan_id)
    return row


def _require_free_name(session: Session, bu_id: str, name: str) -> None:
    if session.scalar(
        select(TrackingPlanRow.id).where(
            TrackingPlanRow.bu_id == bu_id, TrackingPlanRow.name == name
        )
    ):
        raise Conflict(
            f"the business unit already has a tracking plan named {name!r}", field="name"
        )


def _document(plan: PlanSpec) -> dict[str, Any]:
    return {"unplanned": plan.unplanned, "traits": plan.traits, "events": _events(plan)}


def _events(plan: PlanSpec) -> dict[str, Any]:
    return {
        event: {
            **({"description": p.description} if p.description is not None else {}),
            "properties": p.properties,
        }
        for event, p in plan.events.items()
    }


def _plan(row: TrackingPlanRow) -> TrackingPlan:
    return TrackingPlan.model_validate(
        {
            **row.document,
            "id": row.id,
            "bu_id": row.bu_id,
            "name": row.name,
            "mode": row.mode,
            "version": row.version,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
        }
    )


PLAN_SORTS: dict[str, Column] = {
    "name": TrackingPlanRow.name,
    "created_at": TrackingPlanRow.created_at,
    "updated_at": TrackingPlanRow.updated_at,
}


def page_plans(
    session: Session,
    ctx: Context,
    page: PageRequest,
    *,
    mode: str | None = None,
    q: str | None = None,
) -> Page[TrackingPlan]:
    """``list_plans`` a keyset page at a time (issue 8); ``q`` matches the name."""
    ctx.require("collect.plan.read")
    query = in_tenancy(select(TrackingPlanRow), TrackingPlanRow.bu_id, ctx)
    if mode is not None:
        query = query.where(TrackingPlanRow.mode == mode)
    if q:
        query = query.where(TrackingPlanRow.name.icontains(q, autoescape=True))
    return keyset_page(
        session,
        query,
        page,
        PLAN_SORTS,
        TrackingPlanRow.id,
        lambda rows: [_plan(r) for r in rows],
    )
