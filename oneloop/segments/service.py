"""Segments: named rules per business unit (or group-wide for HQ), their members, and the
enter/exit history.

A unit's users manage that unit's segments; group-wide roles manage any, and create
group-wide ones. Another unit's segment is ``NotFound``: we do not confirm it exists.
Creating or changing a segment evaluates it at once (cause ``rule``), and the segments that
use it after it, so that what a marketer sees is what journeys get. These functions flush;
the caller commits.

Names in a rule resolve each time it is evaluated (the unit's definition first, then the
group's), so a unit that later defines its own ``vip`` changes what its rules mean; a change
that would make segments use each other in a circle is refused at the node that closes it.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, literal_column, select
from sqlalchemy.orm import Session

from oneloop.core.context import Context
from oneloop.core.db import in_chunks, in_tenancy
from oneloop.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from oneloop.core.ids import new_id
from oneloop.core.paging import Column, Page, PageRequest, keyset_page
from oneloop.governance import audit, pii
from oneloop.governance import service as governance
from oneloop.profiles import traits
from oneloop.profiles.filters import When, invalid, local_midnight, zone_of
from oneloop.profiles.models import TagRow
from oneloop.profiles.traits import GOLDEN
from oneloop.segments import language, live
from oneloop.segments.compile import (
    Bound,
    Resolver,
    Scope,
    bind,
    candidates,
    condition,
    matching,
    scope_in,
)
from oneloop.segments.models import ChangeRow, MemberRow, SegmentRow
from oneloop.segments.schemas import (
    Estimate,
    Evaluation,
    MemberPage,
    Membership,
    Preview,
    Segment,
    SegmentChange,
    SegmentIn,
    SegmentMember,
    SegmentUpdate,
)

log = logging.getLogger(__name__)

READ = "segments.read"
MANAGE = "segments.manage"
EXPORT = "segments.export"

EXACT_LIMIT = 20_000  # candidates counted exactly by an estimate
SAMPLE_SIZE = 2_000  # profiles an estimate aims to probe (standard error ≤ 1.2 points)
MIN_SAMPLE = 200  # fewer than this drawn (ids that are not ULIDs): count exactly instead
SAMPLE_IDS = 20
ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BUCKETS = [a + b for a in ULID_ALPHABET for b in ULID_ALPHABET]  # the ids' last two characters
CSV_FORMULA = ("=", "+", "-", "@", "\t", "\r")
CSV_BATCH = 1_000
MAX_FIELDS = 20
FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}(\.[A-Za-z][A-Za-z0-9_]{0,62})?")

Progress = Callable[[int, int], None]


def when_of(ctx: Context) -> When:
    """Now, by the context's clock. The zone is a default only: each rule counts days in its
    own unit's zone (``Scope.zone``)."""
    return When(ctx.clock.now(), zone_of(None))


# --- segments -------------------------------------------------------------------------------


