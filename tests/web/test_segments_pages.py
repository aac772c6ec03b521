"""The segments pages through the app: the list, the builder's form (the rule checked by the
segment language, errors by path), the live estimate, edit against a version, delete after a
confirmation, a segment's page (masked members, trend, export link), and isolation between
units. On the suite's fresh databases."""

from __future__ import annotations

import html
import json
import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from oneloop.collect import consumers
from oneloop.collect.catalog import CatalogConsumer
from oneloop.core.clock import FixedClock
from oneloop.core.context import Context
from oneloop.core.db import session_factory
from oneloop.core.errors import NotFound
from oneloop.governance import service as governance
from oneloop.governance import users
from oneloop.profiles import service as profiles
from oneloop.profiles.schemas import TagCategoryIn, TagIn
from oneloop.segments import service as segments
from oneloop.segments.schemas import Segment, SegmentIn
from oneloop.web import segments_pages
from tests.factories import make_user, signed_in
from tests.pipeline import Feed

PHONE = "13800138000"
MASKED = "138****8000"
HOSTILE = "<script>alert(1)</script>"
BUYERS = {"event": "Order Completed", "count": {"op": "gte", "value": 1}}


def _client(
    app: FastAPI, session: Session, ctx: Context, role: str, bu: str = "north"
) -> TestClient:
    email = f"{role}.{bu}@example.org"
    if not users.user_exists(session, ctx, email):
        make_user(session, ctx, email, bu=bu, role=role)
    return signed_in(app, email)


@pytest.fixture
def people(feed: Feed, engine: Engine) -> None:
    """Two customers of north: one bought twice (and has a phone), one only looked; the
    event catalogue kept as the worker keeps it."""
    feed(
        {"type": "identify", "userId": "u1", "traits": {"name": "张伟", "phone": PHONE}},
        {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"x": 1}},
        {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"x": 2}},
        {"type": "track", "userId": "u2", "event": "Page Viewed"},
    )
    consumers.drain(session_factory(engine), [CatalogConsumer()])


def _segment(
    session: Session,
    ctx: Context,
    code: str,
    rule: dict[str, Any],
    bu: str = "north",
    name: str = "",
) -> Segment:
    made = segments.create_segment(
        session, ctx, SegmentIn(code=code, name=name or code, rule=rule, bu=bu)
    )
    session.commit()
    return made


def _builder_data(text: str) -> dict[str, Any]:  # Any: the page's JSON block
    found = re.search(
        r'<script type="application/json" id="builder-data">(.*?)</script>', text, re.S
    )
    assert found, "the form carries the builder's data"
    data: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return data


