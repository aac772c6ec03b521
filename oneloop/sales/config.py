"""A unit's sales configuration: settings (triggers, SLA, calendar, pool limits), teams of
reps, and the routing table — each a configuration change that is audited.

Everything here is per unit: a group-wide caller names the unit (``bu``), a unit's user acts
in their own. Reading needs ``sales.lead.read``; changing needs ``sales.config.manage``.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from oneloop.core.calendar import WorkCalendar, calendar_from_config, default_calendar
from oneloop.core.context import Context
from oneloop.core.db import forget, memo
from oneloop.core.errors import FieldError, NotFound, ValidationFailed
from oneloop.core.ids import new_id
from oneloop.core.paging import Column, Page, PageRequest, keyset_page
from oneloop.governance import audit, users
from oneloop.governance.service import get_business_unit, unit_codes
from oneloop.sales import routing
from oneloop.sales.models import (
    OPEN_STATUSES,
    LeadRow,
    RoutingTableRow,
    TeamMemberRow,
    TeamRow,
    UnitSettingsRow,
)
from oneloop.sales.schemas import (
    Member,
    MemberIn,
    RoutingTableInfo,
    SalesSettings,
    Team,
    TeamIn,
)

READ = "sales.lead.read"
CONFIGURE = "sales.config.manage"


def unit_id(session: Session, ctx: Context, bu: str | None) -> str:
    """The unit a call acts in: the caller's own, or the one a group-wide caller names."""
    if bu:
        return get_business_unit(session, ctx, bu).id
    if ctx.bu_id is None or ctx.is_group_wide:
        raise ValidationFailed(
            "name the business unit", [FieldError(("bu",), "a group-wide caller names a unit")]
        )
    return ctx.bu_id


# --- settings ---------------------------------------------------------------------------------


def settings_of(session: Session, bu_id: str) -> SalesSettings:
    """The unit's settings, read once per transaction (every lead of a batch reads them)."""

    def read() -> SalesSettings:
        row = session.get(UnitSettingsRow, bu_id)
        return SalesSettings() if row is None else SalesSettings.model_validate(row.document)

    return memo(session, ("sales.settings", bu_id), read)


def get_settings(session: Session, ctx: Context, bu: str | None = None) -> SalesSettings:
    ctx.require(READ)
    return settings_of(session, unit_id(session, ctx, bu))


def set_settings(
    session: Session, ctx: Context, document: object, bu: str | None = None
) -> SalesSettings:
    ctx.require(CONFIGURE)
    bu_id = unit_id(session, ctx, bu)
    try:
        settings = SalesSettings.model_validate(document)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc, "the sales settings are not valid") from None
    calendar_of(settings)  # a calendar that cannot be built is refused now, not at the first lead
    _check_triggers(session, bu_id, settings)
    row = session.get(UnitSettingsRow, bu_id)
    now = ctx.clock.now()
    stored = settings.model_dump(mode="json")
    if row is None:
        session.add(
            UnitSettingsRow(
                bu_id=bu_id, document=stored, version=1, updated_at=now, updated_by=ctx.user_id
            )
        )
    else:
        row.document, row.version = stored, row.version + 1
        row.updated_at, row.updated_by = now, ctx.user_id
    session.flush()
    forget(session, ("sales.settings", bu_id))
    audit.record(
        session, ctx, "sales.settings.changed", "sales_settings", bu_id, bu_id=bu_id,
        detail={"triggers": len(settings.triggers)},
    )  # fmt: skip
    return settings


def calendar_of(settings: SalesSettings) -> WorkCalendar:
    if settings.calendar is None:
        return default_calendar()
    try:
        return calendar_from_config(settings.calendar)
    except ValidationFailed as exc:
        raise ValidationFailed(
            exc.detail, [FieldError(("calendar", *e.loc), e.msg) for e in exc.errors]
        ) from exc


def _check_triggers(session: Session, bu_id: str, settings: SalesSettings) -> None:
    """A trigger naming a segment or score model the unit does not have would never fire:
    refused with its position, rather than silently creating no leads."""
    from oneloop.profiles import scores
    from oneloop.segments import service as segments

    errors = []
    for i, trigger in enumerate(settings.triggers):
        if trigger.kind == "segment_entered" and not segments.code_exists(
            session, bu_id, trigger.segment or ""
        ):
            errors.append(FieldError(("triggers", i, "segment"), "no such segment in the unit"))
        if trigger.kind == "score_at_least" and not scores.model_exists(
            session, bu_id, trigger.score or ""
        ):
            errors.append(FieldError(("triggers", i, "score"), "no such score model"))
    if errors:
        raise ValidationFailed("a trigger names something the unit does not have", errors)


# --- teams ------------------------------------------------------------------------------------


