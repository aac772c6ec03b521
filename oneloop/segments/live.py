"""Live membership: when profiles change, their rule tags and segments follow at once.

The profiles consumer calls ``refresh`` in the same transaction as the change it handled
(an event, a trait, a tag, a score, a merge or split), so a segment's entries and exits
commit with their cause and a crash replays both. ``sweep`` handles what time alone changes:
rules with a relative window ("within the last 30 days") are evaluated again in full.

Every evaluation is a diff computed by the database: the enters are the rule's answer minus
the stored members, the exits the stored members the rule no longer holds for (including
profiles that no longer exist: merged away). Both are written to ``segments_change`` first,
then applied to ``segments_member`` from there, so no id list travels through Python.

``segments_change`` is a feed read by sequence number (journeys follow it), so its writers
take one lock first (``lock_feed``): on PostgreSQL, sequence order then is commit order and a
reader never skips a row that commits late. SQLite has one writer at a time anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import (
    Column,
    MetaData,
    String,
    Table,
    and_,
    delete,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.orm import Session

from oneloop.core.db import UTCDateTime, in_chunks
from oneloop.core.errors import ValidationFailed
from oneloop.core.ids import ID_LENGTH
from oneloop.governance import service as governance
from oneloop.profiles import tags as profile_tags
from oneloop.profiles.filters import When
from oneloop.profiles.models import ProfileTagRow, TagRow
from oneloop.profiles.tags import MACHINE_SOURCES
from oneloop.segments.compile import (
    GOLDEN,
    Bound,
    Resolver,
    bind,
    candidates,
    condition,
    matching,
)
from oneloop.segments.language import parse_rule
from oneloop.segments.models import ChangeRow, MemberRow, SegmentRow

log = logging.getLogger(__name__)

FEED_LOCK = 0x0E1_5E6  # the advisory lock key of segments_change's writers (PostgreSQL)
CAUSES = ("event", "trait", "tag", "score", "merge", "split", "time", "rule", "full")
RULE_TAGGER = "rule"

T = TypeVar("T")


@dataclass(frozen=True)
class Applied:
    entered: int
    exited: int


@dataclass(frozen=True)
class Touch:
    """What may have changed for one profile: a rule reading none of it (nor a tag or segment
    re-evaluated for the profile before it) keeps its answer and is not evaluated. A profile
    new to a business unit is touched ``everywhere``: it has just become a candidate of that
    unit's rules, including those that read nothing it did ("no tag X")."""

    events: frozenset[str] = frozenset()  # names of new events
    keys: frozenset[str] = frozenset()  # trait keys that may have moved
    golden: bool = False  # the golden record may have moved (``golden:*`` keys)
    models: frozenset[str] = frozenset()  # score models that may have moved
    tags: frozenset[str] = frozenset()  # tags that may have been set or taken away
    everywhere: bool = False

    def reaches(self, bound: Bound, tags: Set[str], segments: Set[str]) -> bool:
        """Whether ``bound``'s answer may differ, given the tags and segments already
        re-evaluated for this profile in this refresh."""
        reads = bound.reads
        return (
            self.everywhere
            or not reads.events.isdisjoint(self.events)
            or not reads.keys.isdisjoint(self.keys)
            or (self.golden and any(k.startswith(GOLDEN) for k in reads.keys))
            or not reads.models.isdisjoint(self.models)
            or not bound.tags.isdisjoint(self.tags)
            or not bound.tags.isdisjoint(tags)
            or not bound.segments.isdisjoint(segments)
        )


EVERYWHERE = Touch(everywhere=True)


