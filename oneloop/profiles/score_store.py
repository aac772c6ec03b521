"""How scores are stored: the parsed models, their threshold tags, a profile's rebuild from
its events, and the per-batch loads (score rows, last awards, cap use, tags held).

What is stored is the state of the engine (``score_rules.apply``): ``profiles_score`` (the
value as of ``as_of``) and one ``profiles_score_history`` row per award, which is both the
"why" a rep reads and what caps are counted from. Everything here works on a chunk of
profiles at a time (``in_chunks``), never one query per event.

Thresholds set tags with source ``score`` and ``by = "score:<model code>"``, and take away
only what that model set: a tag a person set by hand stays (see ``tags``). The caller commits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Row, delete, func, insert, or_, select
from sqlalchemy.orm import Session, aliased

from oneloop.governance import service as governance
from oneloop.governance.exclusion import profiling_allowed
from oneloop.profiles import tags
from oneloop.profiles.filters import When
from oneloop.profiles.models import (
    ProfileEventRow,
    ProfileTagRow,
    ScoreHistoryRow,
    ScoreModelRow,
    ScoreRow,
    TagRow,
)
from oneloop.profiles.score_rules import (
    TOLERANCE,
    Award,
    ModelDoc,
    Running,
    Threshold,
    apply,
    holds,
    parse_model,
    period_start,
    shown,
    value_now,
)

log = logging.getLogger(__name__)

SOURCE = "score"

E = ProfileEventRow
H = ScoreHistoryRow
S = ScoreRow
EVENT_COLUMNS = (E.seq, E.profile_id, E.bu_id, E.at, E.name, E.properties)

Key = tuple[str, str]  # (profile id, model id), or (profile id, tag id)
Event = Row[Any]  # Any: the selected EVENT_COLUMNS; fits score_rules.ScoredEvent


@dataclass(frozen=True)
class Model:
    """A stored model, parsed. ``unit`` is None for a group-wide model (every unit's events);
    ``units`` is where its threshold tags are looked up (the unit's own, then the group's);
    ``zone`` is its unit's (or the group's) time zone, in which caps per day, week or month
    count calendar periods."""

    id: str
    bu_id: str
    unit: str | None
    units: tuple[str, ...]
    version: int
    doc: ModelDoc
    zone: ZoneInfo

    @property
    def by(self) -> str:
        return f"score:{self.doc.code}"

    def at(self, when: When) -> When:
        """``when`` in the model's zone."""
        return when.in_zone(self.zone)


# --- models ---------------------------------------------------------------------------------


def load_models(session: Session, rows: Iterable[ScoreModelRow] | None = None) -> list[Model]:
    """Every stored model (or these rows), parsed."""
    found = list(rows) if rows is not None else list(session.scalars(select(ScoreModelRow)))
    if not found:
        return []
    group = governance.group_id(session)
    zones = {bu: governance.zone_of_unit(session, bu) for bu in {row.bu_id for row in found}}
    return [
        Model(
            id=row.id,
            bu_id=row.bu_id,
            unit=None if row.bu_id == group else row.bu_id,
            units=(row.bu_id,) if row.bu_id == group else (row.bu_id, group),
            version=row.version,
            doc=parse_model(row.definition),
            zone=zones[row.bu_id],
        )
        for row in sorted(found, key=lambda r: r.id)
    ]


