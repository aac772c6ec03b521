"""The sources pages through the app: health in the list, a source created with its write key
shown once (and SDK snippets pointing at this server), violations and dead letters on a
source's page, replay and key rotation after a confirmation, and isolation between units.
On the suite's fresh databases."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from oneloop.collect import deadletters, plans
from oneloop.collect import service as collect
from oneloop.collect.schemas import Source
from oneloop.core.clock import FixedClock
from oneloop.core.context import Context
from oneloop.core.errors import Unauthenticated
from oneloop.governance import users
from tests.factories import make_user, signed_in
from tests.pipeline import Feed

HOSTILE = '<script>alert("x")</script>'
PLAN = """
name: Orders
mode: allow
unplanned: allow
events:
  Order Completed:
    properties:
      type: object
      required: [total]
      properties: {total: {type: number}}
"""


def _client(
    app: FastAPI, session: Session, ctx: Context, role: str, bu: str = "north"
) -> TestClient:
    email = f"{role}.{bu}@example.org"
    if not users.user_exists(session, ctx, email):
        make_user(session, ctx, email, bu=bu, role=role)
    return signed_in(app, email)


@pytest.fixture
def troubled(
    session: Session, ctx: Context, clock: FixedClock, source: Source, feed: Feed
) -> Source:
    """North's web source with a plan: one good order, one breaking the plan, one refused;
    sent now (the pages read the hour before the server's own clock)."""
    clock.at = datetime.now(UTC)
    plan = plans.create_plan(session, ctx, plans.plan_from_yaml(PLAN, bu="north"))
    planned = plans.attach_plan(session, ctx, source.id, plan.id)
    session.commit()
    feed(
        {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"total": 9}},
        {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"total": "x"}},
        {"type": "track", "event": "Order Completed"},  # nobody: a dead letter
        into=planned,
    )
    return planned


def test_the_list_shows_each_sources_health(
    app: FastAPI, session: Session, ctx: Context, troubled: Source
) -> None:
    client = _client(app, session, ctx, "marketer")
    page = client.get("/sources")
    assert page.status_code == 200 and 'href="/sources"' in page.text
    row = page.text.split(f'data-source="{troubled.id}"')[1].split("</tr>")[0]
    numbers = re.findall(r'<td class="num[^"]*">(\d+)</td>', row)
    assert numbers == ["2", "1", "1"]  # accepted in the hour, violations, dead letters waiting
    spark = json.loads(
        html.unescape(re.search(r'id="spark-1-data">(.*?)</script>', page.text, re.S).group(1))
    )
    assert spark["kind"] == "sparkline" and len(spark["points"]) == 60
    assert 'id="new-source"' not in page.text  # a marketer reads sources, does not make them
    assert client.get("/sources/new").status_code == 403


def test_a_new_sources_key_is_shown_once_with_snippets_for_this_server(
    app: FastAPI, session: Session, ctx: Context, source: Source
) -> None:
    admin = _client(app, session, ctx, "bu_admin")
    form = admin.get("/sources/new")
    assert form.status_code == 200 and 'id="source-form"' in form.text
    made = admin.post("/sources/new", data={"name": "App 应用", "kind": "http"})
    assert made.status_code == 201 and made.headers["cache-control"] == "no-store"
    key = re.search(r'<code id="write-key">([^<]+)</code>', made.text).group(1)
    assert collect.authenticate(session, key).name == "App 应用"
    shown = html.unescape(made.text)
    assert 'apiHost: "testserver/v1", protocol: "https"' in shown
    assert f'analytics.load("{key}", "https://testserver"' in shown  # RudderStack JS
    assert 'analytics.host = "https://testserver"' in shown  # Segment Python
    assert 'rudder_analytics.dataPlaneUrl = "https://testserver"' in shown
    source_id = re.search(r'href="/sources/([^"]+)" id="to-source"', made.text).group(1)
    again = admin.get(f"/sources/{source_id}")
    assert again.status_code == 200 and key not in again.text and key[:12] in again.text
    assert key not in admin.get("/sources").text
    chinese = admin.post("/sources/new?lang=zh-CN", data={"name": "Mini", "kind": "http"})
    assert "只显示这一次" in chinese.text


