"""The list convention of /api/v1 (issue 8): keyset pages, opaque cursors, allow-listed sorts.

Each moved route is walked with a small limit, both ways, and must hand out every row once in
the asked order; bad parameters are 422s naming the parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from oneloop.core.context import Context
from oneloop.core.paging import PageRequest, read_cursor, write_cursor
from tests.conftest import ADMIN
from tests.factories import make_group, make_source, make_user, signed_in

RULE = {"trait": "city", "op": "eq", "value": "南京"}
TRAIT = {
    "description": "Orders",
    "event": "Order Completed",
    "aggregate": "count",
    "window": {"amount": 90, "unit": "days"},
}
MODEL = {
    "name_zh": "意向",
    "name_en": "Intent",
    "half_life_days": 30,
    "rules": [{"id": "order", "event": "Order Completed", "points": 10}],
}
ROWS = 3  # per unit, per kind: with limit 2 and two units, three pages and a short last one

# route -> (sort fields to walk, the field the rows are told apart by)
ROUTES: dict[str, tuple[tuple[str, ...], str]] = {
    "/api/v1/segments": (("code", "name", "created_at"), "id"),
    "/api/v1/sources": (("name", "created_at"), "id"),
    "/api/v1/users": (("email", "display_name", "created_at"), "id"),
    "/api/v1/tracking-plans": (("name", "created_at"), "id"),
    "/api/v1/tags": (("code", "created_at"), "id"),
    "/api/v1/traits": (("name", "created_at"), "id"),
    "/api/v1/score-models": (("code", "created_at"), "id"),
    "/api/v1/audit": (("seq", "at"), "seq"),
    "/api/v1/privacy/requests": (("due_at", "received_at", "status"), "id"),
    "/api/v1/leads": (("created_at", "updated_at"), "id"),
    "/api/v1/opportunities": (("created_at", "name"), "id"),
}


@pytest.fixture
def admin(app: FastAPI, session: Session, ctx: Context) -> TestClient:
    """The group admin, with ``ROWS`` of each configuration object in north and in south,
    their names in an order unlike their creation order, so that sorts differ."""
    make_group(session, ctx)
    client = TestClient(app, headers=ADMIN, raise_server_exceptions=False)

    def made(path: str, body: dict[str, Any], **params: str) -> None:
        answer = client.post(path, json=body, params=params)
        assert answer.status_code == 201, answer.text

    for bu in ("north", "south"):
        made(
            "/api/v1/tag-categories",
            {"code": "intent", "name_zh": "意向", "name_en": "Intent", "bu": bu},
        )
        for n in range(ROWS):
            name = f"{bu}_{(n * 2) % ROWS}"  # 0, 2, 1: not the creation order
            make_source(session, ctx, bu, f"Source {name}")
            make_user(session, ctx, f"{name}@example.com", bu, ("marketer", "analyst")[n % 2])
            made("/api/v1/tracking-plans", {"bu": bu, "name": f"Plan {name}", "events": {}})
            made(
                "/api/v1/tags",
                {"code": name, "category": "intent", "name_zh": name, "name_en": name, "bu": bu},
            )
            made("/api/v1/traits", {**TRAIT, "name": f"t_{name}"}, bu=bu)
            made("/api/v1/score-models", {**MODEL, "code": f"m_{name}"}, bu=bu)
            made(
                "/api/v1/segments",
                {"code": name, "name": f"Segment {name}", "rule": RULE, "bu": bu},
            )
    return client


def walk(client: TestClient, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every page of a list, following next_cursor."""
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(200):
        answer = client.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert set(page) == {"items", "next_cursor"}
        assert len(page["items"]) <= params.get("limit", 50)
        rows += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return rows
    raise AssertionError(f"{path} never reached its last page")


# Privacy requests, leads and opportunities need profiles: walked in their own domains' tests.
WALKED = [p for p in ROUTES if not p.endswith(("requests", "leads", "opportunities"))]


@pytest.mark.parametrize("path", WALKED)
def test_walking_every_page_gives_every_row_once_in_order(admin: TestClient, path: str) -> None:
    sorts, ident = ROUTES[path]
    everything = walk(admin, path, limit=200)
    assert len(everything) >= ROWS
    expected_ids = sorted(str(r[ident]) for r in everything)
    for field in sorts:
        for descending in (False, True):
            rows = walk(admin, path, limit=2, sort=f"-{field}" if descending else field)
            assert sorted(str(r[ident]) for r in rows) == expected_ids, field
            if field in rows[0]:  # some shapes do not show every sort key (tags' times)
                keys = [(r[field], r[ident]) for r in rows]
                assert keys == sorted(keys, reverse=descending), (field, descending)


