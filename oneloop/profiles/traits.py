"""Computed traits: aggregations over a profile's events, kept current as events arrive.

One SQL builder per aggregate turns a definition (see ``trait_defs``) into

    SELECT profile_id, <aggregate> FROM profiles_event
    WHERE <event filter> [AND at >= cutoff] [AND bu_id = :unit] AND <which profiles>
    GROUP BY profile_id

and the three ways of keeping values current differ only in *which profiles*: the ids a batch
of events touched (``refresh``, called by the profiles consumer and after merges and splits),
the profiles that had an event leave a window as time passed (``sweep``), or every profile, a
range of ids at a time (``recompute``). Same query, same values: the incremental and the full
computation agree by construction, and ``tests/profiles/test_traits.py`` checks that they do.

Values are computed as ``trait_sql`` describes: no row means no matching event (a count of
0 is not stored; segment rules read a missing trait as ``not_exists``), hostile property
values are skipped, sums are rounded so that both paths agree. A window counts calendar days
in the zone of the definition's unit (the group's for a group-wide one), whatever zone the
caller's ``When`` carries (issue 6).

The caller commits; these functions only write through the session.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from oneloop.core.context import Context
from oneloop.core.db import in_chunks
from oneloop.governance import service as governance
from oneloop.profiles.filters import When, zone_of
from oneloop.profiles.models import ProfileEventRow, ProfileRow, ProfileUnitRow, TraitRow
from oneloop.profiles.schemas import TraitValue
from oneloop.profiles.trait_defs import (
    AGGREGATES,
    Trait,
    TraitDef,
    TraitSpec,
    all_definitions,
    create_trait,
    definitions_for,
    delete_trait,
    find_definition,
    get_trait,
    get_trait_named,
    list_traits,
    load_document,
    managed_definitions,
    owned_definition,
    parse_definition,
    update_trait,
)
from oneloop.profiles.trait_sql import (
    STORED_VALUE,
    Restrict,
    aggregate_query,
    event_conditions,
    id_range,
    ids_in,
    read_value,
)
from oneloop.profiles.values import typed

# The surface other domains use: definitions (trait_defs) and SQL (trait_sql) included.
__all__ = [
    "AGGREGATES",
    "STORED_VALUE",
    "Trait",
    "TraitDef",
    "TraitSpec",
    "aggregate_query",
    "create_trait",
    "definitions_for",
    "delete_trait",
    "find_definition",
    "get_trait",
    "get_trait_named",
    "list_traits",
    "load_document",
    "parse_definition",
    "recompute",
    "recompute_trait",
    "refresh",
    "sweep",
    "traits_of",
    "update_trait",
    "values_of",
]

log = logging.getLogger(__name__)

PAGE = 5_000  # profiles per set-based step of a full recompute
GOLDEN = "golden:"

E = ProfileEventRow
Progress = Callable[[int, int], None]


# --- storing --------------------------------------------------------------------------------


def _apply(
    session: Session, d: TraitDef, restrict: Restrict, when: When, group_id: str
) -> set[str]:
    """Compute ``d`` for the profiles ``restrict`` admits and write the difference: new and
    changed values upserted, values that no longer exist deleted. The profiles changed."""
    computed: dict[str, object] = {}
    for row in session.execute(aggregate_query(d, restrict, when, group_id)):
        value = read_value(d.spec, row)
        if value is not None:
            computed[row[0]] = value
    stored: dict[str, object] = {
        profile_id: value
        for profile_id, value in session.execute(
            select(TraitRow.profile_id, STORED_VALUE).where(
                TraitRow.key == d.id, restrict(TraitRow.profile_id)
            )
        )
    }
    upserts = []
    for profile_id, value in computed.items():
        t = typed(value)
        if profile_id in stored and _same(stored[profile_id], t.value):
            continue
        upserts.append(
            {
                "profile_id": profile_id,
                "key": d.id,
                "value": t.value,
                "num": t.num,
                "text": t.text,
                "at": t.at,
                "updated_at": when.now,
            }
        )
    gone = sorted(set(stored) - set(computed))
    _upsert(session, upserts)
    for part in in_chunks(gone):
        session.execute(delete(TraitRow).where(TraitRow.key == d.id, TraitRow.profile_id.in_(part)))
    return {u["profile_id"] for u in upserts} | set(gone)


def _same(stored: object, value: object) -> bool:
    """JSON equality: ``true`` is not ``1`` (Python thinks it is), ``3`` is ``3.0``."""
    return isinstance(stored, bool) == isinstance(value, bool) and stored == value


def _upsert(session: Session, rows: list[dict[str, Any]]) -> None:  # Any: column values
    """INSERT … ON CONFLICT DO UPDATE: the consumer and a recompute may race on PostgreSQL,
    and either's value is right, so the second writer updates instead of failing."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(TraitRow.__table__)
    stmt = stmt.on_conflict_do_update(
        index_elements=["profile_id", "key"],
        set_={c: stmt.excluded[c] for c in ("value", "num", "text", "at", "updated_at")},
    )
    for part in in_chunks(rows):
        session.execute(stmt, list(part))


