"""Privacy requests end to end: events in through the real pipeline, then an access export,
an erasure (after which the person's phone and email are nowhere in the database), re-ingest
suppressed, an objection to profiling, and the requests' deadlines and isolation."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, inspect, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from oneloop.cli.main import app as cli
from oneloop.collect.models import DeadLetterRow, EventRow
from oneloop.core.clock import FixedClock
from oneloop.core.context import Context
from oneloop.governance import privacy
from oneloop.governance.models import AuditRow
from oneloop.identity.models import IdentifierRow
from oneloop.identity.service import find_profile
from oneloop.profiles import score_models
from oneloop.profiles.models import EventCountRow, ScoreRow
from oneloop.segments import service as segments
from oneloop.segments.models import ChangeRow, MemberRow
from oneloop.segments.schemas import SegmentIn
from tests.conftest import ADMIN
from tests.factories import make_user, signed_in
from tests.pipeline import Feed

PHONE, EMAIL, NAME = "138 0013 8000", "Zhang.Wei@Galaxy-Mail.cn", "张伟"
ADDRESS = "上海市浦东新区世纪大道100号"
# Every way the person's values could have been stored.
TRACES = [
    "13800138000",
    "+8613800138000",
    "138 0013 8000",
    "zhang.wei@example.com",
    EMAIL,
    NAME,
    ADDRESS,
    "p-1",
]
INTENT = {
    "code": "intent",
    "name_zh": "购买意向",
    "name_en": "Intent",
    "rules": [{"id": "order", "event": "Order Completed", "points": 10}],
}

runner = CliRunner()


@pytest.fixture
def person(session: Session, ctx: Context, feed: Feed) -> str:
    """Zhang Wei, in north: identified on the web and in the CRM (two profiles merged),
    an order, a segment he is in, a score, a manual tag, and a refused event that carries his
    phone; and Li Na, who must come through it all untouched."""
    score_models.create_model(session, ctx, INTENT, bu="north")
    rule = {"trait": "city", "op": "eq", "value": "上海"}
    segments.create_segment(
        session, ctx, SegmentIn(code="sh", name="上海 SH", rule=rule, bu="north")
    )
    session.commit()
    feed(
        {"type": "identify", "anonymousId": "web-1", "traits": {"email": EMAIL, "city": "上海"}},
    )
    feed(  # the CRM's record: a second profile, merged into the first by the alias below
        {
            "type": "identify",
            "userId": "p-1",
            "traits": {"phone": PHONE, "name": NAME, "address": ADDRESS},
        },
        {
            "type": "identify",
            "userId": "p-2",
            "traits": {"phone": "139 0000 0002", "name": "李娜", "city": "上海"},
        },
    )
    feed(
        {"type": "alias", "userId": "p-1", "previousId": "web-1"},
        {
            "type": "track",
            "userId": "p-1",
            "event": "Order Completed",
            "properties": {
                "total": 99.5,
                "order_id": "o-1",
                "shipping_address": ADDRESS,
                "contact": PHONE,
            },
        },
        {"type": "track", "userId": "p-2", "event": "Order Completed", "properties": {"total": 10}},
        {
            "type": "track",
            "userId": "p-1",
            "event": "Consent Updated",
            "properties": {
                "purpose": "marketing",
                "channel": "email",
                "status": "granted",
                "proof": f"paper form signed by {NAME}",
            },
        },
        {"type": "track", "userId": "p-1", "event": "", "properties": {"phone": PHONE}},  # refused
    )
    profile = find_profile(session, ctx, "email", EMAIL)
    assert profile is not None and profile == find_profile(session, ctx, "phone", PHONE)
    return profile


def traces_in(engine: Engine, values: list[str]) -> dict[str, list[str]]:
    """Where in the whole database each value still is: every column of every table."""
    found: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for table in inspect(engine).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                cells = json.dumps([str(v) for v in row], ensure_ascii=False)
                for value in values:
                    if value in cells:
                        found.setdefault(value, []).append(table)
    return found


def run(ctx: Context, session: Session, kind: Any, profile: str) -> Any:
    row = privacy.create_request(session, ctx, kind, profile, "email", "ticket 1")
    done, document = privacy.execute(session, ctx, row.id)
    session.commit()
    return done, document


def test_access_exports_everything_held(session: Session, ctx: Context, person: str) -> None:
    done, document = run(ctx, session, "access", person)
    assert done.status == "completed" and done.result["events"] == len(document["events"])
    assert {"phone", "email", "user_id", "anonymous_id"} <= {
        i["type"] for i in document["identifiers"]
    }
    assert document["merged_profiles"] and document["merges"]
    assert document["golden_record"]["fields"]
    assert [s["segment"] for s in document["segments"]] == ["sh"]
    assert [(c["purpose"], c["status"]) for c in document["consent"]] == [("marketing", "granted")]
    assert document["scores"][0]["value"] == 10 and document["score_history"]
    assert any(e["event"] == "Order Completed" for e in document["events"])
    assert "139 0000 0002" not in json.dumps(document, ensure_ascii=False)  # Li Na's
    act = session.scalars(select(AuditRow).where(AuditRow.action == "privacy.exported")).one()
    assert act.detail == {"kind": "access", "profile": person}


def test_erasure_leaves_no_trace_and_keeps_the_aggregates(
    engine: Engine, session: Session, ctx: Context, person: str
) -> None:
    assert set(traces_in(engine, TRACES)) >= {"13800138000", EMAIL, NAME, ADDRESS}
    events_before = session.scalar(select(func.count()).select_from(EventRow))
    counts_before = session.execute(
        select(EventCountRow.name, func.sum(EventCountRow.count)).group_by(EventCountRow.name)
    ).all()
    done, _ = run(ctx, session, "erasure", person)
    assert done.result["collect_dead_letter"] >= 1 and done.result["identity_identifier"] >= 4

    assert traces_in(engine, TRACES) == {}
    # Li Na is untouched; the aggregates still add up.
    assert traces_in(engine, ["139 0000 0002", "李娜"]).keys() == {"139 0000 0002", "李娜"}
    assert session.scalar(select(func.count()).select_from(EventRow)) == events_before
    assert (
        session.execute(
            select(EventCountRow.name, func.sum(EventCountRow.count)).group_by(EventCountRow.name)
        ).all()
        == counts_before
    )
    totals = session.scalars(
        select(EventRow.properties).where(EventRow.event == "Order Completed")
    ).all()
    assert sorted(p["total"] for p in totals) == [10, 99.5]
    # He left his segment, for a reason the history gives, and has no score any more.
    assert (
        session.scalars(select(MemberRow.profile_id)).all() != []
        and person not in session.scalars(select(MemberRow.profile_id)).all()
    )
    assert session.execute(
        select(ChangeRow.kind, ChangeRow.cause).where(ChangeRow.profile_id == person)
    ).all()[-1] == ("exit", "privacy")
    assert session.scalar(select(ScoreRow).where(ScoreRow.profile_id == person)) is None
    dead = session.scalars(select(DeadLetterRow.status)).all()
    assert "erased" in dead
    act = session.scalars(select(AuditRow).where(AuditRow.action == "privacy.erased")).one()
    assert "13800138000" not in str(act.detail)


def test_re_ingest_does_not_bring_an_erased_person_back(
    engine: Engine, session: Session, ctx: Context, person: str, feed: Feed
) -> None:
    run(ctx, session, "erasure", person)
    feed(
        {
            "type": "identify",
            "userId": "p-1",
            "traits": {"phone": PHONE, "email": EMAIL, "name": NAME},
        }
    )
    feed(
        {
            "type": "track",
            "anonymousId": "web-1",
            "event": "Order Completed",
            "properties": {"total": 5},
        }
    )
    assert find_profile(session, ctx, "phone", PHONE) is None
    assert find_profile(session, ctx, "email", EMAIL) is None
    assert traces_in(engine, TRACES) == {}
    # Someone new with a phone of their own is resolved as usual.
    feed({"type": "identify", "userId": "p-3", "traits": {"phone": "137 0000 0003"}})
    assert find_profile(session, ctx, "phone", "13700000003") is not None


def test_erasure_runs_again_without_harm(session: Session, ctx: Context, person: str) -> None:
    run(ctx, session, "erasure", person)
    again, _ = run(ctx, session, "erasure", person)
    assert again.status == "completed"
    assert again.result["identity_identifier"] == 0 and again.result["collect_dead_letter"] == 0


def test_an_objection_stops_scoring_and_segments(
    session: Session, ctx: Context, person: str, feed: Feed
) -> None:
    run(ctx, session, "objection", person)
    assert person not in session.scalars(select(MemberRow.profile_id)).all()
    assert session.scalar(select(ScoreRow).where(ScoreRow.profile_id == person)) is None
    feed({"type": "track", "userId": "p-1", "event": "Order Completed", "properties": {"total": 1}})
    assert session.scalar(select(ScoreRow).where(ScoreRow.profile_id == person)) is None
    segment = segments.list_segments(session, ctx)[0]
    segments.evaluate(session, ctx, segment.id)
    session.commit()
    assert person not in session.scalars(select(MemberRow.profile_id)).all()
    # Everything else about him stays: it is profiling he objected to, not being a customer.
    assert find_profile(session, ctx, "phone", PHONE) == person


# --- tracking the requests ------------------------------------------------------------------


def test_requests_have_a_deadline_and_a_unit(
    app: FastAPI, session: Session, ctx: Context, person: str, clock: FixedClock
) -> None:
    from dataclasses import replace

    app.state.oneloop = replace(app.state.oneloop, clock=clock)
    make_user(session, ctx, "cora@north.example.com", "north", "compliance_officer")
    make_user(session, ctx, "sid@south.example.com", "south", "compliance_officer")
    north = signed_in(app, "cora@north.example.com")
    made = north.post("/api/v1/privacy/requests", json={"kind": "erasure", "profile_id": person})
    assert made.status_code == 201, made.text
    request = made.json()["request"]
    assert request["status"] == "received" and request["due_at"].startswith(
        (clock.now() + timedelta(days=30)).date().isoformat()
    )
    # The unit logs and follows it; the group carries it out.
    refused = north.post(f"/api/v1/privacy/requests/{request['id']}/execute")
    assert refused.status_code == 403
    south = signed_in(app, "sid@south.example.com")
    assert south.get(f"/api/v1/privacy/requests/{request['id']}").status_code == 404
    assert south.get("/api/v1/privacy/requests").json()["items"] == []
    assert (
        south.post(
            "/api/v1/privacy/requests", json={"kind": "access", "profile_id": person}
        ).status_code
        == 404
    )

    clock.advance(timedelta(days=31))
    north = signed_in(app, "cora@north.example.com")  # a month on: a new session
    late = north.get("/api/v1/privacy/requests", params={"overdue": True}).json()["items"]
    assert [r["id"] for r in late] == [request["id"]] and late[0]["is_overdue"]
    admin = TestClient(app, headers=ADMIN)
    done = admin.post(f"/api/v1/privacy/requests/{request['id']}/execute")
    assert done.status_code == 200 and done.json()["request"]["status"] == "completed"
    assert admin.post(f"/api/v1/privacy/requests/{request['id']}/execute").status_code == 409
    assert north.get("/api/v1/privacy/requests", params={"overdue": True}).json()["items"] == []


def test_bad_requests_name_the_field(app: FastAPI, person: str) -> None:
    admin = TestClient(app, headers=ADMIN)
    bad = admin.post("/api/v1/privacy/requests", json={"kind": "forget", "profile_id": person})
    assert bad.status_code == 422 and bad.json()["errors"][0]["path"].endswith("kind")
    nobody = admin.post(
        "/api/v1/privacy/requests", json={"kind": "access", "profile_id": "01NOBODY"}
    )
    assert nobody.status_code == 404
    made = admin.post(
        "/api/v1/privacy/requests", json={"kind": "access", "profile_id": person}
    ).json()
    rejected = admin.post(
        f"/api/v1/privacy/requests/{made['request']['id']}/reject", json={"reason": "no"}
    )
    assert rejected.status_code == 422
    rejected = admin.post(
        f"/api/v1/privacy/requests/{made['request']['id']}/reject",
        json={"reason": "identity not verified"},
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"


def test_the_command_line_exports_and_erases(
    db_url: str, engine: Engine, session: Session, person: str, tmp_path: Any
) -> None:
    env = {"ONELOOP_DATABASE_URL": db_url, "ONELOOP_LOG_FORMAT": "json"}
    out = tmp_path / "person.json"
    exported = runner.invoke(cli, ["privacy", "export", person, "--out", str(out)], env=env)
    assert exported.exit_code == 0, exported.output
    assert "13800138000" in out.read_text(encoding="utf-8")
    erased = runner.invoke(cli, ["privacy", "erase", person, "--yes", "--json"], env=env)
    assert erased.exit_code == 0, erased.output
    assert json.loads(erased.stdout)["result"]["identity_identifier"] >= 4
    assert traces_in(engine, TRACES) == {}
    listed = runner.invoke(cli, ["privacy", "list", "--json"], env=env)
    assert [r["kind"] for r in json.loads(listed.stdout)] == ["access", "erasure"]
    assert (
        session.scalars(select(IdentifierRow).where(IdentifierRow.profile_id == person)).all() == []
    )
