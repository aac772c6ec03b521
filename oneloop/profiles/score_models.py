"""Score models as configuration: list, show, create, change, delete, recompute.

A model belongs to one unit (a unit's model counts that unit's events only) or to the group
(its id as ``bu_id``: every unit's events). Saving a model rebuilds its scores at once, in the
same transaction, so the stored scores always follow the model in force; the version goes up
with each change. The caller commits.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from oneloop.core.context import Context
from oneloop.core.errors import Conflict, NotFound
from oneloop.core.ids import new_id
from oneloop.core.paging import Column, Page, PageRequest, keyset_page
from oneloop.governance import audit
from oneloop.governance import service as governance
from oneloop.profiles import scores, tags
from oneloop.profiles.filters import When, invalid
from oneloop.profiles.models import ProfileTagRow, ScoreHistoryRow, ScoreModelRow, ScoreRow
from oneloop.profiles.score_rules import ModelDoc, parse_model


class ScoreModel(BaseModel):
    """A stored model; ``definition`` is the validated document."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    bu_id: str
    code: str
    name_zh: str
    name_en: str
    description: str
    definition: dict[str, Any]  # Any: the model document (see score_rules)
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime


def list_models(session: Session, ctx: Context, *, bu: str | None = None) -> list[ScoreModel]:
    """The models in the caller's scope (its unit's and the group's), or in unit ``bu``."""
    ctx.require("profiles.read")
    query = select(ScoreModelRow).order_by(ScoreModelRow.code, ScoreModelRow.bu_id)
    query = governance.in_scope(query, ScoreModelRow.bu_id, session, ctx, bu)
    return [ScoreModel.model_validate(row) for row in session.scalars(query)]


def get_model(session: Session, ctx: Context, ref: str, *, bu: str | None = None) -> ScoreModel:
    """A model by id, or by code (in unit ``bu``, else the caller's unit, then the group)."""
    ctx.require("profiles.read")
    return ScoreModel.model_validate(_row(session, ctx, ref, bu))


def create_model(
    session: Session,
    ctx: Context,
    document: object,
    *,
    bu: str | None = None,
    when: When | None = None,
    on_progress: scores.Progress | None = None,
) -> ScoreModel:
    """Store a model in unit ``bu`` (default: the caller's own) and score every profile."""
    ctx.require("profiles.admin")
    doc = parse_model(document)
    unit = governance.unit_id(session, ctx, bu)
    _check_tags(session, doc, _units(session, unit))
    taken = select(ScoreModelRow.id).where(
        ScoreModelRow.bu_id == unit, ScoreModelRow.code == doc.code
    )
    if session.scalar(taken) is not None:
        raise Conflict(f"a score model {doc.code!r} already exists here", code=doc.code)
    now = ctx.clock.now()
    row = ScoreModelRow(
        id=new_id(now),
        bu_id=unit,
        code=doc.code,
        name_zh=doc.name_zh,
        name_en=doc.name_en,
        description=doc.description,
        definition=dict(doc.document),
        version=1,
        created_at=now,
        created_by=str(ctx.user_id),
        updated_at=now,
    )
    session.add(row)
    session.flush()
    scores.rebuild_models(
        session,
        scores.load_models(session, [row]),
        when or scores.when_of(ctx),
        on_progress=on_progress,
    )
    audit.record(session, ctx, "score_model.created", "score_model", row.id, bu_id=row.bu_id)
    return ScoreModel.model_validate(row)


def update_model(
    session: Session,
    ctx: Context,
    ref: str,
    document: object,
    *,
    bu: str | None = None,
    when: When | None = None,
    on_progress: scores.Progress | None = None,
) -> ScoreModel:
    """Store a new version of a model and rebuild its scores. The code stays: tags the model
    set, segment rules and commands name it."""
    ctx.require("profiles.admin")
    row = _own_row(session, ctx, ref, bu)
    doc = parse_model(document)
    if doc.code != row.code:
        raise invalid(("code",), f"stays {row.code!r}; create a new model for a new code")
    _check_tags(session, doc, _units(session, row.bu_id))
    before = scores.load_models(session, [row])[0]
    row.name_zh, row.name_en, row.description = doc.name_zh, doc.name_en, doc.description
    row.definition = dict(doc.document)
    row.version += 1
    row.updated_at = ctx.clock.now()
    session.flush()
    when = when or scores.when_of(ctx)
    model = scores.load_models(session, [row])[0]
    kept = {t.tag for t in model.doc.thresholds}
    dropped = [t.tag for t in before.doc.thresholds if t.tag not in kept]
    changed = _drop_tags(session, before, dropped, when.now, "threshold removed from the model")
    scores.rebuild_models(session, [model], when, on_progress=on_progress, changed_before=changed)
    detail: dict[str, audit.DetailValue] = {"version": row.version}
    audit.record(
        session, ctx, "score_model.updated", "score_model", row.id, detail=detail, bu_id=row.bu_id
    )
    return ScoreModel.model_validate(row)


