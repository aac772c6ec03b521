"""Identity's service functions: the rules in force, profiles and their identity, explanation,
unmerge and do-not-merge pins. The API, the CLI and other domains call these, never the tables.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, exists, func, or_, select, true
from sqlalchemy.orm import Session

from oneloop.collect.consumers import Behind, lock_cursor
from oneloop.collect.log import Position
from oneloop.collect.models import CursorRow
from oneloop.core.context import Context
from oneloop.core.db import forget, in_chunks, in_tenancy, memo
from oneloop.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from oneloop.core.ids import new_id
from oneloop.core.paging import Column, Page, PageRequest, keyset_page
from oneloop.governance import audit, pii
from oneloop.identity.golden import golden_record
from oneloop.identity.models import (
    ChangeRow,
    EdgeRow,
    EventProfileRow,
    IdentifierRow,
    MergeRow,
    PinRow,
    ProfileRow,
    RejectionRow,
    RulesetRow,
)
from oneloop.identity.resolver import RESOLVER, WorkingSet, edges_of, unit_codes
from oneloop.identity.rules import DEFAULT_RULES, Rules, default_document, parse
from oneloop.identity.schemas import (
    GoldenRecord,
    Identifier,
    IdentityExplanation,
    Link,
    Merge,
    Pin,
    PinIn,
    RebuildOut,
    Rejection,
    UnmergeIn,
    UnmergeOut,
)

REBUILD_CHUNK = 500  # profiles re-partitioned per transaction
_PARSED: dict[str, Rules] = {}  # ruleset row id → parsed rules; rows never change


RULES = "identity.rules"  # memo key: the rules in force, read once per transaction


def active_rules(session: Session) -> Rules:
    """The newest stored rules, or the defaults shipped with OneLoop; read once per
    transaction."""

    def read() -> Rules:
        row = session.execute(
            select(RulesetRow.id, RulesetRow.document).order_by(RulesetRow.id.desc()).limit(1)
        ).first()
        if row is None:
            return DEFAULT_RULES
        if row.id not in _PARSED:
            _PARSED[row.id] = parse(row.document)
        return _PARSED[row.id]

    return memo(session, RULES, read)


def set_rules(session: Session, ctx: Context, document: dict[str, object]) -> Rules:
    """Store a new version of the rules; they apply to events resolved from now on (run
    ``oneloop identity rebuild`` to apply them to the past)."""
    ctx.require("identity.rules.write")
    rules = parse(document)
    row = RulesetRow(
        id=new_id(ctx.clock.now()),
        version=rules.version,
        document=document,
        created_at=ctx.clock.now(),
        created_by=ctx.user_id,
    )
    session.add(row)
    session.flush()
    forget(session, RULES)
    detail: dict[str, audit.DetailValue] = {"version": rules.version}
    audit.record(session, ctx, "identity.rules_set", "identity_ruleset", row.id, detail=detail)
    return rules


# --- profiles and their identity ------------------------------------------------------------


def current_id(session: Session, profile_id: str) -> str:
    """Follow merges: an absorbed profile's id leads to the profile that holds it now."""
    seen: set[str] = set()
    while True:
        row = session.get(ProfileRow, profile_id)
        if row is None:
            raise NotFound(f"no profile {profile_id}", profile_id=profile_id)
        if row.merged_into is None or row.merged_into in seen:
            return row.id
        seen.add(row.id)
        profile_id = row.merged_into


def get_profile_id(session: Session, ctx: Context, profile_id: str) -> str:
    """The profile's current id, if ``ctx`` may see it: group roles see every profile, a
    business unit's users those that touched their unit."""
    ctx.require("identity.read")
    current = current_id(session, profile_id)
    if not ctx.is_group_wide:
        touched = session.scalar(
            select(EventProfileRow.seq)
            .where(EventProfileRow.profile_id == current, EventProfileRow.bu_id == ctx.bu_id)
            .limit(1)
        )
        if touched is None:
            raise NotFound(f"no profile {profile_id}", profile_id=profile_id)
    return current