# --- keeping values current -----------------------------------------------------------------


def refresh(
    session: Session,
    profile_ids: Collection[str],
    when: When,
    event_names: Collection[str] | None = None,
) -> set[str]:
    """Recompute, for these profiles, the definitions that read any of ``event_names`` (all
    of them when None: after a merge or split moved events). The profiles whose traits
    changed. Called by the profiles consumer in the transaction that consumes the events."""
    ids = sorted(set(profile_ids))
    if not ids:
        return set()
    names = None if event_names is None else set(event_names)
    chosen = [
        d
        for d in all_definitions(session)
        if names is None or not names.isdisjoint(d.spec.filter.names)
    ]
    if not chosen:
        return set()
    group_id = governance.group_id(session)
    changed: set[str] = set()
    for d in chosen:
        local = _in_zone(session, d, when)
        for part in in_chunks(ids):
            changed |= _apply(session, d, ids_in(part), local, group_id)
    return changed


def sweep(session: Session, when: When, since: datetime) -> set[str]:
    """Windows close as time passes: recompute, per windowed definition, the profiles with a
    matching event that was inside the window at ``since`` and is outside it now. Calendar
    windows move at local midnight, so most sweeps find nothing and cost one cheap query."""
    changed: set[str] = set()
    windowed = [d for d in all_definitions(session) if d.spec.window is not None]
    if not windowed:
        return changed
    group_id = governance.group_id(session)
    for d in windowed:
        assert d.spec.window is not None
        local = _in_zone(session, d, when)
        before = d.spec.window.cutoff(since, local.zone)
        now = d.spec.window.cutoff(local.now, local.zone)
        if now <= before:
            continue
        left = (
            select(E.profile_id)
            .distinct()
            .where(*event_conditions(d, local, group_id))
            .where(E.at >= before, E.at < now)
        )
        ids = sorted(session.scalars(left))
        for part in in_chunks(ids):
            changed |= _apply(session, d, ids_in(part), local, group_id)
    if changed:
        log.info("traits.swept", extra={"profiles": len(changed)})
    return changed


def recompute(
    session: Session,
    ctx: Context,
    *,
    trait: str | None = None,
    bu: str | None = None,
    when: When | None = None,
    on_progress: Progress | None = None,
) -> int:
    """Rebuild every value of the chosen definitions (``trait``: by name; ``bu``: a unit's
    code; default: all the caller may manage), a page of profiles per set-based step. The
    number of values written (inserted, changed or removed): 0 when all were current, so a
    re-run has no effect. The caller commits."""
    chosen = managed_definitions(session, ctx, name=trait, bu=bu)
    return _rebuild(session, chosen, when or _when(ctx), on_progress)


def recompute_trait(
    session: Session,
    ctx: Context,
    trait_id: str,
    *,
    when: When | None = None,
    on_progress: Progress | None = None,
) -> int:
    """``recompute`` for one definition, by id (after it was created or changed)."""
    return _rebuild(
        session, [owned_definition(session, ctx, trait_id)], when or _when(ctx), on_progress
    )


def _rebuild(
    session: Session, chosen: Sequence[TraitDef], when: When, on_progress: Progress | None
) -> int:
    if not chosen:
        return 0
    group_id = governance.group_id(session)
    total = sum(_population(session, d, group_id) for d in chosen)
    done = written = 0
    for d in chosen:
        local = _in_zone(session, d, when)
        low: str | None = None
        while True:
            page = _page(session, d, group_id, low)
            is_last = len(page) < PAGE
            high = None if is_last else page[-1]
            changed = _apply(session, d, id_range(low, high), local, group_id)
            _follow(session, d, changed, when)
            written += len(changed)
            done += len(page)
            if on_progress is not None:
                on_progress(done, total)
            if is_last:
                break
            low = high
        log.info("trait.recomputed", extra={"trait_id": d.id, "bu_id": d.bu_id})
    return written