def delete_model(
    session: Session, ctx: Context, ref: str, *, bu: str | None = None, when: When | None = None
) -> None:
    """Delete a model with its scores and history, and take away the tags it set."""
    ctx.require("profiles.admin")
    row = _own_row(session, ctx, ref, bu)
    from oneloop.segments.service import require_unused  # segments build on profiles

    require_unused(session, f"score model {row.code!r}", lambda b: row.id in b.reads.models)
    model = scores.load_models(session, [row])[0]
    when = when or scores.when_of(ctx)
    changed = _drop_tags(
        session, model, [t.tag for t in model.doc.thresholds], when.now, "score model deleted"
    )
    changed.update(session.scalars(select(ScoreRow.profile_id).where(ScoreRow.model_id == row.id)))
    session.execute(delete(ScoreHistoryRow).where(ScoreHistoryRow.model_id == row.id))
    session.execute(delete(ScoreRow).where(ScoreRow.model_id == row.id))
    session.delete(row)
    scores.follow(session, changed, when)
    audit.record(session, ctx, "score_model.deleted", "score_model", row.id, bu_id=row.bu_id)


def recompute_model(
    session: Session,
    ctx: Context,
    ref: str,
    *,
    bu: str | None = None,
    when: When | None = None,
    on_progress: scores.Progress | None = None,
) -> int:
    """Rebuild one model's scores from the events; the number of profiles rebuilt."""
    ctx.require("profiles.admin")
    row = _own_row(session, ctx, ref, bu)
    return scores.rebuild_models(
        session,
        scores.load_models(session, [row]),
        when or scores.when_of(ctx),
        on_progress=on_progress,
    )


def _row(session: Session, ctx: Context, ref: str, bu: str | None) -> ScoreModelRow:
    """Another unit's model is NotFound: we do not confirm that it exists."""
    row = session.get(ScoreModelRow, ref) if bu is None else None
    if row is None:
        units = governance.scope_of(session, ctx, bu)
        found = {
            r.bu_id: r
            for r in session.scalars(
                select(ScoreModelRow).where(
                    ScoreModelRow.code == ref, ScoreModelRow.bu_id.in_(units)
                )
            )
        }
        row = next((found[u] for u in units if u in found), None)
    if row is None or not governance.may_read(session, ctx, row.bu_id):
        raise NotFound(f"no score model {ref!r}", model=ref)
    return row


def _own_row(session: Session, ctx: Context, ref: str, bu: str | None) -> ScoreModelRow:
    """A model the caller may change: a unit's users change their unit's models, the group's
    models are HQ's."""
    row = _row(session, ctx, ref, bu)
    if not governance.may_change(ctx, row.bu_id):
        raise NotFound(f"no score model {ref!r}", model=ref)
    return row


def _units(session: Session, unit: str) -> tuple[str, ...]:
    group = governance.group_id(session)
    return (unit,) if unit == group else (unit, group)


def _check_tags(session: Session, doc: ModelDoc, units: tuple[str, ...]) -> None:
    """Each threshold names a tag the model's unit can use, and one people (or a model)
    set: a rule tag is set by its own rule."""
    for i, threshold in enumerate(doc.thresholds):
        tag = tags.tag_by_code(session, threshold.tag, units)
        if tag is None:
            raise invalid(
                ("thresholds", i, "tag"),
                f"no tag {threshold.tag!r} in this unit or the group; create it first",
            )
        if tag.kind == "rule":
            raise invalid(
                ("thresholds", i, "tag"),
                f"{threshold.tag!r} is set by its own rule; a threshold needs a manual tag",
            )


def _drop_tags(
    session: Session, model: scores.Model, codes: Collection[str], now: datetime, reason: str
) -> set[str]:
    """Take away the tags ``codes`` wherever this model set them; the profiles that lost one."""
    lost: set[str] = set()
    for code in codes:
        tag = tags.tag_by_code(session, code, model.units)
        if tag is None:
            continue
        holders = session.scalars(
            select(ProfileTagRow.profile_id).where(
                ProfileTagRow.tag_id == tag.id,
                ProfileTagRow.source == scores.SOURCE,
                ProfileTagRow.set_by == model.by,
            )
        ).all()
        for profile_id in holders:
            tags.unassign(
                session,
                profile_id=profile_id,
                tag=tag,
                source=scores.SOURCE,
                by=model.by,
                reason=reason,
                now=now,
            )
            lost.add(profile_id)
    return lost


MODEL_SORTS: dict[str, Column] = {
    "code": ScoreModelRow.code,
    "created_at": ScoreModelRow.created_at,
    "updated_at": ScoreModelRow.updated_at,
}


def page_models(
    session: Session,
    ctx: Context,
    page: PageRequest,
    *,
    bu: str | None = None,
    q: str | None = None,
) -> Page[ScoreModel]:
    """``list_models`` a keyset page at a time (issue 8); ``q`` matches code or names."""
    ctx.require("profiles.read")
    query = governance.in_scope(select(ScoreModelRow), ScoreModelRow.bu_id, session, ctx, bu)
    if q:
        query = query.where(
            ScoreModelRow.code.icontains(q, autoescape=True)
            | ScoreModelRow.name_zh.icontains(q, autoescape=True)
            | ScoreModelRow.name_en.icontains(q, autoescape=True)
        )
    return keyset_page(
        session,
        query,
        page,
        MODEL_SORTS,
        ScoreModelRow.id,
        lambda rows: [ScoreModel.model_validate(r) for r in rows],
    )
