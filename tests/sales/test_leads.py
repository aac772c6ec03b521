"""Leads from trigger to owner: routing by the table's rows, round-robin and capacity, the
pool with race-safe claims, return and recall, SLA steps on working hours, status changes,
conversion, hand-offs — on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from oneloop.channels.models import OutboxRow
from oneloop.core.clock import FixedClock
from oneloop.core.context import Context
from oneloop.core.db import session_factory, write_lock
from oneloop.core.errors import Conflict, NotFound, ValidationFailed
from oneloop.governance.service import unit_row
from oneloop.governance.signin import context_of
from oneloop.governance.users import User
from oneloop.profiles import service as profiles
from oneloop.sales import config, leads, opportunities, reports
from oneloop.sales.models import HandoffRow, LeadRow
from oneloop.sales.schemas import MemberIn, OpportunityIn, StageIn
from tests.sales.conftest import TABLE, SalesUnit, demo_request


def as_user(session: Session, user: User, clock: FixedClock, bu: str = "north") -> Context:
    return context_of(session, user.id, unit_row(session, bu).id, clock=clock)


def only_lead(session: Session) -> LeadRow:
    rows = list(session.scalars(select(LeadRow)))
    assert len(rows) == 1, rows
    return rows[0]


def test_a_demo_request_becomes_a_lead_routed_by_its_row(
    unit: SalesUnit, session: Session, ctx: Context
) -> None:
    unit.feed(*demo_request("u1", "上海"))
    lead = only_lead(session)
    assert lead.status == "assigned" and lead.owner_user_id == unit.rep1.id
    assert lead.routing["rule_row"] == 2 and lead.routing["team"] == "east"
    assert lead.routing["strategy"] == "round_robin" and lead.routing["table_version"] == 1
    assert lead.source == "event:Demo Requested" and lead.campaign == "2026 峰会"
    assert lead.context["firmographics"]["province"] == "上海"
    kinds = [a.kind for a in leads.activity(session, ctx, lead.id)]
    assert kinds == ["created", "assigned"]
    handoff = session.scalars(select(HandoffRow)).one()
    assert (handoff.from_department, handoff.to_department) == ("marketing", "sales")
    # the lead's steps are events on the customer's timeline, in the sales department
    unit.feed()
    timeline = profiles.timeline(session, ctx, lead.profile_id, department="sales")
    assert {"Lead Created", "Demo Requested"} <= {e.name for e in timeline.entries}


def test_a_second_trigger_enriches_the_open_lead(unit: SalesUnit, session: Session) -> None:
    unit.feed(*demo_request("u1"))
    unit.feed({"type": "track", "userId": "u1", "event": "Demo Requested", "properties": {}})
    lead = only_lead(session)
    assert len(lead.reasons) == 2


def test_rows_are_tried_in_order_and_no_match_means_the_pool(
    unit: SalesUnit, session: Session
) -> None:
    unit.feed(*demo_request("hot", "广东", score=95))  # the score row comes first
    unit.feed(*demo_request("west", "四川"))  # no row for the west
    hot, west = sorted(session.scalars(select(LeadRow)), key=lambda r: r.created_at)
    # the key team has nobody: the lead waits in the pool, and says which rule and why
    assert hot.status == "pooled" and hot.routing["rule_row"] == 1
    assert "nobody" in hot.routing["why"]
    assert west.status == "pooled" and west.routing["why"] == "no rule matched"


def test_round_robin_takes_turns_and_respects_capacity(
    unit: SalesUnit, session: Session, ctx: Context
) -> None:
    config.set_member(session, ctx, "east", MemberIn(email=unit.rep2.email, capacity=1), "north")
    session.commit()
    for i in range(4):
        unit.feed(*demo_request(f"u{i}", "江苏"))
    owners = [
        r.owner_user_id for r in session.scalars(select(LeadRow).order_by(LeadRow.created_at))
    ]
    # rep1, rep2, then rep2 is full: rep1 twice
    assert owners == [unit.rep1.id, unit.rep2.id, unit.rep1.id, unit.rep1.id]


def test_off_duty_reps_are_skipped(unit: SalesUnit, session: Session, ctx: Context) -> None:
    config.set_member(session, ctx, "east", MemberIn(email=unit.rep1.email, on_duty=False), "north")
    session.commit()
    unit.feed(*demo_request("u1"), *demo_request("u2"))
    assert {r.owner_user_id for r in session.scalars(select(LeadRow))} == {unit.rep2.id}


def test_claim_return_and_the_pool(unit: SalesUnit, session: Session, clock: FixedClock) -> None:
    unit.feed(*demo_request("west", "四川"))
    lead = only_lead(session)
    rep1, rep2 = as_user(session, unit.rep1, clock), as_user(session, unit.rep2, clock)
    assert [x.id for x in leads.list_leads(session, rep2, status="pooled").items] == [lead.id]
    claimed = leads.claim(session, rep1, lead.id)
    assert claimed.owner_user_id == unit.rep1.id and claimed.routing["strategy"] == "claim"
    with pytest.raises(Conflict):
        leads.claim(session, rep2, lead.id)
    # another rep no longer sees it; its owner returns it with a reason
    with pytest.raises(NotFound):
        leads.get_lead(session, rep2, lead.id)
    back = leads.return_to_pool(session, rep1, lead.id, "客户在华南")
    assert back.status == "pooled" and back.owner_user_id is None
    assert [a.kind for a in leads.activity(session, rep1, lead.id)][-1] == "returned"


def test_a_rep_of_another_unit_never_sees_the_lead(
    unit: SalesUnit, session: Session, clock: FixedClock
) -> None:
    unit.feed(*demo_request("west", "四川"))
    lead = only_lead(session)
    south = as_user(session, unit.south_rep, clock, "south")
    assert leads.list_leads(session, south).items == []
    with pytest.raises(NotFound):
        leads.claim(session, south, lead.id)


def test_claims_race_one_wins(unit: SalesUnit, engine: Engine, session: Session, clock) -> None:
    unit.feed(*demo_request("west", "四川"))
    lead_id = only_lead(session).id
    session.close()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def claim(user: User) -> None:
        with session_factory(engine)() as s:
            barrier.wait()
            write_lock(s)  # SQLite: one writer at a time, as the API and the worker do
            ctx = as_user(s, user, clock)
            try:
                with s.begin_nested():
                    leads.claim(s, ctx, lead_id)
                s.commit()
                outcomes.append("won")
            except Conflict:
                s.rollback()
                outcomes.append("409")

    threads = [threading.Thread(target=claim, args=(u,)) for u in (unit.rep1, unit.rep2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["409", "won"]


def test_one_open_lead_per_customer_under_concurrent_triggers(
    unit: SalesUnit, engine: Engine, session: Session, clock: FixedClock
) -> None:
    unit.feed({"type": "identify", "userId": "u1", "traits": {"province": "上海"}})
    profile_id = profiles.find_id(
        session, as_user(session, unit.manager, clock), "user_id", "north:u1"
    )
    bu_id = unit_row(session, "north").id
    session.close()
    barrier = threading.Barrier(2)

    def trigger(source: str) -> None:
        with session_factory(engine)() as s:
            barrier.wait()
            write_lock(s)
            hit = leads.Hit(bu_id, profile_id, source, clock.now())
            leads.open_lead(s, hit, clock.now())
            s.commit()

    threads = [threading.Thread(target=trigger, args=(f"event:{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with session_factory(engine)() as s:
        lead = only_lead(s)
        assert len(lead.reasons) == 2


def test_sla_warns_breaches_and_escalates_on_working_hours(
    unit: SalesUnit, session: Session, clock: FixedClock, ctx: Context
) -> None:
    # Friday 2026-03-06 17:30 in Shanghai: 1 working hour ends Monday 09:30
    clock.at = datetime(2026, 3, 6, 9, 30, tzinfo=UTC)
    unit.feed(*demo_request("u1"))
    lead = only_lead(session)
    assert lead.sla_due_at == datetime(2026, 3, 9, 1, 30, tzinfo=UTC)
    assert lead.sla_warn_at == datetime(2026, 3, 9, 1, 15, tzinfo=UTC)
    clock.at = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)  # the weekend: nothing happens
    unit.feed()
    session.refresh(lead)
    assert lead.sla_state == "on_track"
    clock.at = datetime(2026, 3, 9, 1, 20, tzinfo=UTC)
    unit.feed()
    session.refresh(lead)
    assert lead.sla_state == "warning"
    clock.at = datetime(2026, 3, 9, 1, 31, tzinfo=UTC)
    unit.feed()
    session.refresh(lead)
    assert lead.sla_state == "breached"
    sent = {(r.recipient, r.dedupe_key.split(":")[2]) for r in session.scalars(select(OutboxRow))}
    assert (unit.rep1.email, "sla-warning") in sent
    assert (unit.manager.email, "sla-breach") in sent
    unit.feed()  # again: nobody is told twice
    assert len(list(session.scalars(select(OutboxRow)))) == len(sent)


def test_contact_stops_the_clock_and_conversion_closes_the_loop(
    unit: SalesUnit, session: Session, clock: FixedClock, ctx: Context
) -> None:
    unit.feed(*demo_request("u1"))
    lead = only_lead(session)
    rep1 = as_user(session, unit.rep1, clock)
    with pytest.raises(NotFound):  # another rep's lead is not theirs to see
        leads.set_status(session, as_user(session, unit.rep2, clock), lead.id, "contacted")
    clock.advance(timedelta(minutes=20))
    assert leads.set_status(session, rep1, lead.id, "contacted").sla_state == "met"
    leads.set_status(session, rep1, lead.id, "qualified")
    deal = opportunities.convert(
        session, rep1, lead.id, OpportunityIn(name="产线改造", amount="480000")
    )
    with pytest.raises(ValidationFailed):
        opportunities.set_stage(session, rep1, deal.id, StageIn(stage="lost"))  # no reason
    won = opportunities.set_stage(session, rep1, deal.id, StageIn(stage="won"))
    assert won.status == "won"
    session.commit()
    report = reports.handoffs(session, ctx, "north")
    assert report.converted_customers == 1 and report.handoffs_per_converted == 2
    assert [(p.from_department, p.to_department) for p in report.pairs] == [
        ("marketing", "sales"),
        ("sales", "service"),
    ]
    (row,) = reports.funnel(session, ctx, "north")
    assert (row.created, row.assigned, row.contacted, row.qualified, row.won) == (1, 1, 1, 1, 1)
    unit.feed()
    names = {e.name for e in profiles.timeline(session, ctx, lead.profile_id).entries}
    assert {"Lead Contacted", "Lead Converted", "Opportunity Won"} <= names


def test_untouched_leads_are_recalled_to_the_pool(
    unit: SalesUnit, session: Session, clock: FixedClock
) -> None:
    # assigned Tuesday 2026-03-03 10:00 in Shanghai: 48 working hours (9 a day) end on
    # the next Tuesday, 2026-03-10 13:00; the weekend between does not count
    clock.at = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
    unit.feed(*demo_request("u1"))
    assert only_lead(session).recall_at == datetime(2026, 3, 10, 5, 0, tzinfo=UTC)
    clock.at = datetime(2026, 3, 10, 4, 59, tzinfo=UTC)
    unit.feed()
    assert only_lead(session).status == "assigned"
    clock.at = datetime(2026, 3, 10, 5, 0, tzinfo=UTC)
    unit.feed()
    lead = only_lead(session)
    assert lead.status == "pooled" and lead.owner_user_id is None
    assert leads.activity(session, as_user(session, unit.manager, clock), lead.id)[-1].kind == (
        "recalled"
    )


def test_bad_settings_and_tables_name_the_problem(
    unit: SalesUnit, session: Session, ctx: Context
) -> None:
    with pytest.raises(ValidationFailed) as bad:
        config.set_settings(session, ctx, {"triggers": [{"kind": "segment_entered"}]}, "north")
    assert bad.value.errors[0].loc[:2] == ("triggers", 0)
    with pytest.raises(ValidationFailed) as unknown:
        config.set_settings(
            session, ctx, {"triggers": [{"kind": "segment_entered", "segment": "nope"}]}, "north"
        )
    assert unknown.value.errors[0].loc == ("triggers", 0, "segment")
    with pytest.raises(ValidationFailed) as zone:
        config.set_settings(session, ctx, {"calendar": {"time_zone": "Mars/Base"}}, "north")
    assert zone.value.errors[0].loc[0] == "calendar"
    with pytest.raises(ValidationFailed):
        config.upload_table(session, ctx, b"<not-dmn/>", "north")
    # a table routing to a team the unit lacks is refused, naming the row
    with pytest.raises(ValidationFailed) as team:
        config.upload_table(session, ctx, TABLE.replace('"east"</text></outputEntry>',
                            '"nowhere"</text></outputEntry>').encode(), "north")  # fmt: skip
    assert team.value.errors[0].loc == ("rules", 2, "team")
