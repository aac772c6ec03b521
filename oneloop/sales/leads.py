"""Leads: created when a trigger fires, routed to a team and a rep by the unit's decision
table, or left in the pool (公海) for reps to claim; then worked to conversion or closed.

A customer has at most one open lead per unit: a second trigger enriches the open lead (its
reason is added) instead of making another, and the database's partial unique index holds
that even when two triggers race. Every step is a row of the lead's activity, and the steps
a customer's timeline should show (created, assigned, contacted, converted …) are events in
the log, written through the unit's internal source.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from oneloop.core.calendar import add_working_time
from oneloop.core.context import Context
from oneloop.core.db import memo
from oneloop.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from oneloop.core.ids import new_id
from oneloop.core.paging import Column, Page, PageRequest, keyset_page
from oneloop.core.sla import SlaPolicy, sla_deadlines
from oneloop.governance import audit, users
from oneloop.governance import service as governance
from oneloop.profiles import scores
from oneloop.profiles import service as profiles
from oneloop.profiles import traits as profile_traits
from oneloop.sales import assign, config, notices, outcomes, routing
from oneloop.sales.models import (
    OPEN_STATUSES,
    LeadActivityRow,
    LeadRow,
    TeamMemberRow,
    TeamRow,
)
from oneloop.sales.schemas import Activity, LeadOut, LeadPage, SalesSettings, TeamLoad

log = logging.getLogger(__name__)

READ = config.READ
READ_ALL = "sales.lead.read_all"
WORK = "sales.lead.work"
MANAGE = "sales.lead.manage"

MAX_REASONS = 20
# SLA states a manager chases: the first contact is due soon, or overdue.
AT_RISK = ("warning", "breached")
ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
MAX_PAGE = 200
# Facts a routing table may test (docs/routing.md), read from the customer's traits.
FIRMOGRAPHICS = ("province", "city", "industry", "employees", "company", "product_line")


@dataclass(frozen=True)
class Hit:
    """A trigger fired for a customer in a unit."""

    bu_id: str
    profile_id: str
    source: str
    at: datetime
    detail: dict[str, Any] = field(default_factory=dict)  # Any: JSON
    campaign: str | None = None


# --- creating and routing ---------------------------------------------------------------------


def open_lead(session: Session, hit: Hit, now: datetime, actor: str = "system") -> LeadRow:
    """The customer's open lead in the unit: made and routed, or the existing one enriched."""
    existing = _open_lead_of(session, hit.bu_id, hit.profile_id)
    if existing is not None:
        _enrich(session, existing, hit, now, actor)
        return existing
    settings = config.settings_of(session, hit.bu_id)
    calendar = config.calendar_of(settings)
    deadlines = sla_deadlines(_policy(settings), calendar, now)
    lead = LeadRow(
        id=new_id(now),
        bu_id=hit.bu_id,
        profile_id=hit.profile_id,
        status="new",
        owner_user_id=None,
        team_id=None,
        reasons=[_reason(hit)],
        context=_context(session, hit),
        routing={},
        source=hit.source,
        campaign=hit.campaign,
        triggered_at=hit.at,
        created_at=now,
        updated_at=now,
        sla_due_at=deadlines.due_at,
        sla_warn_at=deadlines.warn_at,
        sla_reassign_at=deadlines.reassign_at,
        sla_state="on_track",
        sla_next_at=min(deadlines.warn_at, deadlines.due_at),
        recall_at=None,
        last_touched_at=now,
    )
    try:
        with session.begin_nested():
            session.add(lead)
            session.flush()
    except IntegrityError:
        # Another trigger made the lead first (the partial unique index): enrich that one.
        if lead in session:
            session.expunge(lead)
        raced = _open_lead_of(session, hit.bu_id, hit.profile_id)
        if raced is None:
            raise
        _enrich(session, raced, hit, now, actor)
        return raced
    record_activity(session, lead, "created", actor, now, {"source": hit.source, **hit.detail})
    route(session, lead, now, actor=actor, settings=settings, announce=False)
    # one event for the lead's birth and its first routing, not two
    born = {"source": hit.source, "status": lead.status, **_public(lead.routing)}
    outcomes.emit(session, lead, "Lead Created", now, born)
    return lead


