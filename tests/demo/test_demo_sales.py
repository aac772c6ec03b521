"""The demo's B2B unit turns its high-intent visitors into leads, routed by the shipped DMN
table; the reps' simulated work leaves a funnel and a hand-off report with something in them."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from oneloop.collect import consumers
from oneloop.core.context import Context
from oneloop.core.db import session_factory
from oneloop.demo import sales as demo_sales
from oneloop.demo.generate import generate
from oneloop.demo.load import load_demo
from oneloop.sales import reports
from oneloop.sales.models import LeadRow
from oneloop.sales.routing import load_table


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate(out, customers=300, seed=7)
    return out


def test_high_intent_visitors_become_routed_leads_and_the_reports_show_the_work(
    engine: Engine, session: Session, ctx: Context, demo_dir: Path
) -> None:
    summary = load_demo(session, ctx, demo_dir)
    session.commit()
    assert summary.sales.teams == len(demo_sales.teams()) and summary.sales.table_version == 1
    consumers.drain(
        session_factory(engine), consumers.registered(), tasks=consumers.registered_tasks()
    )
    session.expire_all()
    made = list(session.scalars(select(LeadRow)))
    assert len(made) >= 10
    assert {lead.source for lead in made} <= {
        "event:Demo Requested",
        "segment:high_intent_followup",
    }
    rows = {rule.row for rule in load_table().rules}
    routed = [lead for lead in made if "rule_row" in lead.routing]
    assert routed and {lead.routing["rule_row"] for lead in routed} <= rows
    assert any(lead.owner_user_id for lead in made)

    done = demo_sales.work_leads(session, ctx)
    session.commit()
    assert done.contacted and done.won + done.lost and done.recalled
    (funnel,) = [
        r for r in reports.funnel(session, ctx, "industrial") if r.source.startswith("event")
    ]
    assert funnel.created >= funnel.assigned >= funnel.contacted >= funnel.qualified >= funnel.won
    handoffs = reports.handoffs(session, ctx, "industrial")
    assert ("marketing", "sales") in {(p.from_department, p.to_department) for p in handoffs.pairs}
    assert handoffs.where_leads_die
    # a second load leaves the set-up as it is
    again = load_demo(session, ctx, demo_dir)
    assert again.sales.teams == 0
