"""Profiles' service functions: the 360 view, search by identifier, the timeline, and tags.

Visibility follows the identity domain's rule: group roles see every profile, a business
unit's users the profiles that touched their unit, and of those only their unit's events.
Another unit's profile is NotFound, never Forbidden.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, delete, func, or_, select
from sqlalchemy.orm import Session

from oneloop.core.context import Context
from oneloop.core.cursor import read_cursor, write_cursor
from oneloop.core.db import in_chunks, in_tenancy, memo
from oneloop.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from oneloop.core.ids import new_id
from oneloop.core.paging import Column, Page, PageRequest, keyset_page
from oneloop.governance import audit, pii, sharing
from oneloop.governance import service as governance
from oneloop.identity import service as identity
from oneloop.profiles import scores, tags, traits
from oneloop.profiles.filters import When, zone_of
from oneloop.profiles.models import (
    ProfileEventRow,
    ProfileRow,
    ProfileTagRow,
    ProfileUnitRow,
    TagCategoryRow,
    TagRow,
    TraitRow,
)
from oneloop.profiles.schemas import (
    BulkTagResult,
    MatchedIdentifier,
    Profile,
    ProfileMatch,
    ProfileSummary,
    ProfileTag,
    Tag,
    TagAssignIn,
    TagCategory,
    TagCategoryIn,
    TagIn,
    Timeline,
    TimelineEntry,
    TraitValue,
)

MAX_PAGE = 200
MAX_BULK_ROWS = 100_000
ONEID = ("oneid", "profile", "profile_id")
NAME_TRAIT = f"{traits.GOLDEN}name"
VISIBLE = "profiles.visible"  # memo key: the profiles a transaction found visible, per caller
MAX_NAME_QUERY = 100
# Aggregates whose value is one of the property's own values (not a count or a sum of them).
PICKS = ("first", "last", "most_frequent", "min", "max")


# --- profiles -------------------------------------------------------------------------------


def visible_id(session: Session, ctx: Context, profile_id: str) -> str:
    """The profile's current id (following merges), if ``ctx`` may see it."""
    ctx.require("profiles.read")
    try:
        current = identity.current_id(session, profile_id)
    except NotFound:
        raise NotFound(f"no profile {profile_id}", profile_id=profile_id) from None
    if current not in _visible(session, ctx, [current]):
        raise NotFound(f"no profile {profile_id}", profile_id=profile_id)
    return current


def _visible(session: Session, ctx: Context, current_ids: Sequence[str]) -> set[str]:
    """Those of these current ids that ``ctx`` may see: one rule for one profile and many.

    A request asks again and again (the profile, then its timeline, tags, scores …), so what
    was found visible is remembered for the transaction. What was not is asked again: a
    worker's transaction may bring a profile into a unit's view. Nothing that takes one out
    (an erasure, an unmerge) checks visibility again in its own transaction."""
    seen: set[str] = memo(session, (VISIBLE, ctx.bu_id, ctx.is_group_wide), set)
    wanted = set(current_ids)
    found = wanted & seen
    for part in in_chunks(sorted(wanted - found)):
        query = select(ProfileRow.id).where(ProfileRow.id.in_(list(part)))
        if not ctx.is_group_wide:
            query = query.join(ProfileUnitRow, ProfileUnitRow.profile_id == ProfileRow.id).where(
                ProfileUnitRow.bu_id == ctx.bu_id
            )
        found.update(session.scalars(query))
    seen.update(found)
    return found


def visible_many(session: Session, ctx: Context, profile_ids: Sequence[str]) -> dict[str, bool]:
    """``{id: True}`` for those of these current ids ``ctx`` may see: the batch check of a
    data loader, free when the request has already looked at the profile."""
    ctx.require("profiles.read")
    return dict.fromkeys(_visible(session, ctx, profile_ids), True)


def summary(session: Session, ctx: Context, profile_id: str) -> ProfileSummary:
    current = visible_id(session, ctx, profile_id)
    return summaries(session, ctx, [current])[current]


