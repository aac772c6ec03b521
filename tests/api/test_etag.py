"""ETag / If-Match on configuration objects: the second of two editors who read the same
version is refused (412) instead of silently undoing the first one's change."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from oneloop.api.app import create_app
from oneloop.api.etag import object_key
from oneloop.core.config import Settings
from oneloop.core.context import Context
from tests.conftest import ADMIN
from tests.factories import make_group, make_source

RULE = {"trait": "city", "op": "eq", "value": "上海"}


def problem(answer: Any, status: int, code: str) -> dict[str, Any]:  # Any: httpx.Response, JSON
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["type"] == f"/problems/{code}" and body["header"] == "If-Match"
    return body


def if_match(etag: str) -> dict[str, str]:
    return {**ADMIN, "If-Match": etag}


@pytest.fixture
def source_url(session: Session, ctx: Context) -> str:
    make_group(session, ctx)
    made, _ = make_source(session, ctx)
    return f"/api/v1/sources/{made.id}"


@pytest.fixture
def segment_url(client: TestClient, session: Session, ctx: Context) -> str:
    make_group(session, ctx)
    body = {"code": "sh", "name": "上海", "rule": RULE, "bu": "north"}
    made = client.post("/api/v1/segments", json=body, headers=ADMIN)
    assert made.status_code == 201, made.text
    return f"/api/v1/segments/{made.json()['id']}"


@pytest.fixture
def role_url(client: TestClient, session: Session, ctx: Context) -> str:
    make_group(session, ctx)
    body = {
        "code": "viewer",
        "name_zh": "查看",
        "name_en": "Viewer",
        "permissions": ["segments.read"],
    }
    assert client.post("/api/v1/roles", json=body, headers=ADMIN).status_code == 201
    return "/api/v1/roles/viewer"


def test_a_lost_update_on_a_source_is_refused(client: TestClient, source_url: str) -> None:
    alice = client.get(source_url, headers=ADMIN).headers["ETag"]
    bob = client.get(source_url, headers=ADMIN).headers["ETag"]
    assert alice == bob and alice.startswith('"') and alice.endswith('"')
    first = client.patch(source_url, json={"is_enabled": False}, headers=if_match(alice))
    assert first.status_code == 200 and first.json()["is_enabled"] is False
    assert first.headers["ETag"] != alice
    assert first.headers["ETag"] == client.get(source_url, headers=ADMIN).headers["ETag"]
    second = client.patch(source_url, json={"is_enabled": True}, headers=if_match(bob))
    problem(second, 412, "precondition-failed")
    assert client.get(source_url, headers=ADMIN).json()["is_enabled"] is False
    # Bob reads again and redoes his change on what is there now
    fresh = client.get(source_url, headers=ADMIN).headers["ETag"]
    assert client.patch(source_url, json={"is_enabled": True}, headers=if_match(fresh)).is_success


def test_a_lost_update_on_a_segment_is_refused(client: TestClient, segment_url: str) -> None:
    read = client.get(segment_url, headers=ADMIN)
    etag, seen = read.headers["ETag"], read.json()
    change = {"name": "上海 A", "rule": RULE, "description": "", "is_live": True}
    first = client.put(segment_url, json=change, headers=if_match(etag))
    assert first.status_code == 200, first.text
    assert first.json()["version"] == seen["version"] + 1
    late = client.put(segment_url, json={**change, "name": "上海 B"}, headers=if_match(etag))
    problem(late, 412, "precondition-failed")
    assert client.get(segment_url, headers=ADMIN).json()["name"] == "上海 A"
    after = client.put(
        segment_url, json={**change, "name": "上海 B"}, headers=if_match(first.headers["ETag"])
    )
    assert after.status_code == 200 and after.json()["name"] == "上海 B"


def test_a_segment_evaluated_again_keeps_its_etag(client: TestClient, segment_url: str) -> None:
    before = client.get(segment_url, headers=ADMIN).headers["ETag"]
    assert client.post(f"{segment_url}/evaluate", headers=ADMIN).status_code == 200
    assert client.get(segment_url, headers=ADMIN).headers["ETag"] == before


def test_a_lost_update_on_a_role_is_refused(client: TestClient, role_url: str) -> None:
    etag = client.get(role_url, headers=ADMIN).headers["ETag"]
    grant = {"permissions": ["segments.read", "profiles.read"]}
    first = client.patch(role_url, json=grant, headers=if_match(etag))
    assert first.status_code == 200, first.text
    late = client.patch(role_url, json={"name_en": "Reader"}, headers=if_match(etag))
    problem(late, 412, "precondition-failed")
    assert client.get(role_url, headers=ADMIN).json()["name_en"] == "Viewer"


def test_if_match_star_and_no_if_match_proceed(client: TestClient, role_url: str) -> None:
    star = client.patch(role_url, json={"name_en": "Star"}, headers=if_match("*"))
    assert star.status_code == 200 and star.headers["ETag"]
    plain = client.patch(role_url, json={"name_en": "Plain"}, headers=ADMIN)
    assert plain.status_code == 200 and plain.json()["name_en"] == "Plain"


def test_one_of_several_etags_matches_and_weak_ones_never_do(
    client: TestClient, role_url: str
) -> None:
    etag = client.get(role_url, headers=ADMIN).headers["ETag"]
    weak = client.patch(role_url, json={"name_en": "W"}, headers=if_match(f"W/{etag}"))
    problem(weak, 412, "precondition-failed")
    listed = client.patch(role_url, json={"name_en": "L"}, headers=if_match(f'"old", {etag}'))
    assert listed.status_code == 200


def test_if_match_on_a_missing_object_is_404_or_412(client: TestClient, role_url: str) -> None:
    gone = client.patch("/api/v1/roles/nobody", json={"name_en": "x"}, headers=if_match("*"))
    assert gone.status_code == 404
    entry = {
        "kind": "field",
        "name_zh": "楼层",
        "name_en": "Store floor",
        "data_type": "string",
        "classification": "internal",
    }
    url = "/api/v1/dictionary/store_floor"  # not one of the seeded entries
    problem(client.put(url, json=entry, headers=if_match("*")), 412, "precondition-failed")
    made = client.put(url, json=entry, headers=ADMIN)
    assert made.status_code == 200, made.text
    again = client.put(url, json={**entry, "name_en": "Town"}, headers=if_match("*"))
    assert again.status_code == 200 and again.headers["ETag"] != made.headers["ETag"]


def test_a_required_if_match_is_a_428(settings: Settings, engine: Engine, role_url: str) -> None:
    strict = create_app(settings.model_copy(update={"require_if_match": True}), engine)
    with TestClient(strict, raise_server_exceptions=False) as client:
        problem(
            client.patch(role_url, json={"name_en": "x"}, headers=ADMIN),
            428,
            "precondition-required",
        )
        etag = client.get(role_url, headers=ADMIN).headers["ETag"]
        assert client.patch(role_url, json={"name_en": "x"}, headers=if_match(etag)).is_success


def test_a_tracking_plan_has_one_etag_in_json_and_yaml(
    client: TestClient, session: Session, ctx: Context
) -> None:
    make_group(session, ctx)
    plan = {"name": "web", "bu": "north", "events": {"Signed Up": {"properties": {}}}}
    made = client.post("/api/v1/tracking-plans", json=plan, headers=ADMIN)
    assert made.status_code == 201, made.text
    url = f"/api/v1/tracking-plans/{made.json()['id']}"
    as_json = client.get(url, headers=ADMIN).headers["ETag"]
    as_yaml = client.get(url, headers={**ADMIN, "Accept": "application/yaml"}).headers["ETag"]
    assert as_json == as_yaml
    changed = client.put(url, json={**plan, "name": "web 2"}, headers=if_match(as_json))
    assert changed.status_code == 200, changed.text
    problem(client.put(url, json=plan, headers=if_match(as_json)), 412, "precondition-failed")


def test_on_postgresql_a_change_with_if_match_waits_for_the_other_change_of_the_object(
    client: TestClient, engine: Engine, role_url: str
) -> None:
    """The check and the write are one step: while another transaction holds the object's
    lock (as a concurrent change with If-Match does), a change waits, then reads what the
    other wrote."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers by its database lock")
    etag = client.get(role_url, headers=ADMIN).headers["ETag"]
    answers: list[Any] = []
    with engine.connect() as other:
        other.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"etag:{object_key(role_url + '/x')}"},  # any route under the object
        )
        change = threading.Thread(
            target=lambda: answers.append(
                client.patch(role_url, json={"name_en": "Reader"}, headers=if_match(etag))
            )
        )
        change.start()
        change.join(timeout=1)
        assert change.is_alive() and answers == []  # waiting on the lock, nothing read yet
        other.rollback()  # the other change ends
    change.join(timeout=30)
    assert answers and answers[0].status_code == 200, answers