def touched_by(profile_column: ColumnElement[str], ctx: Context) -> ColumnElement[bool]:
    """True where the profile in ``profile_column`` touched the caller's unit (always, for
    group roles): put into a query, so a list shows a unit only what it may see."""
    if ctx.is_group_wide:
        return true()
    return exists().where(
        EventProfileRow.profile_id == profile_column, EventProfileRow.bu_id == ctx.bu_id
    )


@dataclass(frozen=True)
class Activity:
    """What identity resolution did since a moment: OneIDs made (still live) and merges."""

    created: int
    merges: int


def activity_since(session: Session, ctx: Context, since: datetime) -> Activity:
    """For the console's dashboard ("today"), over the profiles the caller may see. A profile
    made and then merged away is not counted as made: it was not a new person."""
    ctx.require("identity.read")
    created = select(func.count()).where(
        ProfileRow.created_at >= since,
        ProfileRow.merged_into.is_(None),
        touched_by(ProfileRow.id, ctx),
    )
    merges = select(func.count()).where(
        MergeRow.kind == "merge",
        MergeRow.created_at >= since,
        MergeRow.undone_at.is_(None),
        touched_by(MergeRow.survivor_id, ctx),
    )
    return Activity(created=session.scalar(created) or 0, merges=session.scalar(merges) or 0)


def find_profile(session: Session, ctx: Context, kind: str, raw: str) -> str | None:
    """The profile an identifier belongs to, as the resolver would read the value, if
    ``ctx`` may see it in the identity graph."""
    profile_id = holder_of(session, kind, raw)
    if profile_id is None:
        return None
    try:
        return get_profile_id(session, ctx, profile_id)
    except NotFound:
        return None


def holder_of(session: Session, kind: str, raw: str) -> str | None:
    """The current profile holding an identifier, read as the resolver reads it, or None;
    no visibility check: the caller's domain applies its own (``profiles.find_id``)."""
    kind, value = identifier_key(session, active_rules(session), kind, raw)
    profile_id = session.scalar(
        select(IdentifierRow.profile_id).where(
            IdentifierRow.type == kind, IdentifierRow.value == value
        )
    )
    return None if profile_id is None else current_id(session, profile_id)


def identifier_key(session: Session, rules: Rules, kind: str, raw: str) -> tuple[str, str]:
    """``(type, value)`` as stored, or ``ValidationFailed`` naming the field. A type scoped
    per business unit is written ``CODE:value`` (``appliances:79723943``)."""
    kind = rules.type_of(kind)
    rule = rules.types.get(kind)
    if rule is None:
        raise ValidationFailed(
            "unknown identifier type",
            [FieldError(("type",), f"{kind!r} is not one of {', '.join(sorted(rules.types))}")],
        )
    code = None
    if rule.scope == "business_unit":
        code, sep, raw = raw.partition(":")
        if not sep or code not in set(unit_codes(session).values()):
            example = f"CODE:{kind}, e.g. appliances:79723943"
            raise ValidationFailed(
                "the identifier needs its business unit",
                [FieldError(("value",), f"{kind} is kept per business unit: write {example}")],
            )
    found = rules.read(kind, raw, unit=code)
    if not found.ok or found.value is None:
        raise ValidationFailed(
            "the identifier is not valid",
            [FieldError(("value",), f"{found.reason}: {found.detail or raw}")],
        )
    return kind, found.value


def explain(
    session: Session, ctx: Context, profile_id: str, *, view: pii.PiiView | None = None
) -> IdentityExplanation:
    """The graph behind a profile and every change that shaped it, its identifiers masked
    for a caller without ``pii:read``. Given the caller's ``view``, the caller audits the
    read (once, for all it shows); without one, this call does."""
    own = view is None
    view = view or pii.view(session, ctx)
    found = _explain(session, ctx, profile_id)
    shown = found.model_copy(
        update={
            "identifiers": [
                i.model_copy(update={"value": view.identifier(i.type, i.value)})
                for i in found.identifiers
            ],
            "history": [
                m.model_copy(update={"rule": _masked_rule(view, m.rule)}) for m in found.history
            ],
        }
    )
    if own:
        view.audit(session, "profile", found.profile_id)
    return shown