class ThresholdTags:
    """Each model's threshold tags, looked up once per call. A tag deleted after the model was
    saved is skipped (and logged) rather than stopping the consumer."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.found: dict[str, list[tuple[Threshold, TagRow]]] = {}

    def of(self, model: Model) -> list[tuple[Threshold, TagRow]]:
        if model.id not in self.found:
            pairs = []
            for threshold in model.doc.thresholds:
                tag = tags.tag_by_code(self.session, threshold.tag, model.units)
                if tag is None:
                    log.warning(
                        "score.tag_missing", extra={"model_id": model.id, "tag": threshold.tag}
                    )
                    continue
                pairs.append((threshold, tag))
            self.found[model.id] = pairs
        return self.found[model.id]

    def ids(self, models: Iterable[Model]) -> list[str]:
        return sorted({tag.id for m in models for _, tag in self.of(m)})


def replay(
    session: Session,
    models: Sequence[Model],
    profiles: Sequence[str],
    when: When,
    found: ThresholdTags,
) -> set[str]:
    rows = score_rows(session, profiles)
    held = held_tags(session, profiles, found.ids(models))
    changed: set[str] = set()
    for model in models:
        states, awards = rebuild(session, model, profiles, when)
        changed |= settle(
            session,
            model,
            profiles,
            rows,
            states,
            awards,
            found.of(model),
            held,
            when,
            rebuilt=True,
        )
    return changed


def rebuild(
    session: Session, model: Model, profiles: Sequence[str], when: When
) -> tuple[dict[str, Running], dict[str, list[Award]]]:
    """Forget these profiles' awards in ``model`` and score all their events again."""
    when = model.at(when)
    session.execute(
        delete(H).where(H.model_id == model.id, H.profile_id.in_(profiles)),
        execution_options={"synchronize_session": False},  # history is never loaded as objects
    )
    query = select(*EVENT_COLUMNS).where(
        E.profile_id.in_(profiles), rules_sql(model), profiling_allowed(E.profile_id)
    )
    if model.unit is not None:
        query = query.where(E.bu_id == model.unit)
    grouped: dict[str, list[Event]] = {}
    for event in session.execute(query.order_by(E.profile_id, E.at, E.seq)):
        grouped.setdefault(event.profile_id, []).append(event)
    states: dict[str, Running] = {}
    awards: dict[str, list[Award]] = {}
    for profile_id, evs in grouped.items():
        state = Running()
        given = apply(model.doc, state, evs, when)
        if given:
            states[profile_id], awards[profile_id] = state, given
    return states, awards


def rules_sql(model: Model) -> ColumnElement[bool]:
    """Events of the names the rules count. Property conditions are left to the engine, in
    Python: the score is then one function whether it is built incrementally or replayed,
    whatever a database's JSON paths make of odd documents (SQLite reads ``products.0`` of
    ``{"products": {"0": …}}`` as missing, ``filters.event_matches`` and PostgreSQL do not)."""
    return E.name.in_(sorted({n for r in model.doc.rules for n in r.filter.names}))


def settle(
    session: Session,
    model: Model,
    profiles: Sequence[str],
    rows: dict[Key, ScoreRow],
    states: Mapping[str, Running],
    awards: Mapping[str, list[Award]],
    pairs: Sequence[tuple[Threshold, TagRow]],
    held: dict[Key, tuple[str, str]],
    when: When,
    *,
    rebuilt: bool = False,
) -> set[str]:
    """Store the new state of ``profiles`` in ``model`` (a rebuilt profile without awards
    loses its row) and move threshold tags; the profiles whose value now or tags changed."""
    history = [
        {
            "profile_id": p,
            "model_id": model.id,
            "seq": a.seq,
            "rule": a.rule,
            "points": a.points,
            "value_after": a.value_after,
            "at": a.at,
        }
        for p in profiles
        for a in awards.get(p, ())
    ]
    if history:
        session.execute(insert(H), history)
    half_life = model.doc.half_life_days
    changed: set[str] = set()
    now_values: dict[str, float] = {}
    for profile_id in profiles:
        key = (profile_id, model.id)
        row = rows.get(key)
        before = None if row is None else value_now(row.value, row.as_of, when.now, half_life)
        state = states.get(profile_id)
        after = before
        if state is not None and state.at is not None:
            # stored as of now (not as of the last award): segment rules, evaluated next in the
            # same transaction, compare the stored value
            after = value_now(state.value, state.at, when.now, half_life)
            as_of = max(state.at, when.now)
            if row is None:
                rows[key] = ScoreRow(
                    profile_id=profile_id,
                    model_id=model.id,
                    value=after,
                    as_of=as_of,
                    updated_at=when.now,
                )
                session.add(rows[key])
            else:
                row.value, row.as_of, row.updated_at = after, as_of, when.now
        elif rebuilt:
            if row is not None:
                session.delete(rows.pop(key))
            after = None
        moved = (before is None) != (after is None) or (
            before is not None and after is not None and abs(before - after) > TOLERANCE
        )
        if moved:
            changed.add(profile_id)
        now_values[profile_id] = after or 0.0
    return changed | set_all_tags(session, model, now_values, pairs, held, when.now)


def set_all_tags(
    session: Session,
    model: Model,
    values: Mapping[str, float],
    pairs: Sequence[tuple[Threshold, TagRow]],
    held: dict[Key, tuple[str, str]],
    now: datetime,
) -> set[str]:
    """``set_tags`` for each profile and its value now; the profiles whose tags changed.
    Without autoflush, the score rows and the tags go to the database as a few batched
    statements at the next flush rather than one statement each (``held`` already says which
    tags exist, so nothing pending needs to be seen)."""
    if not pairs:
        return set()
    with session.no_autoflush:
        return {
            profile_id
            for profile_id, value in values.items()
            if set_tags(session, model, profile_id, value, pairs, held, now)
        }


