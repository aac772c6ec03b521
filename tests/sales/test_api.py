"""Sales over HTTP and the command line: what a rep and a manager do, and clear 4xx answers
naming the field for bad input."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from oneloop.cli.main import app as cli
from oneloop.core.config import Settings
from oneloop.sales.routing import DMN_DIR
from tests.factories import signed_in
from tests.sales.conftest import TABLE, SalesUnit, demo_request


def test_a_rep_claims_from_the_pool_and_works_the_lead(
    unit: SalesUnit, app: FastAPI, session: Session
) -> None:
    unit.feed(*demo_request("west", "四川"))
    rep1, rep2 = signed_in(app, unit.rep1.email), signed_in(app, unit.rep2.email)
    pool = rep1.get("/api/v1/leads/pool").json()["items"]
    assert len(pool) == 1 and pool[0]["routing"]["why"] == "no rule matched"
    lead = pool[0]["id"]
    assert rep1.post(f"/api/v1/leads/{lead}/claim").status_code == 200
    taken = rep2.post(f"/api/v1/leads/{lead}/claim")
    assert taken.status_code == 409 and "claimed" in taken.json()["detail"]
    # a disqualification needs a reason: 422 naming it
    bad = rep1.post(f"/api/v1/leads/{lead}/status", json={"status": "disqualified"})
    assert bad.status_code == 422 and "reason" in bad.text
    wrong = rep1.post(f"/api/v1/leads/{lead}/status", json={"status": "won"})
    assert wrong.status_code == 422 and "status" in wrong.text
    # the first contact stops the clock (the feed's fixed clock made the lead long ago: late)
    contacted = rep1.post(f"/api/v1/leads/{lead}/status", json={"status": "contacted"}).json()
    assert contacted["sla_state"] == "met_late" and contacted["contacted_at"]
    deal = rep1.post(f"/api/v1/leads/{lead}/convert", json={"name": "扩产", "amount": "-1"})
    assert deal.status_code == 422 and "amount" in deal.text
    deal = rep1.post(f"/api/v1/leads/{lead}/convert", json={"name": "扩产", "amount": "120000"})
    assert deal.status_code == 201, deal.text
    won = rep1.post(f"/api/v1/opportunities/{deal.json()['id']}/stage", json={"stage": "won"})
    assert won.json()["status"] == "won"
    mine = rep1.get("/api/v1/leads", params={"owner": "me"}).json()["items"]
    assert [x["status"] for x in mine] == ["converted"]
    history = [a["kind"] for a in rep1.get(f"/api/v1/leads/{lead}/activity").json()]
    assert history == ["created", "pooled", "claimed", "contacted", "converted"]


def test_a_rep_may_not_configure_and_a_manager_may(unit: SalesUnit, app: FastAPI) -> None:
    rep = signed_in(app, unit.rep1.email)
    assert rep.put("/api/v1/sales/settings", json={}).status_code == 403
    manager = signed_in(app, unit.manager.email)
    bad = manager.put("/api/v1/sales/settings", json={"triggers": [{"kind": "score_at_least"}]})
    assert bad.status_code == 422
    assert any(e["loc"][:2] == ["triggers", 0] for e in bad.json()["errors"]), bad.text
    assert manager.put("/api/v1/sales/settings", json={"recall_after_hours": 0}).status_code == 422
    ok = manager.put("/api/v1/sales/settings", json={"max_open_per_rep": 10})
    assert ok.status_code == 200 and ok.json()["max_open_per_rep"] == 10


def test_the_routing_table_is_uploaded_and_downloaded_as_dmn(unit: SalesUnit, app: FastAPI) -> None:
    manager = signed_in(app, unit.manager.email)
    xml = {"Content-Type": "application/xml"}
    garbage = manager.put("/api/v1/sales/routing-table", content=b"<oops", headers=xml)
    assert garbage.status_code == 422
    hostile = TABLE.replace("&gt;= 90", "__import__('os').system('true')")
    refused = manager.put("/api/v1/sales/routing-table", content=hostile.encode(), headers=xml)
    assert refused.status_code == 422 and "rules" in refused.text
    made = manager.put("/api/v1/sales/routing-table", content=TABLE.encode(), headers=xml)
    assert made.status_code == 200 and made.json()["version"] == 2
    got = manager.get("/api/v1/sales/routing-table.dmn")
    assert got.status_code == 200 and got.headers["content-type"].startswith("application/xml")
    assert got.text == TABLE
    # another unit's manager has no table to read
    assert signed_in(app, unit.south_rep.email).get("/api/v1/sales/routing-table").status_code in (
        403,
        404,
    )


def test_the_command_line_routes_lists_and_reports(
    unit: SalesUnit, settings: Settings, session: Session, tmp_path
) -> None:
    unit.feed(*demo_request("west", "四川"))
    env = {"ONELOOP_DATABASE_URL": settings.database_url}
    runner = CliRunner()
    listed = runner.invoke(cli, ["leads", "list", "--bu", "north"], env=env)
    assert listed.exit_code == 0 and "pooled" in listed.output
    # a table that routes the west too: the pooled lead finds a team
    west = TABLE.replace('"east"</text></inputEntry>', '"east","west"</text></inputEntry>')
    (tmp_path / "t.dmn").write_text(west, "utf-8")
    up = runner.invoke(
        cli, ["sales", "routing", "--bu", "north", "--upload", str(tmp_path / "t.dmn")], env=env
    )
    assert up.exit_code == 0 and "v2" in up.output, up.output
    routed = runner.invoke(cli, ["leads", "route", "--bu", "north"], env=env)
    assert routed.exit_code == 0 and "1 found an owner" in routed.output, routed.output
    funnel = runner.invoke(cli, ["leads", "funnel", "--bu", "north", "--json"], env=env)
    assert funnel.exit_code == 0 and '"assigned": 1' in funnel.output
    bad = runner.invoke(cli, ["sales", "routing", "--bu", "nowhere"], env=env)
    assert bad.exit_code == 1 and "nowhere" in bad.output
    shipped = runner.invoke(cli, ["sales", "teams", "list", "--bu", "north"], env=env)
    assert shipped.exit_code == 0 and "rep1@galaxy.example.com" in shipped.output
    assert (DMN_DIR / "industrial_routing.dmn").exists()