def refresh(
    session: Session,
    profile_ids: Mapping[str, str],
    when: When,
    touched: Mapping[str, Touch] | None = None,
) -> None:
    """Re-evaluate the rule tags, then the live segments (a segment after those it uses), for
    these profiles only; the value of each id is the cause recorded with its entries and
    exits. With ``touched``, a rule is evaluated for a profile only when what it reads may
    have changed (an id without a touch: every rule). Ids that no longer exist leave every
    segment. The caller commits."""
    if not profile_ids:
        return
    lock_feed(session)  # before reading sizes, which this refresh moves
    plan = _plan(session)
    if plan is None:
        return
    touches = touched or {}
    by_cause: dict[str, list[str]] = {}
    for profile_id, cause in sorted(profile_ids.items()):
        by_cause.setdefault(cause, []).append(profile_id)
    for cause, ids in by_cause.items():
        for chunk in in_chunks(ids):
            _refresh_chunk(session, plan, chunk, touches, when, cause)


def _refresh_chunk(
    session: Session,
    plan: Plan,
    chunk: Sequence[str],
    touches: Mapping[str, Touch],
    when: When,
    cause: str,
) -> None:
    tags_done: dict[str, set[str]] = {p: set() for p in chunk}
    segments_done: dict[str, set[str]] = {p: set() for p in chunk}
    for row, bound in plan.steps:
        reached = [
            p
            for p in chunk
            if touches.get(p, EVERYWHERE).reaches(bound, tags_done[p], segments_done[p])
        ]
        if not reached:
            continue
        if isinstance(row, TagRow):
            refresh_tag(session, row, bound, when, cause, reached)
        else:
            applied = apply(session, row, bound, when, cause, reached)
            row.size += applied.entered - applied.exited
        done = tags_done if isinstance(row, TagRow) else segments_done
        for p in reached:
            done[p].add(row.id)


def sweep(session: Session, when: When) -> None:
    """Evaluate in full the rule tags and live segments whose answer time alone changes
    (a relative window, or a dependency on such a tag or segment), with cause ``time``."""
    for step_id in moving(session):
        sweep_step(session, when, step_id)


def moving(session: Session) -> list[str]:
    """The ids of the rule tags and live segments whose answer time alone changes, in the
    order they must be evaluated (each after what it reads): the sweep's work, which a caller
    may spread over several transactions, one step each."""
    plan = _plan(session)
    if plan is None:
        return []
    found: set[str] = set()
    ordered_ids = []
    for row, bound in plan.steps:
        if bound.is_temporal or bound.tags & found or bound.segments & found:
            found.add(row.id)
            ordered_ids.append(row.id)
    return ordered_ids


def sweep_step(session: Session, when: When, step_id: str) -> None:
    """One of ``moving``'s steps, in full (it may have been deleted or changed since)."""
    lock_feed(session)
    plan = _plan(session)
    for row, bound in plan.steps if plan else ():
        if row.id != step_id:
            continue
        if isinstance(row, TagRow):
            refresh_tag(session, row, bound, when, "time", None)
        else:
            evaluate_bound(session, row, bound, when, "time")


def evaluate_bound(
    session: Session, segment: SegmentRow, bound: Bound, when: When, cause: str
) -> Applied:
    """A full evaluation of one segment (the caller holds ``lock_feed``)."""
    applied = apply(session, segment, bound, when, cause)
    segment.size = (
        session.scalar(
            select(func.count()).select_from(MemberRow).where(MemberRow.segment_id == segment.id)
        )
        or 0
    )
    segment.evaluated_at = when.now
    return applied