def create_segment(
    session: Session, ctx: Context, data: SegmentIn, on_progress: Progress | None = None
) -> Segment:
    ctx.require(MANAGE)
    live.lock_feed(session)
    scope = _scope(session, ctx, data.bu)
    rule = language.parse_rule(data.rule)
    taken = select(SegmentRow.id).where(
        SegmentRow.bu_id == scope.unit, SegmentRow.code == data.code
    )
    if session.scalar(taken) is not None:
        raise Conflict(f"a segment {data.code!r} already exists here", code=data.code)
    bind(session, rule, scope)
    now = ctx.clock.now()
    row = SegmentRow(
        id=new_id(now),
        bu_id=scope.unit,
        code=data.code,
        name=data.name,
        description=data.description,
        owner=data.owner or str(ctx.user_id),
        rule=data.rule,
        is_live=data.is_live,
        size=0,
        version=1,
        evaluated_at=None,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    _evaluate_with_users(session, row, when_of(ctx), on_progress)
    log.info("segment.created", extra={"segment_id": row.id, "bu_id": row.bu_id})
    audit.record(session, ctx, "segment.created", "segment", row.id, detail={"size": row.size})
    return Segment.model_validate(row)


def get_segment(session: Session, ctx: Context, segment_id: str) -> Segment:
    ctx.require(READ)
    return Segment.model_validate(_row(session, ctx, segment_id))


def get_segment_by_code(
    session: Session, ctx: Context, code: str, bu: str | None = None
) -> Segment:
    """The segment ``code`` of the unit ``bu`` (default: the caller's own, or the group)."""
    ctx.require(READ)
    unit = governance.unit_id(session, ctx, bu)
    query = select(SegmentRow).where(SegmentRow.bu_id == unit, SegmentRow.code == code)
    row = session.scalar(in_tenancy(query, SegmentRow.bu_id, ctx))
    if row is None:
        raise NotFound(f"no segment {code!r}", code=code)
    return Segment.model_validate(row)


def list_segments(session: Session, ctx: Context, bu: str | None = None) -> list[Segment]:
    """The caller's segments by code (group-wide callers: every unit's, or ``bu``'s)."""
    ctx.require(READ)
    query = select(SegmentRow).order_by(SegmentRow.code, SegmentRow.bu_id)
    if bu is not None:
        query = query.where(SegmentRow.bu_id == governance.unit_id(session, ctx, bu))
    query = in_tenancy(query, SegmentRow.bu_id, ctx)
    return [Segment.model_validate(r) for r in session.scalars(query)]


def update_segment(
    session: Session,
    ctx: Context,
    segment_id: str,
    data: SegmentUpdate,
    on_progress: Progress | None = None,
) -> Segment:
    """A new version, evaluated at once (cause ``rule``), with the segments that use it."""
    ctx.require(MANAGE)
    live.lock_feed(session)
    row = _row(session, ctx, segment_id)
    bind(session, language.parse_rule(data.rule), _scope_of(session, row))
    row.name, row.description, row.rule = data.name, data.description, data.rule
    row.owner = data.owner or row.owner
    row.is_live = data.is_live
    row.version += 1
    row.updated_at = ctx.clock.now()
    session.flush()
    _evaluate_with_users(session, row, when_of(ctx), on_progress)
    log.info("segment.updated", extra={"segment_id": row.id, "version": row.version})
    detail: dict[str, audit.DetailValue] = {"version": row.version, "size": row.size}
    audit.record(session, ctx, "segment.updated", "segment", row.id, detail=detail)
    return Segment.model_validate(row)


def delete_segment(session: Session, ctx: Context, segment_id: str) -> None:
    """Refused while another segment or a rule tag uses it. Its history stays (the feed is
    append-only); its members go without exits being recorded."""
    ctx.require(MANAGE)
    live.lock_feed(session)
    row = _row(session, ctx, segment_id)
    require_unused(session, f"segment {row.code!r}", lambda b: row.id in b.segments)
    session.execute(delete(MemberRow).where(MemberRow.segment_id == row.id))
    session.delete(row)
    session.flush()
    log.info("segment.deleted", extra={"segment_id": row.id})
    audit.record(session, ctx, "segment.deleted", "segment", row.id)


def evaluate(
    session: Session,
    ctx: Context,
    segment_id: str,
    cause: str = "full",
    on_progress: Progress | None = None,
) -> Evaluation:
    """A full re-evaluation: the rule over every candidate, diffed with the stored members;
    entries and exits are recorded with ``cause``. Safe to re-run: a second run changes
    nothing unless the profiles did."""
    ctx.require(MANAGE)
    if cause not in live.CAUSES:
        raise invalid(("cause",), f"{cause!r} is not a cause; use one of {', '.join(live.CAUSES)}")
    live.lock_feed(session)
    row = _row(session, ctx, segment_id)
    when = when_of(ctx)
    bound = bind(session, language.parse_rule(row.rule), _scope_of(session, row))
    if on_progress is not None:
        on_progress(0, 1)
    applied = live.evaluate_bound(session, row, bound, when, cause)
    if on_progress is not None:
        on_progress(1, 1)
    assert row.evaluated_at is not None
    return Evaluation(
        segment_id=row.id,
        entered=applied.entered,
        exited=applied.exited,
        size=row.size,
        evaluated_at=row.evaluated_at,
    )


# --- counting before saving -----------------------------------------------------------------


def estimate(
    session: Session, ctx: Context, rule: dict[str, Any], *, bu: str | None = None
) -> Estimate:
    """How many profiles ``rule`` holds for, fast enough to answer while a rule is edited:
    exact over few candidates, else counted on a random sample of about ``SAMPLE_SIZE``
    and scaled (the answer says so)."""
    ctx.require(READ)
    bound = bind(session, language.parse_rule(rule), _scope(session, ctx, bu))
    return _estimate(session, bound, when_of(ctx))[0]


def preview(
    session: Session,
    ctx: Context,
    rule: dict[str, Any],
    *,
    bu: str | None = None,
    exact: bool = False,
) -> Preview:
    """The estimate, a few profiles the rule holds for, and the exact count when it is cheap
    (few candidates) or asked for (``exact``: a full evaluation, without saving anything)."""
    ctx.require(READ)
    bound = bind(session, language.parse_rule(rule), _scope(session, ctx, bu))
    when = when_of(ctx)
    found, examples = _estimate(session, bound, when)
    exact_count: int | None = None
    if not found.is_estimate:
        exact_count = found.count
    elif exact:
        exact_count = _count(session, matching(bound, when))
    return Preview(**found.model_dump(), exact_count=exact_count, sample_ids=examples)


@dataclass(frozen=True)
class _Drawn:
    """Candidates drawn at random, each with whether the rule holds for it; ``scale`` turns
    a number of drawn candidates into a number of all candidates."""

    rows: list[tuple[str, bool]]
    scale: float


def _estimate(session: Session, bound: Bound, when: When) -> tuple[Estimate, list[str]]:
    """The estimate, and up to ``SAMPLE_IDS`` profiles the rule holds for. Each drawn
    candidate is probed through its own rows only, so the work is bounded by the sample,
    however large the unit."""
    base = candidates(bound.scope)
    drawn = _draw_rows(session, bound, when) if _is_sqlite(session) else None
    total: int | None = None
    if drawn is None:
        total = _count(session, select(base.profile_id).where(*base.where))
        if total > EXACT_LIMIT:
            drawn = _draw_by_id(session, bound, when, total)
    if drawn is None:  # few candidates, or ids that cannot be sampled by their characters
        return _exact(session, bound, when, total)
    hits = sorted(profile_id for profile_id, holds in drawn.rows if holds)
    count = round(len(hits) * drawn.scale)
    total = round(len(drawn.rows) * drawn.scale)
    sampled = len(drawn.rows)
    label = f"≈ {count:,} (estimated from a sample of {sampled:,} of ≈ {total:,} profiles)"
    return Estimate(
        count=count, is_estimate=True, candidates=total, sampled=sampled, label=label
    ), hits[:SAMPLE_IDS]


def _exact(
    session: Session, bound: Bound, when: When, total: int | None
) -> tuple[Estimate, list[str]]:
    base = candidates(bound.scope)
    if total is None:
        total = _count(session, select(base.profile_id).where(*base.where))
    probe = total <= EXACT_LIMIT  # few: probe each; many: one set-based evaluation
    found = matching(bound, when, probe=probe)
    count = _count(session, found)
    examples = list(session.scalars(found.order_by(found.selected_columns[0]).limit(SAMPLE_IDS)))
    estimate = Estimate(
        count=count, is_estimate=False, candidates=total, sampled=total, label=f"{count:,} (exact)"
    )
    return estimate, examples


def _draw_rows(session: Session, bound: Bound, when: When) -> _Drawn | None:
    """SQLite: the candidates at random row numbers (``rowid``), found by seeks rather than
    a scan of a million index entries. None when the table is small enough to count, or the
    unit's rows are too sparse in it to draw enough."""
    base = candidates(bound.scope, by_row=True)
    rowid = literal_column("rowid")  # SQLite's row number of the one table in FROM
    low, high = session.execute(
        select(func.min(rowid), func.max(rowid)).select_from(base.table)
    ).one()
    if low is None or high - low + 1 <= EXACT_LIMIT:
        return None
    span = high - low + 1
    picks = sorted(random.sample(range(low, high + 1), min(span, SAMPLE_SIZE)))
    holds = condition(bound, base.profile_id, when, probe=True)
    rows: list[tuple[str, bool]] = []
    for part in in_chunks(picks):
        query = (
            select(base.profile_id, holds)
            .select_from(base.table)
            .where(*base.where, rowid.in_(list(part)))
        )
        rows += [(profile_id, bool(held)) for profile_id, held in session.execute(query)]
    return _Drawn(rows, span / len(picks)) if len(rows) >= MIN_SAMPLE else None


def _draw_by_id(session: Session, bound: Bound, when: When, total: int) -> _Drawn | None:
    """The candidates whose ids end in randomly chosen characters: a ULID's last characters
    are random, so this is a uniform sample, read from the index. None when too few come
    out (ids that are not ULIDs)."""
    base = candidates(bound.scope)
    share = min(len(BUCKETS), math.ceil(len(BUCKETS) * SAMPLE_SIZE / total))
    buckets = random.sample(BUCKETS, share)  # a statistical sample, not a secret
    holds = condition(bound, base.profile_id, when, probe=True)
    query = (
        select(base.profile_id, holds)
        .select_from(base.table)
        .where(*base.where, func.substr(base.profile_id, 25, 2).in_(buckets))
    )
    rows = [(profile_id, bool(held)) for profile_id, held in session.execute(query)]
    return _Drawn(rows, total / len(rows)) if len(rows) >= MIN_SAMPLE else None


def _is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def _count(session: Session, query: Any) -> int:  # Any: a one-column select
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


# --- members and history --------------------------------------------------------------------


def list_members(
    session: Session,
    ctx: Context,
    segment_id: str,
    *,
    cursor: str | None = None,
    limit: int = 100,
    fields: Sequence[str] = (),
) -> MemberPage:
    """Members by profile id; ``cursor`` is the previous page's ``next_cursor``. ``fields``
    adds golden-record fields (``phone``, ``name`` …) to each member, masked as the data
    dictionary classifies them for a caller without ``pii:read``; with it, the read is
    audited (which fields, how many members)."""
    ctx.require(READ)
    row = _row(session, ctx, segment_id)
    wanted = _fields(fields)
    query = (
        select(MemberRow)
        .where(MemberRow.segment_id == row.id)
        .order_by(MemberRow.profile_id)
        .limit(limit + 1)
    )
    if cursor:
        query = query.where(MemberRow.profile_id > cursor)
    found = list(session.scalars(query))
    page = _members(session, ctx, row, found[:limit], wanted)
    more = len(found) > limit
    return MemberPage(
        segment_id=row.id, members=page, next_cursor=page[-1].profile_id if more else None
    )


MEMBER_SORTS: dict[str, Column] = {"profile_id": MemberRow.profile_id}


def page_members(
    session: Session,
    ctx: Context,
    segment_id: str,
    page: PageRequest,
    *,
    fields: Sequence[str] = (),
) -> Page[SegmentMember]:
    """``list_members`` in the API's common page and cursor format (issue 8). By profile id
    only: the member table is keyed by (segment, profile), so a page of a segment of
    millions is one index range, where an order by entry time would sort them all."""
    ctx.require(READ)
    row = _row(session, ctx, segment_id)
    wanted = _fields(fields)
    query = select(MemberRow).where(MemberRow.segment_id == row.id)
    return keyset_page(
        session,
        query,
        page,
        MEMBER_SORTS,
        MemberRow.profile_id,
        lambda rows: _members(session, ctx, row, rows, wanted),
    )


def _members(
    session: Session,
    ctx: Context,
    segment: SegmentRow,
    rows: Sequence[MemberRow],
    wanted: Sequence[str],
) -> list[SegmentMember]:
    """The members of ``rows`` with the golden-record fields ``wanted``, masked for a caller
    without ``pii:read``; a read of fields is audited."""
    page = [SegmentMember.model_validate(m) for m in rows]
    if wanted:
        view = pii.view(session, ctx)
        values = _golden(session, wanted, [m.profile_id for m in page])
        for member in page:
            member.fields = {
                name: view.trait(name, values[name].get(member.profile_id)) for name in wanted
            }
        view.audit(session, "segment", segment.id, rows=len(page), bu_id=segment.bu_id)
    return page


def export_csv(
    session: Session, ctx: Context, segment_id: str, fields: Sequence[str] = ()
) -> Iterator[str]:
    """CSV text (``profile_id,entered_at`` and the golden-record ``fields`` asked for, masked
    as in ``list_members``) in chunks, for streaming. Checked and audited now (the entries
    commit with the caller's transaction), read as the caller iterates; a cell that a
    spreadsheet would run as a formula is neutralised."""
    ctx.require(EXPORT)
    row = _row(session, ctx, segment_id)
    wanted = _fields(fields)
    rows = session.scalar(
        select(func.count()).select_from(MemberRow).where(MemberRow.segment_id == row.id)
    )
    view = pii.view(session, ctx)
    view.will_show_traits(wanted)
    log.info("segment.exported", extra={"segment_id": row.id, "user_id": ctx.user_id})
    detail: dict[str, audit.DetailValue] = {"rows": rows or 0}
    if wanted:
        detail["fields"] = list(wanted)
    audit.record(session, ctx, "segment.exported", "segment", row.id, detail=detail)
    view.audit(session, "segment", row.id, rows=rows or 0, bu_id=row.bu_id)
    return _csv_chunks(session, row.id, wanted, view)


def _fields(fields: Sequence[str]) -> tuple[str, ...]:
    """The golden-record fields asked for, checked: names, not expressions."""
    wanted = tuple(dict.fromkeys(f.strip() for f in fields if f.strip()))
    if len(wanted) > MAX_FIELDS:
        raise ValidationFailed(
            "too many fields", [FieldError(("fields",), f"at most {MAX_FIELDS} fields")]
        )
    for i, name in enumerate(wanted):
        if not FIELD_NAME.fullmatch(name):
            raise ValidationFailed(
                "not a golden-record field",
                [FieldError(("fields", i), f"{name!r} is not a field name such as phone or name")],
            )
    return wanted


def _golden(
    session: Session, fields: Sequence[str], profile_ids: Sequence[str]
) -> dict[str, dict[str, object]]:
    """field → profile id → the golden-record value (as the profiles domain keeps it)."""
    return {name: traits.values_of(session, f"{GOLDEN}{name}", profile_ids) for name in fields}


def _csv_chunks(
    session: Session, segment_id: str, fields: Sequence[str], view: pii.PiiView
) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["profile_id", "entered_at", *fields])
    rows = session.execute(
        select(MemberRow.profile_id, MemberRow.entered_at)
        .where(MemberRow.segment_id == segment_id)
        .order_by(MemberRow.profile_id)
        .execution_options(yield_per=CSV_BATCH)
    )
    for batch in rows.partitions():
        values = _golden(session, fields, [p for p, _ in batch]) if fields else {}
        for profile_id, entered_at in batch:
            shown = (view.trait(name, values[name].get(profile_id)) for name in fields)
            writer.writerow(
                [
                    safe_cell(profile_id),
                    entered_at.isoformat(),
                    *(safe_cell("" if v is None else str(v)) for v in shown),
                ]
            )
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    yield out.getvalue()


