"""The profiles' projection of the log: each event under the profile it belongs to now.

Events arrive from the log consumer; merges and splits arrive from identity's change feed.
Both only ever copy identity's current answer (``identity.service.event_profiles``), so the
order in which they arrive does not matter: an event projected before a merge is moved by the
merge, one projected after it already lands on the survivor.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from oneloop.collect.log import LoggedEvent
from oneloop.core.db import in_chunks
from oneloop.identity import service as identity
from oneloop.profiles.departments import Departments
from oneloop.profiles.models import (
    EventCountRow,
    ProfileEventRow,
    ProfileRow,
    ProfileTagRow,
    ProfileUnitRow,
    ScoreHistoryRow,
    ScoreRow,
    TraitRow,
)

NAMES = {"page": "Page Viewed", "screen": "Screen Viewed", "identify": "Identify",
         "group": "Group", "alias": "Alias"}  # fmt: skip


@dataclass
class Projected:
    """What a batch changed: per profile, the new events' seqs and names."""

    seqs: dict[str, list[int]] = field(default_factory=dict)
    names: dict[str, set[str]] = field(default_factory=dict)
    with_traits: set[str] = field(default_factory=set)
    joined: set[str] = field(default_factory=set)  # new to a business unit

    def add(self, profile_id: str, seq: int, name: str, has_traits: bool) -> None:
        self.seqs.setdefault(profile_id, []).append(seq)
        self.names.setdefault(profile_id, set()).add(name)
        if has_traits:
            self.with_traits.add(profile_id)


def event_name(event: LoggedEvent) -> str:
    if event.type == "track":
        return event.event or "(unnamed)"
    return NAMES.get(event.type, event.type)


def properties_of(event: LoggedEvent) -> dict[str, Any]:  # Any: JSON as sent
    """Track and page properties; a page's or screen's own name joins them as ``name``."""
    properties = dict(event.properties or {})
    if event.type in ("page", "screen") and event.name and "name" not in properties:
        properties["name"] = event.name
    return properties


def has_traits(event: LoggedEvent) -> bool:
    return bool(event.traits) or bool((event.context or {}).get("traits"))


def apply_events(
    session: Session, events: Sequence[LoggedEvent], departments: Departments, now: datetime
) -> Projected:
    """Project a batch of log events; idempotent (an event already projected is skipped)."""
    owners = identity.event_profiles(session, [e.seq for e in events])
    known = _projected(session, [e.seq for e in events])
    projected = Projected()
    rows = []
    for event in events:
        profile_id = owners.get(event.seq)
        if profile_id is None or event.seq in known:
            continue
        name = event_name(event)
        rows.append(
            {
                "seq": event.seq,
                "profile_id": profile_id,
                "bu_id": event.bu_id,
                "source_id": event.source_id,
                "type": event.type,
                "name": name[:255],
                "department": departments.of(name),
                "at": event.timestamp,
                "properties": properties_of(event),
            }
        )
        projected.add(profile_id, event.seq, name, has_traits(event))
    if rows:
        session.execute(insert(ProfileEventRow), rows)
        projected.joined = refresh_profiles(session, projected.seqs, now).joined
    return projected


def _projected(session: Session, seqs: Sequence[int]) -> set[int]:
    found: set[int] = set()
    for part in in_chunks(list(seqs)):
        found.update(
            session.scalars(select(ProfileEventRow.seq).where(ProfileEventRow.seq.in_(part)))
        )
    return found


@dataclass(frozen=True)
class Refreshed:
    gone: set[str]  # removed: a merge moved all their events away
    joined: set[str]  # new to a business unit (or new altogether)


def refresh_profiles(session: Session, profile_ids: Iterable[str], now: datetime) -> Refreshed:
    """Bring the profile rows and business units of these profiles in line with their
    projected events; a profile left with no events is removed with everything it carried
    (a merge moved its events away)."""
    ids = sorted(set(profile_ids))
    gone: set[str] = set()
    joined: set[str] = set()
    for part in in_chunks(ids):
        counts = _count_events(session, part)
        stats: dict[str, tuple[datetime, datetime, int]] = {}
        spans: dict[tuple[str, str], tuple[datetime, datetime]] = {}
        for (pid, bu, _), (n, first, last) in counts.items():
            f, la, total = stats.get(pid, (first, last, 0))
            stats[pid] = (min(f, first), max(la, last), total + n)
            f, la = spans.get((pid, bu), (first, last))
            spans[(pid, bu)] = (min(f, first), max(la, last))
        existing = {
            row.id: row
            for row in session.scalars(select(ProfileRow).where(ProfileRow.id.in_(part)))
        }
        for pid in part:
            if pid not in stats:
                gone.add(pid)
                continue
            first, last, count = stats[pid]
            row = existing.get(pid)
            if row is None:
                session.add(
                    ProfileRow(
                        id=pid, first_seen_at=first, last_seen_at=last, events=count, updated_at=now
                    )
                )
            else:
                row.first_seen_at, row.last_seen_at, row.events = first, last, count
                row.updated_at = now
        had = {
            (p, b)
            for p, b in session.execute(
                select(ProfileUnitRow.profile_id, ProfileUnitRow.bu_id).where(
                    ProfileUnitRow.profile_id.in_(part)
                )
            )
        }
        joined.update(p for p, _ in spans.keys() - had)
        session.execute(delete(ProfileUnitRow).where(ProfileUnitRow.profile_id.in_(part)))
        if spans:
            session.execute(
                insert(ProfileUnitRow),
                [
                    {"profile_id": p, "bu_id": b, "first_at": f, "last_at": la}
                    for (p, b), (f, la) in spans.items()
                ],
            )
        _store_counts(session, part, counts)
    session.flush()
    forget(session, gone)
    return Refreshed(gone, joined)


