"""A parsed rule → one SQLAlchemy Core boolean over a profile id: set-based, never a loop.

Two steps. ``bind`` resolves the rule's names in a business unit's scope (the unit first,
then the group), once, with lookups (a computed trait's id, a tag's, a score model's, another
segment's); an unknown tag, score model or segment is a ``ValidationFailed`` at the node's path.
``condition`` then renders the bound rule for a given "now", counting calendar days (relative
windows, plain dates) in the zone of the unit the rule belongs to (``Scope.zone``, issue 6).

Each condition is a set of profile ids from one table, read through its indexes
(``profiles_trait (key, num|text|at)``, ``profiles_event (name, at)`` and ``(profile_id, at)``
or, without a window or a property filter, ``profiles_event_count``,
``profiles_profile_tag``, ``profiles_score``, ``segments_member``); ``not`` is pushed down to
the conditions (De Morgan), so that each becomes either

* ``id IN (SELECT profile_id …)``: evaluated once per statement, the fast form for a full
  evaluation over every candidate; or, when ``probe`` is set, ``EXISTS (… WHERE profile_id =
  id)``, which reads only the given profiles' rows (a live refresh of a few ids, a sample);
* ``NOT EXISTS (… WHERE profile_id = id)``: the complement, an anti-join on PostgreSQL (where
  ``NOT IN`` over a large subquery cannot be one) and an index probe on SQLite.

A complement is how a missing value counts: ``ne``/``not_in``/``not_exists`` on a trait,
``did: false`` and "at most N times" (zero events) hold for people with no row at all.
Every literal is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    and_,
    func,
    not_,
    null,
    or_,
    select,
)
from sqlalchemy.orm import Session

from oneloop.core.db import Unindexed
from oneloop.governance import service as governance
from oneloop.governance.exclusion import profiling_allowed
from oneloop.profiles.filters import (
    Comparison,
    Path,
    When,
    event_filter_sql,
    holds,
    invalid,
    typed_sql,
    zone_of,
)
from oneloop.profiles.models import (
    EventCountRow,
    ProfileEventRow,
    ProfileRow,
    ProfileTagRow,
    ProfileUnitRow,
    ScoreModelRow,
    ScoreRow,
    TraitDefRow,
    TraitRow,
)
from oneloop.profiles.tags import tag_by_code
from oneloop.segments import language
from oneloop.segments.language import (
    NEGATIVE_OPS,
    AllOf,
    AnyOf,
    EventCondition,
    Node,
    Not,
    ScoreCondition,
    SegmentCondition,
    TagCondition,
    TraitCondition,
)
from oneloop.segments.models import MemberRow, SegmentRow

GOLDEN = "golden:"
DEFAULT_ZONE = zone_of(None)  # of a scope built without its unit's zone (a benchmark's)


@dataclass(frozen=True)
class Scope:
    """Where a rule lives: ``unit`` is its business unit, or the group's id when group-wide.
    A unit's rule sees the unit's profiles and events; the group's sees all of them. ``zone``
    is the owner's time zone, in which the rule counts calendar days (``scope_in`` looks it
    up; the default is the group's default zone)."""

    unit: str
    group: str
    zone: ZoneInfo = DEFAULT_ZONE

    @property
    def is_group_wide(self) -> bool:
        return self.unit == self.group

    @property
    def units(self) -> tuple[str, ...]:
        """Where names are looked up, in order: a unit's own definition wins over the group's."""
        return (self.unit,) if self.is_group_wide else (self.unit, self.group)


@dataclass(frozen=True)
class Reads:
    """What a rule's answer is computed from, in the ids profiles store: a live refresh
    re-evaluates the rule for a profile only when one of these may have changed for it."""

    events: frozenset[str] = frozenset()  # event names
    keys: frozenset[str] = frozenset()  # trait keys: a computed trait's id, ``golden:FIELD``
    models: frozenset[str] = frozenset()  # score model ids