def safe_cell(value: str) -> str:
    """A value a spreadsheet would read as a formula, prefixed with a quote (OWASP CSV
    injection): every profile value is hostile input."""
    return f"'{value}" if value.startswith(CSV_FORMULA) else value


def history(
    session: Session,
    ctx: Context,
    segment_id: str,
    *,
    after: int = 0,
    limit: int = 100,
    profile_id: str | None = None,
) -> list[SegmentChange]:
    """The segment's entries and exits in order, after the sequence number ``after``."""
    ctx.require(READ)
    row = _row(session, ctx, segment_id)
    query = (
        select(ChangeRow)
        .where(ChangeRow.segment_id == row.id, ChangeRow.seq > after)
        .order_by(ChangeRow.seq)
        .limit(limit)
    )
    if profile_id is not None:
        query = query.where(ChangeRow.profile_id == profile_id)
    return [SegmentChange.model_validate(c) for c in session.scalars(query)]


CHANGE_SORTS: dict[str, Column] = {"seq": ChangeRow.seq, "at": ChangeRow.at}


def page_history(
    session: Session,
    ctx: Context,
    segment_id: str,
    page: PageRequest,
    *,
    after: int = 0,
    profile_id: str | None = None,
) -> Page[SegmentChange]:
    """``history`` a keyset page at a time (issue 8). ``after`` stays a filter: a client that
    polls for changes since the last ``seq`` it saw keeps doing so."""
    ctx.require(READ)
    row = _row(session, ctx, segment_id)
    query = select(ChangeRow).where(ChangeRow.segment_id == row.id, ChangeRow.seq > after)
    if profile_id is not None:
        query = query.where(ChangeRow.profile_id == profile_id)
    return keyset_page(
        session,
        query,
        page,
        CHANGE_SORTS,
        ChangeRow.seq,
        lambda rows: [SegmentChange.model_validate(c) for c in rows],
    )