def route(
    session: Session,
    lead: LeadRow,
    now: datetime,
    *,
    actor: str = "system",
    settings: SalesSettings | None = None,
    exclude: frozenset[str] = frozenset(),
    announce: bool = True,
) -> None:
    """Choose the lead's team by the unit's table and its rep by the team's strategy; with no
    matching row, no table, or nobody available, the lead goes to the pool. ``announce``:
    write the outcome to the log (a new lead's birth event says it instead)."""
    settings = settings or config.settings_of(session, lead.bu_id)
    table_row = config.table_row(session, lead.bu_id)
    if table_row is None:
        _to_pool(session, lead, now, actor, "routed", {"why": "no routing table"}, announce)
        return
    table = config.loaded_table(table_row)
    record: dict[str, Any] = {"table_version": table_row.version}  # Any: JSON
    try:
        decision = routing.decide(table, facts_of(session, lead))
    except routing.OverlappingRules as exc:  # a UNIQUE table with two rows for this lead
        _to_pool(session, lead, now, actor, "routed", {**record, "why": exc.detail}, announce)
        return
    if decision is None:
        why = "no rule matched"
        _to_pool(session, lead, now, actor, "routed", {**record, "why": why}, announce)
        return
    record |= {
        "rule_row": decision.rule_row,
        "rule_id": decision.rule_id,
        "rule": decision.annotation,
        "team": decision.team,
    }
    team = _locked_team(session, lead.bu_id, decision.team)
    if team is None:
        why = "the team is gone"
        _to_pool(session, lead, now, actor, "routed", {**record, "why": why}, announce)
        return
    reps = _reps(session, team.id, settings, exclude)
    pick = assign.pick(team.strategy, reps, team.last_user_id)  # type: ignore[arg-type]
    if pick is None:
        why = "nobody in the team is on duty with room"
        record |= {"why": why}
        _to_pool(session, lead, now, actor, "routed", record, announce, team_id=team.id)
        return
    team.last_user_id = pick.user_id
    record |= {"strategy": pick.strategy, "reason": pick.reason}
    assign_to(
        session, lead, pick.user_id, now, actor, "assigned", record,
        team_id=team.id, settings=settings, announce=announce,
    )  # fmt: skip


def facts_of(session: Session, lead: LeadRow) -> dict[str, object]:
    """What a routing table may test about the lead's customer: the unit's (and the group's)
    traits by name, each score by its model's code, and the lead's source."""
    found, scored = _seen(session, lead.bu_id, lead.profile_id)
    facts: dict[str, object] = dict(found)
    for score in scored:
        facts.setdefault(score.code, score.value)
    facts.setdefault("score", facts.get("intent"))
    facts["source"] = lead.source
    return facts


def assign_to(
    session: Session,
    lead: LeadRow,
    user_id: str,
    now: datetime,
    actor: str,
    kind: str,
    record: dict[str, Any],  # Any: JSON
    *,
    team_id: str | None = None,
    settings: SalesSettings | None = None,
    announce: bool = True,
) -> None:
    settings = settings or config.settings_of(session, lead.bu_id)
    lead.owner_user_id = user_id
    lead.status = "assigned"
    lead.team_id = team_id or lead.team_id
    lead.routing = record
    lead.assigned_at = lead.assigned_at or now
    if lead.team_id is not None:
        member = session.get(TeamMemberRow, (lead.team_id, user_id))
        if member is not None:
            member.last_assigned_at = now
    lead.recall_at = _recall_at(settings, now)
    lead.updated_at = lead.last_touched_at = now
    record_activity(session, lead, kind, actor, now, record)
    if announce:
        outcomes.emit(session, lead, "Lead Assigned", now, {"kind": kind, **_public(record)})
    outcomes.handoff(session, lead, "sales", now, kind)
    notices.assigned(session, lead, now)


def _to_pool(
    session: Session,
    lead: LeadRow,
    now: datetime,
    actor: str,
    kind: str,
    record: dict[str, Any],  # Any: JSON
    announce: bool = True,
    *,
    team_id: str | None = None,
) -> None:
    lead.owner_user_id = None
    lead.status = "pooled"
    if kind == "routed":  # a lead returned or recalled stays its team's (and manager's)
        lead.team_id = team_id
    lead.routing = record
    lead.recall_at = None
    lead.updated_at = now
    record_activity(session, lead, "pooled" if kind == "routed" else kind, actor, now, record)
    if announce:
        outcomes.emit(session, lead, "Lead Pooled", now, {"kind": kind, **_public(record)})


