"""The demo's sales set-up in the B2B unit (industrial): the teams the shipped routing table
routes to, two reps in each, the unit's sales manager over them, the table itself, and the
triggers that make the unit's high-intent visitors leads. Then, once the worker has made the
leads, ``work_leads`` plays a week of the reps' work on them (contact, qualify, convert,
return, claim, recall), so the funnel and the hand-off report have something to show."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from oneloop.core.clock import FixedClock
from oneloop.core.context import Context
from oneloop.demo.draw import shared_rng
from oneloop.governance.service import unit_row
from oneloop.governance.signin import context_of
from oneloop.sales import config, leads, opportunities
from oneloop.sales.models import LeadRow, TeamRow
from oneloop.sales.routing import DMN_DIR
from oneloop.sales.schemas import MemberIn, OpportunityIn, StageIn, TeamIn

UNIT = "industrial"
REPS_PER_TEAM = 2
TRIGGERS: list[dict[str, Any]] = [  # Any: trigger documents
    {"kind": "segment_entered", "segment": "high_intent_followup"},
    {"kind": "event", "event": "Demo Requested"},
]


def teams() -> list[dict[str, str]]:
    return yaml.safe_load((DMN_DIR / "teams.yaml").read_text("utf-8"))["teams"]  # type: ignore[no-any-return]


def rep_email(team: str, n: int) -> str:
    return f"{team.replace('_', '-')}-{n}.{UNIT}@galaxy.example.com"


def rep_emails() -> list[str]:
    """The reps the demo load creates (as sales reps of the unit), team by team."""
    return [rep_email(t["code"], n) for t in teams() for n in range(1, REPS_PER_TEAM + 1)]


@dataclass
class SalesSetup:
    teams: int = 0
    reps: int = 0
    table_version: int | None = None


def install(session: Session, ctx: Context, manager: str, rep: str) -> SalesSetup:
    """Once: a unit that has teams already is left as it is. ``manager`` leads every team;
    ``rep`` (the unit's demo sales rep) joins the East industrial team, so that signing in
    as them shows leads."""
    done = SalesSetup()
    bu_id = unit_row(session, UNIT).id
    if session.scalar(select(TeamRow.id).where(TeamRow.bu_id == bu_id).limit(1)):
        return done
    for team in teams():
        config.create_team(
            session,
            ctx,
            TeamIn(
                code=team["code"],
                name_zh=team["name_zh"],
                name_en=team["name_en"],
                strategy=team["strategy"],  # type: ignore[arg-type]  # checked by TeamIn
                manager=manager,
                bu=UNIT,
            ),
        )
        done.teams += 1
        for n in range(1, REPS_PER_TEAM + 1):
            member = MemberIn(email=rep_email(team["code"], n), capacity=25, weight=1.0 + n / 2)
            config.set_member(session, ctx, team["code"], member, UNIT)
            done.reps += 1
    config.set_member(session, ctx, "east_industrial", MemberIn(email=rep, capacity=25), UNIT)
    table = (DMN_DIR / "industrial_routing.dmn").read_bytes()
    done.table_version = config.upload_table(session, ctx, table, UNIT).version
    config.set_settings(session, ctx, {"triggers": TRIGGERS}, UNIT)
    return done


@dataclass
class WorkDone:
    contacted: int = 0
    qualified: int = 0
    won: int = 0
    lost: int = 0
    disqualified: int = 0
    returned: int = 0
    claimed: int = 0
    recalled: int = 0


def work_leads(session: Session, ctx: Context, seed: int = 7) -> WorkDone:
    """The next days of the reps' work on the unit's leads, drawn with ``seed``: each lead's
    steps from now on, minutes to hours apart, a deal decided within three days. Owners
    contact most of their leads, qualify some, convert a few (won or lost), disqualify or
    return others; reps claim part of the pool; and the leads nobody touched are recalled as
    they would be after the unit's recall time. Runs on the leads still open, so a second run
    carries the story on instead of repeating it."""
    rng = shared_rng(seed, "sales-work")
    done = WorkDone()
    bu_id = unit_row(session, UNIT).id
    start = ctx.clock.now()
    rows = list(
        session.scalars(
            select(LeadRow)
            .where(LeadRow.bu_id == bu_id, LeadRow.status.in_(("assigned", "pooled")))
            .order_by(LeadRow.id)
        )
    )
    untouched = []
    for lead in rows:
        if lead.status == "pooled":
            if rng.random() < 0.3 and (owner := _any_rep(session, bu_id, rng)) is not None:
                rep = context_of(session, owner, bu_id, clock=FixedClock(start), origin="demo")
                leads.claim(session, rep, lead.id)
                done.claimed += 1
            continue
        assert lead.owner_user_id is not None
        clock = FixedClock(start)  # each lead's own story, from now on
        rep = context_of(session, lead.owner_user_id, bu_id, clock=clock, origin="demo")
        draw = rng.random()
        if draw < 0.15:
            untouched.append(lead)
            continue
        if draw < 0.22:
            leads.return_to_pool(session, rep, lead.id, "不在负责区域 · outside my territory")
            done.returned += 1
            continue
        clock.advance(timedelta(minutes=rng.randint(5, 240)))
        leads.set_status(session, rep, lead.id, "contacted")
        done.contacted += 1
        if draw < 0.45:
            leads.set_status(session, rep, lead.id, "disqualified", "暂无预算 · no budget")
            done.disqualified += 1
            continue
        if draw < 0.75:
            continue
        leads.set_status(session, rep, lead.id, "qualified")
        done.qualified += 1
        if draw < 0.85:
            continue
        amount = Decimal(rng.randrange(50, 2000) * 1000)
        deal = opportunities.convert(
            session, rep, lead.id, OpportunityIn(name="设备采购 · Equipment", amount=amount)
        )
        clock.advance(timedelta(hours=rng.randint(2, 72)))
        if rng.random() < 0.6:
            opportunities.set_stage(session, rep, deal.id, StageIn(stage="won"))
            done.won += 1
        else:
            reason = "选择了竞品 · chose a competitor"
            opportunities.set_stage(session, rep, deal.id, StageIn(stage="lost", reason=reason))
            done.lost += 1
    # what the recall sweep does when the unit's recall time has passed for them
    for lead in untouched:
        if lead.recall_at is not None:
            leads.recall_lead(session, lead, lead.recall_at)
            done.recalled += 1
    return done


def _any_rep(session: Session, bu_id: str, rng: random.Random) -> str | None:
    members = config.member_ids(session, config.team_row(session, bu_id, "east_industrial").id)
    return rng.choice(members) if members else None