@dataclass(frozen=True)
class DayCount:
    """Entries and exits of one calendar day (in the segment's unit's zone)."""

    day: date
    entered: int
    exited: int


def daily_changes(
    session: Session, ctx: Context, segment_id: str, *, days: int = 30
) -> list[DayCount]:
    """Entries and exits per local day over the last ``days`` days (today included), oldest
    first: the trend a marketer reads, in one grouped statement over the ``(segment_id, at)``
    index however long the history. The day bounds are computed here and bound, so both
    databases count the same days."""
    ctx.require(READ)
    row = _row(session, ctx, segment_id)
    zone = governance.zone_of_unit(session, row.bu_id)
    first = ctx.clock.now().astimezone(zone).date() - timedelta(days=days - 1)
    edges = [local_midnight(first + timedelta(days=i), zone) for i in range(days + 1)]
    bucket = case(*((ChangeRow.at < edges[i + 1], i) for i in range(days)), else_=days)
    inner = (
        select(bucket.label("day"), ChangeRow.kind.label("kind"))
        .where(ChangeRow.segment_id == row.id, ChangeRow.at >= edges[0], ChangeRow.at < edges[-1])
        .subquery()
    )
    counts: dict[tuple[int, str], int] = {
        (day, kind): n
        for day, kind, n in session.execute(
            select(inner.c.day, inner.c.kind, func.count()).group_by(inner.c.day, inner.c.kind)
        )
    }
    return [
        DayCount(first + timedelta(days=i), counts.get((i, "enter"), 0), counts.get((i, "exit"), 0))
        for i in range(days)
    ]


