# ruff: noqa: F811  (``unit`` is the sales tests' fixture, imported to be used by name)
"""The sales pages through the app: a rep's leads, the pool's claim (and the claim lost to
another rep), status changes with errors beside their fields, conversion and stage changes,
return with a confirmation, a manager's board, SLA list, reassignment and recall, the
reports; escaping, permissions, and another rep's and another unit's leads."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from oneloop.core.clock import FixedClock
from oneloop.core.context import Context, system_context
from oneloop.governance.schemas import User
from oneloop.governance.service import unit_row
from oneloop.governance.signin import context_of
from oneloop.profiles import service as profiles
from oneloop.sales import config, leads, opportunities
from oneloop.sales.models import LeadRow
from oneloop.sales.schemas import OpportunityIn, StageIn
from tests.factories import PASSWORD, make_user
from tests.sales.conftest import SalesUnit, demo_request, unit  # noqa: F401
from tests.web.conftest import csrf_of, sign_in

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _client(app: FastAPI, email: str) -> TestClient:
    client = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
    return sign_in(client, email, PASSWORD)


@pytest.fixture
def rep1(app: FastAPI, unit: SalesUnit) -> TestClient:
    return _client(app, unit.rep1.email)


@pytest.fixture
def rep2(app: FastAPI, unit: SalesUnit) -> TestClient:
    return _client(app, unit.rep2.email)


@pytest.fixture
def boss(app: FastAPI, unit: SalesUnit) -> TestClient:
    return _client(app, unit.manager.email)


def _lead(session: Session, user: str) -> LeadRow:
    """The lead of the customer who identified as ``user`` in north, as stored now."""
    session.expire_all()
    profile_id = profiles.find_id(session, system_context(), "user_id", f"north:{user}")
    return session.scalars(select(LeadRow).where(LeadRow.profile_id == profile_id)).one()


def _as(session: Session, user: User, clock: FixedClock) -> Context:
    return context_of(session, user.id, unit_row(session, "north").id, clock=clock)


def _post(client: TestClient, path: str, **data: str) -> object:
    token = csrf_of(client.get("/sales").text)
    return client.post(path, data={"csrf_token": token, **data}, follow_redirects=False)


# --- navigation and permissions -----------------------------------------------------------


def test_sales_entries_show_by_permission(
    app: FastAPI,
    unit: SalesUnit,
    session: Session,
    ctx: Context,
    rep1: TestClient,
    boss: TestClient,
) -> None:
    make_user(session, ctx, "marketer.north@example.org", "north", "marketer")
    marketer = _client(app, "marketer.north@example.org")
    rep_home, boss_home = rep1.get("/").text, boss.get("/").text
    market_home = marketer.get("/").text
    assert 'href="/sales"' in rep_home and 'href="/reports/sales"' not in rep_home
    assert 'href="/sales"' in boss_home and 'href="/reports/sales"' in boss_home
    assert 'href="/sales"' not in market_home and 'href="/reports/sales"' in market_home
    assert 'href="/sales/board"' not in rep1.get("/sales").text
    assert 'href="/sales/board"' in boss.get("/sales").text
    for path in ("/sales/board", "/sales/sla", "/reports/sales"):
        assert rep1.get(path).status_code == 403, path
    assert marketer.get("/sales").status_code == 403
    assert marketer.get("/reports/sales").status_code == 200


# --- a rep: my leads, the pool, one lead ---------------------------------------------------


def test_my_leads_show_why_sla_and_routing_and_only_my_own(
    unit: SalesUnit, session: Session, rep1: TestClient, rep2: TestClient
) -> None:
    unit.feed(*demo_request("u1", "上海", company="星河精密"))
    lead = _lead(session, "u1")
    assert lead.owner_user_id == unit.rep1.id
    page = rep1.get("/sales?lang=en")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    row = page.text.split(f'id="lead-{lead.id}"')[1].split("</tr>")[0]
    assert "星河精密" in row and f'href="/customers/{lead.profile_id}"' in row
    assert "Demo Requested" in row and "2026 峰会" in row  # why the lead exists
    assert "Row 2" in row and "Round robin" in row  # which rule row and strategy chose them
    assert "<time datetime=" in row and "+08:00" in row  # due in the unit's time zone
    assert 'class="small mark-contacted"' in row
    assert f'id="lead-{lead.id}"' not in rep2.get("/sales").text
    zh = rep1.get("/sales?lang=zh-CN").text
    assert "我的线索" in zh and "第 2 行" in zh and "轮询" in zh

    detail = rep1.get(f"/sales/leads/{lead.id}").text
    assert 'data-routing="rule_row"' in detail and "east team" in detail  # the rule's text
    assert 'data-routing="strategy"' in detail and 'id="mark-contacted"' in detail
    assert 'data-kind="created"' in detail and 'data-kind="assigned"' in detail


def test_a_claim_takes_the_lead_and_a_lost_race_says_so_on_the_pool_page(
    unit: SalesUnit, session: Session, rep1: TestClient, rep2: TestClient
) -> None:
    unit.feed(*demo_request("west", "四川"))  # no row for the west: the pool
    lead = _lead(session, "west")
    assert lead.status == "pooled"
    pool = rep2.get("/sales/pool")
    assert f'action="/sales/leads/{lead.id}/claim"' in pool.text and "no rule matched" in pool.text
    won = _post(rep1, f"/sales/leads/{lead.id}/claim")
    assert won.status_code == 303 and won.headers["location"] == f"/sales/leads/{lead.id}"
    assert _lead(session, "west").owner_user_id == unit.rep1.id
    lost = _post(rep2, f"/sales/leads/{lead.id}/claim")
    assert lost.status_code == 409 and 'id="claim-notice"' in lost.text
    assert "Someone else claimed this lead first" in lost.text and 'id="error"' not in lost.text
    token = csrf_of(rep2.get("/sales").text)
    zh = rep2.post(
        f"/sales/leads/{lead.id}/claim?lang=zh-CN", data={"csrf_token": token}
    )  # the language of the page that answers
    assert zh.status_code == 409 and "已被其他销售抢先认领" in zh.text
    assert rep2.post(f"/sales/leads/{lead.id}/claim").status_code == 403  # no CSRF token


def test_status_changes_need_the_owner_and_a_reason_to_disqualify(
    unit: SalesUnit, session: Session, rep1: TestClient, rep2: TestClient
) -> None:
    unit.feed(*demo_request("u1"))
    lead = _lead(session, "u1")
    path = f"/sales/leads/{lead.id}/status"
    done = _post(rep1, path, status="contacted", next="/sales?status=assigned")
    assert done.status_code == 303 and done.headers["location"] == "/sales?status=assigned"
    assert _lead(session, "u1").status == "contacted"
    away = _post(rep1, path, status="qualified", next="https://evil.example/")
    assert away.headers["location"] == f"/sales/leads/{lead.id}"  # never off the site
    missing = _post(rep1, path, status="disqualified", reason="  ")
    assert missing.status_code == 422
    assert re.search(r'id="f-reason"[^>]*aria-invalid="true"', missing.text)
    assert 'id="f-reason-error"' in missing.text
    assert _post(rep2, path, status="disqualified", reason="x").status_code == 404  # not theirs
    done = _post(rep1, path, status="disqualified", reason="暂无预算")
    assert done.status_code == 303 and _lead(session, "u1").status == "disqualified"
    again = _post(rep1, path, status="contacted")
    assert again.status_code == 409 and "cannot become contacted" in again.text
    assert _post(rep1, path, status="won").status_code == 422


def test_convert_shows_errors_beside_fields_then_the_opportunity_moves_to_lost(
    unit: SalesUnit, session: Session, rep1: TestClient, boss: TestClient
) -> None:
    unit.feed(*demo_request("u1"))
    lead = _lead(session, "u1")
    bad = _post(rep1, f"/sales/leads/{lead.id}/convert", name="", amount="lots")
    assert bad.status_code == 422
    assert 'id="f-name-error"' in bad.text and 'id="f-amount-error"' in bad.text
    assert 'value="lots"' in bad.text  # what was typed stays
    made = _post(rep1, f"/sales/leads/{lead.id}/convert", name="产线改造", amount="480,000.00")
    assert made.status_code == 303 and made.headers["location"].startswith("/sales/opportunities#")
    opp_id = made.headers["location"].split("#opp-")[1]
    listed = rep1.get("/sales/opportunities").text
    assert f'id="opp-{opp_id}"' in listed and "480,000" in listed

    stage = f"/sales/opportunities/{opp_id}/stage"
    unsaid = _post(rep1, stage, stage="lost")
    assert unsaid.status_code == 422 and 'id="f-reason-error"' in unsaid.text
    assert _post(rep1, stage, stage="lost", reason="选择了竞品").status_code == 303
    closed = rep1.get("/sales/opportunities?status=lost").text
    assert 'data-stage="lost"' in closed and "选择了竞品" in closed
    assert _post(rep1, stage, stage="won").status_code == 409  # lost already
    assert rep1.get("/sales/opportunities?status=bogus").status_code == 422
    assert boss.get(f"/sales/opportunities/{opp_id}").status_code == 200


def test_returning_a_lead_asks_for_a_reason_on_a_confirmation_page(
    unit: SalesUnit, session: Session, rep1: TestClient
) -> None:
    unit.feed(*demo_request("u1", company=HOSTILE))
    lead = _lead(session, "u1")
    confirm = rep1.get(f"/sales/leads/{lead.id}/return")
    assert confirm.status_code == 200
    assert f'action="/sales/leads/{lead.id}/return"' in confirm.text
    assert ESCAPED in confirm.text and HOSTILE not in confirm.text
    missing = _post(rep1, f"/sales/leads/{lead.id}/return", reason="")
    assert missing.status_code == 422 and 'id="f-reason-error"' in missing.text
    done = _post(rep1, f"/sales/leads/{lead.id}/return", reason="客户在华南")
    assert done.status_code == 303 and _lead(session, "u1").status == "pooled"


def test_hostile_values_are_escaped_everywhere(
    unit: SalesUnit, session: Session, rep1: TestClient, boss: TestClient
) -> None:
    unit.feed(
        {"type": "identify", "userId": "u1", "traits": {"province": "上海", "company": HOSTILE}},
        {"type": "track", "userId": "u1", "event": "Demo Requested",
         "properties": {"campaign": HOSTILE}},
    )  # fmt: skip
    lead = _lead(session, "u1")
    for client, path in (
        (rep1, "/sales"),
        (rep1, f"/sales/leads/{lead.id}"),
        (boss, "/sales?scope=all"),
        (boss, "/reports/sales"),
    ):
        page = client.get(path)
        assert page.status_code == 200, path
        assert HOSTILE not in page.text and ESCAPED in page.text, path
        scripts = re.findall(r"<script([^>]*)>", page.text)
        assert all("src=" in s or 'type="application/json"' in s for s in scripts), path
        assert not re.search(r"\son[a-z]+=", page.text), path


# --- isolation: another rep, another unit -----------------------------------------------------


def test_another_unit_sees_nothing_of_the_leads(
    app: FastAPI, unit: SalesUnit, session: Session, rep2: TestClient
) -> None:
    unit.feed(*demo_request("u1"), *demo_request("west", "四川"))
    mine, pooled = _lead(session, "u1"), _lead(session, "west")
    south = _client(app, unit.south_rep.email)
    assert south.get(f"/sales/leads/{mine.id}").status_code == 404
    assert south.get(f"/sales/leads/{pooled.id}").status_code == 404
    assert pooled.id not in south.get("/sales/pool").text
    assert mine.id not in south.get("/sales").text
    assert _post(south, f"/sales/leads/{pooled.id}/claim").status_code == 404
    assert _post(south, f"/sales/leads/{mine.id}/status", status="contacted").status_code == 404
    assert _lead(session, "west").status == "pooled"
    assert rep2.get(f"/sales/leads/{mine.id}").status_code == 404  # another rep's lead


# --- a manager ---------------------------------------------------------------------------------


def test_the_board_shows_loads_and_changes_duty_and_capacity_through_the_config_service(
    unit: SalesUnit, session: Session, ctx: Context, boss: TestClient, rep1: TestClient
) -> None:
    unit.feed(*demo_request("u1"), *demo_request("west", "四川"))
    board = boss.get("/sales/board")
    assert board.status_code == 200 and 'id="team-east"' in board.text
    east = board.text.split('id="team-east"')[1].split("</section>")[0]
    assert f'data-rep="{unit.rep1.email}"' in east and "1 / 5" in east
    off = _post(boss, "/sales/board/members", team="east", email=unit.rep1.email, on_duty="0")
    assert off.status_code == 303
    member = {m.email: m for m in config.get_team(session, ctx, "east", "north").members}
    assert member[unit.rep1.email].on_duty is False and member[unit.rep1.email].capacity == 5
    bad = _post(boss, "/sales/board/members", team="east", email=unit.rep1.email, capacity="-3")
    assert bad.status_code == 422 and 'id="cap-east-1-error"' in bad.text
    done = _post(boss, "/sales/board/members", team="east", email=unit.rep1.email, capacity="7")
    assert done.status_code == 303
    session.expire_all()
    member = {m.email: m for m in config.get_team(session, ctx, "east", "north").members}
    assert member[unit.rep1.email].capacity == 7 and member[unit.rep1.email].on_duty is False
    refused = _post(rep1, "/sales/board/members", team="east", email=unit.rep1.email, on_duty="1")
    assert refused.status_code == 403
    unknown = _post(boss, "/sales/board/members", team="east", email="nobody@x.org", on_duty="1")
    assert unknown.status_code == 404


def test_the_sla_page_lists_overdue_leads_first(
    unit: SalesUnit, session: Session, clock: FixedClock, boss: TestClient
) -> None:
    unit.feed(*demo_request("u1"))
    clock.advance(timedelta(days=10))
    unit.feed(*demo_request("u2"))  # the clock task breaches u1's lead; u2's is new
    late, fresh = _lead(session, "u1"), _lead(session, "u2")
    assert late.sla_state == "breached"
    page = boss.get("/sales/sla")
    assert page.status_code == 200
    breached = page.text.split('id="breached-leads"')[1].split("</table>")[0]
    assert f'data-lead="{late.id}"' in breached and fresh.id not in breached
    assert 'data-sla="breached"' in breached
    assert late.id not in boss.get("/sales/sla?team=key").text


def test_a_manager_reassigns_routes_again_and_recalls(
    unit: SalesUnit, session: Session, boss: TestClient, rep1: TestClient
) -> None:
    unit.feed(*demo_request("u1"))
    lead = _lead(session, "u1")
    path = f"/sales/leads/{lead.id}/assign"
    assert 'id="reassign"' in boss.get(f"/sales/leads/{lead.id}").text
    unknown = _post(boss, path, email="nobody@example.org")
    assert unknown.status_code == 422 and 'id="f-email-error"' in unknown.text
    moved = _post(boss, path, email=unit.rep2.email)
    assert moved.status_code == 303 and _lead(session, "u1").owner_user_id == unit.rep2.id
    again = _post(boss, path, email="")  # route again, past the current owner
    assert again.status_code == 303 and _lead(session, "u1").owner_user_id == unit.rep1.id
    assert _post(rep1, path, email=unit.rep2.email).status_code == 403
    recalled = _post(boss, "/sales/recall")
    assert recalled.status_code == 303
    assert recalled.headers["location"].startswith("/sales/board?recalled=")
    count = int(recalled.headers["location"].split("=")[1])
    assert count == (1 if _lead(session, "u1").status == "pooled" else 0)
    shown = boss.get(recalled.headers["location"])
    assert shown.status_code == 200 and 'id="done"' in shown.text
    assert _post(rep1, "/sales/recall").status_code == 403


def test_the_reports_draw_the_funnel_and_the_hand_offs(
    unit: SalesUnit, session: Session, clock: FixedClock, boss: TestClient
) -> None:
    unit.feed(*demo_request("u1"), *demo_request("u2"), *demo_request("west", "四川"))
    lead = _lead(session, "u1")
    rep = _as(session, unit.rep1 if lead.owner_user_id == unit.rep1.id else unit.rep2, clock)
    leads.set_status(session, rep, lead.id, "qualified")
    deal = opportunities.convert(session, rep, lead.id, OpportunityIn(name="x", amount=1))
    opportunities.set_stage(session, rep, deal.id, StageIn(stage="won"))
    session.commit()
    page = boss.get("/reports/sales?lang=en")
    assert page.status_code == 200
    data = json.loads(re.search(r'id="chart-funnel-data">([^<]*)<', page.text).group(1))
    assert data["kind"] == "funnel"
    assert [s["value"] for s in data["stages"]] == [3, 2, 1, 1, 1]
    sources = json.loads(re.search(r'id="chart-sources-data">([^<]*)<', page.text).group(1))
    assert sources["kind"] == "bar" and len(sources["series"]) == 5
    assert 'id="funnel-table"' in page.text and "2026 峰会" in page.text
    assert 'id="handoff-pairs"' in page.text and "Marketing" in page.text
    zh = boss.get("/reports/sales?lang=zh-CN").text
    assert "线索漏斗" in zh and "市场" in zh
    assert boss.get("/reports/sales?days=12").status_code == 422
    assert boss.get("/reports/sales?days=7").status_code == 200


def test_a_group_wide_viewer_is_asked_to_pick_a_unit(
    app: FastAPI, unit: SalesUnit, session: Session, ctx: Context
) -> None:
    make_user(session, ctx, "hq@example.org", "galaxy", "group_admin")
    hq = _client(app, "hq@example.org")
    for path in ("/sales", "/sales/pool", "/sales/board", "/reports/sales"):
        page = hq.get(path)
        assert page.status_code == 200 and 'id="unit-needed"' in page.text, path