def summaries(
    session: Session, ctx: Context, profile_ids: Sequence[str]
) -> dict[str, ProfileSummary]:
    """The summaries of those of these profiles (current ids: merges are not followed) that
    ``ctx`` may see, in two statements per 400 ids whatever their number: for list views
    (GraphQL's data loaders); an id left out is not visible, or not current."""
    ctx.require("profiles.read")
    out: dict[str, ProfileSummary] = {}
    for part in in_chunks(sorted(set(profile_ids))):
        query = select(ProfileRow).where(ProfileRow.id.in_(list(part)))
        if not ctx.is_group_wide:
            query = query.join(ProfileUnitRow, ProfileUnitRow.profile_id == ProfileRow.id).where(
                ProfileUnitRow.bu_id == ctx.bu_id
            )
        rows = list(session.scalars(query))
        units: dict[str, list[str]] = {row.id: [] for row in rows}
        if units:
            unit_rows = session.execute(
                in_tenancy(
                    select(ProfileUnitRow.profile_id, ProfileUnitRow.bu_id).where(
                        ProfileUnitRow.profile_id.in_(list(units))
                    ),
                    ProfileUnitRow.bu_id,
                    ctx,
                )
            )
            for held_by, unit in unit_rows:
                units[held_by].append(unit)
        for row in rows:
            out[row.id] = ProfileSummary(
                id=row.id,
                first_seen_at=row.first_seen_at,
                last_seen_at=row.last_seen_at,
                events=row.events,
                business_units=sorted(units[row.id]),
            )
    return out


def get(session: Session, ctx: Context, profile_id: str) -> Profile:
    """The 360 view: personal values masked for a caller without ``pii:read``, and with it
    the read audited once for everything shown."""
    from oneloop.segments import service as segments  # segments build on profiles

    head = summary(session, ctx, profile_id)
    units = governance.scope_of(session, ctx)
    view = pii.view(session, ctx)
    explanation = identity.explain(session, ctx, head.id, view=view)
    profile = Profile(
        **head.model_dump(),
        identifiers=explanation.identifiers,
        golden=identity.golden(session, ctx, head.id, view=view),
        traits=_shown_traits(session, view, _traits(session, ctx, head.id, units), units),
        tags=profile_tags(session, ctx, head.id),
        scores=[_plain(s) for s in _scores(session, ctx, head.id, units)],
        segments=[_plain(s) for s in segments.memberships_of(session, ctx, head.id)],
    )
    view.audit(session, "profile", head.id)
    return profile


def profile_traits(session: Session, ctx: Context, profile_id: str) -> list[TraitValue]:
    """A profile's computed traits and golden-record fields, as ``get`` shows them."""
    current = visible_id(session, ctx, profile_id)
    units = governance.scope_of(session, ctx)
    view = pii.view(session, ctx)
    shown = _shown_traits(session, view, _traits(session, ctx, current, units), units)
    view.audit(session, "profile", current)
    return shown


def _traits(
    session: Session, ctx: Context, profile_id: str, units: tuple[str, ...]
) -> list[TraitValue]:
    """The unit's and the group's traits, then those other units share with the caller's."""
    shared = sharing.readable(session, ctx, "traits")
    mine = traits.traits_of(session, profile_id, units)
    if not shared:
        return mine
    return mine + traits.shared_traits_of(
        session, profile_id, shared, governance.unit_codes(session)
    )


def _scores(
    session: Session, ctx: Context, profile_id: str, units: tuple[str, ...]
) -> list[scores.Score]:
    return _scores_of(session, ctx, [profile_id], units)[profile_id]


def scores_of_many(
    session: Session, ctx: Context, profile_ids: Sequence[str]
) -> dict[str, list[scores.Score]]:
    """The 360 view's scores for those of these profiles (current ids) that ``ctx`` may see,
    in a number of statements that does not grow with them: for list views."""
    ctx.require("profiles.read")
    visible = sorted(_visible(session, ctx, profile_ids))
    return _scores_of(session, ctx, visible, governance.scope_of(session, ctx))


