"""A unit ready for leads: reps and a manager in ``north`` (and a rep in ``south``), a team,
a routing table, a Demo Requested trigger, and a feed that runs the worker's sales tasks."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from oneloop.collect.schemas import Source
from oneloop.core.clock import FixedClock
from oneloop.core.context import Context
from oneloop.governance.schemas import User
from oneloop.sales import config
from oneloop.sales.schemas import MemberIn, TeamIn
from oneloop.sales.tasks import LeadClocks, LeadTriggers
from tests.channels import conftest as channel_servers
from tests.factories import make_group, make_source, make_user
from tests.pipeline import Feed, make_feed

# The real SMTP server (aiosmtpd) of the channel tests, for the lead notices' test.
run_smtp = channel_servers.run_smtp
smtp = channel_servers.smtp

TABLE = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d" name="test routing"
  namespace="https://oneloop.dev/dmn/test">
  <decision id="routing" name="test routing">
    <decisionTable id="t" hitPolicy="FIRST">
      <input id="i1" label="Region"><inputExpression id="e1" typeRef="string">
        <text>region</text></inputExpression></input>
      <input id="i2" label="Score"><inputExpression id="e2" typeRef="number">
        <text>score</text></inputExpression></input>
      <output id="o1" label="Team" name="team" typeRef="string"/>
      <rule id="r_key"><description>hot leads to the key-account team</description>
        <inputEntry id="a1"><text>-</text></inputEntry>
        <inputEntry id="a2"><text>&gt;= 90</text></inputEntry>
        <outputEntry id="a3"><text>"key"</text></outputEntry></rule>
      <rule id="r_east"><description>华东 → east team</description>
        <inputEntry id="b1"><text>"east"</text></inputEntry>
        <inputEntry id="b2"><text>-</text></inputEntry>
        <outputEntry id="b3"><text>"east"</text></outputEntry></rule>
    </decisionTable>
  </decision>
</definitions>
"""


@dataclass
class SalesUnit:
    feed: Feed
    source: Source
    rep1: User
    rep2: User
    manager: User
    south_rep: User


@pytest.fixture
def unit(engine: Engine, session: Session, ctx: Context, clock: FixedClock) -> SalesUnit:
    make_group(session, ctx)
    source, _ = make_source(session, ctx)
    rep1 = make_user(session, ctx, "rep1@galaxy.example.com", "north", "sales_rep")
    rep2 = make_user(session, ctx, "rep2@galaxy.example.com", "north", "sales_rep")
    manager = make_user(session, ctx, "boss@galaxy.example.com", "north", "sales_manager")
    south_rep = make_user(session, ctx, "rep@south.example.com", "south", "sales_rep")
    for code in ("east", "key"):
        config.create_team(
            session,
            ctx,
            TeamIn(code=code, name_zh=f"{code}组", name_en=code.title(), bu="north",
                   manager="boss@galaxy.example.com"),
        )  # fmt: skip
    for rep in (rep1, rep2):
        config.set_member(session, ctx, "east", MemberIn(email=rep.email, capacity=5), "north")
    config.upload_table(session, ctx, TABLE.encode(), "north")
    config.set_settings(
        session, ctx, {"triggers": [{"kind": "event", "event": "Demo Requested"}]}, "north"
    )
    session.commit()
    feed = make_feed(engine, session, source, clock, tasks=[LeadTriggers(), LeadClocks()])
    return SalesUnit(feed, source, rep1, rep2, manager, south_rep)


def demo_request(user: str, province: str = "上海", **traits: object) -> list[dict[str, object]]:
    """A customer identifies with firmographics, then asks for a demo."""
    return [
        {"type": "identify", "userId": user, "traits": {"province": province, **traits}},
        {"type": "track", "userId": user, "event": "Demo Requested",
         "properties": {"campaign": "2026 峰会"}},
    ]  # fmt: skip
