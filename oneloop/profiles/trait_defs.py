"""Computed-trait definitions: the document, its validation, and who may define what.

A computed trait is data, never code (issue: computed traits as JSON/YAML definitions)::

    name: orders_90d
    description: 近 90 天订单数 Orders in the last 90 days
    event: Order Completed            # or a list of names
    where: [{property: channel, op: eq, value: tmall}]
    aggregate: count                  # sum min max avg first last distinct_count most_frequent
    property: revenue                 # not for count; "at" (or none) means the event's time
    window: {amount: 90, unit: days}  # calendar days in the zone, counting today
    metric: revenue                   # optional: the data dictionary's metric it computes

The document is parsed once into a frozen ``TraitSpec``, with every problem reported at its
path (``aggregate``, ``where[0].op``); ``oneloop.profiles.traits`` compiles a spec to SQL.
Definitions belong to a business unit, or to the group (HQ) for traits computed over every
unit's events; a unit's own definition of a name hides the group's for that unit's users.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import yaml
from pydantic import BaseModel, Field
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from oneloop.core.context import Context
from oneloop.core.errors import Conflict, FieldError, InvalidPayload, NotFound, ValidationFailed
from oneloop.core.ids import new_id
from oneloop.core.paging import Column, Page, PageRequest, keyset_page
from oneloop.governance import audit, dictionary
from oneloop.governance import service as governance
from oneloop.governance.dictionary_schemas import MetricRef
from oneloop.profiles.filters import (
    EventFilter,
    Path,
    Relative,
    expect_mapping,
    invalid,
    only_keys,
    parse_event_filter,
    parse_path,
    parse_relative,
)
from oneloop.profiles.models import TraitDefRow, TraitRow

log = logging.getLogger(__name__)

NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
AGGREGATES = (
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "first",
    "last",
    "distinct_count",
    "most_frequent",
)
NUMERIC = ("sum", "avg", "min", "max")  # over numbers only (min/max: or the event's time)
TIMELY = ("first", "last", "min", "max")  # may name the event's time
EVENT_TIME = "at"
KEYS = {"name", "description", "event", "where", "aggregate", "property", "window", "metric"}
METRIC = re.compile(r"[a-z][a-z0-9_]{0,62}(\.[a-z][a-z0-9_]{0,62})?")
MAX_DESCRIPTION = 2_000
MAX_DOCUMENT_BYTES = 64 * 1024
RELATIVE_OPS = ("within_last", "not_within_last")


@dataclass(frozen=True)
class TraitSpec:
    """A validated definition. ``property`` None is the event's time."""

    name: str
    description: str
    filter: EventFilter
    aggregate: str
    property: Path | None
    window: Relative | None
    metric: str | None = None  # a data dictionary metric's key

    @property
    def value_kind(self) -> str:
        """What the values are, for a rule comparing them: ``number`` (in ``num``), ``time``
        (in ``at``) or ``any`` (a first, last or most frequent property value: any scalar)."""
        if self.aggregate in ("count", "distinct_count", "sum", "avg"):
            return "number"
        if self.property is None:
            return "time"
        return "number" if self.aggregate in ("min", "max") else "any"


@dataclass(frozen=True)
class TraitDef:
    """A stored definition: its id is the ``key`` of its values in ``profiles_trait``."""

    id: str
    bu_id: str
    spec: TraitSpec
    version: int


class Trait(BaseModel):
    """A computed-trait definition as the API and ``--json`` show it."""

    id: str
    bu_id: str = Field(description="the business unit, or the group's id for a group-wide trait")
    name: str
    description: str
    definition: dict[str, Any]  # Any: the validated document
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    metric: MetricRef | None = Field(
        None, description="the data dictionary's metric: meaning, unit, currency, tax"
    )


# --- the document ---------------------------------------------------------------------------


class _JsonYamlLoader(yaml.SafeLoader):
    """YAML that says only what JSON can: ``2026-04-16`` stays a string, not a date, so a
    date in a ``where`` compares the same whether the file was YAML or JSON. No aliases
    (``*name``): nested ones expand exponentially (a "billion laughs" in 1 KB)."""

    def compose_node(self, parent: Any, index: Any) -> Any:  # Any: PyYAML's untyped nodes
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed here", self.peek_event().start_mark
            )
        return super().compose_node(parent, index)


_JsonYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_document(raw: bytes | str, *, is_yaml: bool) -> object:
    """A definition file or request body as plain JSON values. Text that is not JSON (or
    YAML) at all is ``InvalidPayload`` (HTTP 400); what it says is judged by
    ``parse_definition`` (422)."""
    text = raw.encode() if isinstance(raw, str) else raw
    if len(text) > MAX_DOCUMENT_BYTES:
        raise InvalidPayload(
            f"a trait definition is at most {MAX_DOCUMENT_BYTES // 1024} KB",
            [FieldError((), "too large")],
        )
    if not is_yaml:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InvalidPayload(
                f"the definition is not valid JSON: {exc}", [FieldError((), "not valid JSON")]
            ) from None
    try:
        document = yaml.load(text, Loader=_JsonYamlLoader)  # noqa: S506  # a SafeLoader
        # keys that are not strings, sets, bytes: only what JSON can say goes further
        return orjson.loads(orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS))
    except (yaml.YAMLError, orjson.JSONEncodeError, RecursionError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc) or type(exc).__name__
        raise InvalidPayload(
            f"the definition is not valid YAML{where}: {problem}",
            [FieldError((), f"not valid YAML{where}")],
        ) from None


def parse_definition(document: object) -> TraitSpec:
    """The spec, or ``ValidationFailed`` naming the path of the first problem."""
    node = expect_mapping(document, ())
    if not all(isinstance(k, str) for k in node):
        raise invalid((), "keys must be strings")
    only_keys(node, KEYS, ())
    name = node.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise invalid(
            ("name",),
            "needs a lower-case letter, then up to 63 letters, digits or _ (e.g. orders_90d)",
        )
    description = node.get("description", "")
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise invalid(("description",), f"needs text of at most {MAX_DESCRIPTION} characters")
    event_filter = parse_event_filter(node, ())
    for i, condition in enumerate(event_filter.where):
        if condition.comparison.op in RELATIVE_OPS:
            # matching would change with the clock in ways the sweep does not follow
            raise invalid(("where", i, "op"), "relative times belong in the trait's window")
    aggregate = node.get("aggregate")
    if aggregate not in AGGREGATES:
        raise invalid(
            ("aggregate",), f"{aggregate!r} is not an aggregate; use one of {', '.join(AGGREGATES)}"
        )
    window = node.get("window")
    metric = node.get("metric")
    if metric is not None and (not isinstance(metric, str) or not METRIC.fullmatch(metric)):
        raise invalid(("metric",), "needs a data dictionary metric's key, e.g. revenue")
    return TraitSpec(
        name=name,
        description=description,
        filter=event_filter,
        aggregate=aggregate,
        property=_property(node, aggregate),
        window=None if window is None else parse_relative(window, ("window",)),
        metric=metric,
    )


def _property(node: Mapping[str, Any], aggregate: str) -> Path | None:
    raw = node.get("property")
    if aggregate == "count":
        if "property" in node:
            raise invalid(
                ("property",), "count counts the matching events; require a property with where"
            )
        return None
    if raw is None or raw == EVENT_TIME:
        if aggregate in TIMELY:
            return None
        raise invalid(("property",), f"{aggregate} needs a property of the event, e.g. revenue")
    return parse_path(raw, ("property",))


# --- stored definitions ---------------------------------------------------------------------


def to_def(row: TraitDefRow) -> TraitDef | None:
    """The stored definition, or None (logged) when it no longer passes validation: one bad
    row must not stop the consumer that keeps every other trait current."""
    try:
        spec = parse_definition(row.definition)
    except ValidationFailed as exc:
        log.error("trait.invalid", extra={"trait_id": row.id, "error": exc.detail})
        return None
    return TraitDef(id=row.id, bu_id=row.bu_id, spec=spec, version=row.version)


def all_definitions(session: Session) -> list[TraitDef]:
    """Every unit's definitions: the consumer keeps them all current."""
    rows = session.scalars(select(TraitDefRow).order_by(TraitDefRow.bu_id, TraitDefRow.name))
    return [d for d in map(to_def, rows) if d is not None]


def definitions_for(session: Session, bu_ids: Sequence[str]) -> list[TraitDef]:
    """The definitions that apply for these units (``governance.scope_of``: the unit first,
    then the group), by name. A name defined by an earlier unit hides a later unit's."""
    rows = session.scalars(select(TraitDefRow).where(TraitDefRow.bu_id.in_(list(bu_ids))))
    rank = {bu: i for i, bu in enumerate(bu_ids)}
    chosen: dict[str, TraitDefRow] = {}
    for row in rows:
        held = chosen.get(row.name)
        if held is None or rank[row.bu_id] < rank[held.bu_id]:
            chosen[row.name] = row
    return [d for d in map(to_def, (chosen[n] for n in sorted(chosen))) if d is not None]


