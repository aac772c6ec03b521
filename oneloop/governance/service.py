"""Business units: the tenancy every other domain hangs off (users are in ``users.py``).

The caller commits; these functions only flush, so a CLI command or a request can group them.
"""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from oneloop.core.context import Context
from oneloop.core.db import SelectT, forget, in_tenancy, memo
from oneloop.core.errors import Conflict, NotFound
from oneloop.core.ids import new_id
from oneloop.core.paging import Column, Page, PageRequest, keyset_page
from oneloop.governance import audit
from oneloop.governance.models import DEFAULT_TIME_ZONE, BusinessUnitRow
from oneloop.governance.schemas import (
    BusinessUnit,
    BusinessUnitIn,
    BusinessUnitPatch,
)

log = logging.getLogger(__name__)


# Memo keys (core.db.memo): read once per transaction.
GROUP_ID = "governance.group_id"
UNIT_CODES = "governance.unit_codes"


def create_business_unit(session: Session, ctx: Context, data: BusinessUnitIn) -> BusinessUnit:
    """The first unit without a parent is the group (HQ); there is exactly one group. A unit
    given no time zone takes its parent's, so that a group abroad need not repeat its zone;
    it is copied, and a later change of the parent's zone leaves the unit's as it is."""
    ctx.require("governance.bu.create")
    if session.scalar(select(BusinessUnitRow.id).where(BusinessUnitRow.code == data.code)):
        raise Conflict(f"a business unit with code {data.code!r} already exists", code=data.code)
    if data.parent is None:
        if session.scalar(select(BusinessUnitRow.id).where(BusinessUnitRow.parent_id.is_(None))):
            raise Conflict(
                "the group already exists; give --parent to create a business unit under it",
                field="parent",
            )
        parent_id, zone = None, data.time_zone or DEFAULT_TIME_ZONE
    else:
        parent = unit_row(session, data.parent)
        parent_id, zone = parent.id, data.time_zone or parent.time_zone
    now = ctx.clock.now()
    row = BusinessUnitRow(
        id=new_id(now),
        code=data.code,
        name_zh=data.name_zh,
        name_en=data.name_en,
        kind="group" if parent_id is None else "bu",
        parent_id=parent_id,
        time_zone=zone,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    forget(session, UNIT_CODES)
    audit.record(session, ctx, "business_unit.created", "business_unit", row.id)
    return BusinessUnit.model_validate(row)


def get_business_unit(session: Session, ctx: Context, code: str) -> BusinessUnit:
    """Another unit than the caller's own is NotFound for a BU user: we do not confirm it exists."""
    ctx.require("governance.bu.read")
    row = unit_row(session, code)
    if not ctx.is_group_wide and row.id != ctx.bu_id:
        raise NotFound(f"no business unit with code {code!r}", code=code)
    return BusinessUnit.model_validate(row)


def update_business_unit(
    session: Session, ctx: Context, code: str, data: BusinessUnitPatch
) -> BusinessUnit:
    """Change the names or the time zone; a field left out stays. A new zone applies from the
    next evaluation on: what was computed before (a trait's window, a score's capped awards,
    a segment over plain dates) stays until recomputed (``oneloop traits recompute``,
    ``oneloop scores recompute``, ``oneloop segments evaluate``)."""
    ctx.require("governance.bu.update")
    row = unit_row(session, code)
    if not ctx.is_group_wide and row.id != ctx.bu_id:
        raise NotFound(f"no business unit with code {code!r}", code=code)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    for name, value in changes.items():
        setattr(row, name, value)
    if changes:
        row.updated_at = ctx.clock.now()
        session.flush()
        log.info("bu.updated", extra={"bu_id": row.id, "fields": sorted(changes)})
        audit.record(
            session,
            ctx,
            "business_unit.updated",
            "business_unit",
            row.id,
            detail={"fields": sorted(changes)},
        )
    return BusinessUnit.model_validate(row)


def list_business_units(session: Session, ctx: Context) -> list[BusinessUnit]:
    """The group first, then its units by code; a BU user sees only their own unit."""
    ctx.require("governance.bu.read")
    query = select(BusinessUnitRow).order_by(
        BusinessUnitRow.parent_id.is_not(None), BusinessUnitRow.code
    )
    query = in_tenancy(query, BusinessUnitRow.id, ctx)
    return [BusinessUnit.model_validate(r) for r in session.scalars(query)]


UNIT_SORTS: dict[str, Column] = {
    "code": BusinessUnitRow.code,
    "name_en": BusinessUnitRow.name_en,
    "created_at": BusinessUnitRow.created_at,
}


def page_business_units(session: Session, ctx: Context, page: PageRequest) -> Page[BusinessUnit]:
    """``list_business_units`` a keyset page at a time (issue 8), in the asked order (the
    group is a unit like the others there: ``kind`` tells it apart)."""
    ctx.require("governance.bu.read")
    query = in_tenancy(select(BusinessUnitRow), BusinessUnitRow.id, ctx)
    return keyset_page(
        session,
        query,
        page,
        UNIT_SORTS,
        BusinessUnitRow.id,
        lambda rows: [BusinessUnit.model_validate(r) for r in rows],
    )


def unit_codes(session: Session) -> dict[str, str]:
    """Every unit's id → its code (a handful of rows), for showing ids as codes; read once
    per transaction."""

    def read() -> dict[str, str]:
        rows = session.execute(select(BusinessUnitRow.id, BusinessUnitRow.code))
        return {unit: code for unit, code in rows}

    return memo(session, UNIT_CODES, read)


def group_id(session: Session) -> str:
    """The group's (HQ's) id: definitions with it as their unit apply group-wide."""

    def read() -> str:
        found = session.scalar(
            select(BusinessUnitRow.id).where(BusinessUnitRow.parent_id.is_(None))
        )
        if found is None:
            raise NotFound("the group does not exist yet; create it with `oneloop bu create`")
        return found

    return memo(session, GROUP_ID, read)


def zone_of_unit(session: Session, bu_id: str) -> ZoneInfo:
    """The zone a unit's rules count calendar days in (issue 6: times are stored in UTC;
    "the last 7 days" and a plain date mean the unit's local days). One primary-key read:
    callers look it up once per rule, definition or model, never per profile."""
    name = session.scalar(select(BusinessUnitRow.time_zone).where(BusinessUnitRow.id == bu_id))
    if name is None:
        raise NotFound(f"no business unit {bu_id!r}", bu_id=bu_id)
    return ZoneInfo(name)


def scope_of(session: Session, ctx: Context, code: str | None = None) -> tuple[str, ...]:
    """The units whose definitions apply for ``ctx`` (or for the unit ``code`` a group-wide
    caller names): the unit first, then the group. A unit's own definition of a name wins."""
    group = group_id(session)
    unit = unit_id(session, ctx, code) if code is not None else ctx.bu_id or group
    return (unit,) if unit == group else (unit, group)


def unit_id(session: Session, ctx: Context, code: str | None) -> str:
    """The unit a definition is created in: the named one (``code``), else the caller's own,
    else (a group-wide caller naming none) the group."""
    if code is not None:
        return get_business_unit(session, ctx, code).id
    return ctx.bu_id or group_id(session)


def in_scope(
    query: SelectT,
    bu_column: ColumnElement[str],
    session: Session,
    ctx: Context,
    bu: str | None = None,
) -> SelectT:
    """Definitions (tags, traits, score models …) the caller may read: those of unit ``bu``
    when named; else a unit's users their unit's and the group's, the group all of them."""
    if bu is not None:
        return query.where(bu_column == unit_id(session, ctx, bu))
    if ctx.is_group_wide:
        return query
    return query.where(bu_column.in_(scope_of(session, ctx)))


def may_read(session: Session, ctx: Context, bu_id: str) -> bool:
    """A definition of unit ``bu_id`` is readable by ``ctx`` (see ``in_scope``)."""
    return ctx.is_group_wide or bu_id in scope_of(session, ctx)


def may_change(ctx: Context, bu_id: str) -> bool:
    """A unit's users change their unit's definitions; the group's are HQ's to change."""
    return ctx.is_group_wide or bu_id == ctx.bu_id


def unit_row(session: Session, code: str) -> BusinessUnitRow:
    row = session.scalar(select(BusinessUnitRow).where(BusinessUnitRow.code == code))
    if row is None:
        raise NotFound(f"no business unit with code {code!r}", code=code)
    return row