@dataclass(frozen=True)
class Change:
    seq: int
    segment_id: str
    profile_id: str
    kind: str
    cause: str
    at: datetime


def changes_after(session: Session, seq: int, limit: int) -> list[Change]:
    """Every segment's entries and exits after ``seq``, in order: the feed journeys follow.
    Its writers hold ``live.lock_feed``, so ``seq`` order is commit order."""
    rows = session.execute(
        select(
            ChangeRow.seq,
            ChangeRow.segment_id,
            ChangeRow.profile_id,
            ChangeRow.kind,
            ChangeRow.cause,
            ChangeRow.at,
        )
        .where(ChangeRow.seq > seq)
        .order_by(ChangeRow.seq)
        .limit(limit)
    )
    return [Change(*r) for r in rows]


def memberships_of(session: Session, ctx: Context, profile_id: str) -> list[Membership]:
    """The segments (visible to the caller) a profile is in now; none for a caller who may
    not read segments, so that the profile's 360 view still answers."""
    return memberships_of_many(session, ctx, [profile_id])[profile_id]


def memberships_of_many(
    session: Session, ctx: Context, profile_ids: Sequence[str]
) -> dict[str, list[Membership]]:
    """``memberships_of`` for many profiles, one statement per 400 of them (list views).
    The caller has checked that it may see the profiles."""
    found: dict[str, list[Membership]] = {p: [] for p in profile_ids}
    if not ctx.can(READ):
        return found
    for part in in_chunks(sorted(found)):
        query = (
            select(SegmentRow, MemberRow.profile_id, MemberRow.entered_at)
            .join(MemberRow, MemberRow.segment_id == SegmentRow.id)
            .where(MemberRow.profile_id.in_(list(part)))
            .order_by(SegmentRow.code)
        )
        for s, member, entered_at in session.execute(in_tenancy(query, SegmentRow.bu_id, ctx)):
            found[member].append(
                Membership(
                    segment_id=s.id, code=s.code, name=s.name, bu_id=s.bu_id, entered_at=entered_at
                )
            )
    return found