@dataclass(frozen=True)
class Bound:
    """A rule with its names resolved. ``names`` maps a condition's path to the id it names
    (a trait key, a tag, a score model, a segment); ``segments`` and ``tags`` are what its
    answer depends on, so a refresh can evaluate those first."""

    rule: Node
    scope: Scope
    names: Mapping[Path, str]
    segments: frozenset[str]
    tags: frozenset[str]
    is_temporal: bool
    reads: Reads = Reads()


def scope_in(session: Session, unit: str, group: str) -> Scope:
    """The scope of a rule owned by ``unit`` (the group's id for a group-wide rule), in that
    unit's zone."""
    return Scope(unit, group, governance.zone_of_unit(session, unit))


@dataclass
class Resolver:
    """Name lookups with a cache, so a refresh binding every live rule asks once per name
    (and once per unit for its zone)."""

    session: Session
    _cache: dict[tuple[str, str, tuple[str, ...]], str | None] = field(default_factory=dict)
    _zones: dict[str, ZoneInfo] = field(default_factory=dict)

    def scope(self, unit: str, group: str) -> Scope:
        """``scope_in``, with the unit's zone looked up once per resolver."""
        if unit not in self._zones:
            self._zones[unit] = governance.zone_of_unit(self.session, unit)
        return Scope(unit, group, self._zones[unit])

    def trait_key(self, name: str, scope: Scope) -> str:
        """A computed trait's id, else the golden-record field (an open-ended set of names,
        so an unknown name is not an error: nobody has that field yet)."""
        found = self._first(TraitDefRow, TraitDefRow.name, name, scope)
        return found if found is not None else f"{GOLDEN}{name}"

    def tag_id(self, code: str, scope: Scope) -> str | None:
        key = ("tag", code, scope.units)
        if key not in self._cache:
            tag = tag_by_code(self.session, code, scope.units)
            self._cache[key] = tag.id if tag is not None else None
        return self._cache[key]

    def score_model_id(self, code: str, scope: Scope) -> str | None:
        return self._first(ScoreModelRow, ScoreModelRow.code, code, scope)

    def segment_id(self, code: str, scope: Scope) -> str | None:
        return self._first(SegmentRow, SegmentRow.code, code, scope)

    def _first(self, model: Any, column: Any, value: str, scope: Scope) -> str | None:
        # Any: one of the definition tables that have (id, bu_id) and a name or code column
        key = (model.__tablename__, value, scope.units)
        if key not in self._cache:
            rows = dict(
                self.session.execute(
                    select(model.bu_id, model.id).where(
                        column == value, model.bu_id.in_(scope.units)
                    )
                ).all()
            )
            self._cache[key] = next((rows[u] for u in scope.units if u in rows), None)
        return self._cache[key]


def bind(session: Session | Resolver, rule: Node, scope: Scope) -> Bound:
    """Resolve the rule's names in ``scope``; an unknown tag, score model or segment is named
    at its path (a rule that silently matched nobody would be worse)."""
    resolver = session if isinstance(session, Resolver) else Resolver(session)
    names: dict[Path, str] = {}
    segments: set[str] = set()
    tags: set[str] = set()
    events: set[str] = set()
    keys: set[str] = set()
    models: set[str] = set()
    for leaf in language.leaves(rule):
        if isinstance(leaf, TraitCondition):
            names[leaf.path] = resolver.trait_key(leaf.name, scope)
            keys.add(names[leaf.path])
        elif isinstance(leaf, EventCondition):
            events.update(leaf.filter.names)
        elif isinstance(leaf, TagCondition):
            names[leaf.path] = _known(resolver.tag_id(leaf.code, scope), leaf, "tag")
            tags.add(names[leaf.path])
        elif isinstance(leaf, ScoreCondition):
            model = resolver.score_model_id(leaf.code, scope)
            names[leaf.path] = _known(model, leaf, "score model", "score")
            models.add(names[leaf.path])
        elif isinstance(leaf, SegmentCondition):
            names[leaf.path] = _known(resolver.segment_id(leaf.code, scope), leaf, "segment")
            segments.add(names[leaf.path])
    return Bound(
        rule,
        scope,
        names,
        frozenset(segments),
        frozenset(tags),
        language.is_temporal(rule),
        Reads(frozenset(events), frozenset(keys), frozenset(models)),
    )


