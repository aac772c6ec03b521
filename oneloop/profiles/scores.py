"""Scores kept current: points as events arrive, decay as time passes, tags at thresholds.

A profile's score in a model is a pure function of its events (``score_rules.apply``); its
state is stored (``score_store``). New events are applied on top of the stored state; an
event at or before the profile's last award in a model (a late event, a redelivery) replays
the profile in that model instead, so the stored state always equals a replay. Merges and
splits replay. The profiles consumer calls ``refresh`` once per batch, the sweep ``sweep``.
Caps per day, week or month count calendar periods in the zone of the model's unit
(``Model.zone``, looked up once per model), whatever zone the caller's ``When`` carries.

Cost: a batch loads its events, score rows, last awards, cap use and tags per chunk of
profiles, and per model at most one more query for cap use: not one query per event.
The caller commits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from oneloop.core.clock import SystemClock
from oneloop.core.context import Context
from oneloop.core.db import Unindexed, in_chunks
from oneloop.core.errors import NotFound
from oneloop.governance import service as governance
from oneloop.governance.exclusion import excluded
from oneloop.profiles import score_store as store
from oneloop.profiles.filters import When, zone_of
from oneloop.profiles.models import ProfileTagRow, ScoreModelRow, ScoreRow
from oneloop.profiles.score_rules import (
    Award,
    Running,
    apply,
    count_use,
    holds,
    matching,
    ordered,
    value_now,
)
from oneloop.profiles.score_store import EVENT_COLUMNS, SOURCE, Event, Model, load_models

MAX_HISTORY = 500
SWEEP_PAGE = 1_000
# The sweep rewrites a stored value when it leaves its tenth of a point (or crosses a
# threshold): the stored value then answers every comparison with a multiple of 0.1 (segment
# rules compare it) as the value now would, without rewriting every row on every run.
SWEEP_STEP = 10

E = store.E
H = store.H
S = store.S

Progress = Callable[[int, int], None]

__all__ = [
    "SOURCE",
    "Model",
    "Points",
    "Progress",
    "Score",
    "history",
    "load_models",
    "rebuild_models",
    "recompute",
    "refresh",
    "scores_of",
    "scores_of_many",
    "sweep",
    "when_of",
]


@dataclass(frozen=True)
class Score:
    """A profile's score in one model, read now (decay applied since ``as_of``)."""

    model_id: str
    bu_id: str
    code: str
    name_zh: str
    name_en: str
    value: float
    as_of: datetime | None


@dataclass(frozen=True)
class Points:
    """One award: which rule gave how many points for which event, and the score after."""

    model_id: str
    model_code: str
    rule: str
    seq: int | None
    event: str | None
    points: float
    value_after: float
    at: datetime


# --- refresh: new events, merges and splits ---------------------------------------------------


def refresh(
    session: Session,
    new_events: Mapping[str, Collection[int]],
    replay: Collection[str],
    when: When,
) -> set[str]:
    """Apply the events just projected (profile id → seqs), and rebuild ``replay`` (profiles
    after a merge or split) from all their events; the profiles whose score or tags changed."""
    models = load_models(session)
    if not models:
        return set()
    found = store.ThresholdTags(session)
    changed: set[str] = set()
    # The people who objected to profiling (or were erased) are never scored.
    out = excluded(session, {*new_events, *replay})
    new_events = {p: seqs for p, seqs in new_events.items() if p not in out}
    redo = sorted(set(replay) - out)
    for chunk in in_chunks(redo):
        changed |= store.replay(session, models, chunk, when, found)
    skip = set(redo)
    seqs = sorted({s for p, ss in new_events.items() if p not in skip for s in ss})
    events: dict[str, list[Event]] = {}
    for part in in_chunks(seqs):
        for event in session.execute(select(*EVENT_COLUMNS).where(E.seq.in_(part))):
            if event.profile_id not in skip:
                events.setdefault(event.profile_id, []).append(event)
    for chunk in in_chunks(sorted(events)):
        changed |= _incremental(session, models, {p: events[p] for p in chunk}, when, found)
    return changed