# --- helpers --------------------------------------------------------------------------------


def _row(session: Session, ctx: Context, segment_id: str) -> SegmentRow:
    query = in_tenancy(select(SegmentRow).where(SegmentRow.id == segment_id), SegmentRow.bu_id, ctx)
    row = session.scalar(query)
    if row is None:
        raise NotFound(f"no segment {segment_id!r}", segment_id=segment_id)
    return row


def _scope(session: Session, ctx: Context, bu: str | None) -> Scope:
    return scope_in(session, governance.unit_id(session, ctx, bu), governance.group_id(session))


def _scope_of(session: Session, row: SegmentRow) -> Scope:
    return scope_in(session, row.bu_id, governance.group_id(session))


def require_unused(session: Session, what: str, uses: Callable[[Bound], bool]) -> None:
    """Refuse (409) to delete or rename ``what`` while a segment or a rule tag names it: the
    rule would stop binding, and its segment would silently stop following its people."""
    resolver = Resolver(session)
    users = [f"segment {s.code}" for s, b in _all_bound(session, resolver) if uses(b)]
    users += [f"tag {t.code}" for t, b in _rule_tags(session, resolver) if uses(b)]
    if users:
        raise Conflict(f"{what} is used by {', '.join(sorted(users))}; change those first")


def _all_bound(session: Session, resolver: Resolver) -> list[tuple[SegmentRow, Bound]]:
    """Every segment with its rule bound (a rule that no longer binds is left out)."""
    group = governance.group_id(session)
    out = []
    for row in session.scalars(select(SegmentRow).order_by(SegmentRow.id)):
        bound = live.bind_or_log(resolver, row.rule, row.bu_id, group, row.id)
        if bound is not None:
            out.append((row, bound))
    return out