def lock_feed(session: Session) -> None:
    """Serialise the writers of ``segments_change`` until the transaction ends (PostgreSQL);
    take it before writing anything else of the segments domain, so waits cannot cross."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(FEED_LOCK)))


def apply(
    session: Session,
    segment: SegmentRow,
    bound: Bound,
    when: When,
    cause: str,
    ids: Sequence[str] | None = None,
) -> Applied:
    """Diff the rule's answer with the stored members, over every candidate or over ``ids``
    (at most ``core.db.IN_CHUNK`` of them), and record the enters and exits.

    A full evaluation keeps the rule's answer in a temporary table, so the rule runs once
    and both differences are index joins; over a few ids each side probes the rule itself."""
    session.flush()  # Core statements below do not autoflush the ORM's pending rows
    changes, members = ChangeRow.__table__, MemberRow.__table__
    mark = session.scalar(select(func.coalesce(func.max(changes.c.seq), 0)))
    columns = ["segment_id", "profile_id", "kind", "cause", "at"]
    now = literal(when.now, UTCDateTime(timezone=True))
    sid, why = literal(segment.id), literal(cause)

    anyone = select(members.c.profile_id).where(members.c.segment_id == segment.id).exists()
    first = ids is None and not session.scalar(select(anyone))
    if ids is None and not first:
        answer = _scratch(session)
        session.execute(insert(answer).from_select(["profile_id"], matching(bound, when)))
        found: Any = answer  # Any: the scratch table, or the rule's subquery: same column
        answers = select(answer.c.profile_id).where(answer.c.profile_id == members.c.profile_id)
    else:  # over a few ids, or the first evaluation (nobody can leave)
        found = matching(bound, when, ids=ids).subquery()
        base = candidates(bound.scope)
        answers = select(base.profile_id).where(
            base.profile_id == members.c.profile_id,
            *base.where,
            condition(bound, base.profile_id, when, probe=True),
        )
    already = (
        select(members.c.profile_id)
        .where(members.c.segment_id == segment.id, members.c.profile_id == found.c.profile_id)
        .exists()
    )
    entering = select(sid, found.c.profile_id, literal("enter"), why, now).where(~already)
    leaving = select(sid, members.c.profile_id, literal("exit"), why, now).where(
        members.c.segment_id == segment.id, ~answers.exists()
    )
    if ids is not None:
        leaving = leaving.where(members.c.profile_id.in_(list(ids)))

    counted = {"preserve_rowcount": True}  # an INSERT's count is kept only when asked for
    entered = session.execute(
        insert(changes).from_select(columns, entering), execution_options=counted
    ).rowcount
    exited = 0
    if not first:
        exited = session.execute(
            insert(changes).from_select(columns, leaving), execution_options=counted
        ).rowcount
    if found is _SCRATCH:
        session.execute(delete(_SCRATCH))
    if entered or exited:
        mine = and_(changes.c.seq > mark, changes.c.segment_id == segment.id)
        session.execute(
            insert(members).from_select(
                ["segment_id", "profile_id", "entered_at"],
                select(changes.c.segment_id, changes.c.profile_id, changes.c.at).where(
                    mine, changes.c.kind == "enter"
                ),
            )
        )
        session.execute(
            delete(members).where(
                members.c.segment_id == segment.id,
                members.c.profile_id.in_(
                    select(changes.c.profile_id).where(mine, changes.c.kind == "exit")
                ),
            )
        )
        log.info(
            "segment.changed",
            extra={"segment_id": segment.id, "entered": entered, "exited": exited, "cause": cause},
        )
    return Applied(entered, exited)


# One connection's scratch space for a full evaluation's answer: a temporary table, private to
# the connection, emptied after each use (and dropped at commit on PostgreSQL).
_SCRATCH = Table(
    "segments_answer",
    MetaData(),
    Column("profile_id", String(ID_LENGTH), primary_key=True),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)


def _scratch(session: Session) -> Table:
    connection = session.connection()
    _SCRATCH.create(connection, checkfirst=True)
    session.execute(delete(_SCRATCH))
    return _SCRATCH


def refresh_tag(
    session: Session,
    tag: TagRow,
    bound: Bound,
    when: When,
    cause: str,
    ids: Sequence[str] | None,
) -> None:
    """Set the rule tag on the profiles (``ids``, or all) its rule holds for, and take it from
    those it no longer holds for; a tag a person set by hand stays (``tags.unassign``)."""
    session.flush()
    held = select(ProfileTagRow.profile_id, ProfileTagRow.source).where(
        ProfileTagRow.tag_id == tag.id
    )
    if ids is not None:
        held = held.where(ProfileTagRow.profile_id.in_(list(ids)))
    carrying: dict[str, str] = {p: s for p, s in session.execute(held)}
    holding = set(session.scalars(matching(bound, when, ids=ids)))
    reason = f"rule of {tag.code} v{tag.version} ({cause})"
    for profile_id in sorted(holding - set(carrying)):
        profile_tags.assign(
            session,
            profile_id=profile_id,
            tag=tag,
            source=RULE_TAGGER,
            by=RULE_TAGGER,
            reason=reason,
            now=when.now,
        )
    for profile_id, source in sorted(carrying.items()):
        if profile_id not in holding and source in MACHINE_SOURCES:
            profile_tags.unassign(
                session,
                profile_id=profile_id,
                tag=tag,
                source=RULE_TAGGER,
                by=RULE_TAGGER,
                reason=reason,
                now=when.now,
            )


# --- what to evaluate, in which order -------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """The rule tags and live segments, each after the tags and segments its rule reads, so
    one pass sees every answer it depends on already up to date (tag and segment ids are
    both ULIDs: one order serves both)."""

    steps: list[tuple[TagRow | SegmentRow, Bound]]


def _plan(session: Session) -> Plan | None:
    """The plan; None when there is nothing to evaluate. A rule that no longer binds (what it
    names was deleted behind its back) is logged and left as it is: refusing the whole batch
    would stop every other profile's update."""
    tag_rows = [t for t in session.scalars(select(TagRow).where(TagRow.kind == "rule")) if t.rule]
    segment_rows = list(
        session.scalars(select(SegmentRow).where(SegmentRow.is_live).order_by(SegmentRow.id))
    )
    if not tag_rows and not segment_rows:
        return None
    group = governance.group_id(session)
    resolver = Resolver(session)
    steps: list[tuple[TagRow | SegmentRow, Bound]] = [
        (row, bound)
        for row in [*tag_rows, *segment_rows]
        if row.rule and (bound := bind_or_log(resolver, row.rule, row.bu_id, group, row.id))
    ]
    return Plan(ordered(steps, key=lambda s: s[0].id, uses=lambda s: s[1].tags | s[1].segments))