CountKey = tuple[str, str, str]  # profile id, unit id, event name
Count = tuple[int, datetime, datetime]  # how many, first, last


def recount(session: Session, profile_ids: Sequence[str]) -> None:
    """Bring ``profiles_event_count`` of these profiles (at most ``IN_CHUNK``) in line with
    their projected events."""
    _store_counts(session, profile_ids, _count_events(session, profile_ids))


def _count_events(session: Session, profile_ids: Sequence[str]) -> dict[CountKey, Count]:
    e = ProfileEventRow
    rows = session.execute(
        select(e.profile_id, e.bu_id, e.name, func.count(), func.min(e.at), func.max(e.at))
        .where(e.profile_id.in_(profile_ids))
        .group_by(e.profile_id, e.bu_id, e.name)
    )
    return {(p, b, n): (c, f, la) for p, b, n, c, f, la in rows}


def _store_counts(
    session: Session, profile_ids: Sequence[str], counts: Mapping[CountKey, Count]
) -> None:
    """Write only what differs from the stored counts: most of a batch's profiles gained an
    event or two of names they already had."""
    c = EventCountRow
    stored = {
        (p, b, n): (k, f, la)
        for p, b, n, k, f, la in session.execute(
            select(c.profile_id, c.bu_id, c.name, c.count, c.first_at, c.last_at).where(
                c.profile_id.in_(profile_ids)
            )
        )
    }
    stale = [{"p": k[0], "b": k[1], "n": k[2]} for k, v in stored.items() if counts.get(k) != v]
    if stale:
        t = EventCountRow.__table__.c  # a Core statement: executemany, one per stale row
        session.execute(
            delete(EventCountRow.__table__).where(
                t.profile_id == bindparam("p"), t.bu_id == bindparam("b"), t.name == bindparam("n")
            ),
            stale,
        )
    fresh = [
        {"profile_id": p, "bu_id": b, "name": n, "count": k, "first_at": f, "last_at": la}
        for (p, b, n), (k, f, la) in counts.items()
        if stored.get((p, b, n)) != (k, f, la)
    ]
    if fresh:
        session.execute(insert(c), fresh)


def forget(session: Session, profile_ids: Collection[str]) -> None:
    """Remove what the profiles domain holds of profiles that no longer exist."""
    for part in in_chunks(sorted(profile_ids)):
        session.execute(delete(ProfileRow).where(ProfileRow.id.in_(part)))
        for model in (
            ProfileUnitRow,
            EventCountRow,
            TraitRow,
            ScoreRow,
            ScoreHistoryRow,
            ProfileTagRow,
        ):
            session.execute(delete(model).where(model.profile_id.in_(part)))


def apply_changes(
    session: Session, changes: Sequence[identity.Change], now: datetime
) -> dict[str, str]:
    """Follow merges and splits: move projected events to the profile identity says they
    belong to now, carry tags to a merge's survivor, and return the affected profiles with
    the cause (``merge``/``split``), including those that no longer exist."""
    affected: dict[str, str] = {}
    for change in changes:
        if change.kind not in ("merge", "split") or change.other_id is None:
            continue
        affected.setdefault(change.profile_id, change.kind)
        affected.setdefault(change.other_id, change.kind)
        if change.kind == "merge":
            _carry_tags(session, change.other_id, change.profile_id)
    if not affected:
        return {}
    now_owners = identity.profile_events(session, affected)
    for part in in_chunks(sorted(affected)):
        rows = session.execute(
            select(ProfileEventRow.seq, ProfileEventRow.profile_id).where(
                ProfileEventRow.profile_id.in_(part)
            )
        ).all()
        # an event that left these profiles went to a third one, or to nobody (all shared)
        elsewhere = identity.event_profiles(session, [s for s, _ in rows if s not in now_owners])
        moves: dict[str | None, list[int]] = {}
        for seq, profile_id in rows:
            owner = now_owners.get(seq) or elsewhere.get(seq)
            if owner != profile_id:
                moves.setdefault(owner, []).append(seq)
        for owner, seqs in moves.items():
            for chunk in in_chunks(seqs):
                if owner is None:
                    session.execute(delete(ProfileEventRow).where(ProfileEventRow.seq.in_(chunk)))
                else:
                    session.execute(
                        update(ProfileEventRow)
                        .where(ProfileEventRow.seq.in_(chunk))
                        .values(profile_id=owner)
                    )
            if owner is not None:
                affected.setdefault(owner, "merge")
    refresh_profiles(session, affected, now)
    return affected


def _carry_tags(session: Session, absorbed: str, survivor: str) -> None:
    """A person's tags stay theirs through a merge: the survivor gets those it lacks."""
    held = set(
        session.scalars(select(ProfileTagRow.tag_id).where(ProfileTagRow.profile_id == survivor))
    )
    for row in session.scalars(select(ProfileTagRow).where(ProfileTagRow.profile_id == absorbed)):
        if row.tag_id in held:
            session.delete(row)
        else:
            row.profile_id = survivor