def _scores_of(
    session: Session, ctx: Context, profile_ids: Sequence[str], units: tuple[str, ...]
) -> dict[str, list[scores.Score]]:
    """The scores of the unit's and the group's models, then of the models other units share
    with the caller's unit."""
    shared = sharing.readable(session, ctx, "scores")
    mine = scores.scores_of_many(session, profile_ids, units)
    if not shared:
        return mine
    theirs = scores.scores_of_many(session, profile_ids, sorted(shared))
    return {
        p: mine[p] + [s for s in theirs[p] if sharing.allows(shared, s.bu_id, s.code)]
        for p in profile_ids
    }


def _shown_traits(
    session: Session, view: pii.PiiView, values: list[TraitValue], units: tuple[str, ...]
) -> list[TraitValue]:
    """Golden-record fields by their dictionary class; a computed trait that picks a value of
    a personal property (the last phone a form sent) as that property is, or as the
    dictionary classifies the trait's own name."""
    specs = {d.spec.name: d.spec for d in traits.definitions_for(session, units)}
    shown = []
    for t in values:
        personal = view.classes.trait(t.name)
        spec = specs.get(t.name) if t.kind == "computed" else None
        if personal is None and spec is not None:
            personal = _picked(view.classes, spec)
        shown.append(t.model_copy(update={"value": view.value(personal, t.value)}))
    return shown


def _picked(classes: pii.Classes, spec: traits.TraitSpec) -> pii.Personal | None:
    """The class of the property whose values a trait picks, if it picks any."""
    if spec.property is None or spec.aggregate not in PICKS:
        return None
    path = ".".join(p for p in spec.property if isinstance(p, str))
    for event in spec.filter.names:
        if (found := classes.property(event, path)) is not None:
            return found
    return None


def find(session: Session, ctx: Context, kind: str, value: str) -> ProfileMatch:
    """A profile by any identifier (``phone``, ``email``, ``wechat_openid`` …) or its OneID.
    A caller without ``pii:read`` may search by a full phone number; the answer shows the
    identifier it matched as everything else, masked."""
    found = find_id(session, ctx, kind, value)
    head = summaries(session, ctx, [found])[found]
    if kind in ONEID:
        return ProfileMatch(**head.model_dump(), identifier=None)
    view = pii.view(session, ctx)
    kind, stored = identity.identifier_key(session, identity.active_rules(session), kind, value)
    matched = MatchedIdentifier(type=kind, value=view.identifier(kind, stored))
    match = ProfileMatch(**head.model_dump(), identifier=matched)
    view.audit(session, "profile", head.id)
    return match


def find_by_name(
    session: Session, ctx: Context, text: str, *, limit: int = 20
) -> list[ProfileMatch]:
    """Profiles whose golden-record name starts with ``text`` (a surname: Chinese names put it
    first), visible to ``ctx``, by name. The names come back as ``find`` shows an identifier:
    masked without ``pii:read``, the read audited with it."""
    ctx.require("profiles.read")
    text = text.strip()
    if not 0 < len(text) <= MAX_NAME_QUERY:
        raise ValidationFailed(
            "a name to look for",
            [FieldError(("value",), f"give 1 to {MAX_NAME_QUERY} characters of the name")],
        )
    query = (
        select(TraitRow.profile_id, TraitRow.value)
        .where(TraitRow.key == NAME_TRAIT, TraitRow.text.startswith(text, autoescape=True))
        .order_by(TraitRow.text, TraitRow.profile_id)
        .limit(max(1, min(limit, MAX_PAGE)))
    )
    if not ctx.is_group_wide:
        query = query.join(ProfileUnitRow, ProfileUnitRow.profile_id == TraitRow.profile_id).where(
            ProfileUnitRow.bu_id == ctx.bu_id
        )
    rows = session.execute(query).all()
    heads = summaries(session, ctx, [profile_id for profile_id, _ in rows])
    view = pii.view(session, ctx)
    found = [
        ProfileMatch(
            **heads[profile_id].model_dump(),
            identifier=MatchedIdentifier(type="name", value=str(view.trait("name", value))),
        )
        for profile_id, value in rows
        if profile_id in heads
    ]
    view.audit(session, "profile", None, rows=len(found))
    return found