def test_filters_narrow_the_list(admin: TestClient) -> None:
    segments = walk(admin, "/api/v1/segments", q="NORTH_")
    assert len(segments) == ROWS and all(s["code"].startswith("north_") for s in segments)
    assert walk(admin, "/api/v1/segments", is_live="false") == []
    users = walk(admin, "/api/v1/users", q="south_", role="analyst")
    assert {u["email"] for u in users} == {"south_2@example.com"}  # n = 1
    assert len(walk(admin, "/api/v1/users", bu="north")) == ROWS
    assert [s["name"] for s in walk(admin, "/api/v1/sources", q="north_2")] == ["Source north_2"]
    assert len(walk(admin, "/api/v1/tags", bu="south", category="intent")) == ROWS
    assert len(walk(admin, "/api/v1/traits", q="t_north")) == ROWS
    assert len(walk(admin, "/api/v1/score-models", bu="north", q="m_")) == ROWS
    assert len(walk(admin, "/api/v1/tracking-plans", q="plan south")) == ROWS
    created = walk(admin, "/api/v1/audit", action="segment.created")
    assert len(created) == 2 * ROWS and {e["action"] for e in created} == {"segment.created"}
    # a like-pattern in q is matched as text, not as a pattern
    assert walk(admin, "/api/v1/segments", q="%") == []


def test_a_unit_pages_through_its_own_rows_only(app: FastAPI, admin: TestClient) -> None:
    north = signed_in(app, "north_0@example.com")
    north_admin = make_admin(app, admin)
    rows = walk(north_admin, "/api/v1/segments", limit=2)
    assert len(rows) == ROWS and all(r["code"].startswith("north_") for r in rows)
    users = walk(north_admin, "/api/v1/users", limit=2, bu="south")
    assert users == []  # naming another unit finds nobody, rather than its people
    assert north.get("/api/v1/users").status_code == 403


def make_admin(app: FastAPI, admin: TestClient) -> TestClient:
    answer = admin.post(
        "/api/v1/users",
        json={
            "email": "boss@north.example.com",
            "display_name": "Boss",
            "password": "correct horse battery",
            "bu": "north",
            "role": "bu_admin",
        },
    )
    assert answer.status_code == 201, answer.text
    return signed_in(app, "boss@north.example.com", "correct horse battery")


def problem_names(answer: Any, name: str) -> bool:
    body = answer.json()
    return (
        answer.status_code == 422
        and body["type"] == "/problems/validation-failed"
        and any(e["loc"][-1] == name for e in body["errors"])
    )


@pytest.mark.parametrize("path", list(ROUTES))
def test_bad_list_parameters_are_named(
    app: FastAPI, session: Session, ctx: Context, path: str
) -> None:
    make_group(session, ctx)
    client = TestClient(app, headers=ADMIN, raise_server_exceptions=False)
    unknown = client.get(path, params={"sort": "password_hash"})
    assert problem_names(unknown, "sort"), unknown.text
    assert ROUTES[path][0][0] in unknown.json()["detail"]  # the allowed ones are listed
    for limit in (0, 201, "many"):
        assert problem_names(client.get(path, params={"limit": limit}), "limit")
    for cursor in ("garbage", "eyJ4Ijoi", "%%%", "A" * 2000):
        assert problem_names(client.get(path, params={"cursor": cursor}), "cursor"), cursor


def test_a_cursor_is_bound_to_its_list_and_its_sort(admin: TestClient) -> None:
    first = admin.get("/api/v1/segments", params={"limit": 2}).json()
    assert first["next_cursor"]
    other = admin.get("/api/v1/sources", params={"cursor": first["next_cursor"]})
    assert problem_names(other, "cursor") and "another list" in other.text
    resorted = admin.get(
        "/api/v1/segments", params={"cursor": first["next_cursor"], "sort": "name"}
    )
    assert problem_names(resorted, "cursor")
    given = first["next_cursor"]
    tampered = given[:-3] + ("AAA" if given[-3:] != "AAA" else "BBB")
    assert problem_names(admin.get("/api/v1/segments", params={"cursor": tampered}), "cursor")
    # a well-formed cursor carrying a value of the wrong type for the column
    forged = write_cursor(PageRequest("segments", "created_at"), 12, "x")
    answer = admin.get("/api/v1/segments", params={"cursor": forged, "sort": "created_at"})
    assert problem_names(answer, "cursor")


def test_the_audit_log_still_reads_an_integer_cursor(admin: TestClient) -> None:
    newest = admin.get("/api/v1/audit", params={"limit": 3}).json()["items"]
    older = admin.get("/api/v1/audit", params={"limit": 3, "cursor": str(newest[-1]["seq"])})
    assert older.status_code == 200, older.text
    assert [e["seq"] for e in older.json()["items"]] == [newest[-1]["seq"] - n for n in (1, 2, 3)]
    by_time = admin.get("/api/v1/audit", params={"cursor": "5", "sort": "at"})
    assert problem_names(by_time, "cursor")


def test_cursors_round_trip_and_refuse_junk() -> None:
    request = PageRequest("x", "name", descending=True, cursor=None)
    made = write_cursor(request, "名字", "01ID")
    assert read_cursor(PageRequest("x", "name", True, cursor=made)) == ("名字", "01ID")
    assert read_cursor(request) is None
    bad: list[Callable[[], object]] = [
        lambda: read_cursor(PageRequest("y", "name", True, cursor=made)),
        lambda: read_cursor(PageRequest("x", "name", False, cursor=made)),
        lambda: read_cursor(PageRequest("x", "name", True, cursor=made + "A")),
    ]
    for call in bad:
        with pytest.raises(Exception, match="cursor"):
            call()
