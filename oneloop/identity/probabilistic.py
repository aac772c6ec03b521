"""Probabilistic matching of profiles the deterministic graph could not link.

Each profile becomes one record per source that described it (name, phone, e-mail, birth
date, city, address, company: the latest traits that source's events carried). The matcher
(``matching.py``, Splink) trains on the tenant's own records, scores the pairs its blocking
rules find, and each profile pair is decided by its strongest record pair against the
thresholds of ``match_profiles.yaml``: above
auto-merge, a ``match`` edge joins the two profiles' strongest identifiers and the graph is
partitioned again, so limits and do-not-merge pins still hold and the merge is explained and
reversible like any other; between review and auto-merge, the pair waits in the review queue
with its per-comparison weights; below, nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from oneloop.collect.consumers import Behind, lock_cursor, register
from oneloop.collect.log import LoggedEvent, Position
from oneloop.collect.models import CursorRow, EventRow
from oneloop.core.context import Context, system_context
from oneloop.core.db import in_chunks
from oneloop.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from oneloop.core.ids import new_id
from oneloop.core.paging import Column, Page, PageRequest, keyset_page
from oneloop.governance import audit
from oneloop.identity.matching import (
    Candidate,
    MatchConfig,
    TrainedModel,
    decide,
    load_config,
    predict,
    prepare,
    score_new,
    train,
)
from oneloop.identity.models import (
    EventProfileRow,
    IdentifierRow,
    MatchKeyRow,
    MatchModelRow,
    PinRow,
    ReviewRow,
)
from oneloop.identity.resolver import RESOLVER, WorkingSet
from oneloop.identity.rules import Rules
from oneloop.identity.schemas import MatchRun, PinIn, Review
from oneloop.identity.service import (
    active_rules,
    current_id,
    get_profile_id,
    pin_apart,
    touched_by,
)

CONFIG_PATH = Path(__file__).with_name("match_profiles.yaml")
MATCHER = "identity.match"
# Trait names senders use for the fields the matcher compares, first match wins.
FIELDS = {
    "name": ("name", "full_name", "fullName"),
    "phone": ("phone", "mobile"),
    "email": ("email",),
    "birth_date": ("birthday", "birth_date", "birthDate", "date_of_birth"),
    "city": ("city", "address.city"),
    "address": ("address", "address.street", "street"),
    "company": ("company", "company.name", "company_name"),
}
Progress = Callable[[int, int], None]


def profile_records(
    session: Session, profile_ids: Collection[str] | None = None
) -> list[dict[str, object]]:
    """One record per live profile and source that said anything to compare: what the CRM
    says of a person and what the web form says are compared as two records, which is also
    what lets EM learn from the pairs the graph already merged (the same phone, typed twice)."""
    records: dict[tuple[str, str], dict[str, object]] = {}
    traits = (
        select(
            EventProfileRow.profile_id,
            EventRow.source_id,
            EventRow.type,
            EventRow.traits,
            EventRow.context,
        )
        .join(EventRow, EventRow.seq == EventProfileRow.seq)
        .where(EventProfileRow.has_traits.is_(True), EventProfileRow.profile_id.is_not(None))
        .order_by(EventProfileRow.seq)
    )
    queries = (
        [traits]
        if profile_ids is None
        else [
            traits.where(EventProfileRow.profile_id.in_(part))
            for part in in_chunks(list(profile_ids))
        ]
    )
    for query in queries:
        for profile_id, source_id, kind, bag, context in session.execute(query):
            found = _fields(bag if kind == "identify" else (context or {}).get("traits"))
            if found:
                key = (profile_id, source_id)
                records.setdefault(key, {"unique_id": f"{profile_id}|{source_id}"}).update(found)
    return list(records.values())


def profile_of_record(unique_id: str) -> str:
    return unique_id.split("|", 1)[0]


def _fields(bag: object) -> dict[str, object]:
    if not isinstance(bag, dict):
        return {}
    found: dict[str, object] = {}
    for field, names in FIELDS.items():
        for name in names:
            head, _, tail = name.partition(".")
            value = bag.get(head)
            if tail and isinstance(value, dict):
                value = value.get(tail)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
                found[field] = str(value).strip()
                break
    return found


_MODELS: dict[str, TrainedModel] = {}  # model row id → parsed model; rows never change


def active_model(session: Session) -> TrainedModel | None:
    """The newest trained model; parsed once per process, since the incremental matcher
    asks on every batch."""
    row_id = session.scalar(select(MatchModelRow.id).order_by(MatchModelRow.id.desc()).limit(1))
    if row_id is None:
        return None
    if row_id not in _MODELS:
        document = session.scalar(select(MatchModelRow.document).where(MatchModelRow.id == row_id))
        _MODELS[row_id] = TrainedModel.from_json(document or "")
    return _MODELS[row_id]


def train_model(
    session: Session, ctx: Context, records: list[dict[str, object]], config: MatchConfig
) -> TrainedModel:
    ctx.require("identity.match")
    model = train(records, config, seed=1, clock=ctx.clock)
    session.add(
        MatchModelRow(
            id=new_id(ctx.clock.now()),
            version=model.version,
            document=model.to_json(),
            record_count=model.record_count,
            trained_at=model.trained_at,
            created_by=ctx.user_id,
        )
    )
    session.flush()
    return model


def run_match(
    session: Session,
    ctx: Context,
    rules: Rules,
    *,
    retrain: bool = False,
    bu_id: str | None = None,
    config: MatchConfig | None = None,
    on_progress: Progress | None = None,
) -> MatchRun:
    """Score every profile pair the blocking rules find (among the profiles that touched
    ``bu_id``, if given); merge, queue or ignore each. Training uses every profile."""
    ctx.require("identity.match")
    config = config or load_config(CONFIG_PATH)
    tick = on_progress or (lambda done, total: None)
    everyone = profile_records(session)
    records = everyone
    if bu_id is not None:
        touched = set(
            session.scalars(
                select(EventProfileRow.profile_id).where(EventProfileRow.bu_id == bu_id).distinct()
            )
        )
        records = [r for r in everyone if profile_of_record(str(r["unique_id"])) in touched]
    tick(1, 4)
    model = None if retrain else active_model(session)
    if model is None:
        model = train_model(session, ctx, everyone, config)
    tick(2, 4)
    _index(session, records, config, replace_all=bu_id is None)
    if bu_id is None:
        _caught_up(session, ctx)
    summary = apply(session, ctx, rules, config, model, predict(records, model, config))
    summary.records = len(records)
    counts: dict[str, audit.DetailValue] = {
        "records": summary.records,
        "merged": summary.merged,
        "queued": summary.queued,
    }
    audit.record(session, ctx, "identity.matched", "identity", None, detail=counts)
    tick(3, 4)
    tick(4, 4)
    session.flush()
    return summary


def apply(
    session: Session,
    ctx: Context,
    rules: Rules,
    config: MatchConfig,
    model: TrainedModel,
    candidates: list[Candidate],
) -> MatchRun:
    """Decide each profile pair by its strongest record pair: merge, queue or ignore."""
    pinned = _pinned_profiles(session)
    best: dict[frozenset[str], Candidate] = {}
    for candidate in candidates:
        ends = (candidate.left_id, candidate.right_id)
        pair = frozenset(current_id(session, profile_of_record(e)) for e in ends)
        if len(pair) < 2 or pair in pinned:
            continue  # two records of one profile, or a pair a steward keeps apart
        if pair not in best or candidate.match_weight > best[pair].match_weight:
            best[pair] = candidate
    summary = MatchRun(
        records=0, candidates=len(best), merged=0, queued=0, refused=0, model_version=model.version
    )
    lock_cursor(session, RESOLVER, ctx.clock)
    for pair, candidate in sorted(best.items(), key=lambda kv: -kv[1].match_weight):
        left, right = sorted(pair)
        verdict = decide(candidate, config)
        if verdict == "merge":
            merged = link(
                session,
                ctx,
                rules,
                left,
                right,
                kind="match",
                weight=candidate.match_weight,
                why=f"probabilistic match, weight {candidate.match_weight:.1f} "
                f"(model {model.version})",
                ref=f"model:{model.version}",
            )
            summary.merged += merged
            summary.refused += not merged
        elif verdict == "review":
            summary.queued += _queue(session, ctx, left, right, candidate, model.version)
    return summary


def _caught_up(session: Session, ctx: Context) -> None:
    """A batch run scored everything resolved so far: incremental matching goes on from the
    resolver's position, not from the start of the log."""
    resolver = lock_cursor(session, RESOLVER, ctx.clock)
    lock_cursor(session, MATCHER, ctx.clock)
    session.execute(
        update(CursorRow)
        .where(CursorRow.name == MATCHER)
        .values(tx=resolver.tx, seq=resolver.seq, updated_at=ctx.clock.now())
    )