def find_id(session: Session, ctx: Context, kind: str, value: str) -> str:
    """The current id of the profile an identifier (or a OneID) names, visible to ``ctx``;
    for working with, not for showing (``find`` shows)."""
    if kind in ONEID:
        return visible_id(session, ctx, value)
    ctx.require("profiles.read")
    found = identity.holder_of(session, kind, value)
    if found is None or found not in _visible(session, ctx, [found]):
        raise NotFound(f"no profile with {kind} {value!r}", type=kind)
    return found


def timeline(
    session: Session,
    ctx: Context,
    profile_id: str,
    *,
    department: str | None = None,
    source_id: str | None = None,
    event: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
    view: pii.PiiView | None = None,
) -> Timeline:
    """Everything that happened to the person across marketing, sales and service, newest
    first; a unit's users see their unit's events, and the events other units share with
    their unit (``governance.sharing``). Given the caller's ``view``, the caller audits the
    read (as ``identity.explain``); without one, this call does."""
    current = visible_id(session, ctx, profile_id)
    limit = max(1, min(limit, MAX_PAGE))
    query = _timeline_query(session, ctx, current, department, source_id, event, since, until)
    if cursor:
        at, seq = read_cursor(cursor)
        query = query.where(
            or_(
                ProfileEventRow.at < at,
                and_(ProfileEventRow.at == at, ProfileEventRow.seq < seq),
            )
        )
    rows = session.scalars(
        query.order_by(ProfileEventRow.at.desc(), ProfileEventRow.seq.desc()).limit(limit + 1)
    ).all()
    own = view is None
    view = view or pii.view(session, ctx)
    entries = _timeline_entries(rows[:limit], view)
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = write_cursor(last.at, last.seq)
    if own:
        view.audit(session, "profile", current, rows=len(entries))
    return Timeline(profile_id=current, entries=entries, next_cursor=next_cursor)


TIMELINE_SORTS: dict[str, Column] = {"at": ProfileEventRow.at}