def _incremental(
    session: Session,
    models: Sequence[Model],
    events: Mapping[str, list[Event]],
    when: When,
    found: store.ThresholdTags,
) -> set[str]:
    """New events on top of the stored state. What a rule counts is found in Python first,
    so a batch of events no model counts (identifies, most page views) costs no query."""
    hits: dict[str, dict[str, list[Event]]] = {}  # model id → profile id → its events
    for model in models:
        local = model.at(when)
        for profile_id, evs in events.items():
            mine = [
                e
                for e in evs
                if (model.unit is None or e.bu_id == model.unit) and matching(model.doc, e, local)
            ]
            if mine:
                hits.setdefault(model.id, {})[profile_id] = ordered(mine)
    if not hits:
        return set()
    profiles = sorted({p for by_profile in hits.values() for p in by_profile})
    rows = store.score_rows(session, profiles)
    last = store.last_awards(session, profiles)
    held = store.held_tags(session, profiles, found.ids(models))
    changed: set[str] = set()
    for model in models:
        local = model.at(when)  # caps count the model's unit's calendar days
        mine = hits.get(model.id, {})
        late = {
            p
            for p, evs in mine.items()
            if (p, model.id) in last and (evs[0].at, evs[0].seq) <= last[(p, model.id)]
        }
        on_time = {p: evs for p, evs in mine.items() if p not in late}
        use = store.cap_use(session, model, on_time)
        states: dict[str, Running] = {}
        awards: dict[str, list[Award]] = {}
        for profile_id, evs in on_time.items():
            row = rows.get((profile_id, model.id))
            state = Running(last=last.get((profile_id, model.id)))
            if row is not None:
                state.value, state.at = row.value, row.as_of
            count_use(model.doc, state, use.get(profile_id, ()), local.zone)
            given = apply(model.doc, state, evs, local)
            if given:
                states[profile_id], awards[profile_id] = state, given
        pairs = found.of(model)
        changed |= store.settle(
            session, model, sorted(states), rows, states, awards, pairs, held, when
        )
        if late:
            again = sorted(late)
            states, awards = store.rebuild(session, model, again, when)
            changed |= store.settle(
                session, model, again, rows, states, awards, pairs, held, when, rebuilt=True
            )
    return changed


# --- sweep: time passes ---------------------------------------------------------------------


def sweep(session: Session, when: When) -> set[str]:
    """Bring decayed values forward to now and take away threshold tags from profiles that
    fell below; the profiles whose stored value or tags changed. Models without a half-life
    do not move with time and are not read."""
    models = [m for m in load_models(session) if m.doc.half_life_days is not None]
    found = store.ThresholdTags(session)
    table = ScoreRow.__table__
    rewrite = (
        update(table)
        .where(
            table.c.profile_id == bindparam("b_profile"), table.c.model_id == bindparam("b_model")
        )
        .values(
            value=bindparam("b_value"), as_of=bindparam("b_as_of"), updated_at=bindparam("b_now")
        )
    )
    changed: set[str] = set()
    for model in models:
        pairs = found.of(model)
        after = ""
        while True:
            # Pages in primary-key order, read from the key itself: through the (model, value)
            # index SQLite would sort every score of the model again for each page (0.5 s a
            # page, 190 s a sweep at 10^6 people).
            value = Unindexed(S.value)
            page = session.execute(
                select(S.profile_id, S.value, S.as_of)
                .where(
                    Unindexed(S.model_id) == model.id,
                    S.as_of < when.now,
                    or_(value >= 1 / SWEEP_STEP, value < -1 / SWEEP_STEP),
                    S.profile_id > after,
                )
                .order_by(S.profile_id)
                .limit(SWEEP_PAGE)
            ).all()
            if not page:
                break
            after = page[-1].profile_id
            moved: dict[str, float] = {}
            for row in page:
                now = value_now(row.value, row.as_of, when.now, model.doc.half_life_days)
                crossed = any(holds(row.value, t) != holds(now, t) for t, _ in pairs)
                if crossed or math.floor(row.value * SWEEP_STEP) != math.floor(now * SWEEP_STEP):
                    moved[row.profile_id] = now
            if not moved:
                continue
            session.execute(
                rewrite,
                [
                    {
                        "b_profile": p,
                        "b_model": model.id,
                        "b_value": v,
                        "b_as_of": when.now,
                        "b_now": when.now,
                    }
                    for p, v in moved.items()
                ],
            )
            changed.update(moved)
            held = store.held_tags(session, sorted(moved), [tag.id for _, tag in pairs])
            store.set_all_tags(session, model, moved, pairs, held, when.now)
    return changed


