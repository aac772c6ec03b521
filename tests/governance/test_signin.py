"""Signing in through the API: sessions, CSRF, lock-out, rate limit, API keys, and who may
grant what. Every test drives the real app over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from oneloop.api.app import create_app
from oneloop.core.clock import FixedClock
from oneloop.core.config import Settings
from oneloop.core.context import Context
from oneloop.governance.models import ApiKeyRow, AuditRow, SessionRow
from tests.conftest import ADMIN
from tests.factories import PASSWORD, make_group, make_user, signed_in

LOGIN = "/api/v1/auth/login"
# A segment body that passes validation, so that what answers is the permission check.
SEGMENT = {
    "code": "sh",
    "name": "上海 Shanghai",
    "rule": {"trait": "city", "op": "eq", "value": "上海"},
}
ME = "/api/v1/auth/me"


@pytest.fixture
def world(session: Session, ctx: Context) -> None:
    make_group(session, ctx)
    make_user(session, ctx, "mia@north.example.com", "north", "marketer")
    make_user(session, ctx, "ada@north.example.com", "north", "bu_admin")
    make_user(session, ctx, "sam@south.example.com", "south", "bu_admin")


@pytest.fixture
def timed_app(app: FastAPI, clock: FixedClock) -> FastAPI:
    """The app on the test's clock, so that sessions and lock-outs can be aged."""
    app.state.oneloop = replace(app.state.oneloop, clock=clock)
    return app


def https(app: FastAPI) -> TestClient:
    return TestClient(app, base_url="https://testserver", raise_server_exceptions=False)