def bind_or_log(
    resolver: Resolver, rule: object, unit: str, group: str, owner_id: str
) -> Bound | None:
    try:
        return bind(resolver, parse_rule(rule), resolver.scope(unit, group))
    except ValidationFailed as exc:
        log.error("segment.rule_invalid", extra={"id": owner_id, "detail": exc.detail})
        return None


def ordered(
    items: Iterable[T], *, key: Callable[[T], str], uses: Callable[[T], Iterable[str]]
) -> list[T]:
    """``items`` with each after the items it uses (depth first, stable); a cycle, which
    creation refuses, is logged and broken where it is found."""
    by_key = {key(i): i for i in items}
    done: dict[str, bool] = {}  # False: in progress
    out: list[T] = []

    def visit(k: str) -> None:
        if done.get(k) is True:
            return
        if done.get(k) is False:
            log.error("segment.cycle", extra={"id": k})
            return
        done[k] = False
        for dep in sorted(uses(by_key[k])):
            if dep in by_key:
                visit(dep)
        done[k] = True
        out.append(by_key[k])

    for k in by_key:
        visit(k)
    return out


def memberships(session: Session, profile_ids: Sequence[str]) -> list[dict[str, str]]:
    """The segments the profiles are in now, for a person's own copy of their data."""
    rows = session.execute(
        select(SegmentRow.code, SegmentRow.name, MemberRow.entered_at)
        .join(MemberRow, MemberRow.segment_id == SegmentRow.id)
        .where(MemberRow.profile_id.in_(profile_ids))
        .order_by(SegmentRow.code)
    )
    return [{"segment": c, "name": n, "entered_at": at.isoformat()} for c, n, at in rows]