def _index(
    session: Session, records: list[dict[str, object]], config: MatchConfig, *, replace_all: bool
) -> set[str]:
    """Store the records' blocking keys (replacing what they had); returns the keys."""
    frame = prepare(records, config)
    ids = [str(r["unique_id"]) for r in records]
    if replace_all:
        session.execute(delete(MatchKeyRow))
    else:
        for part in in_chunks(ids):
            session.execute(delete(MatchKeyRow).where(MatchKeyRow.record_id.in_(part)))
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for row in frame.to_dict("records"):
        for rule in config.blocking.predict:
            values = [row.get(feature) for feature in rule]
            if any(v is None or v != v or v == "" for v in values):  # v != v: pandas' NA
                continue
            key = ("+".join(rule) + "=" + "|".join(str(v) for v in values))[:400]
            record_id = str(row["unique_id"])
            rows[(key, record_id)] = {
                "key": key,
                "record_id": record_id,
                "profile_id": profile_of_record(record_id),
            }
    if rows:
        session.execute(insert(MatchKeyRow), list(rows.values()))
    return {key for key, _ in rows}


def link(
    session: Session,
    ctx: Context,
    rules: Rules,
    left: str,
    right: str,
    *,
    kind: str,
    weight: float | None,
    why: str,
    ref: str,
) -> bool:
    """Join two profiles through their strongest identifiers; False when the graph refused
    (a limit, a pin) or they are one profile already."""
    left, right = current_id(session, left), current_id(session, right)
    if left == right:
        return False
    work = WorkingSet(session, rules, ctx.clock.now(), actor=ctx.user_id)
    members = work.load_profiles([left, right])
    ends = []
    for profile in (left, right):
        mine = [r for r in members if r.profile_id == profile]
        if not mine:
            raise NotFound(f"no profile {profile}", profile_id=profile)
        ends.append(
            min(mine, key=lambda r: (r.shared_reason is not None, rules.priority(r.type), r.value))
        )
    edge = work.infer(ends[0], ends[1], kind=kind, weight=weight, why=why, ref=ref)
    split = work.repartition({ends[0].id, ends[1].id}, rule=None)
    session.flush()
    if split:
        work.reanchor(split)
    return edge.status == "linked"


