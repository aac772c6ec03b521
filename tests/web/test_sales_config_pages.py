# ruff: noqa: F811  (``unit`` is the sales tests' fixture, imported to be used by name)
"""The sales set-up pages through the app: the unit's settings (triggers, SLA, limits) saved
through the config service and refused beside the field; teams created, reps added, changed
and taken out after a confirmation; the routing table shown, downloaded and uploaded (the
shipped table accepted, a table with code in a cell refused naming its row); permissions, the
menu, CSRF and both languages."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from oneloop.core.context import Context
from oneloop.profiles import score_models
from oneloop.sales import config
from oneloop.sales.schemas import TeamIn
from tests.factories import PASSWORD, make_user
from tests.sales.conftest import TABLE, SalesUnit, unit  # noqa: F401
from tests.web.conftest import csrf_of, sign_in

DMN = Path(config.__file__).parent / "dmn"
PAGES = ("/sales/settings", "/sales/teams", "/sales/routing")
HOSTILE = "<script>alert(1)</script>"
Response = Any  # the test client's response (httpx's, typed loosely as in the other tests)
INTENT = {
    "code": "intent",
    "name_zh": "购买意向",
    "name_en": "Intent",
    "rules": [{"id": "order", "event": "Order Completed", "points": 10}],
}


def _client(app: FastAPI, email: str) -> TestClient:
    client = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
    return sign_in(client, email, PASSWORD)


@pytest.fixture
def boss(app: FastAPI, unit: SalesUnit) -> TestClient:
    return _client(app, unit.manager.email)


@pytest.fixture
def admin(app: FastAPI, unit: SalesUnit, session: Session, ctx: Context) -> TestClient:
    make_user(session, ctx, "admin.north@galaxy.example.com", "north", "bu_admin")
    return _client(app, "admin.north@galaxy.example.com")


def _post(client: TestClient, path: str, data: object = None, **fields: str) -> Response:
    token = csrf_of(client.get("/sales/settings").text)
    body = {"csrf_token": token, **fields} if data is None else data
    return client.post(path, data=body, follow_redirects=False)  # type: ignore[arg-type]


def _settings_form(**changes: object) -> dict[str, object]:
    """What the settings form sends: every field, trigger rows as repeated fields."""
    form: dict[str, object] = {
        "kind": ["event", ""],
        "target": ["Demo Requested", ""],
        "at_least": ["", ""],
        "first_contact_minutes": "60",
        "warn_before_minutes": "15",
        "escalate_on_breach": "1",
        "reassign_after_breach_minutes": "",
        "max_open_per_rep": "30",
        "recall_after_hours": "48",
        "notify_channel": "email",
        "calendar": "",
    }
    form.update(changes)
    return form


def _error_beside(html: str, field_id: str) -> str:
    """The error text shown under the field ``field_id`` (which says it is invalid)."""
    assert re.search(rf'id="{field_id}"[^>]*aria-invalid="true"', html), field_id
    found = re.search(rf'<p class="field-error" id="{field_id}-error">([^<]*)</p>', html)
    assert found, f"no error beside {field_id}"
    return found.group(1)


# --- who sees the pages --------------------------------------------------------------------------


def test_a_manager_and_an_admin_see_the_pages_in_both_languages(
    unit: SalesUnit, boss: TestClient, admin: TestClient
) -> None:
    for client in (boss, admin):
        assert '<a href="/sales/settings">Sales setup</a>' in client.get("/?lang=en").text
        for path in PAGES:
            page = client.get(f"{path}?lang=en")
            assert page.status_code == 200, path
            assert page.headers["cache-control"] == "no-store"
            assert "script-src 'self'" in page.headers["content-security-policy"]
            # one menu entry for the three pages, current on each; their own tab too
            assert '<a href="/sales/settings" aria-current="page">Sales setup</a>' in page.text
            assert 'aria-current="page">Sales</a>' not in page.text  # not "Sales" as well
            tabs = page.text.split('class="sales-tabs"')[1].split("</nav>")[0]
            assert f'<a href="{path}" aria-current="page">' in tabs, path
            assert 'href="/sales/board"' in tabs
    assert 'id="set-up-teams"' in boss.get("/sales/board").text  # the board links back
    en = boss.get("/sales/settings?lang=en").text
    assert "What starts a lead" in en and "First-contact SLA" in en
    zh = {path: boss.get(f"{path}?lang=zh-CN").text for path in PAGES}
    assert "线索触发条件" in zh["/sales/settings"] and "首次联系 SLA" in zh["/sales/settings"]
    assert "销售团队" in zh["/sales/teams"] and "新建团队" in zh["/sales/teams"]
    assert "分配规则表" in zh["/sales/routing"] and "上传新版本" in zh["/sales/routing"]
    for html in zh.values():
        scripts = re.findall(r"<script([^>]*)>", html)
        assert all("src=" in s for s in scripts) and not re.search(r"\son[a-z]+=", html)


def test_a_rep_has_no_menu_entry_and_is_refused(app: FastAPI, unit: SalesUnit) -> None:
    rep = _client(app, unit.rep1.email)
    home = rep.get("/").text
    assert 'href="/sales/settings"' not in home and 'href="/sales"' in home
    for path in PAGES:
        assert rep.get(path).status_code == 403, path
    assert 'id="set-up-teams"' not in rep.get("/sales").text
    token = csrf_of(home)
    for path in ("/sales/settings", "/sales/teams", "/sales/teams/members", "/sales/routing"):
        refused = rep.post(path, data={"csrf_token": token}, follow_redirects=False)
        assert refused.status_code == 403, path


def test_a_group_wide_viewer_is_asked_to_pick_a_unit(
    app: FastAPI, unit: SalesUnit, session: Session, ctx: Context
) -> None:
    make_user(session, ctx, "hq@example.org", "galaxy", "group_admin")
    hq = _client(app, "hq@example.org")
    for path in PAGES:
        page = hq.get(path)
        assert page.status_code == 200 and 'id="unit-needed"' in page.text, path


def test_changes_without_the_csrf_token_are_refused(unit: SalesUnit, boss: TestClient) -> None:
    for path, data in (
        ("/sales/settings", _settings_form()),
        ("/sales/teams", {"code": "x", "name_zh": "x", "name_en": "x"}),
        ("/sales/teams/members", {"team": "east", "email": unit.rep1.email}),
        (f"/sales/teams/east/members/{unit.rep1.email}/remove", {}),
    ):
        assert boss.post(path, data=data, follow_redirects=False).status_code == 403, path
    upload = boss.post(
        "/sales/routing", files={"table": ("t.dmn", TABLE.encode(), "application/xml")}
    )
    assert upload.status_code == 403


# --- settings ----------------------------------------------------------------------------------


def test_the_settings_page_shows_the_units_settings(unit: SalesUnit, boss: TestClient) -> None:
    page = boss.get("/sales/settings?lang=en").text
    row = page.split('id="trigger-0"')[1].split('id="trigger-1"')[0]
    assert '<option value="event" selected>' in row and 'value="Demo Requested"' in row
    assert 'id="trigger-1"' in page and 'id="trigger-2"' not in page  # one empty row to add
    assert re.search(r'id="f-first_contact_minutes"[^>]*value="60"', page) or re.search(
        r'value="60"[^>]*id="f-first_contact_minutes"', page
    )
    assert 'name="escalate_on_breach" value="1" id="f-escalate_on_breach" checked' in page


def test_saving_valid_settings_persists_them(
    unit: SalesUnit, session: Session, ctx: Context, boss: TestClient
) -> None:
    token = csrf_of(boss.get("/sales/settings").text)
    calendar = '{"time_zone": "Europe/Berlin", "week": {"mon": ["09:00-17:00"]}}'
    form = _settings_form(
        kind=["event", "score_at_least", ""],
        target=["Demo Requested", "intent", ""],
        at_least=["", "80", ""],
        first_contact_minutes="90",
        warn_before_minutes="20",
        escalate_on_breach="",
        reassign_after_breach_minutes="240",
        max_open_per_rep="25",
        recall_after_hours="36.5",
        notify_channel="robot:sales",
        calendar=calendar,
    )
    # a score model the unit has: the service refuses triggers naming unknown ones
    score_models.create_model(session, ctx, INTENT, bu="north")
    session.commit()
    saved = boss.post("/sales/settings", data={"csrf_token": token, **form}, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == "/sales/settings?saved=1"
    session.expire_all()
    got = config.get_settings(session, ctx, "north")
    assert [(t.kind, t.event, t.score, t.at_least) for t in got.triggers] == [
        ("event", "Demo Requested", None, None),
        ("score_at_least", None, "intent", 80.0),
    ]
    assert got.sla.first_contact_minutes == 90 and got.sla.warn_before_minutes == 20
    assert got.sla.escalate_on_breach is False and got.sla.reassign_after_breach_minutes == 240
    assert got.max_open_per_rep == 25 and got.recall_after_hours == 36.5
    assert got.notify_channel == "robot:sales"
    assert got.calendar == {"time_zone": "Europe/Berlin", "week": {"mon": ["09:00-17:00"]}}
    shown = boss.get("/sales/settings?saved=1")
    assert 'id="saved"' in shown.text and 'value="36.5"' in shown.text
    assert "Europe/Berlin" in shown.text


def test_a_bad_value_is_refused_beside_its_field(
    unit: SalesUnit, session: Session, ctx: Context, boss: TestClient
) -> None:
    token = csrf_of(boss.get("/sales/settings").text)
    before = config.get_settings(session, ctx, "north")

    def send(lang: str = "en", **changes: object) -> Response:
        data = {"csrf_token": token, **_settings_form(**changes)}
        return boss.post(f"/sales/settings?lang={lang}", data=data, follow_redirects=False)

    zero = send(first_contact_minutes="0", warn_before_minutes="soon")
    assert zero.status_code == 422
    assert "from 1 to 43,200" in _error_beside(zero.text, "f-first_contact_minutes")
    assert "0 or more" in _error_beside(zero.text, "f-warn_before_minutes")
    assert 'value="soon"' in zero.text  # what was typed stays
    zh = send("zh-CN", recall_after_hours="-1")
    assert zh.status_code == 422 and "小时" in _error_beside(zh.text, "f-recall_after_hours")

    # the service's own refusal, mapped from its path onto the form's row
    unknown = send(kind=["", "segment_entered"], target=["", "no_such_segment"], at_least=["", ""])
    assert unknown.status_code == 422
    assert _error_beside(unknown.text, "f-trigger-1-target") == "no such segment in the unit"
    missing = send(kind=["score_at_least"], target=["intent"], at_least=[""])
    assert "such as 80" in _error_beside(missing.text, "f-trigger-0-at_least")
    calendar = send(calendar='{"time_zone": "Mars/Olympus"}')
    assert calendar.status_code == 422
    assert _error_beside(calendar.text, "f-calendar").startswith("time_zone: ")
    assert "such as 80" not in send(calendar="[1, 2]").text
    assert "JSON object" in _error_beside(send(calendar="[1, 2]").text, "f-calendar")
    session.expire_all()
    assert config.get_settings(session, ctx, "north") == before  # nothing saved


def test_add_a_row_keeps_what_was_typed_and_saves_nothing(
    unit: SalesUnit, session: Session, ctx: Context, boss: TestClient
) -> None:
    token = csrf_of(boss.get("/sales/settings").text)
    form = _settings_form(kind=["event", "event"], target=["Demo Requested", "Quote Asked"])
    form["at_least"] = ["", ""]
    more = boss.post("/sales/settings", data={"csrf_token": token, "action": "add_row", **form})
    assert more.status_code == 200
    assert 'value="Quote Asked"' in more.text and 'id="trigger-2"' in more.text
    session.expire_all()
    assert len(config.get_settings(session, ctx, "north").triggers) == 1


# --- teams -------------------------------------------------------------------------------------


def test_teams_are_listed_with_their_reps(unit: SalesUnit, boss: TestClient) -> None:
    page = boss.get("/sales/teams?lang=en").text
    east = page.split('id="team-east"')[1].split("</section>")[0]
    assert f'data-rep="{unit.rep1.email}"' in east and f'data-rep="{unit.rep2.email}"' in east
    assert "<strong>0 / 5</strong>" in east and "On duty" in east and "Round robin" in east
    assert 'href="/sales/board#team-east"' in east  # duty and capacity: on the board
    assert "No reps in this team." in page.split('id="team-key"')[1].split("</section>")[0]


def test_create_a_team_add_a_rep_and_take_them_out_after_a_confirmation(
    unit: SalesUnit, session: Session, ctx: Context, boss: TestClient
) -> None:
    bad = _post(boss, "/sales/teams", code="East Team", name_zh="", name_en="x")
    assert bad.status_code == 422
    assert "lower-case" in _error_beside(bad.text, "f-code")
    taken = _post(boss, "/sales/teams", code="east", name_zh="华东", name_en="East")
    assert _error_beside(taken.text, "f-code") == "a team with this code exists"
    made = _post(
        boss,
        "/sales/teams",
        code="south_key",
        name_zh="华南大客户",
        name_en=HOSTILE,
        strategy="least_loaded",
        manager=unit.manager.email,
    )
    assert made.status_code == 303
    assert made.headers["location"] == "/sales/teams?done=created&team=south_key#team-south_key"
    shown = boss.get(made.headers["location"]).text
    assert 'id="done"' in shown and 'id="team-south_key"' in shown
    assert HOSTILE not in shown and "&lt;script&gt;" in shown
    team = config.get_team(session, ctx, "south_key", "north")
    assert team.strategy == "least_loaded" and team.manager_user_id == unit.manager.id

    nobody = _post(boss, "/sales/teams/members", team="south_key", email="nobody@example.org")
    assert nobody.status_code == 422 and 'id="f-email-error"' in nobody.text
    no_team = _post(boss, "/sales/teams/members", team="", email=unit.rep1.email, capacity="x")
    assert 'id="f-team-error"' in no_team.text and 'id="f-capacity-error"' in no_team.text
    added = _post(
        boss,
        "/sales/teams/members",
        team="south_key",
        email=unit.rep1.email.upper(),
        capacity="12",
        weight="2",
        on_duty="1",
    )
    assert added.status_code == 303
    session.expire_all()
    (member,) = config.get_team(session, ctx, "south_key", "north").members
    assert (member.email, member.capacity, member.weight, member.on_duty) == (
        unit.rep1.email, 12, 2.0, True,
    )  # fmt: skip
    # change: the row's link fills the form in; an empty weight keeps the rep's
    filled = boss.get(f"/sales/teams?team=south_key&email={unit.rep1.email}").text
    assert 'value="12"' in filled and 'value="2"' in filled
    changed = _post(
        boss, "/sales/teams/members", team="south_key", email=unit.rep1.email, capacity="3"
    )
    assert changed.status_code == 303
    session.expire_all()
    (member,) = config.get_team(session, ctx, "south_key", "north").members
    assert (member.capacity, member.weight, member.on_duty) == (3, 2.0, False)

    page = boss.get("/sales/teams").text
    link = re.search(r'class="danger-link" href="(/sales/teams/south_key/members/[^"]+)"', page)
    assert link, "no link to take the rep out"
    confirm = boss.get(link.group(1))
    assert confirm.status_code == 200 and 'id="confirm"' in confirm.text
    action = re.search(
        r'<form method="post" action="([^"]+)"', confirm.text.split('id="confirm"')[1]
    )
    assert action and action.group(1) == link.group(1)
    session.expire_all()
    assert len(config.get_team(session, ctx, "south_key", "north").members) == 1  # not yet
    removed = _post(boss, action.group(1))
    assert removed.status_code == 303 and "done=member_removed" in removed.headers["location"]
    session.expire_all()
    assert config.get_team(session, ctx, "south_key", "north").members == []
    assert _post(boss, action.group(1)).status_code == 404  # out already
    zh = boss.get("/sales/teams?done=member_removed&team=south_key&lang=zh-CN").text
    assert "已将该销售移出团队" in zh


# --- the routing table -------------------------------------------------------------------------


def _shipped_teams(session: Session, ctx: Context) -> None:
    """The teams the shipped table routes to, in the test's unit."""
    teams = yaml.safe_load((DMN / "teams.yaml").read_text(encoding="utf-8"))["teams"]
    for team in teams:
        data = {k: team[k] for k in ("code", "name_zh", "name_en", "strategy")}
        config.create_team(session, ctx, TeamIn(**data, bu="north"))
    session.commit()


