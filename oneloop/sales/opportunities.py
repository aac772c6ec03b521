"""Opportunities: a converted lead's deal, through its stages to won or lost. Each stage
change is an event in the log, so attribution and the customer's timeline see the sale's
outcome; winning hands the customer from sales to service."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from oneloop.core.context import Context
from oneloop.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from oneloop.core.ids import new_id
from oneloop.core.paging import Column, Page, PageRequest, keyset_page
from oneloop.sales import leads, outcomes
from oneloop.sales.models import LeadRow, OpportunityRow
from oneloop.sales.schemas import Opportunity, OpportunityIn, StageIn

OPEN_STAGES = ("discovery", "proposal", "negotiation")


def convert(session: Session, ctx: Context, lead_id: str, data: OpportunityIn) -> Opportunity:
    """The lead becomes an opportunity: the lead is closed as converted."""
    ctx.require(leads.WORK)
    lead = leads.visible_lead(session, ctx, lead_id)
    leads.own_or_manage(ctx, lead)
    if lead.status not in ("assigned", "contacted", "qualified"):
        raise Conflict(f"a {lead.status} lead cannot be converted", status=lead.status)
    now = ctx.clock.now()
    lead.status, lead.closed_at, lead.updated_at = "converted", now, now
    lead.sla_next_at = lead.recall_at = None
    if lead.contacted_at is None:
        lead.contacted_at = now
        lead.sla_state = "met" if lead.sla_due_at is None or now < lead.sla_due_at else "met_late"
    opportunity = OpportunityRow(
        id=new_id(now),
        bu_id=lead.bu_id,
        lead_id=lead.id,
        profile_id=lead.profile_id,
        owner_user_id=lead.owner_user_id,
        name=data.name,
        stage=data.stage,
        status="open",
        amount=data.amount,
        currency=data.currency,
        created_at=now,
        updated_at=now,
        closed_at=None,
        lost_reason=None,
    )
    session.add(opportunity)
    session.flush()
    leads.record_activity(
        session, lead, "converted", ctx.user_id, now, {"opportunity": opportunity.id}
    )
    outcomes.emit(session, lead, "Lead Converted", now, {"opportunity_id": opportunity.id})
    outcomes.emit(session, opportunity, "Opportunity Created", now, _money(opportunity))
    return Opportunity.model_validate(opportunity)


def set_stage(session: Session, ctx: Context, opportunity_id: str, data: StageIn) -> Opportunity:
    ctx.require(leads.WORK)
    row = _opportunity(session, ctx, opportunity_id)
    if row.owner_user_id != ctx.user_id and not ctx.can(leads.MANAGE):
        raise Conflict("only the opportunity's owner (or a manager) may change it")
    if row.status != "open":
        raise Conflict(f"the opportunity is {row.status} already", status=row.status)
    if data.stage == "lost" and not (data.reason or "").strip():
        raise ValidationFailed(
            "a lost opportunity needs a reason", [FieldError(("reason",), "say why it was lost")]
        )
    now = ctx.clock.now()
    before = row.stage
    row.stage, row.updated_at = data.stage, now
    if data.amount is not None:
        row.amount = data.amount
    if data.stage in ("won", "lost"):
        row.status, row.closed_at = data.stage, now
        row.lost_reason = data.reason if data.stage == "lost" else None
    name = {"won": "Opportunity Won", "lost": "Opportunity Lost"}.get(
        data.stage, "Opportunity Stage Changed"
    )
    extra = {"from_stage": before, "stage": data.stage}
    if data.reason:
        extra["reason"] = data.reason
    outcomes.emit(session, row, name, now, _money(row) | extra)
    if data.stage == "won":
        outcomes.handoff(session, row, "service", now, "won")
    return Opportunity.model_validate(row)


def get_opportunity(session: Session, ctx: Context, opportunity_id: str) -> Opportunity:
    """One opportunity the caller may see (a rep: their own); another unit's is NotFound."""
    ctx.require(leads.READ)
    return Opportunity.model_validate(_opportunity(session, ctx, opportunity_id))


def list_opportunities(
    session: Session, ctx: Context, status: str | None = None, bu: str | None = None
) -> list[Opportunity]:
    ctx.require(leads.READ)
    lead_ids = leads.visible_leads(session, ctx, bu).with_only_columns(LeadRow.id)
    query = select(OpportunityRow).where(OpportunityRow.lead_id.in_(lead_ids))
    if not (ctx.can(leads.READ_ALL) or ctx.can(leads.MANAGE)):
        query = query.where(OpportunityRow.owner_user_id == ctx.user_id)
    if status:
        query = query.where(OpportunityRow.status == status)
    rows = session.scalars(query.order_by(OpportunityRow.id.desc()).limit(500))
    return [Opportunity.model_validate(r) for r in rows]


def _opportunity(session: Session, ctx: Context, opportunity_id: str) -> OpportunityRow:
    query = select(OpportunityRow).where(OpportunityRow.id == opportunity_id)
    if not ctx.is_group_wide:
        query = query.where(OpportunityRow.bu_id == ctx.bu_id)
        if not (ctx.can(leads.READ_ALL) or ctx.can(leads.MANAGE)):
            query = query.where(OpportunityRow.owner_user_id == ctx.user_id)
    row = session.scalar(query)
    if row is None:
        raise NotFound(f"no opportunity {opportunity_id}", opportunity_id=opportunity_id)
    return row


def _money(row: OpportunityRow) -> dict[str, object]:
    return {"opportunity_id": row.id, "amount": float(row.amount), "currency": row.currency}


OPPORTUNITY_SORTS: dict[str, Column] = {
    "created_at": OpportunityRow.created_at,
    "updated_at": OpportunityRow.updated_at,
    "name": OpportunityRow.name,
    "stage": OpportunityRow.stage,
}


def page_opportunities(
    session: Session,
    ctx: Context,
    page: PageRequest,
    *,
    status: str | None = None,
    stage: str | None = None,
    bu: str | None = None,
) -> Page[Opportunity]:
    """``list_opportunities`` a keyset page at a time (issue 8), without its cap of 500."""
    ctx.require(leads.READ)
    lead_ids = leads.visible_leads(session, ctx, bu).with_only_columns(LeadRow.id)
    query = select(OpportunityRow).where(OpportunityRow.lead_id.in_(lead_ids))
    if not (ctx.can(leads.READ_ALL) or ctx.can(leads.MANAGE)):
        query = query.where(OpportunityRow.owner_user_id == ctx.user_id)
    if status:
        query = query.where(OpportunityRow.status == status)
    if stage:
        query = query.where(OpportunityRow.stage == stage)
    return keyset_page(
        session,
        query,
        page,
        OPPORTUNITY_SORTS,
        OpportunityRow.id,
        lambda rows: [Opportunity.model_validate(r) for r in rows],
    )
