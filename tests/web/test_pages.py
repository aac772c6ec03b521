"""Console pages through the app: sign-in, CSRF on forms, role-aware navigation, the unit
switcher, search, the 360 view's masking and reveal, tags with a confirmation, errors beside
fields, escaping and isolation. On the suite's fresh databases (SQLite, and PostgreSQL)."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from oneloop.api.auth import SESSION_COOKIE
from oneloop.core.config import Settings
from oneloop.core.context import Context
from oneloop.governance import users
from oneloop.governance.models import AuditRow
from oneloop.profiles import service as profiles
from oneloop.profiles.schemas import TagAssignIn, TagCategoryIn, TagIn
from tests.conftest import ADMIN_TOKEN
from tests.factories import PASSWORD, make_group, make_user
from tests.governance.conftest import lookup
from tests.pipeline import Feed
from tests.web.conftest import csrf_of, login_token, sign_in

PHONE = "13800138000"
MASKED = "138****8000"
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def settings(db_url: str) -> Settings:
    """As the suite's, with few failures to a lock-out (the lock-out test needs three)."""
    return Settings(
        database_url=db_url, run_consumers=False, admin_token=ADMIN_TOKEN, login_max_failures=3
    )


@pytest.fixture
def visitor(app: FastAPI) -> TestClient:
    """A client as a browser over HTTPS (the session cookie is Secure), nobody signed in."""
    return TestClient(app, base_url="https://testserver", raise_server_exceptions=False)


@pytest.fixture
def person(feed: Feed, session: Session, ctx: Context) -> str:
    """张伟 of north: an identify with his name and phone, and a hostile event; his id."""
    feed(
        {"type": "identify", "userId": "u1", "traits": {"name": "张伟", "phone": PHONE}},
        {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"x": 1}},
        {"type": "track", "userId": "u1", "event": HOSTILE, "properties": {"note": HOSTILE}},
    )
    return lookup(session, ctx, "user_id", "north:u1")


def _signed_in(
    app: FastAPI, session: Session, ctx: Context, role: str, bu: str = "north"
) -> TestClient:
    email = f"{role}.{bu}@example.org"
    if not users.user_exists(session, ctx, email):
        make_user(session, ctx, email, bu=bu, role=role)
    client = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
    return sign_in(client, email, PASSWORD)


# --- sign-in ---------------------------------------------------------------------------------