def find_definition(session: Session, name: str, bu_ids: Sequence[str]) -> TraitDef | None:
    """The definition a rule means by ``name`` for these units (see ``definitions_for``)."""
    return next((d for d in definitions_for(session, bu_ids) if d.spec.name == name), None)


# --- service: list, get, create, update, delete ---------------------------------------------


def list_traits(session: Session, ctx: Context, bu: str | None = None) -> list[Trait]:
    """A unit's users see their unit's and the group's definitions; the group sees all,
    or one unit's own with ``bu``."""
    ctx.require("profiles.read")
    query = select(TraitDefRow).order_by(TraitDefRow.name, TraitDefRow.bu_id)
    query = governance.in_scope(query, TraitDefRow.bu_id, session, ctx, bu)
    return [_out(session, r) for r in session.scalars(query)]


def get_trait(session: Session, ctx: Context, trait_id: str) -> Trait:
    ctx.require("profiles.read")
    return _out(session, _visible_row(session, ctx, trait_id))


def get_trait_named(session: Session, ctx: Context, name: str, bu: str | None = None) -> Trait:
    """By name: in the unit ``bu`` if given; else the one visible definition of that name
    (Conflict when several units define it: say which with ``bu``)."""
    ctx.require("profiles.read")
    query = select(TraitDefRow).where(TraitDefRow.name == name)
    query = governance.in_scope(query, TraitDefRow.bu_id, session, ctx, bu)
    rows = list(session.scalars(query))
    if not rows:
        raise NotFound(f"no trait named {name!r}", name=name)
    if len(rows) > 1:
        raise Conflict(
            f"{len(rows)} business units define a trait named {name!r}; name the unit (bu)",
            name=name,
        )
    return _out(session, rows[0])


def create_trait(session: Session, ctx: Context, document: object, bu: str | None = None) -> Trait:
    """Store a definition in the unit ``bu`` (default: the caller's own, or the group). Its
    values are not computed here: the caller runs ``traits.recompute_trait`` (or defers it
    to ``oneloop traits recompute`` for a large unit)."""
    ctx.require("profiles.admin")
    spec = parse_definition(document)
    _check_metric(session, spec)
    unit = governance.unit_id(session, ctx, bu)
    _check_unique(session, unit, spec.name)
    now = ctx.clock.now()
    row = TraitDefRow(
        id=new_id(now),
        bu_id=unit,
        name=spec.name,
        description=spec.description,
        definition=dict(expect_mapping(document, ())),
        version=1,
        created_at=now,
        created_by=str(ctx.user_id),
        updated_at=now,
        metric=spec.metric,
    )
    session.add(row)
    session.flush()
    log.info("trait.created", extra={"trait_id": row.id, "bu_id": unit})
    audit.record(session, ctx, "trait.created", "trait", row.id, bu_id=row.bu_id)
    return _out(session, row)


def update_trait(session: Session, ctx: Context, trait_id: str, document: object) -> Trait:
    """Replace the definition (a new version); the caller recomputes its values."""
    ctx.require("profiles.admin")
    row = _owned_row(session, ctx, trait_id)
    spec = parse_definition(document)
    _check_metric(session, spec)
    if spec.name != row.name:
        _check_unique(session, row.bu_id, spec.name)
        _require_unused(session, row)
    row.name, row.description = spec.name, spec.description
    row.definition = dict(expect_mapping(document, ()))
    row.metric = spec.metric
    row.version += 1
    row.updated_at = ctx.clock.now()
    session.flush()
    log.info("trait.updated", extra={"trait_id": row.id, "version": row.version})
    detail: dict[str, audit.DetailValue] = {"version": row.version}
    audit.record(session, ctx, "trait.updated", "trait", row.id, detail=detail, bu_id=row.bu_id)
    return _out(session, row)


def delete_trait(session: Session, ctx: Context, trait_id: str) -> int:
    """Delete the definition and its values; the number of values removed."""
    ctx.require("profiles.admin")
    row = _owned_row(session, ctx, trait_id)
    _require_unused(session, row)
    removed: int = session.execute(delete(TraitRow).where(TraitRow.key == row.id)).rowcount  # type: ignore[attr-defined]
    session.delete(row)
    session.flush()
    log.info("trait.deleted", extra={"trait_id": trait_id, "values": removed})
    detail: dict[str, audit.DetailValue] = {"values": removed}
    audit.record(session, ctx, "trait.deleted", "trait", row.id, detail=detail, bu_id=row.bu_id)
    return removed