# A split's rule names the identifier that became shared (resolver.py): "phone +86… is shared: …"
_SHARED_RULE = re.compile(r"\A(?P<type>\S+) (?P<value>.+?) is shared: (?P<why>.*)\Z", re.DOTALL)


def _masked_rule(view: pii.PiiView, rule: str) -> str:
    found = _SHARED_RULE.match(rule)
    if found is None:
        return rule
    value = view.identifier(found["type"], found["value"])
    return f"{found['type']} {value} is shared: {found['why']}"


def _explain(session: Session, ctx: Context, profile_id: str) -> IdentityExplanation:
    current = get_profile_id(session, ctx, profile_id)
    absorbed = _absorbed(session, current)
    identifiers = _identifier_rows(session, [current])
    ids = {row.id for row in identifiers}
    edges = sorted(
        {e.id: e for e in edges_of(session, list(ids))}.values(), key=lambda e: (e.first_at, e.id)
    )
    others = {e.a_id for e in edges} | {e.b_id for e in edges}
    outside = dict(
        session.execute(
            select(IdentifierRow.id, IdentifierRow.profile_id).where(
                IdentifierRow.id.in_(list(others - ids))
            )
        ).all()
    )
    everyone = [current, *absorbed]
    history = session.scalars(
        select(MergeRow)
        .where(or_(MergeRow.survivor_id.in_(everyone), MergeRow.absorbed_id.in_(everyone)))
        .order_by(MergeRow.created_at, MergeRow.id)
    )
    pins = session.scalars(
        select(PinRow).where(or_(PinRow.a_id.in_(list(ids)), PinRow.b_id.in_(list(ids))))
    )
    return IdentityExplanation(
        profile_id=current,
        requested_id=profile_id,
        absorbed_ids=absorbed,
        identifiers=[Identifier.model_validate(r) for r in identifiers],
        links=[_link(e, outside.get(e.a_id) or outside.get(e.b_id)) for e in edges],
        history=[Merge.model_validate(m) for m in history],
        pins=[Pin.model_validate(p) for p in pins],
    )


def identifiers_of(
    session: Session, ctx: Context, profile_ids: Sequence[str], *, view: pii.PiiView
) -> dict[str, list[Identifier]]:
    """The identifiers of those of these profiles (current ids: merges are not followed)
    that ``ctx`` may see (as ``get_profile_id``), masked through the caller's ``view``, which
    the caller audits: ``explain``'s identifiers for many profiles at once, in a number of
    statements that does not grow with them (list views). An id left out is not visible."""
    ctx.require("identity.read")
    wanted = sorted(set(profile_ids))
    visible: set[str] = set()
    for part in in_chunks(wanted):
        query = select(ProfileRow.id).where(
            ProfileRow.id.in_(list(part)),
            ProfileRow.merged_into.is_(None),
            touched_by(ProfileRow.id, ctx),
        )
        visible.update(session.scalars(query))
    found: dict[str, list[Identifier]] = {p: [] for p in wanted if p in visible}
    for row in _identifier_rows(session, sorted(visible)):
        shown = Identifier.model_validate(row)
        found[row.profile_id].append(
            shown.model_copy(update={"value": view.identifier(row.type, row.value)})
        )
    return found


def _identifier_rows(session: Session, profile_ids: Sequence[str]) -> list[IdentifierRow]:
    """Oldest first, per profile."""
    rows: list[IdentifierRow] = []
    for part in in_chunks(list(profile_ids)):
        rows += session.scalars(
            select(IdentifierRow)
            .where(IdentifierRow.profile_id.in_(list(part)))
            .order_by(IdentifierRow.first_seen_at, IdentifierRow.id)
        )
    return rows