def _known(
    found: str | None,
    leaf: TagCondition | ScoreCondition | SegmentCondition,
    what: str,
    key: str | None = None,
) -> str:
    if found is None:
        key = key or what
        raise invalid(
            (*leaf.path, key), f"no {what} {leaf.code!r} in this business unit or the group"
        )
    return found


# --- SQL ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidates:
    """The profiles a rule is evaluated over: a unit's (``profiles_profile_unit``), or every
    profile for a group-wide rule."""

    table: FromClause
    profile_id: ColumnElement[str]
    where: tuple[ColumnElement[bool], ...]


def candidates(scope: Scope, *, by_row: bool = False) -> Candidates:
    """Profiles kept out of profiling (an objection, an erasure) are never candidates.
    ``by_row``: the caller picks rows by their SQLite ``rowid``, which SQLite would
    otherwise filter out of a scan of the unit's whole index (130 ms at 10^6 people)."""
    if scope.is_group_wide:
        profiles = ProfileRow.__table__.alias()
        return Candidates(profiles, profiles.c.id, (profiling_allowed(profiles.c.id),))
    units = ProfileUnitRow.__table__.alias()
    unit = Unindexed(units.c.bu_id) if by_row else units.c.bu_id
    return Candidates(
        units, units.c.profile_id, (unit == scope.unit, profiling_allowed(units.c.profile_id))
    )


def condition(
    bound: Bound, profile_id: ColumnElement[str], when: When, *, probe: bool = False
) -> ColumnElement[bool]:
    """The rule as a boolean over ``profile_id`` (a column of the enclosing statement), at
    ``when.now`` in the zone of the rule's scope: a unit in Berlin and one in Shanghai mean
    different days by "today", whoever evaluates their rules."""
    local = when.in_zone(bound.scope.zone)
    return _Compiler(bound, local, probe).node(bound.rule, profile_id, negate=False)


def matching(
    bound: Bound, when: When, *, ids: Iterable[str] | None = None, probe: bool | None = None
) -> Select[tuple[str]]:
    """``SELECT id`` of the candidates the rule holds for; only ``ids`` when given (then the
    conditions are probed per profile unless ``probe`` says otherwise)."""
    base = candidates(bound.scope)
    probing = ids is not None if probe is None else probe
    query = select(base.profile_id.label("profile_id")).where(
        *base.where, condition(bound, base.profile_id, when, probe=probing)
    )
    if ids is not None:
        query = query.where(base.profile_id.in_(list(ids)))
    return query


@dataclass(frozen=True)
class _Set:
    """A condition as a set of profile ids: ``query`` selects ``profile_id`` rows; the
    condition holds inside the set, or outside it when ``complement``."""

    query: Select[Any]  # Any: one column, the profile id (plus GROUP BY/HAVING for counts)
    profile_id: ColumnElement[str]
    complement: bool