def _follow(session: Session, d: TraitDef, profile_ids: Collection[str], when: When) -> None:
    """Values changed outside the consumer (a definition created, changed or recomputed):
    the live segments and rule tags that read this trait follow at once, in the same
    transaction, for the profiles whose value moved."""
    if not profile_ids:
        return
    from oneloop.segments import live  # segments build on profiles

    session.flush()
    touch = live.Touch(keys=frozenset({d.id}))
    ids = sorted(profile_ids)
    live.refresh(session, dict.fromkeys(ids, "trait"), when, dict.fromkeys(ids, touch))


def _population(session: Session, d: TraitDef, group_id: str) -> int:
    if d.bu_id == group_id:
        return session.scalar(select(func.count()).select_from(ProfileRow)) or 0
    query = select(func.count()).where(ProfileUnitRow.bu_id == d.bu_id)
    return session.scalar(query) or 0


def _page(session: Session, d: TraitDef, group_id: str, low: str | None) -> list[str]:
    """The next ``PAGE`` profile ids after ``low`` in the database's own order (the range
    conditions use the same order, so no id is compared in Python)."""
    if d.bu_id == group_id:
        column: Any = ProfileRow.id  # Any: either table's id column
        query = select(column)
    else:
        column = ProfileUnitRow.profile_id
        query = select(column).where(ProfileUnitRow.bu_id == d.bu_id)
    if low is not None:
        query = query.where(column > low)
    return list(session.scalars(query.order_by(column).limit(PAGE)))


def _when(ctx: Context) -> When:
    return When(now=ctx.clock.now(), zone=zone_of(None))


def _in_zone(session: Session, d: TraitDef, when: When) -> When:
    """``when`` in the zone of the definition's unit: its window counts that unit's calendar
    days (a group-wide definition, the group's). Looked up once per definition."""
    return when.in_zone(governance.zone_of_unit(session, d.bu_id))


# --- reading --------------------------------------------------------------------------------


def traits_of(session: Session, profile_id: str, bu_ids: Sequence[str]) -> list[TraitValue]:
    """A profile's computed traits for these units (a unit's own definition of a name hides
    the group's), by name, then its golden-record fields (``golden:FIELD`` rows)."""
    names = {d.id: d.spec.name for d in definitions_for(session, bu_ids)}
    rows = session.execute(
        select(TraitRow.key, STORED_VALUE, TraitRow.updated_at).where(
            TraitRow.profile_id == profile_id,
            or_(TraitRow.key.in_(list(names)), TraitRow.key.startswith(GOLDEN)),
        )
    ).all()
    computed = [
        TraitValue(name=names[key], value=value, kind="computed", updated_at=at)
        for key, value, at in rows
        if key in names
    ]
    golden = [
        TraitValue(name=key.removeprefix(GOLDEN), value=value, kind="golden", updated_at=at)
        for key, value, at in rows
        if key.startswith(GOLDEN)
    ]
    return sorted(computed, key=lambda t: t.name) + sorted(golden, key=lambda t: t.name)


def shared_traits_of(
    session: Session, profile_id: str, shared: Mapping[str, set[str]], codes: Mapping[str, str]
) -> list[TraitValue]:
    """The computed traits other units share with the reader (``governance.sharing``): owner
    unit id → names (``*``: all), shown with the owner's code in ``shared_by``."""
    found: list[TraitValue] = []
    for owner, names in sorted(shared.items()):
        definitions = {
            d.id: d.spec.name
            for d in definitions_for(session, (owner,))
            if d.bu_id == owner and ("*" in names or d.spec.name in names)
        }
        if not definitions:
            continue
        rows = session.execute(
            select(TraitRow.key, STORED_VALUE, TraitRow.updated_at).where(
                TraitRow.profile_id == profile_id, TraitRow.key.in_(list(definitions))
            )
        )
        found.extend(
            TraitValue(
                name=definitions[key],
                value=value,
                kind="shared",
                updated_at=at,
                shared_by=codes.get(owner, owner),
            )
            for key, value, at in rows
        )
    return sorted(found, key=lambda t: (t.shared_by or "", t.name))


def values_of(session: Session, trait_id: str, profile_ids: Iterable[str]) -> dict[str, object]:
    """One trait's stored values for these profiles (absent: no value)."""
    found: dict[str, object] = {}
    for part in in_chunks(sorted(set(profile_ids))):
        for profile_id, value in session.execute(
            select(TraitRow.profile_id, STORED_VALUE).where(
                TraitRow.key == trait_id, TraitRow.profile_id.in_(list(part))
            )
        ):
            found[profile_id] = value
    return found
