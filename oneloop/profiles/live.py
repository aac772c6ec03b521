"""Keeping profiles current: the log consumer, identity's change feed, and the sweep.

One transaction carries an event all the way: projected under its profile, computed traits
and the golden record refreshed, points scored, rule tags and live segments re-evaluated, and
the entries and exits recorded. So an event's effect on a segment is committed with the event's
consumption, and a crash replays both.

Three things change profiles without a new event, so they run as tasks beside the consumers:
identity's merges and splits (``profiles.identity``), and the passing of time — windows that
close, scores that decay, tags that expire (``profiles.sweep``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from oneloop.collect.consumers import advance, lock_cursor, register, register_task
from oneloop.collect.log import LoggedEvent
from oneloop.collect.models import CursorRow
from oneloop.core.clock import Clock, SystemClock
from oneloop.core.context import system_context
from oneloop.core.db import in_chunks
from oneloop.core.errors import NotFound
from oneloop.identity import service as identity
from oneloop.profiles import departments, project, scores, traits
from oneloop.profiles.filters import When, zone_of
from oneloop.profiles.models import ProfileRow, TraitRow
from oneloop.profiles.score_store import ThresholdTags, load_models
from oneloop.profiles.tags import expire
from oneloop.profiles.trait_defs import all_definitions
from oneloop.profiles.values import typed
from oneloop.segments import live as segments

CONSUMER = "profiles"
CHANGES = "profiles.identity"
SWEEP = "profiles.sweep"
CHANGES_BATCH = 200
SWEEP_EVERY = timedelta(minutes=5)
GOLDEN = "golden:"


def when_at(now: datetime) -> When:
    return When(now=now, zone=zone_of(None))


@dataclass
class ProfilesConsumer:
    """The log consumer; ``clock`` is what "now" means for windows and decay."""

    clock: Clock = field(default_factory=SystemClock)
    name: str = CONSUMER

    def handle(self, session: Session, events: Sequence[LoggedEvent]) -> None:
        identity.require_resolved(session, events[-1].position)
        when = when_at(self.clock.now())
        projected = project.apply_events(session, events, departments.current(session), when.now)
        if not projected.seqs:
            return
        changed = dict.fromkeys(projected.seqs, "event")
        names = {n for ns in projected.names.values() for n in ns}
        traits.refresh(session, list(projected.seqs), when, event_names=names)
        store_golden(session, projected.with_traits, when.now)
        scores.refresh(session, projected.seqs, (), when)
        segments.refresh(session, changed, when, touches(session, projected))


def touches(session: Session, projected: project.Projected) -> dict[str, segments.Touch]:
    """What each profile's new events may have moved: the traits and score models that read
    those event names, the tags the models' thresholds set, the golden record when an event
    carried traits. A superset of what did move, read from the definitions, so that live
    segments are re-evaluated only where their rules read any of it."""
    definitions = all_definitions(session)
    models = load_models(session)
    thresholds = ThresholdTags(session)
    by_names: dict[frozenset[str], segments.Touch] = {}
    found: dict[str, segments.Touch] = {}
    for profile_id, names in projected.names.items():
        key = frozenset(names)
        if key not in by_names:
            moved = [
                m for m in models if any(not key.isdisjoint(r.filter.names) for r in m.doc.rules)
            ]
            reading = [d.id for d in definitions if not key.isdisjoint(d.spec.filter.names)]
            by_names[key] = segments.Touch(
                events=key,
                keys=frozenset(reading),
                models=frozenset(m.id for m in moved),
                tags=frozenset(tag.id for m in moved for _, tag in thresholds.of(m)),
            )
        touch = by_names[key]
        if profile_id in projected.joined:
            touch = segments.EVERYWHERE
        elif profile_id in projected.with_traits:
            touch = replace(touch, golden=True)
        found[profile_id] = touch
    return found


@dataclass
class IdentityChanges:
    """Follows identity's change feed: merges and splits move events between profiles, and
    everything computed from them is recomputed for the profiles involved."""

    clock: Clock = field(default_factory=SystemClock)
    name: str = CHANGES

    def run(self, session: Session, clock: Clock) -> int:
        position = lock_cursor(session, self.name, clock)
        changes = identity.changes_after(session, position.seq, CHANGES_BATCH)
        if not changes:
            return 0
        when = when_at(self.clock.now())
        affected = project.apply_changes(session, changes, when.now)
        if affected:
            recompute(session, affected, when)
        advance(session, self.name, seq=changes[-1].seq, processed=len(changes), now=clock.now())
        return len(changes)


def recompute(session: Session, affected: Mapping[str, str], when: When) -> None:
    """Everything computed from a profile's events, again, for these profiles (those that no
    longer exist leave their segments)."""
    ids = sorted(affected)
    traits.refresh(session, ids, when, event_names=None)
    store_golden(session, existing(session, ids), when.now)
    scores.refresh(session, {}, ids, when)
    segments.refresh(session, affected, when)


@dataclass
class Sweep:
    """What time changes: closed windows, decayed scores, expired tags, relative segments.
    Runs at most every ``every``; the last run's time is kept in its cursor row.

    A sweep is several transactions, so that the consumers' events (and, on SQLite, ingest)
    wait for one piece at a time rather than the whole sweep: first traits, scores and tags
    with the segments they move, then one time-relative rule tag or segment per run (``run``
    returns 1 while pieces remain), then the planner statistics. The sweep is claimed in its
    first piece (the cursor's time), so a second worker does not start it again; a worker
    that stops mid-sweep leaves the rest to the next one."""

    clock: Clock = field(default_factory=SystemClock)
    every: timedelta = SWEEP_EVERY
    name: str = SWEEP
    _pending: list[str] = field(default_factory=list)
    _now: datetime | None = None

    def run(self, session: Session, clock: Clock) -> int:
        if self._now is not None:
            return self._next_piece(session)
        lock_cursor(session, self.name, clock)
        last = session.scalar(select(CursorRow.updated_at).where(CursorRow.name == self.name))
        now = self.clock.now()
        ran_before = session.scalar(select(CursorRow.processed).where(CursorRow.name == self.name))
        if ran_before and last is not None and now - last < self.every:
            return 0
        since = last if ran_before and last is not None else now - self.every
        when = when_at(now)
        changed = dict.fromkeys(expire(session, now), "tag")
        changed.update(dict.fromkeys(traits.sweep(session, when, since), "time"))
        changed.update(dict.fromkeys(scores.sweep(session, when), "score"))
        if changed:
            segments.refresh(session, changed, when)
        session.execute(
            update(CursorRow)
            .where(CursorRow.name == self.name)
            .values(processed=CursorRow.processed + 1, updated_at=now)
        )
        self._pending, self._now = segments.moving(session), now
        return 1

    def _next_piece(self, session: Session) -> int:
        assert self._now is not None
        if self._pending:
            segments.sweep_step(session, when_at(self._now), self._pending[0])
            self._pending.pop(0)
            return 1
        refresh_statistics(session)
        self._now = None
        return 0


def refresh_statistics(session: Session) -> None:
    """Keep SQLite's planner statistics current. Without them it reads ``name IN … AND
    profile_id IN …`` through the ``(name, at)`` index, every event of those names, where the
    ``(profile_id, at)`` index reads only the batch's profiles' (120 ms against 10 ms a trait
    on the demo). A sampled ANALYZE costs well under a second; PostgreSQL's autovacuum does
    this itself."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("PRAGMA analysis_limit=400"))
        session.execute(text("ANALYZE"))


def existing(session: Session, profile_ids: Collection[str]) -> set[str]:
    found: set[str] = set()
    for part in in_chunks(sorted(profile_ids)):
        found.update(session.scalars(select(ProfileRow.id).where(ProfileRow.id.in_(part))))
    return found


def store_golden(session: Session, profile_ids: Collection[str], now: datetime) -> None:
    """Materialise the golden record as ``golden:FIELD`` traits, so segment rules can compare
    a person's city or birthday with an index. The record itself stays computed on read."""
    ctx = system_context()
    for part in in_chunks(sorted(profile_ids)):
        for profile_id in part:
            try:
                record = identity.golden_values(session, ctx, profile_id)
            except NotFound:
                continue
            values = {f"{GOLDEN}{name}"[:120]: f.value for name, f in record.fields.items()}
            stored = {
                row.key: row
                for row in session.scalars(
                    select(TraitRow).where(
                        TraitRow.profile_id == profile_id, TraitRow.key.startswith(GOLDEN)
                    )
                )
            }
            for key, value in values.items():
                t = typed(value)
                row = stored.pop(key, None)
                if row is None:
                    session.add(
                        TraitRow(
                            profile_id=profile_id,
                            key=key,
                            value=t.value,
                            num=t.num,
                            text=t.text,
                            at=t.at,
                            updated_at=now,
                        )
                    )
                elif row.value != t.value:
                    row.value, row.num, row.text, row.at = t.value, t.num, t.text, t.at
                    row.updated_at = now
            for key in stored:
                session.execute(
                    delete(TraitRow).where(TraitRow.profile_id == profile_id, TraitRow.key == key)
                )


register(ProfilesConsumer())
register_task(IdentityChanges())
register_task(Sweep())