def _absorbed(session: Session, profile_id: str) -> list[str]:
    found: list[str] = []
    frontier = [profile_id]
    while frontier:
        rows = list(
            session.scalars(select(ProfileRow.id).where(ProfileRow.merged_into.in_(frontier)))
        )
        rows = [r for r in rows if r not in found and r != profile_id]
        found.extend(rows)
        frontier = rows
    return found


# --- unmerge and pins -----------------------------------------------------------------------


def unmerge(session: Session, ctx: Context, profile_id: str, data: UnmergeIn) -> UnmergeOut:
    """Split a profile along one merge of its history or one identifier.

    Every link between the part that leaves and the rest is cut (kept, marked, never used
    again), a do-not-merge pin keeps the two apart from later evidence and the matcher, and
    the neighbourhood is partitioned again: events follow their identifiers, the part that
    leaves gets its old profile id back, and the change feed tells traits and segments."""
    ctx.require("identity.unmerge")
    current = get_profile_id(session, ctx, profile_id)
    lock_cursor(session, RESOLVER, ctx.clock)
    rules = active_rules(session)
    work = WorkingSet(session, rules, ctx.clock.now(), actor=ctx.user_id)
    members = {row.id: row for row in work.load_profiles([current])}
    merge: MergeRow | None = None
    if data.merge_id is not None:
        merge = session.get(MergeRow, data.merge_id)
        if merge is None or merge.kind != "merge":
            raise NotFound(f"no merge {data.merge_id}", merge_id=data.merge_id)
        if merge.undone_at is not None:
            raise Conflict(f"merge {merge.id} was already undone", merge_id=merge.id)
        leaving = set(merge.identifiers) & set(members)
    else:
        assert data.identifier is not None
        kind, value = identifier_key(session, rules, data.identifier.type, data.identifier.value)
        leaving = {i for i, row in members.items() if row.type == kind and row.value == value}
    if not leaving or leaving == set(members):
        raise Conflict(
            "nothing to split: the identifiers to detach are not part of this profile, or are "
            "all of it",
            profile_id=current,
        )
    staying = set(members) - leaving
    work.load_edges_of(members)
    why = f"unmerged by {ctx.user_id}: {data.reason}"
    cut = 0
    for edge in list(work.edges.values()):
        if edge.status != "cut" and (
            (edge.a_id in leaving and edge.b_id in staying)
            or (edge.b_id in leaving and edge.a_id in staying)
        ):
            work.cut(edge, why)
            cut += 1
    strongest = min(leaving, key=lambda i: (rules.priority(members[i].type), members[i].value))
    anchor = min(staying, key=lambda i: (rules.priority(members[i].type), members[i].value))
    _add_pin(session, ctx, strongest, anchor, data.reason)
    # The part that stays keeps the id; undoing a merge gives the absorbed profile its id back.
    revive = {i: current for i in staying}
    if merge is not None:
        revive |= {i: merge.absorbed_id for i in leaving}
    split = work.repartition(set(members), revive=revive, rule=why)
    session.flush()
    work.reanchor(split | {current})
    if merge is not None:
        merge.undone_at = ctx.clock.now()
        merge.undone_by = ctx.user_id
        merge.undo_reason = data.reason[:500]
    session.flush()
    split_off = sorted({members[i].profile_id for i in leaving} - {current})
    # The reason and the identifier's value are free text and PII: ids and counts only.
    detail: dict[str, audit.DetailValue] = {
        "merge_id": data.merge_id,
        "identifier_type": data.identifier.type if data.identifier is not None else None,
        "split_off": split_off,
        "cut_links": cut,
    }
    audit.record(session, ctx, "identity.unmerged", "profile", current, detail=detail)
    return UnmergeOut(profile_id=current, split_off=split_off, cut_links=cut)