def _pinned_profiles(session: Session) -> set[frozenset[str]]:
    pins = list(session.execute(select(PinRow.a_id, PinRow.b_id)))
    ids = sorted({i for pair in pins for i in pair})
    profile_of = {
        identifier: profile
        for part in in_chunks(ids)
        for identifier, profile in session.execute(
            select(IdentifierRow.id, IdentifierRow.profile_id).where(IdentifierRow.id.in_(part))
        )
    }
    return {
        frozenset((profile_of[a], profile_of[b]))
        for a, b in pins
        if a in profile_of and b in profile_of
    }


def _queue(
    session: Session, ctx: Context, left: str, right: str, candidate: Candidate, version: str
) -> int:
    """Queue the pair once; a pair already decided stays decided."""
    row = session.scalar(
        select(ReviewRow).where(ReviewRow.left_id == left, ReviewRow.right_id == right)
    )
    comparisons = {
        name: {"level": e.level, "match_weight": round(e.match_weight, 3)}
        for name, e in candidate.comparisons.items()
    }
    if row is not None:
        if row.status == "open":
            row.match_weight, row.comparisons, row.model_version = (
                candidate.match_weight,
                comparisons,
                version,
            )
        return 0
    session.add(
        ReviewRow(
            id=new_id(ctx.clock.now()),
            left_id=left,
            right_id=right,
            match_weight=candidate.match_weight,
            match_probability=candidate.match_probability,
            comparisons=comparisons,
            model_version=version,
            status="open",
            created_at=ctx.clock.now(),
            decided_at=None,
            decided_by=None,
            note=None,
        )
    )
    return 1


