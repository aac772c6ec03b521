"""The tracking API as SDKs meet it: auth, limits, errors naming the field, dedupe, durability."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from oneloop.collect import service
from oneloop.collect.models import DeadLetterRow, EventRow
from oneloop.core.context import Context
from tests.conftest import ADMIN
from tests.factories import make_group, make_source


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def track(mid: str, **extra: object) -> dict[str, object]:
    return {"event": "Order Completed", "userId": "u1", "messageId": mid, **extra}


@pytest.fixture
def key(session: Session, ctx: Context) -> str:
    make_group(session, ctx)
    _, write_key = make_source(session, ctx)
    return write_key


def count(session: Session, table: type = EventRow) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(table)) or 0


def test_a_track_call_is_stored_with_its_fields(
    client: TestClient, key: str, session: Session
) -> None:
    body = track(
        "m-1",
        properties={"revenue": 99.5, "currency": "CNY"},
        context={"traits": {"email": "Li.Lei@Example.com"}, "device": {"id": "dev-9"}},
        originalTimestamp="2026-11-23T08:00:00Z",
    )
    response = client.post("/v1/track", json=body, headers=basic(key))
    assert response.status_code == 200 and response.json() == {"success": True}
    row = session.scalars(select(EventRow)).one()
    assert (row.type, row.event, row.user_id, row.message_id) == (
        "track",
        "Order Completed",
        "u1",
        "m-1",
    )
    assert row.properties == {"revenue": 99.5, "currency": "CNY"}
    assert row.original_timestamp == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    assert ["email", "Li.Lei@Example.com"] in row.identifiers
    assert ["device_id", "dev-9"] in row.identifiers


def test_every_call_type_and_the_write_key_in_the_body(
    client: TestClient, key: str, session: Session
) -> None:
    calls = {
        "identify": {"userId": "u1", "traits": {"name": "李雷"}},
        "page": {"anonymousId": "a1", "name": "Pricing"},
        "screen": {"anonymousId": "a1", "name": "Home"},
        "group": {"userId": "u1", "groupId": "acme"},
        "alias": {"userId": "u1", "previousId": "a1"},
    }
    for call, body in calls.items():
        response = client.post(f"/v1/{call}", json={**body, "writeKey": key})
        assert response.status_code == 200, response.text
    assert sorted(session.scalars(select(EventRow.type))) == sorted(calls)


def test_a_gzipped_batch_and_the_import_alias(
    client: TestClient, key: str, session: Session
) -> None:
    batch = {"batch": [{"type": "track", **track(f"g-{i}")} for i in range(3)]}
    headers = {**basic(key), "Content-Encoding": "gzip", "Content-Type": "application/json"}
    response = client.post(
        "/v1/import", content=gzip.compress(orjson.dumps(batch)), headers=headers
    )
    assert response.status_code == 200, response.text
    assert count(session) == 3


def test_a_retried_batch_stores_nothing_new(client: TestClient, key: str, session: Session) -> None:
    batch = {"batch": [{"type": "track", **track(f"r-{i}")} for i in range(5)]}
    for _ in range(3):
        assert client.post("/v1/batch", json=batch, headers=basic(key)).status_code == 200
    assert count(session) == 5


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "write key"),
        (basic("olk_not-a-key"), "unknown, revoked or disabled"),
        ({"Authorization": "Basic !!!"}, "write key"),
    ],
)
def test_a_missing_or_unknown_key_is_401(
    client: TestClient, key: str, headers: dict[str, str], detail: str
) -> None:
    response = client.post("/v1/track", json=track("m"), headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert detail in response.json()["detail"]


def test_a_disabled_source_is_401(
    client: TestClient, session: Session, ctx: Context, key: str
) -> None:
    source = service.authenticate(session, key)
    service.set_enabled(session, ctx, source.id, enabled=False)
    session.commit()
    assert client.post("/v1/track", json=track("m"), headers=basic(key)).status_code == 401


@pytest.mark.parametrize(
    ("body", "path", "words"),
    [
        ({"event": "X", "messageId": "m"}, "userId", "userId or anonymousId"),
        (track("m", properties=[1, 2]), "properties", "must be an object"),
        (track("m", timestamp="yesterday"), "timestamp", "ISO 8601"),
        (track("m", event=""), "event", "track needs the event name"),
        (track("m", userId={"id": 1}), "userId", "string or a number"),
    ],
)
def test_bad_fields_are_400_naming_the_path_and_kept_as_dead_letters(
    client: TestClient,
    key: str,
    session: Session,
    body: dict[str, object],
    path: str,
    words: str,
) -> None:
    response = client.post("/v1/track", json=body, headers=basic(key))
    assert response.status_code == 400
    problem = response.json()
    assert problem["type"] == "/problems/invalid-payload"
    assert path in [e["path"] for e in problem["errors"]]
    assert words in problem["detail"]
    # Segment's and RudderStack's SDKs read these two members.
    assert problem["code"] == "invalid-payload" and problem["message"] == problem["detail"]
    letter = session.scalars(select(DeadLetterRow)).one()
    assert letter.status == "waiting" and orjson.loads(letter.payload)["messageId"] == "m"


def test_a_batch_names_the_items_that_failed_and_keeps_the_rest(
    client: TestClient, key: str, session: Session
) -> None:
    batch = {
        "batch": [
            {"type": "track", **track("ok-1")},
            {"type": "launch", **track("bad-type")},
            {"type": "identify", "traits": {}, "messageId": "no-id"},
            {"type": "track", **track("ok-2")},
        ]
    }
    response = client.post("/v1/batch", json=batch, headers=basic(key))
    assert response.status_code == 400
    problem = response.json()
    assert [e["path"] for e in problem["errors"]] == ["batch[1].type", "batch[2].userId"]
    assert (problem["accepted"], problem["dead_lettered"]) == (2, 2)
    assert count(session) == 2 and count(session, DeadLetterRow) == 2


def test_limits_are_segments_and_an_oversized_batch_is_refused_whole(
    client: TestClient, key: str, session: Session
) -> None:
    big = track("big", properties={"blob": "x" * 33_000})
    response = client.post("/v1/track", json=big, headers=basic(key))
    assert response.status_code == 413 and "32 KB per call" in response.json()["detail"]
    items = [
        {"type": "track", **track(f"b-{i}", properties={"p": "y" * 20_000})} for i in range(30)
    ]
    response = client.post("/v1/batch", json={"batch": items}, headers=basic(key))
    assert response.status_code == 413 and "500 KB per batch" in response.json()["detail"]
    assert count(session) == 0


def test_a_gzip_bomb_is_refused_without_inflating_it(client: TestClient, key: str) -> None:
    bomb = gzip.compress(b'{"batch": [' + b" " * 50_000_000 + b"]}")
    headers = {**basic(key), "Content-Encoding": "gzip"}
    response = client.post("/v1/batch", content=bomb, headers=headers)
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("content", "headers", "status", "words"),
    [
        (b"{not json", {}, 400, "not valid JSON"),
        (b"", {}, 400, "empty"),
        (b"[1, 2]", {}, 400, "JSON object"),
        (b"\x1f\x8b garbage", {"Content-Encoding": "gzip"}, 400, "gzip"),
        (b"{}", {"Content-Encoding": "br"}, 400, "Content-Encoding"),
    ],
)
def test_undecodable_bodies_are_400_never_500(
    client: TestClient,
    key: str,
    session: Session,
    content: bytes,
    headers: dict[str, str],
    status: int,
    words: str,
) -> None:
    response = client.post("/v1/batch", content=content, headers={**basic(key), **headers})
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]


def test_a_body_that_is_not_json_is_kept_when_the_key_says_whose_it_is(
    client: TestClient, key: str, session: Session
) -> None:
    client.post("/v1/track", content=b"{oops", headers=basic(key))
    letter = session.scalars(select(DeadLetterRow)).one()
    assert (letter.reason, letter.payload) == ("invalid_json", "{oops")


def test_the_source_stats_count_what_came_in(
    client: TestClient, key: str, session: Session
) -> None:
    source = service.authenticate(session, key)
    batch = {"batch": [{"type": "track", **track(f"s-{i}")} for i in range(4)]}
    client.post("/v1/batch", json=batch, headers=basic(key))
    client.post("/v1/batch", json=batch, headers=basic(key))
    client.post("/v1/track", json={"event": "X"}, headers=basic(key))
    response = client.get(f"/api/v1/sources/{source.id}/stats", headers=ADMIN)
    assert response.status_code == 200, response.text
    stats = response.json()
    assert {k: stats[k] for k in ("received", "accepted", "duplicates", "dead_lettered")} == {
        "received": 9,
        "accepted": 4,
        "duplicates": 4,
        "dead_lettered": 1,
    }
    assert len(stats["per_minute"]) == 60 and sum(m["events"] for m in stats["per_minute"]) == 4
    assert stats["last_event_at"] is not None
    assert client.get(f"/api/v1/sources/{source.id}/stats").status_code == 401
    assert client.get("/api/v1/sources/nope/stats", headers=ADMIN).status_code == 404


junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "userId",
                    "anonymousId",
                    "event",
                    "properties",
                    "timestamp",
                    "messageId",
                    "traits",
                    "context",
                    "sentAt",
                    "batch",
                    "previousId",
                    "groupId",
                    "name",
                ]
            ),
            children,
            max_size=6,
        )
    ),
    max_leaves=20,
)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=junk)
def test_junk_never_gets_a_500(client: TestClient, key: str, body: object) -> None:
    for endpoint in ("batch", "track", "identify", "alias"):
        response = client.post(f"/v1/{endpoint}", content=json.dumps(body), headers=basic(key))
        assert response.status_code in (200, 400), response.text


def test_dead_letters_are_listed_shown_and_replayed_once_over_the_admin_api(
    client: TestClient, key: str, session: Session
) -> None:
    client.post("/v1/track", json={"event": "X", "messageId": "lost"}, headers=basic(key))
    client.post("/v1/track", content=b"{oops", headers=basic(key))
    page = client.get("/api/v1/dead-letters?limit=1", headers=ADMIN).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = client.get(f"/api/v1/dead-letters?cursor={page['next_cursor']}", headers=ADMIN).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    letters = {d["reason"]: d for d in page["items"] + rest["items"]}
    shown = client.get(f"/api/v1/dead-letters/{letters['invalid_event']['id']}", headers=ADMIN)
    assert orjson.loads(shown.json()["payload"])["messageId"] == "lost"
    assert client.get("/api/v1/dead-letters/nope", headers=ADMIN).status_code == 404
    assert client.get("/api/v1/dead-letters?status=lost", headers=ADMIN).status_code == 422
    # Nothing about these letters has changed, so replay refuses them again and keeps them.
    report = client.post("/api/v1/dead-letters/replay", headers=ADMIN).json()
    assert report == {"selected": 2, "replayed": 0, "already_stored": 0, "still_refused": 2}
    # The sender fixes its SDK and resends: the letter's own replay is then a duplicate.
    fixed = track("lost")
    assert client.post("/v1/track", json=fixed, headers=basic(key)).status_code == 200
    row = session.get(DeadLetterRow, letters["invalid_event"]["id"])
    assert row is not None
    row.payload = orjson.dumps({**fixed, "type": "track"}).decode()
    session.commit()
    report = client.post(
        "/api/v1/dead-letters/replay", params={"reason": "invalid_event"}, headers=ADMIN
    ).json()
    assert report == {"selected": 1, "replayed": 0, "already_stored": 1, "still_refused": 0}
    assert count(session) == 1