def create_team(session: Session, ctx: Context, data: TeamIn) -> Team:
    ctx.require(CONFIGURE)
    bu_id = unit_id(session, ctx, data.bu)
    if session.scalar(select(TeamRow.id).where(TeamRow.bu_id == bu_id, TeamRow.code == data.code)):
        raise ValidationFailed(
            "the code is taken", [FieldError(("code",), "a team with this code exists")]
        )
    now = ctx.clock.now()
    manager = _member_user(session, bu_id, data.manager, ("manager",)) if data.manager else None
    row = TeamRow(
        id=new_id(now),
        bu_id=bu_id,
        code=data.code,
        name_zh=data.name_zh,
        name_en=data.name_en,
        strategy=data.strategy,
        manager_user_id=manager,
        last_user_id=None,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(session, ctx, "sales.team.created", "sales_team", row.id, bu_id=bu_id)
    return _team(session, row)


def list_teams(session: Session, ctx: Context, bu: str | None = None) -> list[Team]:
    ctx.require(READ)
    bu_id = unit_id(session, ctx, bu)
    rows = session.scalars(select(TeamRow).where(TeamRow.bu_id == bu_id).order_by(TeamRow.code))
    return [_team(session, row) for row in rows]


TEAM_SORTS: dict[str, Column] = {
    "code": TeamRow.code,
    "name_en": TeamRow.name_en,
    "created_at": TeamRow.created_at,
}


def page_teams(
    session: Session, ctx: Context, page: PageRequest, bu: str | None = None
) -> Page[Team]:
    """``list_teams`` a keyset page at a time (issue 8)."""
    ctx.require(READ)
    query = select(TeamRow).where(TeamRow.bu_id == unit_id(session, ctx, bu))
    return keyset_page(
        session,
        query,
        page,
        TEAM_SORTS,
        TeamRow.id,
        lambda rows: [_team(session, row) for row in rows],
    )


def get_team(session: Session, ctx: Context, code: str, bu: str | None = None) -> Team:
    ctx.require(READ)
    return _team(session, team_row(session, unit_id(session, ctx, bu), code))


def set_member(
    session: Session, ctx: Context, code: str, data: MemberIn, bu: str | None = None
) -> Team:
    """Add a rep to a team, or change their capacity, weight or duty."""
    ctx.require(CONFIGURE)
    bu_id = unit_id(session, ctx, bu)
    team = team_row(session, bu_id, code)
    user_id = _member_user(session, bu_id, data.email, ("email",))
    row = session.get(TeamMemberRow, (team.id, user_id))
    if row is None:
        row = TeamMemberRow(team_id=team.id, user_id=user_id, bu_id=bu_id)
        session.add(row)
    row.capacity, row.weight, row.on_duty = data.capacity, data.weight, data.on_duty
    session.flush()
    audit.record(
        session, ctx, "sales.team.member_set", "sales_team", team.id, bu_id=bu_id,
        detail={"user": user_id, "capacity": data.capacity, "on_duty": data.on_duty},
    )  # fmt: skip
    return _team(session, team)


def remove_member(
    session: Session, ctx: Context, code: str, email: str, bu: str | None = None
) -> Team:
    ctx.require(CONFIGURE)
    bu_id = unit_id(session, ctx, bu)
    team = team_row(session, bu_id, code)
    user_id = _member_user(session, bu_id, email, ("email",))
    row = session.get(TeamMemberRow, (team.id, user_id))
    if row is None:
        raise NotFound("the user is not in this team", email=email)
    session.delete(row)
    session.flush()
    audit.record(
        session, ctx, "sales.team.member_removed", "sales_team", team.id, bu_id=bu_id,
        detail={"user": user_id},
    )  # fmt: skip
    return _team(session, team)


def team_row(session: Session, bu_id: str, code: str) -> TeamRow:
    row = session.scalar(select(TeamRow).where(TeamRow.bu_id == bu_id, TeamRow.code == code))
    if row is None:
        raise NotFound(f"no team with code {code!r}", code=code)
    return row


def member_ids(session: Session, team_id: str) -> list[str]:
    return list(
        session.scalars(
            select(TeamMemberRow.user_id)
            .where(TeamMemberRow.team_id == team_id)
            .order_by(TeamMemberRow.user_id)
        )
    )


def open_counts(session: Session, user_ids: Sequence[str]) -> dict[str, int]:
    """Open leads per rep: what capacity and least-loaded assignment read."""
    if not user_ids:
        return {}
    rows = session.execute(
        select(LeadRow.owner_user_id, func.count())
        .where(LeadRow.owner_user_id.in_(list(user_ids)), LeadRow.status.in_(OPEN_STATUSES))
        .group_by(LeadRow.owner_user_id)
    )
    return {user: count for user, count in rows}


def _team(session: Session, row: TeamRow) -> Team:
    members = list(
        session.scalars(
            select(TeamMemberRow)
            .where(TeamMemberRow.team_id == row.id)
            .order_by(TeamMemberRow.user_id)
        )
    )
    counts = open_counts(session, [m.user_id for m in members])
    people = {m.user_id: users.user_of(session, m.user_id) for m in members}
    return Team(
        id=row.id,
        bu=unit_codes(session).get(row.bu_id, row.bu_id),
        code=row.code,
        name_zh=row.name_zh,
        name_en=row.name_en,
        strategy=row.strategy,  # type: ignore[arg-type]  # stored from a Strategy
        manager_user_id=row.manager_user_id,
        members=[
            Member(
                user_id=m.user_id,
                email=people[m.user_id].email,
                display_name=people[m.user_id].display_name,
                capacity=m.capacity,
                weight=m.weight,
                on_duty=m.on_duty,
                open_leads=counts.get(m.user_id, 0),
            )
            for m in members
        ],
    )


def _member_user(session: Session, bu_id: str, email: str, field: tuple[str, ...]) -> str:
    """A user who holds a role in the unit (or the group): nobody else may own its leads."""
    user = users.user_in_unit(session, email, bu_id)
    if user is None:
        raise ValidationFailed(
            "the user cannot work in this unit",
            [FieldError(field, "no active user with this email holds a role in the unit")],
        )
    return user.id


# --- routing table ----------------------------------------------------------------------------


def upload_table(
    session: Session, ctx: Context, xml: bytes, bu: str | None = None
) -> RoutingTableInfo:
    """A new version of the unit's routing table, validated before it is stored: the newest
    version routes from the next lead on; older ones are kept for the record."""
    ctx.require(CONFIGURE)
    bu_id = unit_id(session, ctx, bu)
    table = routing.parse_table(xml)
    _check_teams(session, bu_id, table)
    version = (
        session.scalar(
            select(func.max(RoutingTableRow.version)).where(RoutingTableRow.bu_id == bu_id)
        )
        or 0
    ) + 1
    now = ctx.clock.now()
    row = RoutingTableRow(
        id=new_id(now),
        bu_id=bu_id,
        version=version,
        name=table.name,
        xml=xml.decode("utf-8"),
        created_at=now,
        created_by=ctx.user_id,
    )
    session.add(row)
    session.flush()
    forget(session, ("sales.table", bu_id))
    audit.record(
        session, ctx, "sales.routing.uploaded", "sales_routing_table", row.id, bu_id=bu_id,
        detail={"version": version, "rules": len(table.rules)},
    )  # fmt: skip
    return _table_info(session, row, len(table.rules))


def current_table(session: Session, ctx: Context, bu: str | None = None) -> RoutingTableRow:
    ctx.require(READ)
    row = table_row(session, unit_id(session, ctx, bu))
    if row is None:
        raise NotFound("the unit has no routing table yet")
    return row


def table_info(session: Session, ctx: Context, bu: str | None = None) -> RoutingTableInfo:
    row = current_table(session, ctx, bu)
    return _table_info(session, row, len(loaded_table(row).rules))


def table_row(session: Session, bu_id: str) -> RoutingTableRow | None:
    """The unit's newest table, read once per transaction."""
    return memo(
        session,
        ("sales.table", bu_id),
        lambda: session.scalar(
            select(RoutingTableRow)
            .where(RoutingTableRow.bu_id == bu_id)
            .order_by(RoutingTableRow.version.desc())
            .limit(1)
        ),
    )


_PARSED: dict[str, routing.RoutingTable] = {}


def loaded_table(row: RoutingTableRow) -> routing.RoutingTable:
    """Parsed once per stored version (rows never change: a new upload is a new row)."""
    table = _PARSED.get(row.id)
    if table is None:
        table = _PARSED[row.id] = routing.parse_table(row.xml.encode("utf-8"))
    return table


def _check_teams(session: Session, bu_id: str, table: routing.RoutingTable) -> None:
    known = set(session.scalars(select(TeamRow.code).where(TeamRow.bu_id == bu_id)))
    errors = [
        FieldError(("rules", rule.row, "team"), f"no team with code {team!r} in the unit")
        for rule in table.rules
        if (team := rule.outputs.get("team")) not in known
    ]
    if errors:
        raise ValidationFailed("the table routes to teams the unit does not have", errors)


def _table_info(session: Session, row: RoutingTableRow, rules: int) -> RoutingTableInfo:
    return RoutingTableInfo(
        id=row.id,
        bu=unit_codes(session).get(row.bu_id, row.bu_id),
        version=row.version,
        name=row.name,
        rules=rules,
        created_at=row.created_at,
        created_by=row.created_by,
    )