@dataclass(frozen=True)
class _Compiler:
    bound: Bound
    when: When
    probe: bool

    def node(self, node: Node, pid: ColumnElement[str], *, negate: bool) -> ColumnElement[bool]:
        if isinstance(node, Not):
            return self.node(node.child, pid, negate=not negate)
        if isinstance(node, AllOf | AnyOf):
            parts = [self.node(c, pid, negate=negate) for c in node.children]
            conjunction = isinstance(node, AllOf) != negate  # De Morgan
            if len(parts) == 1:
                return parts[0]
            return and_(*parts) if conjunction else or_(*parts)
        found = self.leaf(node)
        if found.complement == negate:  # a member when inside the set
            if self.probe:
                return found.query.where(found.profile_id == pid).exists()
            return pid.in_(found.query)
        return not_(found.query.where(found.profile_id == pid).exists())

    def leaf(self, leaf: language.Leaf) -> _Set:
        name = self.bound.names.get(leaf.path, "")
        if isinstance(leaf, TraitCondition):
            return self.trait(name, leaf.comparison)
        if isinstance(leaf, EventCondition):
            return self.event(leaf)
        if isinstance(leaf, TagCondition):
            tags = ProfileTagRow.__table__.alias()
            return _Set(
                select(tags.c.profile_id).where(tags.c.tag_id == name), tags.c.profile_id, False
            )
        if isinstance(leaf, ScoreCondition):
            return self.score(name, leaf.comparison)
        members = MemberRow.__table__.alias()
        return _Set(
            select(members.c.profile_id).where(members.c.segment_id == name),
            members.c.profile_id,
            False,
        )

    def trait(self, key: str, cmp: Comparison) -> _Set:
        traits = TraitRow.__table__.alias()
        positive, complement = _positive(cmp)
        matched = typed_sql(
            positive, num=traits.c.num, text=traits.c.text, at=traits.c.at, when=self.when
        )
        query = select(traits.c.profile_id).where(traits.c.key == key, matched)
        return _Set(query, traits.c.profile_id, complement)

    def score(self, model_id: str, cmp: Comparison) -> _Set:
        scores = ScoreRow.__table__.alias()
        positive, complement = _positive(cmp)
        matched = typed_sql(positive, num=scores.c.value, text=null(), at=null(), when=self.when)
        query = select(scores.c.profile_id).where(scores.c.model_id == model_id, matched)
        return _Set(query, scores.c.profile_id, complement)

    def event(self, leaf: EventCondition) -> _Set:
        """Without a window or a property filter the condition reads the per-name counts
        (``profiles_event_count``: a row per person and name), else the events themselves."""
        scope, when = self.bound.scope, self.when
        if leaf.window is None and not leaf.filter.where:
            counts = EventCountRow.__table__.alias()
            table, profile_id = counts, counts.c.profile_id
            names = list(leaf.filter.names)
            where = [counts.c.name.in_(names) if len(names) > 1 else counts.c.name == names[0]]
            how_many, first, last = (
                func.sum(counts.c.count),
                func.min(counts.c.first_at),
                func.max(counts.c.last_at),
            )
        else:
            events = ProfileEventRow.__table__.alias()
            table, profile_id = events, events.c.profile_id
            where = [
                event_filter_sql(
                    leaf.filter, name=events.c.name, properties=events.c.properties, when=when
                )
            ]
            if leaf.window is not None:
                low, high, inclusive = leaf.window.bounds(when.now, when.zone)
                where.append(events.c.at >= low)
                if high is not None:
                    where.append(events.c.at <= high if inclusive else events.c.at < high)
            how_many, first, last = func.count(), func.min(events.c.at), func.max(events.c.at)
        if not scope.is_group_wide:
            where.append(table.c.bu_id == scope.unit)
        query = select(profile_id).where(*where)
        having: list[ColumnElement[bool]] = []
        if leaf.count is not None:
            having.append(typed_sql(leaf.count, num=how_many, text=null(), at=null(), when=when))
        for cmp, end in ((leaf.first, first), (leaf.last, last)):
            if cmp is not None:
                having.append(typed_sql(cmp, num=null(), text=null(), at=end, when=when))
        if not having:
            return _Set(query, profile_id, complement=not leaf.did)
        grouped = query.group_by(profile_id)
        test = and_(*having) if len(having) > 1 else having[0]
        with_none = (
            leaf.count is not None
            and leaf.first is None
            and leaf.last is None
            and holds(leaf.count, 0, when)
        )
        if with_none:  # "at most N": everyone but those whose count fails, zero included
            return _Set(grouped.having(not_(test)), profile_id, complement=leaf.did)
        return _Set(grouped.having(test), profile_id, complement=not leaf.did)


def _positive(cmp: Comparison) -> tuple[Comparison, bool]:
    """``ne`` as the complement of ``eq`` (and so on), so that a profile without the value is
    "not equal" instead of unknown."""
    if cmp.op in NEGATIVE_OPS:
        return Comparison(NEGATIVE_OPS[cmp.op], cmp.value), True
    return cmp, False