def test_the_list_shows_the_units_segments_and_pages(
    app: FastAPI, session: Session, ctx: Context, people: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _segment(session, ctx, "buyers", BUYERS, name="Buyers")
    _segment(session, ctx, "lookers", {"event": "Page Viewed"}, name="Lookers")
    _segment(session, ctx, "south_only", {"event": "Page Viewed"}, bu="south", name="South only")
    client = _client(app, session, ctx, "marketer")
    page = client.get("/segments")
    assert page.status_code == 200 and 'href="/segments"' in page.text  # in the menu
    rows = re.findall(r'<tr data-code="(\w+)">', page.text)
    assert rows == ["buyers", "lookers"]
    assert 'id="new-segment"' in page.text and "live" in page.text
    monkeypatch.setattr(segments_pages, "PAGE", 1)
    first = client.get("/segments")
    assert re.findall(r'<tr data-code="(\w+)">', first.text) == ["buyers"]
    nxt = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert nxt
    second = client.get(html.unescape(nxt.group(1)))
    assert re.findall(r'<tr data-code="(\w+)">', second.text) == ["lookers"]
    assert client.get("/segments?cursor=x").status_code == 422


def test_the_builder_suggests_names_from_the_units_data(
    app: FastAPI, session: Session, ctx: Context, people: None
) -> None:
    profiles.create_category(
        session, ctx, TagCategoryIn(code="intent", name_zh="意向", name_en="Intent", bu="north")
    )
    profiles.create_tag(
        session,
        ctx,
        TagIn(code="hot", category="intent", name_zh="高意向", name_en="Hot", bu="north"),
    )
    profiles.create_category(
        session, ctx, TagCategoryIn(code="other", name_zh="其他", name_en="Other", bu="south")
    )
    profiles.create_tag(
        session,
        ctx,
        TagIn(code="south_tag", category="other", name_zh="南", name_en="S", bu="south"),
    )
    session.commit()
    page = _client(app, session, ctx, "marketer").get("/segments/new?lang=zh-CN")
    assert page.status_code == 200
    data = _builder_data(page.text)
    suggestions = data["suggestions"]
    assert suggestions["events"][0] == "Order Completed"  # the most frequent first
    assert "Page Viewed" in suggestions["events"]
    assert [t["code"] for t in suggestions["tags"]] == ["hot"]  # not south's
    assert any(t["name"] == "phone" for t in suggestions["traits"])
    assert data["labels"]["add_condition"] == "添加条件"


def test_a_segment_is_saved_from_the_builders_rule(
    app: FastAPI, session: Session, ctx: Context, people: None
) -> None:
    client = _client(app, session, ctx, "marketer")
    rule = {"and": [BUYERS, {"trait": "name", "op": "exists"}]}
    saved = client.post(
        "/segments/new",
        data={
            "code": "named_buyers",
            "name": "Named buyers",
            "rule": json.dumps(rule),
            "is_live": "1",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303
    made = segments.get_segment_by_code(session, ctx, "named_buyers", bu="north")
    assert made.rule == rule and made.size == 1 and made.is_live
    assert saved.headers["location"] == f"/segments/{made.id}"
    again = client.post(
        "/segments/new", data={"code": "named_buyers", "name": "Again", "rule": json.dumps(rule)}
    )
    assert again.status_code == 409 and "Again" in again.text  # what was typed stays


def test_a_bad_rule_comes_back_with_each_error_at_its_condition(
    app: FastAPI, session: Session, ctx: Context, people: None
) -> None:
    client = _client(app, session, ctx, "marketer")
    bad = {
        "and": [
            {"trait": "city", "op": "eq", "value": "上海"},
            {"event": "X", "count": {"op": "gte", "value": -1}},
        ]
    }
    answer = client.post("/segments/new", data={"code": "c", "name": "n", "rule": json.dumps(bad)})
    assert answer.status_code == 422
    errors = _builder_data(answer.text)["errors"]
    assert [e["path"] for e in errors] == ["rule.and[1].count.value"]
    assert 'id="f-rule-error"' in answer.text
    unknown = {"tag": "no_such_tag"}
    answer = client.post(
        "/segments/new", data={"code": "c", "name": "n", "rule": json.dumps(unknown)}
    )
    assert answer.status_code == 422
    assert _builder_data(answer.text)["errors"][0]["path"].startswith("rule")
    not_json = client.post("/segments/new", data={"code": "c", "name": "n", "rule": "{oops"})
    assert not_json.status_code == 422 and "The rule is not valid JSON." in not_json.text
    bad_code = client.post(
        "/segments/new", data={"code": "Bad Code!", "name": "", "rule": json.dumps(BUYERS)}
    )
    assert bad_code.status_code == 422
    assert 'id="f-code-error"' in bad_code.text and 'id="f-name-error"' in bad_code.text
    assert segments.list_segments(session, ctx) == []


def test_the_estimate_counts_the_rule_being_edited(
    app: FastAPI, session: Session, ctx: Context, people: None
) -> None:
    client = _client(app, session, ctx, "marketer")
    headers = {"HX-Request": "true"}
    found = client.post("/segments/estimate", data={"rule": json.dumps(BUYERS)}, headers=headers)
    assert found.status_code == 200 and "<html" not in found.text
    assert 'data-count="1"' in found.text
    everyone = {"or": [BUYERS, {"event": "Page Viewed"}]}
    both = client.post("/segments/estimate", data={"rule": json.dumps(everyone)}, headers=headers)
    assert 'data-count="2"' in both.text
    bad = client.post(
        "/segments/estimate",
        data={
            "rule": json.dumps({"and": [BUYERS, {"score": "intent", "op": "gte", "value": "x"}]})
        },
        headers=headers,
    )
    assert bad.status_code == 422 and "rule.and[1].value" in html.unescape(bad.text)
    del client.headers["X-CSRF-Token"]
    assert client.post("/segments/estimate", data={"rule": json.dumps(BUYERS)}).status_code == 403


def test_an_edit_made_against_an_old_version_is_refused(
    app: FastAPI, session: Session, ctx: Context, people: None
) -> None:
    made = _segment(session, ctx, "buyers", BUYERS, name="Buyers")
    client = _client(app, session, ctx, "marketer")
    form = client.get(f"/segments/{made.id}/edit")
    assert form.status_code == 200 and 'name="version" value="1"' in form.text
    assert 'id="f-code"' not in form.text  # a code is fixed once made
    rule = json.dumps({"event": "Page Viewed"})
    stale = client.post(
        f"/segments/{made.id}/edit", data={"name": "Lookers", "rule": rule, "version": "0"}
    )
    assert stale.status_code == 409 and "Someone changed this segment" in stale.text
    assert segments.get_segment(session, ctx, made.id).version == 1
    done = client.post(
        f"/segments/{made.id}/edit",
        data={"name": "Lookers", "rule": rule, "version": "1"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    session.expire_all()
    changed = segments.get_segment(session, ctx, made.id)
    assert (changed.name, changed.version, changed.size, changed.is_live) == (
        "Lookers",
        2,
        1,
        False,
    )


def test_a_segment_is_deleted_only_after_a_confirmation_and_when_unused(
    app: FastAPI, session: Session, ctx: Context, people: None
) -> None:
    base = _segment(session, ctx, "buyers", BUYERS, name="Buyers")
    user = _segment(session, ctx, "vip", {"segment": "buyers"}, name="VIP")
    client = _client(app, session, ctx, "marketer")
    confirm = client.get(f"/segments/{base.id}/delete")
    assert confirm.status_code == 200 and f'action="/segments/{base.id}/delete"' in confirm.text
    assert "Buyers" in confirm.text
    used = client.post(f"/segments/{base.id}/delete")
    assert used.status_code == 409 and "vip" in used.text
    gone = client.post(f"/segments/{user.id}/delete", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"] == "/segments"
    assert [s.code for s in segments.list_segments(session, ctx)] == ["buyers"]


def test_the_segment_page_shows_masked_members_the_trend_and_the_export(
    app: FastAPI, session: Session, ctx: Context, people: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _segment(session, ctx, "everyone", {"or": [BUYERS, {"event": "Page Viewed"}]})
    rep = _client(app, session, ctx, "sales_rep")  # may reveal: the list is masked anyway
    page = rep.get(f"/segments/{made.id}")
    assert page.status_code == 200
    assert MASKED in page.text and PHONE not in page.text and "张伟" not in page.text
    assert 'id="chart-trend-data"' in page.text and 'id="export-csv"' not in page.text
    assert 'id="edit-segment"' not in page.text
    marketer = _client(app, session, ctx, "marketer")
    shown = marketer.get(f"/segments/{made.id}")
    assert f'href="/api/v1/segments/{made.id}/export.csv"' in shown.text
    trend = json.loads(
        html.unescape(re.search(r'id="chart-trend-data">(.*?)</script>', shown.text, re.S).group(1))
    )
    assert len(trend["categories"]) == 30 and [x["name"] for x in trend["series"]] == [
        "Entered",
        "Left",
    ]
    export = marketer.get(f"/api/v1/segments/{made.id}/export.csv")
    assert export.status_code == 200 and export.text.count("\n") == 3
    assert rep.get(f"/api/v1/segments/{made.id}/export.csv").status_code == 403
    monkeypatch.setattr(segments_pages, "MEMBERS_PAGE", 1)
    first = marketer.get(f"/segments/{made.id}/members", headers={"HX-Request": "true"})
    assert first.text.count('href="/customers/') == 1 and "<html" not in first.text
    nxt = re.search(r'hx-get="([^"]+)"[^>]*>Next<', first.text)
    assert nxt
    second = marketer.get(html.unescape(nxt.group(1)), headers={"HX-Request": "true"})
    assert second.text.count('href="/customers/') == 1 and 'rel="prev"' in second.text


def test_another_units_segment_is_not_found_and_its_code_not_usable(
    app: FastAPI, session: Session, ctx: Context, people: None
) -> None:
    made = _segment(session, ctx, "buyers", BUYERS)
    south = _client(app, session, ctx, "marketer", "south")
    for path in ("", "/edit", "/delete", "/members"):
        assert south.get(f"/segments/{made.id}{path}").status_code == 404, path
    assert south.post(f"/segments/{made.id}/delete").status_code == 404
    assert (
        south.post(
            f"/segments/{made.id}/edit",
            data={"name": "x", "rule": json.dumps(BUYERS), "version": "1"},
        ).status_code
        == 404
    )
    answer = south.post("/segments/estimate", data={"rule": json.dumps({"segment": "buyers"})})
    assert answer.status_code == 422
    assert 'data-code="buyers"' not in south.get("/segments").text
    assert segments.get_segment(session, ctx, made.id).name == "buyers"


def test_roles_without_the_permission_see_no_way_to_change(
    app: FastAPI, session: Session, ctx: Context, people: None
) -> None:
    made = _segment(session, ctx, "buyers", BUYERS)
    analyst = _client(app, session, ctx, "analyst")
    listing = analyst.get("/segments")
    assert listing.status_code == 200 and 'id="new-segment"' in listing.text  # analysts manage
    rep = _client(app, session, ctx, "sales_rep")
    assert 'id="new-segment"' not in rep.get("/segments").text
    assert rep.get("/segments/new").status_code == 403
    rule = json.dumps(BUYERS)
    assert (
        rep.post("/segments/new", data={"code": "x", "name": "x", "rule": rule}).status_code == 403
    )
    assert rep.get(f"/segments/{made.id}/delete").status_code == 403
    officer = _client(app, session, ctx, "compliance_officer", "galaxy")
    assert officer.get("/segments").status_code == 403
    assert 'href="/segments"' not in officer.get("/").text


def test_hostile_names_are_escaped(
    app: FastAPI, session: Session, ctx: Context, people: None
) -> None:
    made = _segment(session, ctx, "hostile", BUYERS, name=HOSTILE)
    client = _client(app, session, ctx, "marketer")
    for path in ("/segments", f"/segments/{made.id}", f"/segments/{made.id}/edit", "/segments/new"):
        page = client.get(path)
        assert HOSTILE not in page.text, path
        scripts = re.findall(r"<script([^>]*)>", page.text)
        assert all("src=" in s or 'type="application/json"' in s for s in scripts), path


def test_the_trend_counts_entries_and_exits_per_local_day(
    session: Session, ctx: Context, clock: FixedClock, feed: Feed, people: None
) -> None:
    made = _segment(
        session, ctx, "lookers", {"event": "Page Viewed", "within": {"amount": 1, "unit": "days"}}
    )
    clock.advance(timedelta(days=2))
    segments.evaluate(session, ctx, made.id)  # the look is older than a day now: u2 leaves
    session.commit()
    days = segments.daily_changes(session, ctx, made.id, days=5)
    assert [d.day.isoformat() for d in days][-3:] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert [(d.entered, d.exited) for d in days][-3:] == [(1, 0), (0, 0), (0, 1)]
    south = replace(
        ctx,
        bu_id=governance.unit_row(session, "south").id,
        permissions=frozenset({"segments.read"}),
        is_group_wide=False,
    )
    with pytest.raises(NotFound):
        segments.daily_changes(session, south, made.id)