def _rule_tags(session: Session, resolver: Resolver) -> list[tuple[TagRow, Bound]]:
    group = governance.group_id(session)
    out = []
    for tag in session.scalars(select(TagRow).where(TagRow.kind == "rule")):
        bound = live.bind_or_log(resolver, tag.rule, tag.bu_id, group, tag.id) if tag.rule else None
        if bound is not None:
            out.append((tag, bound))
    return out


def _evaluate_with_users(
    session: Session, row: SegmentRow, when: When, on_progress: Progress | None
) -> None:
    """Refuse a circle of segments, then evaluate ``row`` and every segment that uses it
    (directly or not), each after what it uses, with cause ``rule``."""
    resolver = Resolver(session)  # fresh: ``row`` as it is now
    every = _all_bound(session, resolver)
    uses = {s.id: b.segments for s, b in every}
    bound = bind(resolver, language.parse_rule(row.rule), _scope_of(session, row))
    for leaf in language.leaves(bound.rule):
        if isinstance(leaf, language.SegmentCondition):
            trail = _trail(bound.names[leaf.path], row.id, uses)
            if trail is not None:
                codes = {s.id: s.code for s, _ in every}
                circle = " → ".join(codes.get(i, i) for i in [row.id, *trail])
                raise invalid((*leaf.path, "segment"), f"segments would use each other: {circle}")
    users = {row.id}
    changed = True
    while changed:
        more = {s.id for s, b in every if b.segments & users} - users
        changed = bool(more)
        users |= more
    chosen = [(s, b) for s, b in every if s.id in users]
    order = live.ordered(chosen, key=lambda s: s[0].id, uses=lambda s: s[1].segments)
    for done, (segment, segment_bound) in enumerate(order):
        live.evaluate_bound(session, segment, segment_bound, when, "rule")
        if on_progress is not None:
            on_progress(done + 1, len(order))