def test_login_sets_a_hardened_cookie_and_answers_who(world: None, app: FastAPI) -> None:
    client = https(app)
    answer = client.post(LOGIN, json={"email": " Mia@North.example.com", "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    cookie = answer.headers["set-cookie"].lower()
    for flag in ("httponly", "secure", "samesite=lax", "path=/"):
        assert flag in cookie
    body = answer.json()
    assert body["role"] == "marketer" and body["bu_code"] == "north"
    assert body["via"] == "session" and not body["is_group_wide"]
    assert "segments.manage" in body["permissions"] and "pii:read" not in body["permissions"]
    who = client.get(ME).json()
    assert who["user"]["email"] == "mia@north.example.com" and who["csrf_token"]


def test_only_a_hash_of_the_session_token_is_stored(
    world: None, app: FastAPI, session: Session
) -> None:
    client = https(app)
    client.post(LOGIN, json={"email": "mia@north.example.com", "password": PASSWORD})
    token = client.cookies["oneloop_session"]
    stored = session.scalars(select(SessionRow.id)).all()
    assert len(stored) == 1 and token not in stored[0] and len(stored[0]) == 64


def test_wrong_password_and_unknown_email_get_the_same_answer(world: None, app: FastAPI) -> None:
    client = https(app)
    wrong = client.post(LOGIN, json={"email": "mia@north.example.com", "password": "nope"})
    nobody = client.post(LOGIN, json={"email": "zed@north.example.com", "password": "nope"})
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json()["detail"] == nobody.json()["detail"]
    assert wrong.headers["content-type"].startswith("application/problem+json")


def test_no_credentials_is_401_naming_the_ways_in(world: None, app: FastAPI) -> None:
    answer = https(app).get("/api/v1/segments")
    assert answer.status_code == 401
    assert "sign in" in answer.json()["detail"]


def test_bad_login_body_is_422_naming_the_field(world: None, app: FastAPI) -> None:
    answer = https(app).post(LOGIN, json={"email": "mia@north.example.com"})
    assert answer.status_code == 422
    assert any(e["loc"][-1] == "password" for e in answer.json()["errors"])


def test_a_change_without_the_csrf_token_is_refused(world: None, app: FastAPI) -> None:
    client = signed_in(app, "mia@north.example.com")
    token = client.headers.pop("X-CSRF-Token")
    body = SEGMENT
    refused = client.post("/api/v1/segments", json=body)
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    forged = client.post("/api/v1/segments", json=body, headers={"X-CSRF-Token": "x" * 43})
    assert forged.status_code == 403
    assert client.get("/api/v1/segments").status_code == 200  # reads need no token
    # With the token the request gets past the check (the rule names an unknown tag: 422).
    assert client.post(
        "/api/v1/segments", json=body, headers={"X-CSRF-Token": token}
    ).status_code in (201, 422)


def test_logout_ends_the_session(world: None, app: FastAPI, session: Session) -> None:
    client = signed_in(app, "mia@north.example.com")
    assert client.post("/api/v1/auth/logout").status_code == 204
    assert client.get(ME).status_code == 401
    assert session.scalars(select(SessionRow)).all() == []


def test_sessions_end_when_idle_and_when_old(
    world: None, timed_app: FastAPI, clock: FixedClock
) -> None:
    client = signed_in(timed_app, "mia@north.example.com")
    clock.advance(timedelta(minutes=119))
    assert client.get(ME).status_code == 200  # used: the idle clock restarts
    clock.advance(timedelta(minutes=119))
    assert client.get(ME).status_code == 200
    clock.advance(timedelta(minutes=121))
    assert client.get(ME).status_code == 401

    busy = signed_in(timed_app, "mia@north.example.com")
    for _ in range(13):
        clock.advance(timedelta(minutes=59))
        busy.get(ME)
    assert busy.get(ME).status_code == 401  # 12.8 h after sign-in: past ONELOOP_SESSION_HOURS


def test_five_failures_lock_the_email_out_even_with_the_right_password(
    world: None, timed_app: FastAPI, clock: FixedClock, session: Session
) -> None:
    client = https(timed_app)
    for _ in range(5):
        assert (
            client.post(LOGIN, json={"email": "mia@north.example.com", "password": "x"}).status_code
            == 401
        )
    locked = client.post(LOGIN, json={"email": "mia@north.example.com", "password": PASSWORD})
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    # Unlocked by an admin (or by waiting), the right password works again.
    user = client.get("/api/v1/users", headers=ADMIN).json()["items"]
    mia = next(u for u in user if u["email"] == "mia@north.example.com")
    assert client.post(f"/api/v1/users/{mia['id']}/unlock", headers=ADMIN).status_code == 204
    assert (
        client.post(
            LOGIN, json={"email": "mia@north.example.com", "password": PASSWORD}
        ).status_code
        == 200
    )
    denied = session.scalars(
        select(AuditRow).where(AuditRow.action == "auth.login", AuditRow.outcome == "denied")
    ).all()
    assert len(denied) == 6 and all(row.object_id == mia["id"] for row in denied)


def test_an_unknown_email_locks_out_the_same_way(world: None, app: FastAPI) -> None:
    """Otherwise the lock-out would tell which emails have accounts."""
    client = https(app)
    answers = [
        client.post(LOGIN, json={"email": "zed@north.example.com", "password": "x"}).status_code
        for _ in range(6)
    ]
    assert answers == [401] * 5 + [429]


def test_a_lockout_ends_by_itself(world: None, timed_app: FastAPI, clock: FixedClock) -> None:
    client = https(timed_app)
    for _ in range(5):
        client.post(LOGIN, json={"email": "mia@north.example.com", "password": "x"})
    clock.advance(timedelta(minutes=16))
    assert (
        client.post(
            LOGIN, json={"email": "mia@north.example.com", "password": PASSWORD}
        ).status_code
        == 200
    )


def test_one_address_is_rate_limited(
    world: None, settings: Settings, engine: object, session: Session
) -> None:
    app = create_app(replace_settings(settings, login_rate_per_minute=3), engine)  # type: ignore[arg-type]
    client = https(app)
    codes = [
        client.post(LOGIN, json={"email": f"u{i}@north.example.com", "password": "x"}).status_code
        for i in range(4)
    ]
    assert codes == [401, 401, 401, 429]


def replace_settings(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(update=changes)


def test_deactivating_a_user_ends_their_session(world: None, app: FastAPI) -> None:
    client = signed_in(app, "mia@north.example.com")
    mia = client.get(ME).json()["user"]["id"]
    admin = signed_in(app, "ada@north.example.com")
    assert admin.patch(f"/api/v1/users/{mia}", json={"is_active": False}).status_code == 200
    assert client.get(ME).status_code == 401
    assert (
        https(app)
        .post(LOGIN, json={"email": "mia@north.example.com", "password": PASSWORD})
        .status_code
        == 401
    )


def test_revoking_the_role_ends_the_session_in_that_unit(world: None, app: FastAPI) -> None:
    client = signed_in(app, "mia@north.example.com")
    mia = client.get(ME).json()["user"]["id"]
    admin = signed_in(app, "ada@north.example.com")
    assert admin.delete(f"/api/v1/users/{mia}/memberships/north").status_code == 200
    assert client.get(ME).status_code == 401


def test_a_user_of_two_units_switches_between_them(world: None, app: FastAPI) -> None:
    users = https(app).get("/api/v1/users", headers=ADMIN).json()["items"]
    mia = next(u for u in users if u["email"] == "mia@north.example.com")["id"]
    granted = https(app).put(
        f"/api/v1/users/{mia}/memberships/south", json={"role": "analyst"}, headers=ADMIN
    )
    assert granted.status_code == 200
    client = signed_in(app, "mia@north.example.com", bu="south")
    assert client.get(ME).json()["role"] == "analyst"
    switched = client.post("/api/v1/auth/switch", json={"bu": "north"})
    assert switched.status_code == 200 and switched.json()["role"] == "marketer"
    assert client.get(ME).json()["bu_code"] == "north"
    elsewhere = client.post("/api/v1/auth/switch", json={"bu": "galaxy"})
    assert elsewhere.status_code == 422


# --- who may grant what ---------------------------------------------------------------------


def test_a_unit_admin_manages_only_their_unit(world: None, app: FastAPI) -> None:
    north = signed_in(app, "ada@north.example.com")
    listed = [u["email"] for u in north.get("/api/v1/users").json()["items"]]
    assert listed == ["ada@north.example.com", "mia@north.example.com"]
    south_users = https(app).get("/api/v1/users", headers=ADMIN).json()["items"]
    sam = next(u for u in south_users if u["email"] == "sam@south.example.com")["id"]
    assert north.get(f"/api/v1/users/{sam}").status_code == 404
    assert north.patch(f"/api/v1/users/{sam}", json={"display_name": "x"}).status_code == 404
    new = {
        "email": "neo@south.example.com",
        "display_name": "Neo",
        "password": PASSWORD,
        "bu": "south",
        "role": "marketer",
    }
    assert north.post("/api/v1/users", json=new).status_code == 404
    made = north.post(
        "/api/v1/users", json={**new, "email": "neo@north.example.com", "bu": "north"}
    )
    assert made.status_code == 201
    assert made.json()["memberships"] == [
        {"bu_id": made.json()["memberships"][0]["bu_id"], "bu_code": "north", "role": "marketer"}
    ]


def test_nobody_grants_more_than_they_hold(world: None, app: FastAPI) -> None:
    north = signed_in(app, "ada@north.example.com")
    me = north.get(ME).json()["user"]["id"]
    # A unit admin cannot make anyone (themself included) a group admin, here or in the group.
    assert (
        north.put(f"/api/v1/users/{me}/memberships/north", json={"role": "group_admin"}).status_code
        == 422
    )
    assert (
        north.put(
            f"/api/v1/users/{me}/memberships/galaxy", json={"role": "group_admin"}
        ).status_code
        == 404
    )
    # … nor define roles at all.
    role = {"code": "snoop", "name_zh": "x", "name_en": "x", "permissions": ["pii:read"]}
    assert north.post("/api/v1/roles", json=role).status_code == 403
    # A marketer manages nobody.
    marketer = signed_in(app, "mia@north.example.com")
    assert marketer.get("/api/v1/users").status_code == 403


def test_custom_roles_extend_the_matrix(world: None, app: FastAPI) -> None:
    role = {
        "code": "campaign_viewer",
        "name_zh": "活动查看",
        "name_en": "Campaign viewer",
        "permissions": ["segments.read", "profiles.read"],
    }
    assert https(app).post("/api/v1/roles", json=role, headers=ADMIN).status_code == 201
    typo = {**role, "code": "typo", "permissions": ["segments.reed"]}
    bad = https(app).post("/api/v1/roles", json=typo, headers=ADMIN)
    assert bad.status_code == 422 and "segments.reed" in bad.text
    users = https(app).get("/api/v1/users", headers=ADMIN).json()["items"]
    mia = next(u for u in users if u["email"] == "mia@north.example.com")["id"]
    https(app).put(
        f"/api/v1/users/{mia}/memberships/north", json={"role": "campaign_viewer"}, headers=ADMIN
    )
    client = signed_in(app, "mia@north.example.com")
    assert sorted(client.get(ME).json()["permissions"]) == ["profiles.read", "segments.read"]
    assert client.get("/api/v1/segments").status_code == 200
    assert client.post("/api/v1/segments", json=SEGMENT).status_code == 403
    held = https(app).delete("/api/v1/roles/campaign_viewer", headers=ADMIN)
    assert held.status_code == 409
    builtin = https(app).patch("/api/v1/roles/marketer", json={"name_en": "x"}, headers=ADMIN)
    assert builtin.status_code == 409


# --- API keys -------------------------------------------------------------------------------


def test_api_keys_are_scoped_hashed_and_revocable(
    world: None, app: FastAPI, session: Session
) -> None:
    owner = signed_in(app, "mia@north.example.com")
    made = owner.post("/api/v1/api-keys", json={"name": "BI", "scopes": ["segments.read"]})
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    assert token.startswith("ola_")
    stored = session.get_one(ApiKeyRow, made.json()["id"])
    assert token.split("_", 2)[2] not in stored.secret_hash
    assert "token" not in owner.get("/api/v1/api-keys").json()["items"][0]

    machine = TestClient(app, raise_server_exceptions=False)
    bearer = {"Authorization": f"Bearer {token}"}
    assert machine.get("/api/v1/segments", headers=bearer).status_code == 200
    who = machine.get(ME, headers=bearer).json()
    assert who["via"] == "api_key" and who["permissions"] == ["segments.read"]
    assert machine.get("/api/v1/tags", headers=bearer).status_code == 403  # not in its scopes
    # No CSRF for a bearer key: a browser does not send it on its own.
    assert machine.post("/api/v1/segments", json=SEGMENT, headers=bearer).status_code == 403

    assert owner.delete(f"/api/v1/api-keys/{made.json()['id']}").status_code == 200
    gone = machine.get("/api/v1/segments", headers=bearer)
    assert gone.status_code == 401 and "revoked" in gone.json()["detail"]
    forged = machine.get("/api/v1/segments", headers={"Authorization": f"Bearer {token[:-2]}xx"})
    assert forged.status_code == 401


def test_a_key_never_holds_more_than_its_user(world: None, app: FastAPI) -> None:
    owner = signed_in(app, "mia@north.example.com")
    beyond = owner.post("/api/v1/api-keys", json={"name": "x", "scopes": ["pii:read"]})
    assert beyond.status_code == 422 and "pii:read" in beyond.text
    typo = owner.post("/api/v1/api-keys", json={"name": "x", "scopes": ["segments.reed"]})
    assert typo.status_code == 422
    other_unit = owner.post(
        "/api/v1/api-keys", json={"name": "x", "scopes": ["segments.read"], "bu": "south"}
    )
    assert other_unit.status_code == 422
    someone = owner.post(
        "/api/v1/api-keys",
        json={"name": "x", "scopes": ["segments.read"], "user": "ada@north.example.com"},
    )
    assert someone.status_code == 403


def test_an_expired_key_is_refused(world: None, timed_app: FastAPI, clock: FixedClock) -> None:
    owner = signed_in(timed_app, "mia@north.example.com")
    token = owner.post(
        "/api/v1/api-keys", json={"name": "x", "scopes": ["segments.read"], "expires_in_days": 1}
    ).json()["token"]
    clock.advance(timedelta(days=1, seconds=1))
    answer = TestClient(timed_app).get(
        "/api/v1/segments", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 401 and "expired" in answer.json()["detail"]


def test_a_key_stops_with_its_user(world: None, app: FastAPI) -> None:
    owner = signed_in(app, "mia@north.example.com")
    token = owner.post("/api/v1/api-keys", json={"name": "x", "scopes": ["segments.read"]}).json()[
        "token"
    ]
    mia = owner.get(ME).json()["user"]["id"]
    signed_in(app, "ada@north.example.com").patch(f"/api/v1/users/{mia}", json={"is_active": False})
    answer = TestClient(app).get("/api/v1/segments", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401


def test_sign_in_acts_are_audited(world: None, app: FastAPI, session: Session) -> None:
    https(app).post(LOGIN, json={"email": "zed@north.example.com", "password": "x"})
    owner = signed_in(app, "mia@north.example.com")
    owner.post("/api/v1/api-keys", json={"name": "x", "scopes": ["segments.read"]})
    rows = session.scalars(select(AuditRow).order_by(AuditRow.seq)).all()
    acts = [(r.action, r.outcome) for r in rows if r.action.startswith(("auth", "api_key"))]
    assert acts == [("auth.login", "denied"), ("auth.login", "ok"), ("api_key.created", "ok")]
    assert all("zed@" not in str(r.detail) for r in rows)