def pin_apart(session: Session, ctx: Context, data: PinIn) -> Pin:
    """Do not merge these two profiles, whatever evidence comes later."""
    ctx.require("identity.unmerge")
    a, b = get_profile_id(session, ctx, data.a), get_profile_id(session, ctx, data.b)
    if a == b:
        raise Conflict("these are one profile now: unmerge it first", profile_id=a)
    rules = active_rules(session)
    lock_cursor(session, RESOLVER, ctx.clock)
    ends = []
    for profile in (a, b):
        rows = session.scalars(select(IdentifierRow).where(IdentifierRow.profile_id == profile))
        ends.append(min(rows, key=lambda r: (rules.priority(r.type), r.value)).id)
    pin = Pin.model_validate(_add_pin(session, ctx, ends[0], ends[1], data.reason))
    detail: dict[str, audit.DetailValue] = {"profiles": [a, b]}
    audit.record(session, ctx, "identity.pinned_apart", "identity_pin", pin.id, detail=detail)
    return pin


def _add_pin(session: Session, ctx: Context, a: str, b: str, reason: str) -> PinRow:
    a, b = sorted((a, b))
    row = session.scalar(select(PinRow).where(PinRow.a_id == a, PinRow.b_id == b))
    if row is None:
        row = PinRow(
            id=new_id(ctx.clock.now()),
            a_id=a,
            b_id=b,
            reason=reason[:500],
            created_by=ctx.user_id,
            created_at=ctx.clock.now(),
        )
        session.add(row)
        session.flush()
    return row


def conflicts(session: Session, ctx: Context, *, limit: int = 100) -> list[Link]:
    """Links a limit or a pin refused: the deterministic review list, newest first."""
    ctx.require("identity.read")
    rows = session.scalars(
        in_tenancy(select(EdgeRow), EdgeRow.first_bu_id, ctx)
        .where(EdgeRow.status == "conflict")
        .order_by(EdgeRow.updated_at.desc(), EdgeRow.id)
        .limit(limit)
    )
    return [_link(e, None) for e in rows]


CONFLICT_SORTS: dict[str, Column] = {
    "updated_at": EdgeRow.updated_at,
    "first_at": EdgeRow.first_at,
}


def page_conflicts(session: Session, ctx: Context, page: PageRequest) -> Page[Link]:
    """``conflicts`` a keyset page at a time (issue 8), in the asked order."""
    ctx.require("identity.read")
    query = in_tenancy(select(EdgeRow), EdgeRow.first_bu_id, ctx).where(
        EdgeRow.status == "conflict"
    )
    return keyset_page(
        session,
        query,
        page,
        CONFLICT_SORTS,
        EdgeRow.id,
        lambda rows: [_link(e, None) for e in rows],
    )


def _link(edge: EdgeRow, other_profile_id: str | None) -> Link:
    return Link(
        id=edge.id,
        a=edge.a_id,
        b=edge.b_id,
        status=edge.status,
        reason=edge.reason,
        first_at=edge.first_at,
        first_message_id=edge.first_message_id,
        first_source_id=edge.first_source_id,
        seen_count=edge.seen_count,
        other_profile_id=other_profile_id,
    )


def golden(
    session: Session, ctx: Context, profile_id: str, *, view: pii.PiiView | None = None
) -> GoldenRecord:
    """The golden record as a caller sees it: each value and every value of its lineage
    masked as the dictionary classifies the field, for a caller without ``pii:read``; the
    read audited as in ``explain``."""
    own = view is None
    view = view or pii.view(session, ctx)
    record = golden_values(session, ctx, profile_id)
    fields = {
        name: f.model_copy(
            update={
                "value": view.trait(name, f.value),
                "history": [
                    o.model_copy(update={"value": view.trait(name, o.value)}) for o in f.history
                ],
            }
        )
        for name, f in record.fields.items()
    }
    if own:
        view.audit(session, "profile", record.profile_id)
    return record.model_copy(update={"fields": fields})