# --- recompute ------------------------------------------------------------------------------


def recompute(
    session: Session,
    ctx: Context,
    *,
    model: str | None = None,
    bu: str | None = None,
    when: When | None = None,
    on_progress: Progress | None = None,
) -> int:
    """Rebuild every score of the models named (by code; in unit ``bu``, else the caller's
    scope) from the events; the number of profiles rebuilt. Safe to re-run: a rebuild is a
    replay, and leaves what a replay leaves."""
    ctx.require("profiles.admin")
    query = select(ScoreModelRow)
    if bu is not None:
        query = query.where(ScoreModelRow.bu_id == governance.unit_id(session, ctx, bu))
    elif not ctx.is_group_wide:
        query = query.where(ScoreModelRow.bu_id == ctx.bu_id)
    if model is not None:
        query = query.where(ScoreModelRow.code == model)
    rows = list(session.scalars(query))
    if model is not None and not rows:
        raise NotFound(f"no score model {model!r}", code=model)
    return rebuild_models(
        session, load_models(session, rows), when or when_of(ctx), on_progress=on_progress
    )


def rebuild_models(
    session: Session,
    models: Sequence[Model],
    when: When,
    *,
    on_progress: Progress | None = None,
    changed_before: Collection[str] = (),
) -> int:
    """Rebuild ``models`` for every profile they touch: with matching events, a score, or a
    tag the model set; the number of profiles rebuilt. Segments follow the profiles that
    changed, with ``changed_before`` (changed by the caller just before). The caller has
    checked permissions."""
    found = store.ThresholdTags(session)
    plans: list[tuple[Model, list[str]]] = []
    for model in models:
        query = select(E.profile_id).where(store.rules_sql(model)).distinct()
        if model.unit is not None:
            query = query.where(E.bu_id == model.unit)
        ids = set(session.scalars(query))
        ids.update(session.scalars(select(S.profile_id).where(S.model_id == model.id)))
        tag_ids = [tag.id for _, tag in found.of(model)]
        if tag_ids:
            ids.update(
                session.scalars(
                    select(ProfileTagRow.profile_id).where(
                        ProfileTagRow.tag_id.in_(tag_ids),
                        ProfileTagRow.source == SOURCE,
                        ProfileTagRow.set_by == model.by,
                    )
                )
            )
        plans.append((model, sorted(ids)))
    total = sum(len(ids) for _, ids in plans)
    done = 0
    changed = set(changed_before)
    if on_progress is not None:
        on_progress(0, total)
    for model, ids in plans:
        for chunk in in_chunks(ids):
            changed |= store.replay(session, [model], chunk, when, found)
            done += len(chunk)
            if on_progress is not None:
                on_progress(done, total)
    follow(session, changed, when)
    return total


def follow(session: Session, profile_ids: Collection[str], when: When) -> None:
    """Scores changed outside the consumer (a model saved, deleted, recomputed): live segments
    and rule tags that read them follow at once, in the same transaction."""
    if not profile_ids:
        return
    from oneloop.segments import live  # segments build on profiles

    session.flush()
    live.refresh(session, dict.fromkeys(sorted(profile_ids), "score"), when)


def when_of(ctx: Context) -> When:
    """Now, by the context's clock; each model counts days in its own unit's zone
    (``Model.zone``)."""
    return When(now=ctx.clock.now(), zone=zone_of(None))


# --- reads ----------------------------------------------------------------------------------


def scores_of(
    session: Session, profile_id: str, bu_ids: Collection[str], *, now: datetime | None = None
) -> list[Score]:
    """The profile's score in every model of these units, read at ``now`` (default: the
    system clock); a model that never gave it points reads 0. The caller has checked that the
    profile is visible."""
    return scores_of_many(session, [profile_id], bu_ids, now=now)[profile_id]