def list_reviews(
    session: Session, ctx: Context, *, status: str = "open", limit: int = 50
) -> list[Review]:
    return page_reviews(session, ctx, status=status, limit=limit).items


@dataclass(frozen=True)
class ReviewPage:
    items: list[Review]
    next_cursor: str | None


def page_reviews(
    session: Session,
    ctx: Context,
    *,
    status: str = "open",
    cursor: str | None = None,
    limit: int = 50,
) -> ReviewPage:
    """Strongest pair first. ``cursor`` is the previous page's ``next_cursor``, the id of its
    last pair: the page after goes on from that pair's weight, so deciding pairs on one page
    does not shift the next."""
    ctx.require("identity.read")
    query = (
        select(ReviewRow)
        .where(ReviewRow.status == status)
        .where(touched_by(ReviewRow.left_id, ctx), touched_by(ReviewRow.right_id, ctx))
    )
    if cursor:
        last = session.get(ReviewRow, cursor)
        if last is None:
            raise ValidationFailed(
                "bad cursor", [FieldError(("cursor",), "not a page of this review queue")]
            )
        query = query.where(
            or_(
                ReviewRow.match_weight < last.match_weight,
                and_(ReviewRow.match_weight == last.match_weight, ReviewRow.id > last.id),
            )
        )
    rows = list(
        session.scalars(
            query.order_by(ReviewRow.match_weight.desc(), ReviewRow.id).limit(limit + 1)
        )
    )
    items = [Review.model_validate(r) for r in rows[:limit]]
    return ReviewPage(items, items[-1].id if len(rows) > limit else None)


REVIEW_SORTS: dict[str, Column] = {
    "match_weight": ReviewRow.match_weight,
    "created_at": ReviewRow.created_at,
}


def page_review_queue(
    session: Session, ctx: Context, page: PageRequest, *, status: str = "open"
) -> Page[Review]:
    """``page_reviews`` in the API's common page and cursor format (issue 8), any sort: the
    cursor carries the last pair's sort key, so deciding pairs on one page does not shift
    the next."""
    ctx.require("identity.read")
    query = (
        select(ReviewRow)
        .where(ReviewRow.status == status)
        .where(touched_by(ReviewRow.left_id, ctx), touched_by(ReviewRow.right_id, ctx))
    )
    return keyset_page(
        session,
        query,
        page,
        REVIEW_SORTS,
        ReviewRow.id,
        lambda rows: [Review.model_validate(r) for r in rows],
    )


def _may_review(session: Session, ctx: Context, row: ReviewRow) -> bool:
    """A unit's stewards review a pair when both profiles touched their unit: deciding
    joins or parts them, which another unit's view would feel."""
    try:
        get_profile_id(session, ctx, row.left_id)
        get_profile_id(session, ctx, row.right_id)
    except NotFound:
        return False
    return True