def test_the_routing_page_shows_the_table_and_links_the_download(
    unit: SalesUnit, boss: TestClient
) -> None:
    page = boss.get("/sales/routing?lang=en")
    assert page.status_code == 200
    assert (
        '<td id="table-version">1</td>' in page.text and '<td id="table-rules">2</td>' in page.text
    )
    assert "<td>System</td>" in page.text.split('id="table-info"')[1]  # the fixture's upload
    assert 'href="/api/v1/sales/routing-table.dmn"' in page.text
    rules = page.text.split('id="rules-table"')[1]
    assert 'data-row="1"' in rules and "&gt;= 90" in rules and "hot leads" in rules
    download = boss.get("/api/v1/sales/routing-table.dmn")
    assert download.status_code == 200 and download.text == TABLE


def test_uploading_the_shipped_table_and_refusing_a_malicious_one(
    unit: SalesUnit, session: Session, ctx: Context, admin: TestClient
) -> None:
    _shipped_teams(session, ctx)
    token = csrf_of(admin.get("/sales/routing").text)

    def upload(content: bytes, lang: str = "en") -> Response:
        return admin.post(
            f"/sales/routing?lang={lang}",
            data={"csrf_token": token},
            files={"table": ("routing.dmn", content, "application/xml")},
            follow_redirects=False,
        )

    shipped = (DMN / "industrial_routing.dmn").read_bytes()
    done = upload(shipped)
    assert done.status_code == 303 and done.headers["location"] == "/sales/routing?uploaded=2"
    shown = admin.get(done.headers["location"]).text
    assert 'id="uploaded"' in shown and '<td id="table-version">2</td>' in shown
    assert "admin.north@galaxy.example.com" in shown.split('id="table-info"')[1]  # who uploaded
    session.expire_all()
    assert config.table_info(session, ctx, "north").version == 2

    hostile = TABLE.replace("&gt;= 90", "__import__('os').system('true')").encode()
    refused = upload(hostile)
    assert refused.status_code == 422
    assert re.search(r'id="f-table"[^>]*aria-invalid="true"', refused.text)
    errors = refused.text.split('id="f-table-error"')[1].split("</ul>")[0]
    assert '<li data-row="1">' in errors and "Row 1 · score" in errors
    assert "function calls are not allowed" in errors
    zh = upload(hostile, "zh-CN")
    assert zh.status_code == 422 and "第 1 行 · score" in zh.text
    unknown_team = upload(
        TABLE.replace('"east"</text></outputEntry>', '"nowhere"</text></outputEntry>').encode()
    )
    assert unknown_team.status_code == 422
    assert "Row 2 · team" in unknown_team.text and "no team with code" in unknown_team.text
    for content in (b"", b"<oops", "<x>\xe9</x>".encode("latin-1")):
        assert upload(content).status_code == 422
    session.expire_all()
    assert config.table_info(session, ctx, "north").version == 2  # nothing else stored