def scores_of_many(
    session: Session,
    profile_ids: Sequence[str],
    bu_ids: Collection[str],
    *,
    now: datetime | None = None,
) -> dict[str, list[Score]]:
    """``scores_of`` for many profiles in one statement for the models and one per 400
    profiles, whatever their number (list views). The caller has checked visibility."""
    found: dict[str, list[Score]] = {p: [] for p in profile_ids}
    models = list(
        session.scalars(
            select(ScoreModelRow)
            .where(ScoreModelRow.bu_id.in_(list(bu_ids)))
            .order_by(ScoreModelRow.code, ScoreModelRow.bu_id)
        )
    )
    if not models or not found:
        return found
    stored: dict[tuple[str, str], ScoreRow] = {}
    for part in in_chunks(sorted(found)):
        for row in session.scalars(
            select(S).where(S.profile_id.in_(list(part)), S.model_id.in_([m.id for m in models]))
        ):
            stored[(row.profile_id, row.model_id)] = row
    now = now or SystemClock().now()
    for profile_id, out in found.items():
        for model in models:
            row = stored.get((profile_id, model.id))
            half_life = model.definition.get("half_life_days")
            value = 0.0 if row is None else value_now(row.value, row.as_of, now, half_life)
            out.append(
                Score(
                    model_id=model.id,
                    bu_id=model.bu_id,
                    code=model.code,
                    name_zh=model.name_zh,
                    name_en=model.name_en,
                    value=round(value, 4),
                    as_of=None if row is None else row.as_of,
                )
            )
    return found


def history(
    session: Session,
    profile_id: str,
    model_id: str | None = None,
    limit: int = 50,
    *,
    bu_ids: Collection[str] | None = None,
) -> list[Points]:
    """The profile's awards, newest first: "why is this lead hot". ``bu_ids`` limits them to
    those units' models (a unit's user must not see another unit's models)."""
    # the event's name only where the reader may see the event (a group model counts events
    # of every unit)
    scoped = [] if bu_ids is None else [E.bu_id.in_(list(bu_ids))]
    query = (
        select(H, ScoreModelRow.code, E.name)
        .join(ScoreModelRow, ScoreModelRow.id == H.model_id)
        .outerjoin(E, and_(E.seq == H.seq, *scoped))
        .where(H.profile_id == profile_id)
    )
    if model_id is not None:
        query = query.where(H.model_id == model_id)
    if bu_ids is not None:
        query = query.where(ScoreModelRow.bu_id.in_(list(bu_ids)))
    query = query.order_by(H.at.desc(), H.seq.desc(), H.model_id, H.id.desc()).limit(
        max(1, min(limit, MAX_HISTORY))
    )
    return [
        Points(
            model_id=row.model_id,
            model_code=code,
            rule=row.rule,
            seq=row.seq,
            event=name,
            points=row.points,
            value_after=row.value_after,
            at=row.at,
        )
        for row, code, name in session.execute(query)
    ]


@dataclass(frozen=True)
class ScoreAward:
    """Points given, as followers of the awards feed see them (sales' score triggers)."""

    id: int
    profile_id: str
    bu_id: str
    code: str
    value_after: float
    points: float
    at: datetime


def awards_after(session: Session, after: int, limit: int) -> list[ScoreAward]:
    """Every model's awards after id ``after``, in order. Awards are written by the profiles
    consumer alone, one step at a time, so id order is commit order."""
    rows = session.execute(
        select(
            H.id, H.profile_id, ScoreModelRow.bu_id, ScoreModelRow.code, H.value_after, H.points,
            H.at,
        )
        .join(ScoreModelRow, ScoreModelRow.id == H.model_id)
        .where(H.id > after)
        .order_by(H.id)
        .limit(limit)
    )  # fmt: skip
    return [ScoreAward(*row) for row in rows]


def model_exists(session: Session, bu_id: str, code: str) -> bool:
    """Whether the unit (or the group) has score model ``code``."""
    units = [bu_id, governance.group_id(session)]
    found = session.scalar(
        select(ScoreModelRow.id).where(ScoreModelRow.bu_id.in_(units), ScoreModelRow.code == code)
    )
    return found is not None
