"""Sharing policies between business units: the data that lets one unit read another's.

Each unit keeps its data to itself by default; its admins (or the group's) may let another
unit read some of it, named: "Service may read Appliances' order summary traits, not its raw
events" is a policy ``traits: [orders_90d, revenue_90d]`` from appliances to service. The
profiles domain asks ``readable`` which units' definitions and events to add to what a
unit's user sees of a customer they already see.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, select, true
from sqlalchemy.orm import Session

from oneloop.core.context import Context
from oneloop.core.db import forget_all, memo
from oneloop.core.errors import FieldError, NotFound, ValidationFailed
from oneloop.core.ids import new_id
from oneloop.core.paging import Column, Page, PageRequest, keyset_page
from oneloop.governance import audit
from oneloop.governance.models import BusinessUnitRow, SharingPolicyRow
from oneloop.governance.schemas import Resource, SharingPolicy, SharingPolicyIn
from oneloop.governance.service import get_business_unit, unit_row

MANAGE = "governance.sharing.manage"
ALL = "*"
SHARED = "sharing.readable"  # memo key, with the reader unit


def create_policy(session: Session, ctx: Context, data: SharingPolicyIn) -> SharingPolicy:
    """A unit's admins share their own unit's data; the group's admins any unit's."""
    ctx.require(MANAGE)
    owner = get_business_unit(session, ctx, data.owner)
    reader = _any_unit(session, data.reader)
    if owner.id == reader.id or reader.parent_id is None:
        raise ValidationFailed(
            "a policy shares with another unit",
            [FieldError(("reader",), "name another business unit (the group already sees all)")],
        )
    now = ctx.clock.now()
    row = SharingPolicyRow(
        id=new_id(now),
        owner_bu_id=owner.id,
        reader_bu_id=reader.id,
        resource=data.resource,
        names=sorted(set(data.names)),
        note=data.note,
        created_at=now,
        created_by=ctx.user_id,
    )
    session.add(row)
    session.flush()
    forget_all(session, SHARED)
    audit.record(
        session,
        ctx,
        "sharing.created",
        "sharing_policy",
        row.id,
        detail={"resource": row.resource, "names": row.names, "reader": reader.code},
        bu_id=owner.id,
    )
    return SharingPolicy.model_validate(row)


def list_policies(session: Session, ctx: Context) -> list[SharingPolicy]:
    """The policies a unit gives and receives; the group's every one."""
    ctx.require("governance.bu.read")
    query = _visible(ctx).order_by(SharingPolicyRow.created_at, SharingPolicyRow.id)
    return [SharingPolicy.model_validate(r) for r in session.scalars(query)]


POLICY_SORTS: dict[str, Column] = {
    "created_at": SharingPolicyRow.created_at,
    "resource": SharingPolicyRow.resource,
}


def page_policies(
    session: Session, ctx: Context, page: PageRequest, *, resource: str | None = None
) -> Page[SharingPolicy]:
    """``list_policies`` a keyset page at a time (issue 8); ``resource``: of that kind only."""
    ctx.require("governance.bu.read")
    query = _visible(ctx)
    if resource is not None:
        query = query.where(SharingPolicyRow.resource == resource)
    return keyset_page(
        session,
        query,
        page,
        POLICY_SORTS,
        SharingPolicyRow.id,
        lambda rows: [SharingPolicy.model_validate(r) for r in rows],
    )


def _visible(ctx: Context) -> Select[tuple[SharingPolicyRow]]:
    query = select(SharingPolicyRow)
    if ctx.is_group_wide:
        return query
    return query.where(
        (SharingPolicyRow.owner_bu_id == ctx.bu_id) | (SharingPolicyRow.reader_bu_id == ctx.bu_id)
    )


def delete_policy(session: Session, ctx: Context, policy_id: str) -> None:
    """Only the owner's admins (or the group) withdraw what the owner shares."""
    ctx.require(MANAGE)
    row = session.get(SharingPolicyRow, policy_id)
    if row is None or not (ctx.is_group_wide or row.owner_bu_id == ctx.bu_id):
        raise NotFound(f"no sharing policy {policy_id!r}", policy_id=policy_id)
    session.delete(row)
    session.flush()
    forget_all(session, SHARED)
    audit.record(
        session, ctx, "sharing.deleted", "sharing_policy", policy_id, bu_id=row.owner_bu_id
    )


def allows(shared: dict[str, set[str]], owner_bu_id: str, name: str) -> bool:
    names = shared.get(owner_bu_id, set())
    return ALL in names or name in names


def readable(session: Session, ctx: Context, resource: Resource) -> dict[str, set[str]]:
    """What other units share of ``resource`` with the caller's unit (nothing for the group,
    which reads everything anyway, and for the platform itself); read once per transaction,
    as every part of a 360 view asks."""
    if ctx.is_group_wide or (reader := ctx.bu_id) is None:
        return {}
    return memo(session, (SHARED, reader), lambda: _shared_with_unit(session, reader)).get(
        resource, {}
    )


def _shared_with_unit(session: Session, reader_bu_id: str) -> dict[str, dict[str, set[str]]]:
    """Resource → owner unit id → the names shared with the reader: every resource at once."""
    found: dict[str, dict[str, set[str]]] = {}
    rows = session.execute(
        select(
            SharingPolicyRow.resource, SharingPolicyRow.owner_bu_id, SharingPolicyRow.names
        ).where(SharingPolicyRow.reader_bu_id == reader_bu_id)
    )
    for resource, owner, names in rows:
        found.setdefault(resource, {}).setdefault(owner, set()).update(names)
    return found


def events_condition(
    shared: dict[str, set[str]], bu_column: ColumnElement[str], name_column: ColumnElement[str]
) -> list[ColumnElement[bool]]:
    """One condition per owner unit: its events of the shared names (all of them for ``*``)."""
    return [
        (bu_column == owner) & (true() if ALL in names else name_column.in_(sorted(names)))
        for owner, names in sorted(shared.items())
    ]


def _any_unit(session: Session, code: str) -> BusinessUnitRow:
    """The reader is named by code whoever creates the policy: a unit's admins share with a
    unit they otherwise cannot see, so the lookup is not the caller's."""
    try:
        return unit_row(session, code)
    except NotFound:
        raise ValidationFailed(
            "unknown unit", [FieldError(("reader",), f"no business unit {code!r}")]
        ) from None