def _reps(
    session: Session, team_id: str, settings: SalesSettings, exclude: frozenset[str]
) -> list[assign.Rep]:
    members = [
        m
        for m in session.scalars(select(TeamMemberRow).where(TeamMemberRow.team_id == team_id))
        if m.user_id not in exclude
    ]
    counts = config.open_counts(session, [m.user_id for m in members])
    return [
        assign.Rep(
            user_id=m.user_id,
            open_leads=counts.get(m.user_id, 0),
            capacity=min(m.capacity, settings.max_open_per_rep),
            on_duty=m.on_duty,
            weight=m.weight,
            last_assigned_at=m.last_assigned_at,
        )
        for m in members
    ]


def _locked_team(session: Session, bu_id: str, code: str) -> TeamRow | None:
    """The team, locked for this transaction on PostgreSQL: round-robin reads and moves its
    place, and two routers moving it at once would hand two leads to the same rep."""
    query = select(TeamRow).where(TeamRow.bu_id == bu_id, TeamRow.code == code)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.scalar(query)


def _enrich(session: Session, lead: LeadRow, hit: Hit, now: datetime, actor: str) -> None:
    lead.reasons = [*lead.reasons, _reason(hit)][-MAX_REASONS:]
    lead.campaign = lead.campaign or hit.campaign
    lead.updated_at = now
    record_activity(session, lead, "enriched", actor, now, {"source": hit.source, **hit.detail})


def _reason(hit: Hit) -> dict[str, Any]:  # Any: JSON
    return {"source": hit.source, "at": hit.at.isoformat(), **hit.detail}


def _context(session: Session, hit: Hit) -> dict[str, Any]:  # Any: JSON
    """What the rep sees first: firmographics (no personal data: those stay behind the 360
    view's masking), scores with their latest awards, recent activity, the campaign."""
    found, scored = _seen(session, hit.bu_id, hit.profile_id)
    units = [hit.bu_id, governance.group_id(session)]
    awards = scores.history(session, hit.profile_id, limit=5, bu_ids=units)
    return {
        "firmographics": {k: found[k] for k in FIRMOGRAPHICS if found.get(k) is not None},
        "scores": {s.code: s.value for s in scored},
        "score_history": [
            {"rule": a.rule, "points": a.points, "at": a.at.isoformat()} for a in awards
        ],
        "recent_activity": [
            {"event": name, "at": at.isoformat()}
            for name, at in profiles.recent_events(session, hit.profile_id, hit.bu_id)
        ],
        "campaign": hit.campaign,
    }


def _seen(
    session: Session, bu_id: str, profile_id: str
) -> tuple[dict[str, object], list[scores.Score]]:
    """The customer's traits by name and scores, as the unit (and the group) define them;
    read once per transaction for the lead's context and its routing facts."""

    def read() -> tuple[dict[str, object], list[scores.Score]]:
        units = [bu_id, governance.group_id(session)]
        found = {t.name: t.value for t in profile_traits.traits_of(session, profile_id, units)}
        return found, scores.scores_of(session, profile_id, units)

    return memo(session, ("sales.seen", bu_id, profile_id), read)


def _recall_at(settings: SalesSettings, now: datetime) -> datetime:
    """Untouched for the unit's recall time counts working hours: a lead given out on Friday
    evening is not recalled over the weekend."""
    calendar = config.calendar_of(settings)
    return add_working_time(calendar, now, timedelta(hours=settings.recall_after_hours))


def _policy(settings: SalesSettings) -> SlaPolicy:
    sla = settings.sla
    return SlaPolicy(
        target=timedelta(minutes=sla.first_contact_minutes),
        warn_before=timedelta(minutes=min(sla.warn_before_minutes, sla.first_contact_minutes)),
        escalate_on_breach=sla.escalate_on_breach,
        reassign_after_breach=(
            None
            if sla.reassign_after_breach_minutes is None
            else timedelta(minutes=sla.reassign_after_breach_minutes)
        ),
    )


def _public(record: dict[str, Any]) -> dict[str, Any]:  # Any: JSON
    return {k: v for k, v in record.items() if isinstance(v, str | int | float) and v != ""}


# --- what a person does with a lead ----------------------------------------------------------