def golden_values(session: Session, ctx: Context, profile_id: str) -> GoldenRecord:
    """The golden record as stored, for computing with (the profiles consumer materialises
    it as traits): never for showing, which is ``golden``."""
    current = get_profile_id(session, ctx, profile_id)
    return golden_record(session, ctx, current, active_rules(session))


def rules_document(session: Session, ctx: Context) -> dict[str, object]:
    """The rules in force, as the document a steward edits."""
    ctx.require("identity.read")
    row = session.scalar(select(RulesetRow).order_by(RulesetRow.id.desc()).limit(1))
    return dict(row.document) if row is not None else default_document()


def list_rejections(
    session: Session, ctx: Context, *, source_id: str | None = None
) -> list[Rejection]:
    """What each source sends that is no identifier, most frequent first: a list to fix at
    the source. A unit's users see their unit's sources."""
    ctx.require("identity.read")
    query = select(RejectionRow).order_by(RejectionRow.count.desc(), RejectionRow.type)
    if source_id is not None:
        query = query.where(RejectionRow.source_id == source_id)
    view = pii.view(session, ctx)
    found = [
        Rejection.model_validate(r).model_copy(
            update={"example": view.identifier(r.type, r.example)}
        )
        for r in session.scalars(in_tenancy(query, RejectionRow.bu_id, ctx))
    ]
    view.audit(session, "identity_rejections", source_id, rows=len(found))
    return found


REJECTION_SORTS: dict[str, Column] = {
    "count": RejectionRow.count,
    "last_seen_at": RejectionRow.last_seen_at,
}


def page_rejections(
    session: Session, ctx: Context, page: PageRequest, *, source_id: str | None = None
) -> Page[Rejection]:
    """``list_rejections`` a keyset page at a time (issue 8). A counter is one per source,
    type and reason, so those three tell counters with the same sort key apart."""
    ctx.require("identity.read")
    query = in_tenancy(select(RejectionRow), RejectionRow.bu_id, ctx)
    if source_id is not None:
        query = query.where(RejectionRow.source_id == source_id)
    view = pii.view(session, ctx)
    found = keyset_page(
        session,
        query,
        page,
        REJECTION_SORTS,
        (RejectionRow.source_id, RejectionRow.type, RejectionRow.reason),
        lambda rows: [
            Rejection.model_validate(r).model_copy(
                update={"example": view.identifier(r.type, r.example)}
            )
            for r in rows
        ],
    )
    view.audit(session, "identity_rejections", source_id, rows=len(found.items))
    return found


def rebuild(
    session: Session, ctx: Context, *, on_progress: Callable[[int, int], None] | None = None
) -> RebuildOut:
    """Partition every profile again under the rules in force: new limits, priorities and
    blocked values apply to the past, every change is recorded like any other (with the rule
    that caused it), and profile ids are kept wherever a profile survives. A change of an
    identifier's kind or scope changes stored values: that needs the log resolved again.
    Commits per chunk, so a long rebuild holds no lock for long and can be re-run."""
    ctx.require("identity.rules.write")
    rules = active_rules(session)
    profiles = list(session.scalars(select(ProfileRow.id).where(ProfileRow.merged_into.is_(None))))
    out = RebuildOut(profiles=len(profiles), merges=0, splits=0)
    for start in range(0, len(profiles), REBUILD_CHUNK):
        lock_cursor(session, RESOLVER, ctx.clock)
        chunk = profiles[start : start + REBUILD_CHUNK]
        work = WorkingSet(session, rules, ctx.clock.now(), actor=ctx.user_id)
        members = [r.id for r in work.load_profiles(chunk)]
        if members:
            split = work.repartition(
                members, rule=f"rules {rules.version} applied by {ctx.user_id}"
            )
            session.flush()
            if split:
                work.reanchor(split)
        out.merges += work.changes.merges
        out.splits += work.changes.splits
        session.commit()
        if on_progress is not None:
            on_progress(min(start + REBUILD_CHUNK, len(profiles)), len(profiles))
    return out