def _require_unused(session: Session, row: TraitDefRow) -> None:
    from oneloop.segments.service import require_unused  # segments build on profiles

    require_unused(session, f"trait {row.name!r}", lambda b: row.id in b.reads.keys)


def managed_definitions(
    session: Session, ctx: Context, *, name: str | None = None, bu: str | None = None
) -> list[TraitDef]:
    """The definitions ``ctx`` may recompute: of the unit ``bu``, else the caller's own unit's
    (all units' for the group), optionally only those called ``name``."""
    ctx.require("profiles.admin")
    query = select(TraitDefRow).order_by(TraitDefRow.bu_id, TraitDefRow.name)
    if bu is not None:
        query = query.where(TraitDefRow.bu_id == governance.unit_id(session, ctx, bu))
    elif not ctx.is_group_wide:
        query = query.where(TraitDefRow.bu_id == ctx.bu_id)
    if name is not None:
        query = query.where(TraitDefRow.name == name)
    found = [d for d in map(to_def, session.scalars(query)) if d is not None]
    if name is not None and not found:
        raise NotFound(f"no trait named {name!r}", name=name)
    return found


def owned_definition(session: Session, ctx: Context, trait_id: str) -> TraitDef:
    found = to_def(_owned_row(session, ctx, trait_id))
    if found is None:
        raise Conflict("the stored definition no longer validates; replace it", trait_id=trait_id)
    return found


def _visible_row(session: Session, ctx: Context, trait_id: str) -> TraitDefRow:
    row = session.get(TraitDefRow, trait_id)
    if row is None or not governance.may_read(session, ctx, row.bu_id):
        raise NotFound(f"no trait {trait_id}", trait_id=trait_id)
    return row


def _owned_row(session: Session, ctx: Context, trait_id: str) -> TraitDefRow:
    """The group's definitions are HQ's to change: a unit's users change their own only."""
    row = _visible_row(session, ctx, trait_id)
    if not governance.may_change(ctx, row.bu_id):
        raise NotFound(f"no trait {trait_id}", trait_id=trait_id)
    return row


def _check_metric(session: Session, spec: TraitSpec) -> None:
    """A trait that says which metric it computes names one the data dictionary defines,
    so that "revenue" means the same in every unit."""
    if spec.metric is not None and dictionary.find_metric(session, spec.metric) is None:
        raise ValidationFailed(
            "unknown metric",
            [
                FieldError(
                    ("metric",),
                    f"the data dictionary has no metric {spec.metric!r}; see "
                    "`oneloop dictionary list --kind metric`",
                )
            ],
        )


def _out(session: Session, row: TraitDefRow) -> Trait:
    """The definition with its metric as the dictionary defines it now."""
    return Trait(
        id=row.id,
        bu_id=row.bu_id,
        name=row.name,
        description=row.description,
        definition=row.definition,
        version=row.version,
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
        metric=None if row.metric is None else dictionary.find_metric(session, row.metric),
    )


def _check_unique(session: Session, unit: str, name: str) -> None:
    taken = session.scalar(
        select(TraitDefRow.id).where(TraitDefRow.bu_id == unit, TraitDefRow.name == name)
    )
    if taken is not None:
        raise Conflict(f"this unit already has a trait named {name!r}", name=name, trait_id=taken)


TRAIT_SORTS: dict[str, Column] = {
    "name": TraitDefRow.name,
    "created_at": TraitDefRow.created_at,
    "updated_at": TraitDefRow.updated_at,
}


def page_traits(
    session: Session,
    ctx: Context,
    page: PageRequest,
    *,
    bu: str | None = None,
    q: str | None = None,
) -> Page[Trait]:
    """``list_traits`` a keyset page at a time (issue 8); ``q`` matches the name."""
    ctx.require("profiles.read")
    query = governance.in_scope(select(TraitDefRow), TraitDefRow.bu_id, session, ctx, bu)
    if q:
        query = query.where(TraitDefRow.name.icontains(q, autoescape=True))
    return keyset_page(
        session,
        query,
        page,
        TRAIT_SORTS,
        TraitDefRow.id,
        lambda rows: [_out(session, r) for r in rows],
    )