def set_tags(
    session: Session,
    model: Model,
    profile_id: str,
    value: float,
    pairs: Sequence[tuple[Threshold, TagRow]],
    held: dict[Key, tuple[str, str]],
    now: datetime,
) -> bool:
    """Set the thresholds' tags the value reaches, take away those it fell below (only the
    ones this model set); True when a tag changed."""
    changed = False
    code = model.doc.code
    for threshold, tag in pairs:
        key = (profile_id, tag.id)
        if holds(value, threshold):
            if key not in held:
                changed |= tags.assign(
                    session,
                    profile_id=profile_id,
                    tag=tag,
                    source=SOURCE,
                    by=model.by,
                    reason=f"{code} {shown(value)} ≥ {shown(threshold.min)}",
                    now=now,
                )
                held[key] = (SOURCE, model.by)
        elif held.get(key) == (SOURCE, model.by):
            changed |= tags.unassign(
                session,
                profile_id=profile_id,
                tag=tag,
                source=SOURCE,
                by=model.by,
                reason=f"{code} {shown(value)} < {shown(threshold.min)}",
                now=now,
            )
            del held[key]
    return changed


# --- what a batch loads -----------------------------------------------------------------------


def score_rows(session: Session, profiles: Sequence[str]) -> dict[Key, ScoreRow]:
    return {
        (row.profile_id, row.model_id): row
        for row in session.scalars(
            # the stored values, even if an object of the row is still in the session from an
            # earlier transaction (sessions do not expire on commit; the sweep updates in Core)
            select(S).where(S.profile_id.in_(profiles)).execution_options(populate_existing=True)
        )
    }


def last_awards(session: Session, profiles: Sequence[str]) -> dict[Key, tuple[datetime, int]]:
    """Each profile's last award per model, (time, seq): a new event at or before it is late."""
    later = aliased(ScoreHistoryRow)
    latest = (
        select(func.max(later.at))
        .where(later.profile_id == H.profile_id, later.model_id == H.model_id)
        .scalar_subquery()
    )
    found: dict[Key, tuple[datetime, int]] = {}
    for row in session.execute(
        select(H.profile_id, H.model_id, H.at, H.seq).where(
            H.profile_id.in_(profiles), H.at == latest
        )
    ):
        mark = (row.at, row.seq if row.seq is not None else -1)
        key = (row.profile_id, row.model_id)
        if key not in found or mark > found[key]:
            found[key] = mark
    return found


def cap_use(
    session: Session, model: Model, events: Mapping[str, Sequence[Event]]
) -> dict[str, list[tuple[str, float, datetime]]]:
    """Past awards of capped rules in the periods the new events fall in (calendar periods
    in the model's zone; all of them for a cap per ``ever``): what the caps have left."""
    capped = [r for r in model.doc.rules if r.cap is not None]
    if not capped or not events:
        return {}
    starts = [
        start
        for evs in events.values()
        for e in evs
        for per in model.doc.capped_periods
        if (start := period_start(e.at, per, model.zone)) is not None
    ]
    ever = [r.id for r in capped if r.cap is not None and r.cap.per == "ever"]
    since = [H.at >= min(starts)] if starts else []
    forever = [H.rule.in_(ever)] if ever else []
    query = select(H.profile_id, H.rule, H.points, H.at).where(
        H.model_id == model.id,
        H.profile_id.in_(sorted(events)),
        H.rule.in_([r.id for r in capped]),
        or_(*since, *forever),
    )
    found: dict[str, list[tuple[str, float, datetime]]] = {}
    for row in session.execute(query):
        found.setdefault(row.profile_id, []).append((row.rule, row.points, row.at))
    return found


def held_tags(
    session: Session, profiles: Sequence[str], tag_ids: Sequence[str]
) -> dict[Key, tuple[str, str]]:
    """Which of these profiles carry which threshold tags now: (source, set by)."""
    if not tag_ids:
        return {}
    return {
        (row.profile_id, row.tag_id): (row.source, row.set_by)
        for row in session.execute(
            select(
                ProfileTagRow.profile_id,
                ProfileTagRow.tag_id,
                ProfileTagRow.source,
                ProfileTagRow.set_by,
            ).where(ProfileTagRow.profile_id.in_(profiles), ProfileTagRow.tag_id.in_(tag_ids))
        )
    }