def decide_review(
    session: Session, ctx: Context, rules: Rules, review_id: str, *, accept: bool, note: str | None
) -> Review:
    """Accept: the two become one profile (a ``steward`` edge, explained and reversible).
    Reject: they are pinned apart, so neither the graph nor the matcher joins them again."""
    ctx.require("identity.unmerge")
    row = session.get(ReviewRow, review_id)
    if row is None or not _may_review(session, ctx, row):
        raise NotFound(f"no review {review_id}", review_id=review_id)
    if row.status != "open":
        raise Conflict(f"review {review_id} was already {row.status}", review_id=review_id)
    lock_cursor(session, RESOLVER, ctx.clock)
    if accept:
        linked = link(
            session,
            ctx,
            rules,
            row.left_id,
            row.right_id,
            kind="steward",
            weight=row.match_weight,
            why=f"accepted by {ctx.user_id}: {note or 'review'}",
            ref=f"review:{row.id}",
        )
        if not linked:
            raise Conflict(
                "the graph refused this merge (a limit or a do-not-merge pin); see the "
                "profiles' identity",
                review_id=review_id,
            )
    else:
        pin_apart(
            session,
            ctx,
            PinIn(
                a=row.left_id,
                b=row.right_id,
                reason=f"rejected in review: {note}" if note else "rejected in review",
            ),
        )
    row.status = "accepted" if accept else "rejected"
    row.decided_at, row.decided_by, row.note = ctx.clock.now(), ctx.user_id, (note or "")[:500]
    session.flush()
    detail: dict[str, audit.DetailValue] = {"profiles": [row.left_id, row.right_id]}
    audit.record(
        session, ctx, f"identity.review_{row.status}", "identity_review", row.id, detail=detail
    )
    return Review.model_validate(row)


class MatchConsumer:
    """Incremental matching: a profile whose traits changed is scored, with the trained
    model, against the records that share a blocking key with it, as its events arrive; a
    steward does not wait for the next batch run. Does nothing until a model is trained."""

    name = MATCHER

    def __init__(self, config: MatchConfig | None = None) -> None:
        self._config = config

    @property
    def config(self) -> MatchConfig:
        if self._config is None:
            self._config = load_config(CONFIG_PATH)
        return self._config

    def handle(self, session: Session, events: Sequence[LoggedEvent]) -> None:
        model = active_model(session)
        if model is None or not events:
            return
        resolved = session.execute(
            select(CursorRow.tx, CursorRow.seq).where(CursorRow.name == RESOLVER)
        ).one_or_none()
        if resolved is None or Position(*resolved) < events[-1].position:
            raise Behind(f"{RESOLVER} has not resolved these events yet")
        seqs = [e.seq for e in events]
        touched = set(
            session.scalars(
                select(EventProfileRow.profile_id).where(
                    EventProfileRow.seq.in_(seqs),
                    EventProfileRow.has_traits.is_(True),
                    EventProfileRow.profile_id.is_not(None),
                )
            )
        )
        if not touched:
            return
        config = self.config
        fresh = profile_records(session, touched)
        if not fresh:
            return
        keys = _index(session, fresh, config, replace_all=False)
        near = {
            record_id: profile_id
            for key_part in in_chunks(sorted(keys))
            for record_id, profile_id in session.execute(
                select(MatchKeyRow.record_id, MatchKeyRow.profile_id).where(
                    MatchKeyRow.key.in_(key_part)
                )
            )
        }
        mine = {str(r["unique_id"]) for r in fresh}
        others = {pid for rid, pid in near.items() if rid not in mine}
        existing = (
            [r for r in profile_records(session, others) if str(r["unique_id"]) in near]
            if others
            else []
        )
        ctx = system_context()
        candidates = score_new(fresh, existing, model, config)
        apply(session, ctx, active_rules(session), config, model, candidates)


register(MatchConsumer())