def page_timeline(
    session: Session,
    ctx: Context,
    profile_id: str,
    page: PageRequest,
    *,
    department: str | None = None,
    source_id: str | None = None,
    event: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[TimelineEntry]:
    """``timeline`` in the API's common page and cursor format (issue 8); the read is
    audited as ``timeline``'s is."""
    current = visible_id(session, ctx, profile_id)
    query = _timeline_query(session, ctx, current, department, source_id, event, since, until)
    view = pii.view(session, ctx)
    found = keyset_page(
        session,
        query,
        page,
        TIMELINE_SORTS,
        ProfileEventRow.seq,
        lambda rows: _timeline_entries(rows, view),
    )
    view.audit(session, "profile", current, rows=len(found.items))
    return found


def _timeline_query(
    session: Session,
    ctx: Context,
    current: str,
    department: str | None,
    source_id: str | None,
    event: str | None,
    since: datetime | None,
    until: datetime | None,
) -> Select[tuple[ProfileEventRow]]:
    """The events of profile ``current`` the caller sees (their unit's, and what other
    units share with it), filtered; unordered."""
    query = select(ProfileEventRow).where(ProfileEventRow.profile_id == current)
    shared = sharing.readable(session, ctx, "events")
    if shared:
        query = query.where(
            or_(
                ProfileEventRow.bu_id == ctx.bu_id,
                *sharing.events_condition(shared, ProfileEventRow.bu_id, ProfileEventRow.name),
            )
        )
    else:
        query = in_tenancy(query, ProfileEventRow.bu_id, ctx)
    if department:
        query = query.where(ProfileEventRow.department == department)
    if source_id:
        query = query.where(ProfileEventRow.source_id == source_id)
    if event:
        query = query.where(ProfileEventRow.name == event)
    if since:
        query = query.where(ProfileEventRow.at >= since)
    if until:
        query = query.where(ProfileEventRow.at < until)
    return query


def _timeline_entries(rows: Sequence[ProfileEventRow], view: pii.PiiView) -> list[TimelineEntry]:
    return [
        TimelineEntry(
            seq=r.seq,
            at=r.at,
            name=r.name,
            type=r.type,
            department=r.department,
            bu_id=r.bu_id,
            source_id=r.source_id,
            properties=view.properties(r.name, r.properties),
        )
        for r in rows
    ]


def _plain(value: object) -> dict[str, Any]:  # Any: JSON
    dump = getattr(value, "model_dump", None)
    if dump is not None:
        return dict(dump(mode="json"))
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(value)  # type: ignore[call-overload]
    return dict(value)  # type: ignore[call-overload]


# --- tags -----------------------------------------------------------------------------------


def create_category(session: Session, ctx: Context, data: TagCategoryIn) -> TagCategory:
    ctx.require("profiles.admin")
    unit = governance.unit_id(session, ctx, data.bu)
    exists = select(TagCategoryRow.id).where(
        TagCategoryRow.bu_id == unit, TagCategoryRow.code == data.code
    )
    if session.scalar(exists):
        raise Conflict(f"a tag category {data.code!r} already exists", code=data.code)
    row = TagCategoryRow(
        id=new_id(ctx.clock.now()),
        bu_id=unit,
        code=data.code,
        name_zh=data.name_zh,
        name_en=data.name_en,
        created_at=ctx.clock.now(),
    )
    session.add(row)
    session.flush()
    return TagCategory.model_validate(row)


def list_categories(session: Session, ctx: Context) -> list[TagCategory]:
    ctx.require("profiles.read")
    query = select(TagCategoryRow).order_by(TagCategoryRow.code)
    query = governance.in_scope(query, TagCategoryRow.bu_id, session, ctx)
    return [TagCategory.model_validate(r) for r in session.scalars(query)]


def create_tag(session: Session, ctx: Context, data: TagIn) -> Tag:
    ctx.require("profiles.admin")
    unit = governance.unit_id(session, ctx, data.bu)
    units = (
        (unit,) if unit == governance.group_id(session) else (unit, governance.group_id(session))
    )
    category = session.scalar(
        select(TagCategoryRow).where(
            TagCategoryRow.code == data.category, TagCategoryRow.bu_id.in_(units)
        )
    )
    if category is None:
        raise ValidationFailed(
            "unknown tag category",
            [FieldError(("category",), f"no tag category {data.category!r}; create it first")],
        )
    if session.scalar(select(TagRow.id).where(TagRow.bu_id == unit, TagRow.code == data.code)):
        raise Conflict(f"a tag {data.code!r} already exists", code=data.code)
    _check_rule(session, data.rule, unit)
    now = ctx.clock.now()
    row = TagRow(
        id=new_id(now),
        bu_id=unit,
        category_id=category.id,
        code=data.code,
        name_zh=data.name_zh,
        name_en=data.name_en,
        description=data.description,
        kind="rule" if data.rule else "manual",
        rule=data.rule,
        expires_after_days=data.expires_after_days,
        version=1,
        created_at=now,
        created_by=str(ctx.user_id),
        updated_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(session, ctx, "tag.created", "tag", row.id, bu_id=row.bu_id)
    return Tag.model_validate(row)


def _check_rule(session: Session, rule: dict[str, Any] | None, unit: str) -> None:
    if rule is None:
        return
    from oneloop.segments import compile, language  # segments build on profiles

    parsed = language.parse_rule(rule, ("rule",))
    compile.bind(session, parsed, compile.scope_in(session, unit, governance.group_id(session)))


def list_tags(session: Session, ctx: Context) -> list[Tag]:
    ctx.require("profiles.read")
    query = governance.in_scope(select(TagRow).order_by(TagRow.code), TagRow.bu_id, session, ctx)
    return [Tag.model_validate(r) for r in session.scalars(query)]


def _tag_row(session: Session, ctx: Context, tag_id: str) -> TagRow:
    row = session.get(TagRow, tag_id)
    if row is None or not governance.may_read(session, ctx, row.bu_id):
        raise NotFound(f"no tag {tag_id}", tag_id=tag_id)
    return row


def delete_tag(session: Session, ctx: Context, tag_id: str) -> None:
    ctx.require("profiles.admin")
    row = _tag_row(session, ctx, tag_id)
    if not governance.may_change(ctx, row.bu_id):
        raise NotFound(f"no tag {tag_id}", tag_id=tag_id)  # the group's tags are HQ's to delete
    from oneloop.segments.service import require_unused  # segments build on profiles

    require_unused(session, f"tag {row.code!r}", lambda b: tag_id in b.tags)
    holders = set(
        session.scalars(select(ProfileTagRow.profile_id).where(ProfileTagRow.tag_id == tag_id))
    )
    session.execute(delete(ProfileTagRow).where(ProfileTagRow.tag_id == tag_id))
    session.delete(row)
    session.flush()
    _changed(session, ctx, holders)
    detail: dict[str, audit.DetailValue] = {"holders": len(holders)}
    audit.record(session, ctx, "tag.deleted", "tag", tag_id, detail=detail, bu_id=row.bu_id)


def profile_tags(session: Session, ctx: Context, profile_id: str) -> list[ProfileTag]:
    current = visible_id(session, ctx, profile_id)
    return _tags_of(session, ctx, [current])[current]


def tags_of_many(
    session: Session, ctx: Context, profile_ids: Sequence[str]
) -> dict[str, list[ProfileTag]]:
    """``profile_tags`` for those of these profiles (current ids) that ``ctx`` may see, in a
    number of statements that does not grow with them (one per 400 ids): for list views."""
    ctx.require("profiles.read")
    return _tags_of(session, ctx, sorted(_visible(session, ctx, profile_ids)))


def _tags_of(
    session: Session, ctx: Context, current_ids: Sequence[str]
) -> dict[str, list[ProfileTag]]:
    """The tags of these visible profiles that the caller may see: their unit's and the
    group's, and those other units share with it."""
    found: dict[str, list[ProfileTag]] = {p: [] for p in current_ids}
    if not found:
        return found
    units = set(governance.scope_of(session, ctx))
    shared = sharing.readable(session, ctx, "tags")
    for part in in_chunks(list(current_ids)):
        rows = session.execute(
            select(ProfileTagRow, TagRow, TagCategoryRow)
            .join(TagRow, TagRow.id == ProfileTagRow.tag_id)
            .join(TagCategoryRow, TagCategoryRow.id == TagRow.category_id)
            .where(ProfileTagRow.profile_id.in_(list(part)))
            .order_by(TagCategoryRow.code, TagRow.code)
        ).all()
        for held, tag, category in rows:
            if (
                ctx.is_group_wide
                or tag.bu_id in units
                or sharing.allows(shared, tag.bu_id, tag.code)
            ):
                found[held.profile_id].append(_profile_tag(held, tag, category))
    return found


def _profile_tag(held: ProfileTagRow, tag: TagRow, category: TagCategoryRow) -> ProfileTag:
    return ProfileTag(
        tag_id=tag.id,
        code=tag.code,
        name_zh=tag.name_zh,
        name_en=tag.name_en,
        category=category.code,
        source=held.source,
        set_by=held.set_by,
        set_at=held.set_at,
        reason=held.reason,
        expires_at=held.expires_at,
    )


def assign_tag(
    session: Session, ctx: Context, profile_id: str, tag_id: str, data: TagAssignIn
) -> bool:
    """A person tags a profile by hand; True when it was not tagged yet."""
    ctx.require("profiles.tag")
    current = visible_id(session, ctx, profile_id)
    tag = _tag_row(session, ctx, tag_id)
    if tag.kind == "rule":
        raise Conflict(f"tag {tag.code!r} is set by its rule, not by hand", tag_id=tag_id)
    done = tags.assign(
        session,
        profile_id=current,
        tag=tag,
        source="manual",
        by=str(ctx.user_id),
        reason=data.reason,
        now=ctx.clock.now(),
        expires_at=data.expires_at or _default_expiry(tag, ctx.clock.now()),
    )
    _changed(session, ctx, {current})
    return done


def remove_tag(session: Session, ctx: Context, profile_id: str, tag_id: str, reason: str) -> bool:
    ctx.require("profiles.tag")
    current = visible_id(session, ctx, profile_id)
    tag = _tag_row(session, ctx, tag_id)
    done = tags.unassign(
        session,
        profile_id=current,
        tag=tag,
        source="manual",
        by=str(ctx.user_id),
        reason=reason,
        now=ctx.clock.now(),
    )
    _changed(session, ctx, {current})
    return done


def bulk_tag(session: Session, ctx: Context, tag_id: str, text: str, reason: str) -> BulkTagResult:
    """Tag the profiles a CSV names by identifier (columns ``type,value``; a row ``oneid,…``
    names a profile directly). Rows that name nobody are counted; bad rows are reported with
    their line number, and the rest are still tagged."""
    ctx.require("profiles.tag")
    tag = _tag_row(session, ctx, tag_id)
    if tag.kind == "rule":
        raise Conflict(f"tag {tag.code!r} is set by its rule, not by hand", tag_id=tag_id)
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or not {"type", "value"} <= set(reader.fieldnames):
        raise ValidationFailed(
            "the CSV needs a header", [FieldError(("file",), "first line must be: type,value")]
        )
    result = BulkTagResult(rows=0, tagged=0, already=0, not_found=0, invalid=[])
    now = ctx.clock.now()
    touched: set[str] = set()
    for line, row in enumerate(reader, start=2):
        result.rows += 1
        if result.rows > MAX_BULK_ROWS:
            raise ValidationFailed(
                "too many rows", [FieldError(("file",), f"at most {MAX_BULK_ROWS} rows")]
            )
        kind, value = (row.get("type") or "").strip(), (row.get("value") or "").strip()
        try:
            found = find_id(session, ctx, kind, value)
        except NotFound:
            result.not_found += 1
            continue
        except ValidationFailed as exc:
            message = exc.errors[0].msg if exc.errors else exc.detail
            result.invalid.append({"line": line, "type": kind, "message": message})
            continue
        done = tags.assign(
            session,
            profile_id=found,
            tag=tag,
            source="import",
            by=str(ctx.user_id),
            reason=reason,
            now=now,
            expires_at=_default_expiry(tag, now),
        )
        result.tagged += int(done)
        result.already += int(not done)
        touched.add(found)
    _changed(session, ctx, touched)
    return result


def _default_expiry(tag: TagRow, now: datetime) -> datetime | None:
    if tag.expires_after_days is None:
        return None
    from datetime import timedelta

    return now + timedelta(days=tag.expires_after_days)


def _changed(session: Session, ctx: Context, profile_ids: set[str]) -> None:
    """A tag changed by hand: rule tags and live segments of these profiles follow at once."""
    if not profile_ids:
        return
    from oneloop.segments import live  # segments build on profiles

    session.flush()
    live.refresh(session, dict.fromkeys(profile_ids, "tag"), When(ctx.clock.now(), zone_of(None)))


# --- reads for other domains' followers (sales' lead triggers), not for showing ---------------


@dataclass(frozen=True)
class NamedEvent:
    seq: int
    profile_id: str
    bu_id: str
    name: str
    at: datetime
    properties: dict[str, Any]  # Any: JSON values as sent


def events_named_after(
    session: Session, seq: int, names: Collection[str], limit: int
) -> tuple[list[NamedEvent], int]:
    """Projected events with one of ``names`` after position ``seq``, in log order, and the
    position read up to (the caller's next ``seq``, moved past events of other names too).
    The profiles consumer projects in log order, one step at a time."""
    top = session.scalar(select(func.max(ProfileEventRow.seq))) or 0
    upto = min(top, seq + limit * 50)
    if upto <= seq or not names:
        return [], max(seq, upto)
    rows = session.execute(
        select(
            ProfileEventRow.seq, ProfileEventRow.profile_id, ProfileEventRow.bu_id,
            ProfileEventRow.name, ProfileEventRow.at, ProfileEventRow.properties,
        )
        .where(
            ProfileEventRow.seq > seq,
            ProfileEventRow.seq <= upto,
            ProfileEventRow.name.in_(list(names)),
        )
        .order_by(ProfileEventRow.seq)
        .limit(limit)
    ).all()  # fmt: skip
    found = [NamedEvent(*row) for row in rows]
    return found, (found[-1].seq if len(found) == limit else upto)


def recent_events(
    session: Session, profile_id: str, bu_id: str, limit: int = 5
) -> list[tuple[str, datetime]]:
    """The profile's latest events in one unit, by name and time."""
    rows = session.execute(
        select(ProfileEventRow.name, ProfileEventRow.at)
        .where(ProfileEventRow.profile_id == profile_id, ProfileEventRow.bu_id == bu_id)
        .order_by(ProfileEventRow.at.desc(), ProfileEventRow.seq.desc())
        .limit(limit)
    )
    return [(name, at) for name, at in rows]


def first_seen_in(session: Session, profile_id: str, bu_id: str) -> datetime | None:
    """When the profile first touched the unit."""
    return session.scalar(
        select(ProfileUnitRow.first_at).where(
            ProfileUnitRow.profile_id == profile_id, ProfileUnitRow.bu_id == bu_id
        )
    )


CATEGORY_SORTS: dict[str, Column] = {
    "code": TagCategoryRow.code,
    "created_at": TagCategoryRow.created_at,
}


def page_categories(
    session: Session, ctx: Context, page: PageRequest, *, bu: str | None = None
) -> Page[TagCategory]:
    """``list_categories`` a keyset page at a time (issue 8); ``bu``: that unit's only."""
    ctx.require("profiles.read")
    query = governance.in_scope(select(TagCategoryRow), TagCategoryRow.bu_id, session, ctx, bu)
    return keyset_page(
        session,
        query,
        page,
        CATEGORY_SORTS,
        TagCategoryRow.id,
        lambda rows: [TagCategory.model_validate(r) for r in rows],
    )


TAG_SORTS: dict[str, Column] = {
    "code": TagRow.code,
    "created_at": TagRow.created_at,
    "updated_at": TagRow.updated_at,
}


def page_tags(
    session: Session,
    ctx: Context,
    page: PageRequest,
    *,
    bu: str | None = None,
    kind: str | None = None,
    category: str | None = None,
    q: str | None = None,
) -> Page[Tag]:
    """``list_tags`` a keyset page at a time (issue 8); ``category`` is a category's code,
    ``q`` matches the code or either name."""
    ctx.require("profiles.read")
    query = governance.in_scope(select(TagRow), TagRow.bu_id, session, ctx, bu)
    if kind is not None:
        query = query.where(TagRow.kind == kind)
    if category is not None:
        codes = select(TagCategoryRow.id).where(TagCategoryRow.code == category)
        query = query.where(TagRow.category_id.in_(codes))
    if q:
        query = query.where(
            TagRow.code.icontains(q, autoescape=True)
            | TagRow.name_zh.icontains(q, autoescape=True)
            | TagRow.name_en.icontains(q, autoescape=True)
        )
    return keyset_page(
        session,
        query,
        page,
        TAG_SORTS,
        TagRow.id,
        lambda rows: [Tag.model_validate(r) for r in rows],
    )
