"""The lead funnel and the hand-off report: how many leads reach sales and how far they get,
how many times a converted customer changed department, and where leads die."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import datetime

from sqlalchemy import and_, case, exists, func, select
from sqlalchemy.orm import Session

from oneloop.core.context import Context
from oneloop.governance.service import unit_codes
from oneloop.sales import config
from oneloop.sales.models import HandoffRow, LeadRow, OpportunityRow
from oneloop.sales.schemas import FunnelRow, HandoffReport, HandoffStat

READ = "sales.report.read"


def funnel(
    session: Session,
    ctx: Context,
    bu: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[FunnelRow]:
    """created → assigned → contacted → qualified → won, per source and campaign."""
    ctx.require(READ)
    bu_id = config.unit_id(session, ctx, bu)
    won = exists().where(and_(OpportunityRow.lead_id == LeadRow.id, OpportunityRow.status == "won"))
    query = (
        select(
            LeadRow.source,
            LeadRow.campaign,
            func.count(),
            func.count(LeadRow.assigned_at),
            func.count(LeadRow.contacted_at),
            func.count(LeadRow.qualified_at),
            func.sum(case((won, 1), else_=0)),
        )
        .where(LeadRow.bu_id == bu_id)
        .group_by(LeadRow.source, LeadRow.campaign)
        .order_by(func.count().desc(), LeadRow.source)
    )
    if since is not None:
        query = query.where(LeadRow.created_at >= since)
    if until is not None:
        query = query.where(LeadRow.created_at < until)
    return [
        FunnelRow(
            source=source,
            campaign=campaign,
            created=created,
            assigned=assigned,
            contacted=contacted,
            qualified=qualified,
            won=int(won_count or 0),
        )
        for source, campaign, created, assigned, contacted, qualified, won_count in session.execute(
            query
        )
    ]


def handoffs(session: Session, ctx: Context, bu: str | None = None) -> HandoffReport:
    ctx.require(READ)
    bu_id = config.unit_id(session, ctx, bu)
    converted = set(
        session.scalars(
            select(OpportunityRow.profile_id).where(
                OpportunityRow.bu_id == bu_id, OpportunityRow.status == "won"
            )
        )
    )
    held: dict[tuple[str, str], list[float]] = defaultdict(list)
    per_converted = 0
    for profile_id, source, target, seconds in session.execute(
        select(
            HandoffRow.profile_id,
            HandoffRow.from_department,
            HandoffRow.to_department,
            HandoffRow.held_seconds,
        ).where(HandoffRow.bu_id == bu_id)
    ):
        held[(source, target)].append(seconds)
        per_converted += profile_id in converted
    died: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for status, assigned, contacted, qualified, reason in session.execute(
        select(
            LeadRow.status,
            LeadRow.assigned_at,
            LeadRow.contacted_at,
            LeadRow.qualified_at,
            LeadRow.close_reason,
        ).where(LeadRow.bu_id == bu_id, LeadRow.status != "converted")
    ):
        furthest = (
            "qualified" if qualified else "contacted" if contacted else
            "assigned" if assigned else "pool"
        )  # fmt: skip
        died[f"{status} after {furthest}" if status == "disqualified" else f"open in {status}"] += 1
        if status == "disqualified":
            reasons[reason or "-"] += 1
    return HandoffReport(
        bu=unit_codes(session).get(bu_id, bu_id),
        converted_customers=len(converted),
        handoffs_per_converted=round(per_converted / len(converted), 2) if converted else None,
        pairs=[
            HandoffStat(
                from_department=source,
                to_department=target,
                count=len(values),
                median_hours=round(statistics.median(values) / 3600, 2),
            )
            for (source, target), values in sorted(held.items())
        ],
        where_leads_die=dict(died.most_common()),
        disqualify_reasons=dict(reasons.most_common(20)),
    )
