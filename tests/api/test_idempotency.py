"""Idempotency-Key on /api/v1: a retry replays the first answer and the action runs once; the
key is the caller's own, bound to one request, forgotten after a while, and never keeps a
secret."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from oneloop.api.idempotency import IdempotencyKeyRow
from oneloop.collect.models import SourceRow
from oneloop.core.clock import FixedClock
from oneloop.core.context import Context
from oneloop.core.errors import Unavailable
from oneloop.segments.models import SegmentRow
from tests.conftest import ADMIN
from tests.factories import make_group, make_source, make_user, signed_in

SEGMENTS = "/api/v1/segments"
RULE = {"trait": "city", "op": "eq", "value": "上海"}


def keyed(key: str, headers: dict[str, str] = ADMIN) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def segment(code: str = "sh") -> dict[str, Any]:
    return {"code": code, "name": "上海 Shanghai", "rule": RULE, "bu": "north"}


def count(session: Session, table: type) -> int:
    session.expire_all()
    return session.execute(select(func.count()).select_from(table)).scalar_one()


def problem(answer: Any, status: int, code: str) -> dict[str, Any]:  # Any: httpx.Response, JSON
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["type"] == f"/problems/{code}"
    return body


@pytest.fixture
def group(session: Session, ctx: Context) -> None:
    make_group(session, ctx)


@pytest.mark.usefixtures("group")
def test_a_retry_replays_the_first_answer_and_creates_one_segment(
    client: TestClient, session: Session
) -> None:
    first = client.post(SEGMENTS, json=segment(), headers=keyed("seg-1"))
    again = client.post(SEGMENTS, json=segment(), headers=keyed("seg-1"))
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["X-Request-ID"] != first.headers["X-Request-ID"]
    assert count(session, SegmentRow) == 1
    # without the key the same body is a new request: here a 409 for the taken code
    assert client.post(SEGMENTS, json=segment(), headers=ADMIN).status_code == 409


@pytest.mark.usefixtures("group")
def test_a_client_error_is_kept_and_replayed_too(client: TestClient) -> None:
    bad = {**segment(), "rule": {"trait": "city", "op": "near", "value": 1}}
    first = client.post(SEGMENTS, json=bad, headers=keyed("bad-1"))
    again = client.post(SEGMENTS, json=bad, headers=keyed("bad-1"))
    assert first.status_code == again.status_code == 422
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"


@pytest.mark.usefixtures("group")
def test_the_same_key_with_another_body_or_path_is_a_422_naming_the_header(
    client: TestClient, session: Session
) -> None:
    assert client.post(SEGMENTS, json=segment("a"), headers=keyed("k-1")).status_code == 201
    other = client.post(SEGMENTS, json=segment("b"), headers=keyed("k-1"))
    body = problem(other, 422, "idempotency-key-reused")
    assert body["header"] == "Idempotency-Key"
    assert body["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    query = client.post(SEGMENTS, params={"x": "1"}, json=segment("a"), headers=keyed("k-1"))
    problem(query, 422, "idempotency-key-reused")
    path = client.post("/api/v1/tag-categories", json={"code": "a"}, headers=keyed("k-1"))
    problem(path, 422, "idempotency-key-reused")
    assert count(session, SegmentRow) == 1


@pytest.mark.usefixtures("group")
def test_callers_have_their_own_keys(app: FastAPI, session: Session, ctx: Context) -> None:
    make_user(session, ctx, "ann@north.example.com", "north", "bu_admin")
    make_user(session, ctx, "bo@north.example.com", "north", "bu_admin")
    ann, bo = signed_in(app, "ann@north.example.com"), signed_in(app, "bo@north.example.com")
    made = ann.post(SEGMENTS, json=segment("ann"), headers={"Idempotency-Key": "same"})
    assert made.status_code == 201, made.text
    # Bo's key of the same name is not Ann's: his body is his own request, not a 422 ...
    his = bo.post(SEGMENTS, json=segment("bo"), headers={"Idempotency-Key": "same"})
    assert his.status_code == 201 and "Idempotent-Replayed" not in his.headers
    # ... and the same body as Ann's is not her answer replayed: it runs, and the code is taken
    copy = bo.post(SEGMENTS, json=segment("ann"), headers={"Idempotency-Key": "again"})
    assert copy.status_code == 409 and "Idempotent-Replayed" not in copy.headers
    assert count(session, SegmentRow) == 2
    # the stored rows name neither the users nor their credentials
    rows = session.execute(select(IdempotencyKeyRow)).scalars().all()
    assert {len(r.principal) for r in rows} == {64}
    assert len({r.principal for r in rows}) == 2


@pytest.mark.usefixtures("group")
def test_another_unit_of_the_same_user_does_not_replay(
    app: FastAPI, session: Session, ctx: Context
) -> None:
    from oneloop.governance import users

    make_user(session, ctx, "ann@north.example.com", "north", "bu_admin")
    users.grant(session, ctx, users.list_users(session, ctx)[0].id, "south", "bu_admin")
    session.commit()
    ann = signed_in(app, "ann@north.example.com", bu="north")
    body = {"code": "ann", "name": "x", "rule": RULE}
    north = ann.post(SEGMENTS, json=body, headers={"Idempotency-Key": "k"})
    assert ann.post("/api/v1/auth/switch", json={"bu": "south"}).status_code == 200
    south = ann.post(SEGMENTS, json=body, headers={"Idempotency-Key": "k"})
    assert north.status_code == south.status_code == 201
    assert north.json()["bu_id"] != south.json()["bu_id"]


@pytest.fixture
def flaky(app: FastAPI) -> dict[str, int]:
    """Routes that fail with a 5xx the first time and succeed after."""
    calls = {"bug": 0, "busy": 0}
    router = APIRouter(prefix="/api/v1/_probe")

    @router.post("/bug")
    def bug() -> dict[str, int]:
        calls["bug"] += 1
        if calls["bug"] == 1:
            raise RuntimeError("a bug")
        return calls

    @router.post("/busy")
    def busy() -> dict[str, int]:
        calls["busy"] += 1
        if calls["busy"] == 1:
            raise Unavailable("database is busy; retry shortly")
        return calls

    app.include_router(router)
    return calls


@pytest.mark.parametrize("route", ["bug", "busy"])
def test_a_server_error_is_not_kept_so_the_retry_runs(
    client: TestClient, session: Session, flaky: dict[str, int], route: str
) -> None:
    first = client.post(f"/api/v1/_probe/{route}", headers=keyed("retry-me"))
    assert first.status_code in (500, 503)
    assert count(session, IdempotencyKeyRow) == 0
    again = client.post(f"/api/v1/_probe/{route}", headers=keyed("retry-me"))
    assert again.status_code == 200 and "Idempotent-Replayed" not in again.headers
    third = client.post(f"/api/v1/_probe/{route}", headers=keyed("retry-me"))
    assert third.headers["Idempotent-Replayed"] == "true" and third.json() == again.json()
    assert flaky[route] == 2


def test_a_request_while_the_first_is_in_flight_gets_409(app: FastAPI, client: TestClient) -> None:
    seen: dict[str, Any] = {}
    router = APIRouter(prefix="/api/v1/_probe")

    @router.post("/slow")
    def slow() -> dict[str, bool]:
        # The first request is running: its twin arrives now, through the real stack.
        if "twin" not in seen:
            seen["twin"] = client.post("/api/v1/_probe/slow", headers=keyed("twins"))
        return {"ran": True}

    app.include_router(router)
    first = client.post("/api/v1/_probe/slow", headers=keyed("twins"))
    assert first.status_code == 200
    problem(seen["twin"], 409, "idempotency-key-in-flight")
    assert client.post("/api/v1/_probe/slow", headers=keyed("twins")).json() == {"ran": True}


@pytest.mark.usefixtures("group")
def test_a_new_source_is_not_replayed_with_its_write_key(
    client: TestClient, session: Session
) -> None:
    body = {"bu": "north", "name": "官网 Web"}
    first = client.post("/api/v1/sources", json=body, headers=keyed("src-1"))
    assert first.status_code == 201
    made = first.json()
    again = client.post("/api/v1/sources", json=body, headers=keyed("src-1"))
    shown = problem(again, 409, "already-done")
    assert shown["id"] == made["id"] and shown["original_status"] == 201
    assert again.headers["Location"] == shown["location"] == f"/api/v1/sources/{made['id']}"
    assert made["write_key"] not in again.text
    assert count(session, SourceRow) == 1
    row = session.execute(select(IdempotencyKeyRow)).scalar_one()
    assert row.body is None and row.is_withheld and made["write_key"] not in str(row.headers)
    assert client.get(again.headers["Location"], headers=ADMIN).status_code == 200


@pytest.mark.usefixtures("group")
def test_a_rotated_write_key_and_an_api_key_are_not_kept(
    client: TestClient, session: Session, ctx: Context
) -> None:
    source, _ = make_source(session, ctx)
    url = f"/api/v1/sources/{source.id}/keys"
    first = client.post(url, json={}, headers=keyed("rot-1"))
    assert first.status_code == 201
    problem(client.post(url, json={}, headers=keyed("rot-1")), 409, "already-done")
    make_user(session, ctx, "ann@north.example.com", "north", "bu_admin")
    key = {"name": "BI", "scopes": ["segments.read"], "user": "ann@north.example.com"}
    made = client.post("/api/v1/api-keys", json=key, headers=keyed("key-1"))
    assert made.status_code == 201, made.text
    replayed = problem(
        client.post("/api/v1/api-keys", json=key, headers=keyed("key-1")), 409, "already-done"
    )
    assert replayed["id"] == made.json()["id"] and made.json()["token"] not in str(replayed)
    stored = session.execute(select(IdempotencyKeyRow.body)).scalars().all()
    assert stored == [None, None]


@pytest.mark.usefixtures("group")
def test_a_secret_route_that_failed_keeps_its_problem(client: TestClient) -> None:
    body = {"bu": "nowhere", "name": "x"}
    first = client.post("/api/v1/sources", json=body, headers=keyed("src-bad"))
    assert first.status_code in (404, 422)
    again = client.post("/api/v1/sources", json=body, headers=keyed("src-bad"))
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"


def test_sign_in_and_the_tracking_api_are_left_alone(
    client: TestClient, session: Session, ctx: Context
) -> None:
    make_group(session, ctx)
    _, write_key = make_source(session, ctx)
    make_user(session, ctx, "ann@north.example.com")
    login = {"email": "ann@north.example.com", "password": "correct horse battery staple"}
    for _ in range(2):
        answer = client.post("/api/v1/auth/login", json=login, headers={"Idempotency-Key": "in"})
        assert answer.status_code == 200 and "Idempotent-Replayed" not in answer.headers
    event = {"type": "track", "event": "x", "userId": "u1", "messageId": "m1"}
    tracked = client.post(
        "/v1/track", json=event, auth=(write_key, ""), headers={"Idempotency-Key": "t"}
    )
    assert tracked.status_code == 200
    assert count(session, IdempotencyKeyRow) == 0


@pytest.mark.usefixtures("group")
def test_an_unauthenticated_request_keeps_nothing(client: TestClient, session: Session) -> None:
    answer = client.post(SEGMENTS, json=segment(), headers={"Idempotency-Key": "anon"})
    problem(answer, 401, "unauthenticated")
    wrong = client.post(
        SEGMENTS, json=segment(), headers={"Authorization": "Bearer nope", "Idempotency-Key": "x"}
    )
    problem(wrong, 401, "unauthenticated")
    assert count(session, IdempotencyKeyRow) == 0


@pytest.mark.usefixtures("group")
def test_keys_expire_and_expired_rows_are_purged(
    app: FastAPI, client: TestClient, session: Session
) -> None:
    clock = FixedClock()
    app.state.oneloop = replace(app.state.oneloop, clock=clock)
    assert client.post(SEGMENTS, json=segment("a"), headers=keyed("old")).status_code == 201
    clock.advance(timedelta(hours=23, minutes=59))
    assert client.post(SEGMENTS, json=segment("a"), headers=keyed("old")).headers[
        "Idempotent-Replayed"
    ]
    clock.advance(timedelta(minutes=2))
    # past 24 h the key is free: another body under it is a new request, not a 422
    fresh = client.post(SEGMENTS, json=segment("b"), headers=keyed("old"))
    assert fresh.status_code == 201 and "Idempotent-Replayed" not in fresh.headers
    assert client.post(SEGMENTS, json=segment("c"), headers=keyed("other")).status_code == 201
    clock.advance(timedelta(hours=25))
    assert client.post(SEGMENTS, json=segment("d"), headers=keyed("last")).status_code == 201
    assert [r.key for r in session.execute(select(IdempotencyKeyRow)).scalars()] == ["last"]
    assert count(session, SegmentRow) == 4


@pytest.mark.usefixtures("group")
def test_the_key_may_be_a_structured_header_string(client: TestClient) -> None:
    first = client.post(SEGMENTS, json=segment(), headers=keyed('"8e0f-4a1b"'))
    again = client.post(SEGMENTS, json=segment(), headers=keyed("8e0f-4a1b"))
    assert first.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize(
    "key", [b"", b"   ", b'""', b"x" * 201, b"two words", "café".encode(), b"a,b", b"a\\b"]
)
@pytest.mark.usefixtures("group")
def test_a_bad_key_is_a_422_naming_the_header(
    client: TestClient, session: Session, key: bytes
) -> None:
    answer = client.post(SEGMENTS, json=segment(), headers={**ADMIN, "Idempotency-Key": key})
    body = problem(answer, 422, "validation-failed")
    assert body["header"] == "Idempotency-Key"
    assert body["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert count(session, SegmentRow) == 0


SECRET_FIELDS = {"write_key", "token", "secret", "password", "document", "csrf_token"}


def _fields(model: object, seen: set[type] | None = None) -> set[str]:
    """Every field name of a pydantic model, nested models included."""
    from typing import get_args

    from pydantic import BaseModel

    seen = seen if seen is not None else set()
    if not isinstance(model, type) or not issubclass(model, BaseModel) or model in seen:
        return set.union(set(), *(_fields(a, seen) for a in get_args(model)))
    seen.add(model)
    names = set(model.model_fields)
    for info in model.model_fields.values():
        names |= _fields(info.annotation, seen)
    return names


def test_every_mutating_route_that_answers_a_secret_is_shown_once(app: FastAPI) -> None:
    """A new route that hands out a key or an export must say so, or a replay would show it
    again from a row that kept it."""
    from fastapi.routing import APIRoute

    from oneloop.api.idempotency import SHOWN_ONCE, applies

    unmarked = [
        f"{method} {route.path}"
        for route in app.routes
        if isinstance(route, APIRoute)
        for method in route.methods
        if applies(method, route.path)
        and _fields(route.response_model) & SECRET_FIELDS
        and SHOWN_ONCE not in (route.openapi_extra or {})
    ]
    assert unmarked == []