def test_a_bad_or_taken_name_is_said_beside_the_field(
    app: FastAPI, session: Session, ctx: Context, source: Source
) -> None:
    admin = _client(app, session, ctx, "bu_admin")
    empty = admin.post("/sources/new", data={"name": "", "kind": "http"})
    assert empty.status_code == 422 and 'id="f-name-error"' in empty.text
    kind = admin.post("/sources/new", data={"name": "X", "kind": "internal"})
    assert kind.status_code == 422 and 'id="f-kind-error"' in kind.text
    taken = admin.post("/sources/new", data={"name": source.name, "kind": "http"})
    assert taken.status_code == 409 and 'id="f-name-error"' in taken.text
    assert len(collect.list_sources(session, ctx)) == 1
    del admin.headers["X-CSRF-Token"]
    assert admin.post("/sources/new", data={"name": "Y", "kind": "http"}).status_code == 403


def test_the_source_page_shows_violations_and_replays_dead_letters_after_a_confirmation(
    app: FastAPI, session: Session, ctx: Context, troubled: Source
) -> None:
    admin = _client(app, session, ctx, "bu_admin")
    page = admin.get(f"/sources/{troubled.id}")
    assert page.status_code == 200
    violations = page.text.split('id="violations"')[1].split("</section>")[0]
    assert "Order Completed" in violations and "total" in violations
    assert page.text.count("data-letter=") == 1 and 'id="replay-link"' in page.text
    confirm = admin.get(f"/sources/{troubled.id}/replay")
    assert confirm.status_code == 200 and f'action="/sources/{troubled.id}/replay"' in confirm.text
    done = admin.post(f"/sources/{troubled.id}/replay", follow_redirects=False)
    assert done.status_code == 303
    assert "replayed=0&already=0&refused=1" in done.headers["location"]
    report = admin.get(done.headers["location"])
    assert 'id="replay-report"' in report.text
    session.expire_all()
    letters = deadletters.list_dead_letters(session, ctx, source=troubled.id).items
    assert [(d.attempts, d.status) for d in letters] == [(1, "waiting")]  # refused again
    marketer = _client(app, session, ctx, "marketer")
    assert 'id="replay-link"' not in marketer.get(f"/sources/{troubled.id}").text
    assert marketer.post(f"/sources/{troubled.id}/replay").status_code == 403


def test_rotating_the_key_shows_the_new_one_once_and_can_revoke_the_old(
    app: FastAPI, session: Session, ctx: Context
) -> None:
    from tests.factories import make_group, make_source

    make_group(session, ctx)
    source, old_key = make_source(session, ctx)
    admin = _client(app, session, ctx, "bu_admin")
    confirm = admin.get(f"/sources/{source.id}/rotate")
    assert confirm.status_code == 200 and 'name="revoke_old"' in confirm.text
    rotated = admin.post(f"/sources/{source.id}/rotate", data={"revoke_old": "1"})
    assert rotated.status_code == 200
    new_key = re.search(r'<code id="write-key">([^<]+)</code>', rotated.text).group(1)
    assert new_key != old_key and collect.authenticate(session, new_key).id == source.id
    with pytest.raises(Unauthenticated):
        collect.authenticate(session, old_key)
    assert admin.post(f"/sources/{source.id}/rotate", data={"revoke_old": "yes"}).status_code == 422


def test_another_units_source_is_not_found(
    app: FastAPI, session: Session, ctx: Context, troubled: Source
) -> None:
    south = _client(app, session, ctx, "bu_admin", "south")
    for path in ("", "/replay", "/rotate"):
        assert south.get(f"/sources/{troubled.id}{path}").status_code == 404, path
    assert south.post(f"/sources/{troubled.id}/replay").status_code == 404
    assert south.post(f"/sources/{troubled.id}/rotate").status_code == 404
    assert f'data-source="{troubled.id}"' not in south.get("/sources").text
    assert len(collect.get_source(session, ctx, troubled.id).keys) == 1


def test_a_hostile_source_name_is_escaped_in_pages_and_snippets(
    app: FastAPI, session: Session, ctx: Context, source: Source
) -> None:
    admin = _client(app, session, ctx, "bu_admin")
    made = admin.post("/sources/new", data={"name": HOSTILE, "kind": "http"})
    assert made.status_code == 201 and HOSTILE not in made.text
    assert json.dumps(HOSTILE) in html.unescape(made.text)  # quoted as a JS string
    source_id = re.search(r'href="/sources/([^"]+)" id="to-source"', made.text).group(1)
    for path in ("/sources", f"/sources/{source_id}"):
        page = admin.get(path)
        assert HOSTILE not in page.text and "&lt;script&gt;" in page.text, path
    officer = _client(app, session, ctx, "compliance_officer", "galaxy")
    assert officer.get("/sources").status_code == 403