# --- for the domains downstream (profiles, segments) -----------------------------------------


@dataclass(frozen=True)
class Change:
    """A profile created, merged (``other_id`` was absorbed into ``profile_id``) or split
    (identifiers of ``profile_id`` moved to ``other_id``)."""

    seq: int
    profile_id: str
    kind: str
    other_id: str | None
    at: datetime


def require_resolved(session: Session, position: Position) -> None:
    """Raise ``Behind`` unless the resolver has handled the log up to ``position``: a consumer
    that needs events' profiles waits for it instead of reading half an answer."""
    resolved = session.execute(
        select(CursorRow.tx, CursorRow.seq).where(CursorRow.name == RESOLVER)
    ).one_or_none()
    if resolved is None or Position(*resolved) < position:
        raise Behind(f"{RESOLVER} has not resolved these events yet")


def event_profiles(session: Session, seqs: Iterable[int]) -> dict[int, str | None]:
    """The profile each event belongs to now (None: its identifiers are all shared, or it had
    none); an event the resolver has not seen is absent."""
    found: dict[int, str | None] = {}
    for part in in_chunks(list(seqs)):
        rows = session.execute(
            select(EventProfileRow.seq, EventProfileRow.profile_id).where(
                EventProfileRow.seq.in_(part)
            )
        )
        found.update({seq: profile_id for seq, profile_id in rows})
    return found


def profile_events(session: Session, profile_ids: Iterable[str]) -> dict[int, str]:
    """Every event that belongs to one of these profiles now: ``seq → profile id``."""
    found: dict[int, str] = {}
    for part in in_chunks(list(profile_ids)):
        rows = session.execute(
            select(EventProfileRow.seq, EventProfileRow.profile_id).where(
                EventProfileRow.profile_id.in_(part)
            )
        )
        found.update({seq: profile_id for seq, profile_id in rows if profile_id})
    return found


def changes_after(session: Session, seq: int, limit: int) -> list[Change]:
    """The change feed after ``seq``, in order. Its writers (the resolver, unmerge, rebuild)
    all hold the resolver's cursor, so ``seq`` order is commit order."""
    rows = session.execute(
        select(
            ChangeRow.seq, ChangeRow.profile_id, ChangeRow.kind, ChangeRow.other_id, ChangeRow.at
        )
        .where(ChangeRow.seq > seq)
        .order_by(ChangeRow.seq)
        .limit(limit)
    )
    return [Change(*row) for row in rows]


# Identifiers an internal event may carry to land on a profile, most durable first: an id
# the business issued outlives an email, which outlives a cookie.
ANCHOR_TYPES = ("user_id", "crm_id", "member_no", "wechat_unionid", "email", "phone",
                "device_id", "anonymous_id")  # fmt: skip


def anchor_identifier(session: Session, profile_id: str, bu_id: str) -> tuple[str, str] | None:
    """An identifier (``type``, raw value) that an event of unit ``bu_id`` about this profile
    should carry so that resolution puts it on the profile: a lead's status change, an
    opportunity won. A type kept per unit counts only with the unit's own prefix, which the
    raw value leaves out (resolution adds it back)."""
    rows = session.execute(
        select(IdentifierRow.type, IdentifierRow.value).where(
            IdentifierRow.profile_id == current_id(session, profile_id),
            IdentifierRow.type.in_(ANCHOR_TYPES),
            IdentifierRow.shared_reason.is_(None),
        )
    ).all()
    rules = active_rules(session)
    code = unit_codes(session).get(bu_id, "")
    found = []
    for kind, value in rows:
        rule = rules.types.get(kind)
        if rule is None:
            continue
        if rule.scope == "business_unit":
            prefix, _, value = value.partition(":")
            if prefix != code:
                continue
        found.append((kind, value))
    return min(found, key=lambda r: (ANCHOR_TYPES.index(r[0]), r[1]), default=None)