def test_pages_redirect_to_the_sign_in_page_and_back(
    visitor: TestClient, session: Session, ctx: Context
) -> None:
    make_group(session, ctx)
    make_user(session, ctx, "m@example.org")
    answer = visitor.get("/customers?type=phone&q=1", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fcustomers%3Ftype%3Dphone%26q%3D1"
    htmx = visitor.get("/customers/x/timeline", headers={"HX-Request": "true"})
    assert htmx.status_code == 204 and htmx.headers["HX-Redirect"].startswith("/login?next=")
    token = login_token(visitor.get("/login?next=/customers").text)
    signed = visitor.post(
        "/login",
        data={
            "email": "m@example.org",
            "password": PASSWORD,
            "login_csrf": token,
            "next": "/customers",
        },
        follow_redirects=False,
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/customers"
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=lax" in cookie
    assert visitor.get("/login", follow_redirects=False).status_code == 303  # already in


def test_sign_in_refuses_a_foreign_redirect_and_a_missing_form_token(
    visitor: TestClient, session: Session, ctx: Context
) -> None:
    make_group(session, ctx)
    make_user(session, ctx, "m@example.org")
    visitor.get("/login")
    forged = visitor.post(
        "/login", data={"email": "m@example.org", "password": PASSWORD, "login_csrf": "made-up"}
    )
    assert forged.status_code == 403 and SESSION_COOKIE not in forged.cookies
    token = login_token(visitor.get("/login").text)
    answer = visitor.post(
        "/login",
        data={"email": "m@example.org", "password": PASSWORD, "login_csrf": token,
              "next": "//evil.example/"},
        follow_redirects=False,
    )  # fmt: skip
    assert answer.status_code == 303 and answer.headers["location"] == "/"


def test_a_wrong_password_and_a_lock_out_are_said_on_the_form_in_both_languages(
    visitor: TestClient, session: Session, ctx: Context
) -> None:
    make_group(session, ctx)
    make_user(session, ctx, "m@example.org")
    answers = []
    for lang in ("en", "zh-CN", "en", "zh-CN"):
        token = login_token(visitor.get(f"/login?lang={lang}").text)
        answers.append(
            visitor.post(
                "/login", data={"email": "m@example.org", "password": "wrong", "login_csrf": token}
            )
        )
    assert (
        answers[0].status_code == 401 and "The email or the password is wrong." in answers[0].text
    )
    assert answers[1].status_code == 401 and "邮箱或密码错误。" in answers[1].text
    assert answers[3].status_code == 429 and "登录尝试次数过多" in answers[3].text
    assert 'value="m@example.org"' in answers[3].text  # the form keeps what was typed


def test_sign_out_needs_the_csrf_token_of_the_session(
    app: FastAPI, session: Session, ctx: Context
) -> None:
    make_group(session, ctx)
    client = _signed_in(app, session, ctx, "marketer")
    token = csrf_of(client.get("/").text)
    refused = client.post("/logout", data={"csrf_token": "not-it"})
    assert refused.status_code == 403 and "text/html" in refused.headers["content-type"]
    assert client.post("/logout", data={}).status_code == 403
    done = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/login"
    assert client.get("/", follow_redirects=False).status_code == 303  # the session ended


def test_the_api_takes_the_csrf_token_from_a_form_field_as_well_as_the_header(
    app: FastAPI, session: Session, ctx: Context
) -> None:
    make_group(session, ctx)
    client = _signed_in(app, session, ctx, "marketer")
    token = csrf_of(client.get("/").text)
    assert client.post("/api/v1/auth/logout", data={"csrf_token": "wrong"}).status_code == 403
    assert client.post("/api/v1/auth/logout", json={"csrf_token": token}).status_code == 403
    assert client.post("/api/v1/auth/logout", data={"csrf_token": token}).status_code == 204


# --- layout: navigation, units, language -------------------------------------------------------


def test_navigation_shows_what_the_role_may_do(
    app: FastAPI, session: Session, ctx: Context
) -> None:
    make_group(session, ctx)
    marketer = _signed_in(app, session, ctx, "marketer").get("/").text
    officer = _signed_in(app, session, ctx, "compliance_officer", "galaxy").get("/").text
    assert 'href="/customers"' in marketer and 'href="/audit"' not in marketer
    assert 'href="/customers"' in officer and 'href="/audit"' in officer
    assert 'id="chart-events"' in marketer and 'id="chart-events"' not in officer
    assert _signed_in(app, session, ctx, "marketer").get("/audit").status_code == 403


def test_a_user_of_two_units_switches_between_them(
    app: FastAPI, session: Session, ctx: Context
) -> None:
    make_group(session, ctx)
    made = make_user(session, ctx, "two@example.org", bu="north", role="marketer")
    users.grant(session, ctx, made.id, "south", "sales_rep")
    session.commit()
    client = sign_in(
        TestClient(app, base_url="https://testserver", raise_server_exceptions=False),
        "two@example.org",
        PASSWORD,
    )
    page = client.get("/?lang=en").text
    assert re.search(r'<option value="north" selected>', page)
    token = csrf_of(page)
    moved = client.post("/switch-unit", data={"bu": "south", "csrf_token": token, "next": "/"})
    assert moved.status_code == 200 and re.search(r'<option value="south" selected>', moved.text)
    refused = client.post("/switch-unit", data={"bu": "galaxy", "csrf_token": token})
    assert refused.status_code == 422
    assert client.post("/switch-unit", data={"bu": "north"}).status_code == 403


def test_the_language_follows_the_browser_then_the_choice(
    visitor: TestClient, session: Session, ctx: Context
) -> None:
    make_group(session, ctx)
    zh = visitor.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    assert '<html lang="zh-CN">' in zh.text and "登录 OneLoop" in zh.text
    en = visitor.get("/login?lang=en", headers={"Accept-Language": "zh-CN"})
    assert "Sign in to OneLoop" in en.text and en.cookies.get("lang") == "en"
    again = visitor.get("/login", headers={"Accept-Language": "zh-CN"})
    assert "Sign in to OneLoop" in again.text


def test_a_fresh_install_says_what_to_run(visitor: TestClient) -> None:
    assert "oneloop demo load" in visitor.get("/login?lang=zh-CN").text


def test_pages_carry_no_inline_script_and_the_console_policy(
    app: FastAPI, session: Session, ctx: Context, person: str
) -> None:
    client = _signed_in(app, session, ctx, "marketer")
    for path in ("/", "/customers", f"/customers/{person}", "/login"):
        answer = client.get(path, follow_redirects=False)
        if answer.status_code == 303:
            continue
        assert "script-src 'self'" in answer.headers["content-security-policy"]
        scripts = re.findall(r"<script([^>]*)>", answer.text)
        assert all("src=" in s or 'type="application/json"' in s for s in scripts), path
        assert not re.search(r"\son[a-z]+=", answer.text), path
    assert client.get("/static/vendor/htmx-2.0.11.min.js").status_code == 200


# --- customers -------------------------------------------------------------------------------


def test_search_by_phone_finds_the_customer_masked(
    app: FastAPI, session: Session, ctx: Context, person: str
) -> None:
    client = _signed_in(app, session, ctx, "marketer")
    found = client.get("/customers", params={"type": "phone", "q": PHONE})
    assert found.status_code == 200 and f'href="/customers/{person}"' in found.text
    results = found.text.split('id="results"')[1]  # the search box echoes what was typed
    assert MASKED in results and PHONE not in results
    by_name = client.get("/customers", params={"type": "name", "q": "张"})
    assert f'href="/customers/{person}"' in by_name.text and "张伟" not in by_name.text
    none = client.get("/customers", params={"type": "phone", "q": "13900139000"})
    assert 'id="no-results"' in none.text


def test_a_bad_search_is_explained_beside_the_field(
    app: FastAPI, session: Session, ctx: Context, person: str
) -> None:
    client = _signed_in(app, session, ctx, "marketer")
    bad = client.get("/customers", params={"type": "phone", "q": "12"})
    assert bad.status_code == 422
    assert re.search(r'id="f-q"[^>]*aria-invalid="true"', bad.text)
    assert 'id="f-q-error"' in bad.text
    unknown = client.get("/customers", params={"type": "shoe_size", "q": "42"})
    assert unknown.status_code == 422 and 'id="f-type-error"' in unknown.text


def test_the_360_view_is_masked_and_escapes_hostile_values(
    app: FastAPI, session: Session, ctx: Context, person: str
) -> None:
    page = _signed_in(app, session, ctx, "marketer").get(f"/customers/{person}")
    assert page.status_code == 200
    assert "张*" in page.text and "张伟" not in page.text and PHONE not in page.text
    assert 'id="reveal"' not in page.text and 'id="masked-note"' in page.text
    assert HOSTILE not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert page.headers["cache-control"] == "no-store"


def test_reveal_shows_clear_values_once_and_audits_the_read(
    app: FastAPI, session: Session, ctx: Context, person: str
) -> None:
    rep = _signed_in(app, session, ctx, "sales_rep")
    page = rep.get(f"/customers/{person}")
    assert 'id="reveal"' in page.text and PHONE not in page.text  # masked until asked
    assert not session.scalars(select(AuditRow).where(AuditRow.action == "pii.read")).all()
    shown = rep.post(f"/customers/{person}/reveal", data={"csrf_token": csrf_of(page.text)})
    assert shown.status_code == 200 and "张伟" in shown.text and PHONE in shown.text
    reads = session.scalars(select(AuditRow).where(AuditRow.action == "pii.read")).all()
    assert reads and all(r.object_id == person for r in reads)
    assert "phone" in (reads[0].detail or {}).get("fields", [])
    assert rep.post(f"/customers/{person}/reveal").status_code == 403  # no CSRF token
    marketer = _signed_in(app, session, ctx, "marketer")
    token = csrf_of(marketer.get("/").text)
    assert (
        marketer.post(f"/customers/{person}/reveal", data={"csrf_token": token}).status_code == 403
    )


def test_another_units_customer_is_not_found(
    app: FastAPI, session: Session, ctx: Context, person: str
) -> None:
    south = _signed_in(app, session, ctx, "marketer", "south")
    assert south.get(f"/customers/{person}").status_code == 404
    found = south.get("/customers", params={"type": "phone", "q": PHONE})
    assert f'href="/customers/{person}"' not in found.text


def test_the_timeline_filters_and_pages_as_a_fragment(
    app: FastAPI, session: Session, ctx: Context, feed: Feed, person: str
) -> None:
    feed(*({"type": "track", "userId": "u1", "event": f"Viewed {i}"} for i in range(25)))
    client = _signed_in(app, session, ctx, "marketer")
    first = client.get(f"/customers/{person}/timeline", headers={"HX-Request": "true"})
    assert first.status_code == 200 and "<html" not in first.text
    assert first.text.count('class="entry"') == 20
    nxt = re.search(r'hx-get="([^"]+)"[^>]*>Next<', first.text)
    assert nxt, "the first page links to the next"
    second = client.get(nxt.group(1).replace("&amp;", "&"), headers={"HX-Request": "true"})
    assert second.text.count('class="entry"') == 8
    prev = re.search(r'href="([^"]+)"[^>]*>Previous<', second.text)
    assert prev and "/timeline" not in prev.group(1)  # the plain link loads the whole page
    sales = client.get(f"/customers/{person}/timeline?department=sales")
    assert set(re.findall(r'data-department="(\w+)"', sales.text)) == {"sales"}
    bad = client.get(f"/customers/{person}/timeline?cursor=nonsense")
    assert bad.status_code == 422 and "text/html" in bad.headers["content-type"]


def test_tags_are_added_with_a_reason_and_removed_after_a_confirmation(
    app: FastAPI, session: Session, ctx: Context, person: str
) -> None:
    profiles.create_category(
        session, ctx, TagCategoryIn(code="intent", name_zh="意向", name_en="Intent", bu="north")
    )
    tag = profiles.create_tag(
        session,
        ctx,
        TagIn(code="hot", category="intent", name_zh="高意向", name_en="Hot", bu="north"),
    )
    session.commit()
    client = _signed_in(app, session, ctx, "marketer")
    token = csrf_of(client.get(f"/customers/{person}").text)
    missing = client.post(f"/customers/{person}/tags", data={"csrf_token": token, "tag_id": tag.id})
    assert missing.status_code == 422 and 'id="f-reason-error"' in missing.text
    added = client.post(
        f"/customers/{person}/tags",
        data={"csrf_token": token, "tag_id": tag.id, "reason": "met at the summit"},
        follow_redirects=False,
    )
    assert added.status_code == 303
    assert [t.code for t in profiles.profile_tags(session, ctx, person)] == ["hot"]

    remove = f"/customers/{person}/tags/{tag.id}/remove"
    confirm = client.get(remove)
    assert confirm.status_code == 200 and f'action="{remove}"' in confirm.text
    assert "Hot" in confirm.text  # the page names what is about to go
    assert client.post(remove, data={"csrf_token": token}).status_code == 422
    assert profiles.profile_tags(session, ctx, person)  # still there
    done = client.post(
        remove, data={"csrf_token": token, "reason": "mistake"}, follow_redirects=False
    )
    assert done.status_code == 303
    session.expire_all()
    assert profiles.profile_tags(session, ctx, person) == []


def test_the_dashboard_reads_with_the_viewers_permissions(
    app: FastAPI, session: Session, ctx: Context, person: str
) -> None:
    marketer = _signed_in(app, session, ctx, "marketer").get("/")
    assert marketer.status_code == 200
    for chart in ("chart-events", "chart-segments", "chart-consent"):
        assert f'id="{chart}-data"' in marketer.text
    assert 'id="tile-profiles"' in marketer.text and 'id="tile-dead-letters"' in marketer.text
    rep = _signed_in(app, session, ctx, "sales_rep").get("/")
    assert 'id="chart-events"' not in rep.text and 'id="tile-dead-letters"' not in rep.text


def test_the_audit_page_lists_the_units_entries_and_refuses_a_made_up_cursor(
    app: FastAPI, session: Session, ctx: Context, person: str
) -> None:
    officer = _signed_in(app, session, ctx, "compliance_officer", "galaxy")
    first = officer.get("/audit?action=auth.login")
    assert first.status_code == 200 and 'data-action="auth.login"' in first.text
    assert officer.get("/audit?cursor=abc").status_code == 422


def test_a_tag_assignment_by_hand_shows_on_the_360_view(
    app: FastAPI, session: Session, ctx: Context, person: str
) -> None:
    profiles.create_category(
        session, ctx, TagCategoryIn(code="c", name_zh="类", name_en="C", bu="north")
    )
    tag = profiles.create_tag(
        session, ctx, TagIn(code="t", category="c", name_zh=HOSTILE, name_en=HOSTILE, bu="north")
    )
    profiles.assign_tag(session, ctx, person, tag.id, TagAssignIn(reason=HOSTILE))
    session.commit()
    page = _signed_in(app, session, ctx, "marketer").get(f"/customers/{person}")
    assert HOSTILE not in page.text and page.text.count("&lt;script&gt;") >= 2