def create_lead(
    session: Session,
    ctx: Context,
    profile_id: str,
    source: str,
    campaign: str | None = None,
    note: str | None = None,
    bu: str | None = None,
) -> LeadOut:
    """A lead made by hand or imported from a CRM, for a customer the caller can see."""
    ctx.require(MANAGE)
    bu_id = config.unit_id(session, ctx, bu)
    current = profiles.visible_id(session, ctx, profile_id)
    now = ctx.clock.now()
    detail = {"note": note} if note else {}
    hit = Hit(bu_id, current, source, now, detail | {"by": ctx.user_id}, campaign)
    lead = open_lead(session, hit, now, actor=ctx.user_id)
    audit.record(session, ctx, "sales.lead.created", "lead", lead.id, bu_id=bu_id)
    return LeadOut.model_validate(lead)


def list_leads(
    session: Session,
    ctx: Context,
    *,
    status: str | None = None,
    owner: str | None = None,
    team: str | None = None,
    bu: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> LeadPage:
    """Leads the caller may see, newest first: a rep sees their own and the pool, a manager
    the unit's. ``owner``: a user id, or ``me``."""
    ctx.require(READ)
    limit = max(1, min(limit, MAX_PAGE))
    query = visible_leads(session, ctx, bu)
    if status:
        query = query.where(LeadRow.status == status)
    if owner:
        query = query.where(LeadRow.owner_user_id == (ctx.user_id if owner == "me" else owner))
    if team:
        query = query.where(LeadRow.team_id.in_(select(TeamRow.id).where(TeamRow.code == team)))
    if cursor:
        if not ULID.fullmatch(cursor):
            raise ValidationFailed(
                "the cursor is not valid", [FieldError(("cursor",), "use a next_cursor given")]
            )
        query = query.where(LeadRow.id < cursor)
    # Lead ids are ULIDs, which sort by creation time: the page's last id is the cursor.
    rows = list(session.scalars(query.order_by(LeadRow.id.desc()).limit(limit + 1)))
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    return LeadPage(
        items=[LeadOut.model_validate(r) for r in rows[:limit]], next_cursor=next_cursor
    )


def at_risk(
    session: Session,
    ctx: Context,
    *,
    team: str | None = None,
    bu: str | None = None,
    limit: int = MAX_PAGE,
) -> list[LeadOut]:
    """Open leads whose first-contact clock has warned or breached, the most overdue first:
    what a manager chases today. Scoped as ``list_leads`` is (a rep: their own and the pool)."""
    ctx.require(READ)
    query = visible_leads(session, ctx, bu).where(
        LeadRow.status.in_(OPEN_STATUSES), LeadRow.sla_state.in_(AT_RISK)
    )
    if team:
        query = query.where(LeadRow.team_id.in_(select(TeamRow.id).where(TeamRow.code == team)))
    limit = max(1, min(limit, MAX_PAGE))
    rows = session.scalars(query.order_by(LeadRow.sla_due_at, LeadRow.id).limit(limit))
    return [LeadOut.model_validate(r) for r in rows]


def team_loads(session: Session, ctx: Context, bu: str | None = None) -> list[TeamLoad]:
    """Open leads per team (``None``: leads no team took) by status and SLA state, in one
    query: the totals of the team board, scoped as ``list_leads`` is."""
    ctx.require(READ)
    query = (
        visible_leads(session, ctx, bu)
        .where(LeadRow.status.in_(OPEN_STATUSES))
        .with_only_columns(LeadRow.team_id, LeadRow.status, LeadRow.sla_state, func.count())
        .group_by(LeadRow.team_id, LeadRow.status, LeadRow.sla_state)
    )
    loads: dict[str | None, TeamLoad] = {}
    for team_id, status, sla_state, count in session.execute(query):
        load = loads.setdefault(team_id, TeamLoad(team_id=team_id))
        load.open += count
        load.pooled += count if status == "pooled" else 0
        load.warning += count if sla_state == "warning" else 0
        load.breached += count if sla_state == "breached" else 0
    return sorted(loads.values(), key=lambda x: x.team_id or "")


def get_lead(session: Session, ctx: Context, lead_id: str) -> LeadOut:
    ctx.require(READ)
    return LeadOut.model_validate(visible_lead(session, ctx, lead_id))


def activity(session: Session, ctx: Context, lead_id: str) -> list[Activity]:
    ctx.require(READ)
    lead = visible_lead(session, ctx, lead_id)
    rows = session.scalars(
        select(LeadActivityRow)
        .where(LeadActivityRow.lead_id == lead.id)
        .order_by(LeadActivityRow.id)
    )
    return [Activity.model_validate(r) for r in rows]


def claim(session: Session, ctx: Context, lead_id: str) -> LeadOut:
    """Take a pooled lead. Two reps claiming at once: the database lets one update win, the
    other gets 409."""
    ctx.require(WORK)
    lead = visible_lead(session, ctx, lead_id, in_unit=True)
    if lead.status != "pooled":
        raise Conflict("the lead is no longer in the pool: someone claimed it first")
    settings = config.settings_of(session, lead.bu_id)
    held = config.open_counts(session, [ctx.user_id]).get(ctx.user_id, 0)
    if held >= settings.max_open_per_rep:
        raise Conflict(
            f"you hold {held} open leads; the unit's limit is {settings.max_open_per_rep}",
            limit=settings.max_open_per_rep,
        )
    now = ctx.clock.now()
    won = session.execute(
        update(LeadRow)
        .where(LeadRow.id == lead.id, LeadRow.status == "pooled")
        .values(status="assigned", owner_user_id=ctx.user_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        raise Conflict("the lead is no longer in the pool: someone claimed it first")
    session.refresh(lead)
    assign_to(session, lead, ctx.user_id, now, ctx.user_id, "claimed", {"strategy": "claim"})
    return LeadOut.model_validate(lead)


def return_to_pool(session: Session, ctx: Context, lead_id: str, reason: str) -> LeadOut:
    ctx.require(WORK)
    lead = visible_lead(session, ctx, lead_id)
    own_or_manage(ctx, lead)
    if lead.status not in ("assigned", "contacted", "qualified"):
        raise Conflict(f"a {lead.status} lead cannot be returned to the pool")
    now = ctx.clock.now()
    _to_pool(
        session, lead, now, ctx.user_id, "returned",
        {"reason": reason, "from": lead.owner_user_id or ""},
    )  # fmt: skip
    return LeadOut.model_validate(lead)


def set_status(
    session: Session, ctx: Context, lead_id: str, status: str, reason: str | None = None
) -> LeadOut:
    """contacted (stops the first-contact clock), qualified, disqualified (with a reason)."""
    ctx.require(WORK)
    lead = visible_lead(session, ctx, lead_id)
    own_or_manage(ctx, lead)
    allowed = {
        "contacted": ("assigned",),
        "qualified": ("assigned", "contacted"),
        "disqualified": ("pooled", "assigned", "contacted", "qualified"),
    }[status]
    if lead.status not in allowed:
        raise Conflict(f"a {lead.status} lead cannot become {status}", status=lead.status)
    now = ctx.clock.now()
    lead.status = status
    lead.updated_at = lead.last_touched_at = now
    if lead.recall_at is not None:
        lead.recall_at = _recall_at(config.settings_of(session, lead.bu_id), now)
    if status in ("contacted", "qualified") and lead.contacted_at is None:
        lead.contacted_at = now
        lead.sla_state = "met" if lead.sla_due_at is None or now < lead.sla_due_at else "met_late"
        lead.sla_next_at = None
    if status == "qualified":
        lead.qualified_at = now
    if status == "disqualified":
        lead.closed_at, lead.close_reason = now, reason
        lead.sla_next_at = lead.recall_at = None
    record_activity(session, lead, status, ctx.user_id, now, {"reason": reason} if reason else {})
    name = {"contacted": "Lead Contacted", "qualified": "Lead Qualified"}.get(
        status, "Lead Disqualified"
    )
    outcomes.emit(session, lead, name, now, {"reason": reason} if reason else {})
    if status == "disqualified":
        outcomes.handoff(session, lead, "marketing", now, "disqualified")
    return LeadOut.model_validate(lead)


def reassign(session: Session, ctx: Context, lead_id: str, email: str | None) -> LeadOut:
    """A manager hands the lead to a rep of the unit, or (no email) routes it again."""
    ctx.require(MANAGE)
    lead = visible_lead(session, ctx, lead_id)
    if lead.status not in ("pooled", "assigned", "contacted", "qualified"):
        raise Conflict(f"a {lead.status} lead cannot be reassigned")
    now = ctx.clock.now()
    before = lead.owner_user_id
    if email is None:
        route(session, lead, now, actor=ctx.user_id, exclude=frozenset({before or ""}))
    else:
        user = users.user_in_unit(session, email, lead.bu_id)
        if user is None:
            raise ValidationFailed(
                "the user cannot own this lead",
                [FieldError(("email",), "no active user with this email holds a role here")],
            )
        record = {"strategy": "manual", "from": before or ""}
        assign_to(session, lead, user.id, now, ctx.user_id, "reassigned", record)
    audit.record(
        session, ctx, "sales.lead.reassigned", "lead", lead.id, bu_id=lead.bu_id,
        detail={"from": before or "", "to": lead.owner_user_id or "pool"},
    )  # fmt: skip
    return LeadOut.model_validate(lead)


def route_pool(
    session: Session, ctx: Context, bu: str | None = None, limit: int = 10_000
) -> tuple[int, int]:
    """Route the unit's pooled leads again (after a new table, or reps back on duty):
    how many were looked at, and how many found an owner."""
    ctx.require(MANAGE)
    bu_id = config.unit_id(session, ctx, bu)
    rows = list(
        session.scalars(
            select(LeadRow)
            .where(LeadRow.bu_id == bu_id, LeadRow.status == "pooled")
            .order_by(LeadRow.id)
            .limit(limit)
        )
    )
    now = ctx.clock.now()
    settings = config.settings_of(session, bu_id)
    for lead in rows:
        route(session, lead, now, actor=ctx.user_id, settings=settings)
    owned = sum(1 for lead in rows if lead.status == "assigned")
    audit.record(
        session, ctx, "sales.pool.routed", "sales_pool", bu_id, bu_id=bu_id,
        detail={"looked_at": len(rows), "assigned": owned},
    )  # fmt: skip
    return len(rows), owned


# --- time: SLA steps and recall to the pool --------------------------------------------------


def sla_due(session: Session, now: datetime, limit: int = 200) -> int:
    """Move every lead whose SLA clock has reached its next step: warn the owner, escalate a
    breach to the team's manager, and re-route a lead still untouched after the breach."""
    rows = list(
        session.scalars(
            select(LeadRow)
            .where(LeadRow.sla_next_at <= now, LeadRow.status.in_(OPEN_STATUSES))
            .order_by(LeadRow.sla_next_at)
            .limit(limit)
        )
    )
    for lead in rows:
        _sla_step(session, lead, now)
    return len(rows)


def _sla_step(session: Session, lead: LeadRow, now: datetime) -> None:
    if lead.contacted_at is not None:
        lead.sla_next_at = None
        return
    due, warn, again = lead.sla_due_at, lead.sla_warn_at, lead.sla_reassign_at
    if again is not None and now >= again and lead.sla_state == "breached":
        lead.sla_next_at = None
        record_activity(session, lead, "sla_reassigned", "system", now, {})
        route(session, lead, now, exclude=frozenset({lead.owner_user_id or ""}))
        return
    if due is not None and now >= due:
        lead.sla_state = "breached"
        lead.sla_next_at = again
        manager = _manager_of(session, lead)
        record_activity(
            session, lead, "sla_breached", "system", now, {"escalated_to": manager or ""}
        )
        outcomes.emit(session, lead, "Lead SLA Breached", now, {})
        if config.settings_of(session, lead.bu_id).sla.escalate_on_breach:
            notices.breached(session, lead, manager, now)
        return
    if warn is not None and now >= warn and lead.sla_state == "on_track":
        lead.sla_state = "warning"
        record_activity(session, lead, "sla_warned", "system", now, {})
        notices.warning(session, lead, now)
    lead.sla_next_at = due


def recall_due(session: Session, now: datetime, limit: int = 200) -> int:
    """Owned leads nobody touched for the unit's recall time go back to the pool."""
    rows = list(
        session.scalars(
            select(LeadRow)
            .where(LeadRow.recall_at <= now, LeadRow.status.in_(("assigned", "contacted")))
            .order_by(LeadRow.recall_at)
            .limit(limit)
        )
    )
    for lead in rows:
        recall_lead(session, lead, now)
    return len(rows)


def recall_lead(session: Session, lead: LeadRow, now: datetime, actor: str = "system") -> None:
    """Back to the pool: its owner did not touch it within the unit's recall time."""
    record = {"from": lead.owner_user_id or "", "untouched_since": lead.last_touched_at.isoformat()}
    _to_pool(session, lead, now, actor, "recalled", record)


def recall(session: Session, ctx: Context, bu: str | None = None) -> int:
    """``oneloop leads recall``: the recall sweep now, for the caller's unit."""
    ctx.require(MANAGE)
    bu_id = config.unit_id(session, ctx, bu)
    now = ctx.clock.now()
    rows = list(
        session.scalars(
            select(LeadRow).where(
                LeadRow.bu_id == bu_id,
                LeadRow.recall_at <= now,
                LeadRow.status.in_(("assigned", "contacted")),
            )
        )
    )
    for lead in rows:
        recall_lead(session, lead, now, ctx.user_id)
    return len(rows)


# --- helpers ---------------------------------------------------------------------------------


def _open_lead_of(session: Session, bu_id: str, profile_id: str) -> LeadRow | None:
    return session.scalar(
        select(LeadRow).where(
            LeadRow.bu_id == bu_id,
            LeadRow.profile_id == profile_id,
            LeadRow.status.in_(OPEN_STATUSES),
        )
    )


def visible_leads(session: Session, ctx: Context, bu: str | None) -> Select[tuple[LeadRow]]:
    query = select(LeadRow)
    if bu is not None or not ctx.is_group_wide:
        query = query.where(LeadRow.bu_id == config.unit_id(session, ctx, bu))
    if not (ctx.can(READ_ALL) or ctx.can(MANAGE)):
        query = query.where(or_(LeadRow.owner_user_id == ctx.user_id, LeadRow.status == "pooled"))
    return query


def visible_lead(session: Session, ctx: Context, lead_id: str, *, in_unit: bool = False) -> LeadRow:
    """The lead if the caller may see it; another unit's (or another rep's) is NotFound.
    ``in_unit``: any lead of the caller's unit (a claim must tell "taken" from "no such")."""
    query = select(LeadRow).where(LeadRow.id == lead_id)
    if not ctx.is_group_wide:
        query = query.where(LeadRow.bu_id == ctx.bu_id)
        if not (in_unit or ctx.can(READ_ALL) or ctx.can(MANAGE)):
            query = query.where(
                or_(LeadRow.owner_user_id == ctx.user_id, LeadRow.status == "pooled")
            )
    lead = session.scalar(query)
    if lead is None:
        raise NotFound(f"no lead {lead_id}", lead_id=lead_id)
    return lead


def own_or_manage(ctx: Context, lead: LeadRow) -> None:
    if lead.owner_user_id != ctx.user_id and not ctx.can(MANAGE):
        raise Conflict("only the lead's owner (or a manager) may do this")


def _manager_of(session: Session, lead: LeadRow) -> str | None:
    if lead.team_id is None:
        return None
    return session.scalar(select(TeamRow.manager_user_id).where(TeamRow.id == lead.team_id))


def record_activity(
    session: Session,
    lead: LeadRow,
    kind: str,
    actor: str,
    at: datetime,
    data: dict[str, Any],  # Any: JSON
) -> None:
    session.add(
        LeadActivityRow(
            lead_id=lead.id,
            bu_id=lead.bu_id,
            kind=kind,
            actor=actor,
            owner_user_id=lead.owner_user_id,
            at=at,
            data=data,
        )
    )


LEAD_SORTS: dict[str, Column] = {
    "created_at": LeadRow.created_at,
    "updated_at": LeadRow.updated_at,
    "triggered_at": LeadRow.triggered_at,
}


def page_leads(
    session: Session,
    ctx: Context,
    page: PageRequest,
    *,
    status: str | None = None,
    owner: str | None = None,
    team: str | None = None,
    bu: str | None = None,
) -> Page[LeadOut]:
    """``list_leads`` in the API's common page and cursor format (issue 8), any sort."""
    ctx.require(READ)
    query = visible_leads(session, ctx, bu)
    if status:
        query = query.where(LeadRow.status == status)
    if owner:
        query = query.where(LeadRow.owner_user_id == (ctx.user_id if owner == "me" else owner))
    if team:
        query = query.where(LeadRow.team_id.in_(select(TeamRow.id).where(TeamRow.code == team)))
    return keyset_page(
        session,
        query,
        page,
        LEAD_SORTS,
        LeadRow.id,
        lambda rows: [LeadOut.model_validate(r) for r in rows],
    )