def _trail(start: str, target: str, uses: dict[str, frozenset[str]]) -> list[str] | None:
    """The ids from ``start`` to ``target`` following "uses", or None."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        at, trail = stack.pop()
        if at == target:
            return trail
        if at in seen:
            continue
        seen.add(at)
        stack.extend((n, [*trail, n]) for n in sorted(uses.get(at, ())))
    return None


def codes_of(session: Session, segment_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Segment id → (unit id, code), for followers of the change feed that act on codes."""
    rows = session.execute(
        select(SegmentRow.id, SegmentRow.bu_id, SegmentRow.code).where(
            SegmentRow.id.in_(list(set(segment_ids)))
        )
    )
    return {segment: (unit, code) for segment, unit, code in rows}


def code_exists(session: Session, bu_id: str, code: str) -> bool:
    """Whether the unit (or the group, whose segments every unit uses) has segment ``code``."""
    units = [bu_id, governance.group_id(session)]
    found = session.scalar(
        select(SegmentRow.id).where(SegmentRow.bu_id.in_(units), SegmentRow.code == code)
    )
    return found is not None


# Membership moves with every event (``size``): a page order on it would skip and repeat rows.
SEGMENT_SORTS: dict[str, Column] = {
    "code": SegmentRow.code,
    "name": SegmentRow.name,
    "created_at": SegmentRow.created_at,
    "updated_at": SegmentRow.updated_at,
}


def page_segments(
    session: Session,
    ctx: Context,
    page: PageRequest,
    *,
    bu: str | None = None,
    is_live: bool | None = None,
    q: str | None = None,
) -> Page[Segment]:
    """``list_segments`` a keyset page at a time (issue 8); ``q`` matches code or name."""
    ctx.require(READ)
    query = select(SegmentRow)
    if bu is not None:
        query = query.where(SegmentRow.bu_id == governance.unit_id(session, ctx, bu))
    if is_live is not None:
        query = query.where(SegmentRow.is_live.is_(is_live))
    if q:
        query = query.where(
            SegmentRow.code.icontains(q, autoescape=True)
            | SegmentRow.name.icontains(q, autoescape=True)
        )
    query = in_tenancy(query, SegmentRow.bu_id, ctx)
    return keyset_page(
        session,
        query,
        page,
        SEGMENT_SORTS,
        SegmentRow.id,
        lambda rows: [Segment.model_validate(r) for r in rows],
    )
