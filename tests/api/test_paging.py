"""The list convention of /api/v1 (issue 8): keyset pages, opaque cursors, allow-listed sorts.

Each moved route is walked with a small limit, both ways, and must hand out every row once in
the asked order; bad parameters are 422s naming the parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from oneloop.collect.models import DeadLetterRow, PlanViolationRow
from oneloop.core.clock import FixedClock
from oneloop.core.context import Context
from oneloop.core.ids import new_id
from oneloop.core.paging import PageRequest, read_cursor, write_cursor
from oneloop.governance import consent
from oneloop.governance.consent_schemas import ConsentIn
from oneloop.governance.models import ApiKeyRow
from oneloop.identity.models import EdgeRow, RejectionRow, ReviewRow
from oneloop.profiles.models import ProfileRow
from oneloop.segments.models import ChangeRow, MemberRow
from tests.conftest import ADMIN
from tests.factories import make_group, make_source, make_user, signed_in
from tests.pipeline import make_feed

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


# --- the lists moved onto the convention in issue 8, part 2 -----------------------------------

MANY = 5  # rows of each list, in ties where the fixture can make them: limit 2 crosses them

# route (with {placeholders}) -> (sort fields, the fields that tell rows apart, in the list's
# tie-break order, and the filters the walk passes)
MOVED: dict[str, tuple[tuple[str, ...], tuple[str, ...], dict[str, str]]] = {
    "/api/v1/business-units": (("code", "name_en", "created_at"), ("id",), {}),
    "/api/v1/roles": (("code", "name_en"), ("code",), {}),
    "/api/v1/api-keys": (("created_at", "expires_at", "name"), ("id",), {}),
    "/api/v1/sharing-policies": (("created_at", "resource"), ("id",), {}),
    "/api/v1/dictionary": (("key", "name_en", "updated_at"), ("key",), {}),
    "/api/v1/tag-categories": (("code", "created_at"), ("id",), {}),
    "/api/v1/identity/conflicts": (("updated_at", "first_at"), ("id",), {}),
    "/api/v1/identity/rejections": (
        ("count", "last_seen_at"),
        ("source_id", "type", "reason"),
        {},
    ),
    "/api/v1/identity/reviews": (("match_weight", "created_at"), ("id",), {}),
    "/api/v1/dead-letters": (("received_at", "reason"), ("id",), {}),
    "/api/v1/sources/{source_id}/violations": (
        ("count", "first_seen_at", "last_seen_at"),
        ("event", "path", "kind"),
        {},
    ),
    "/api/v1/sales/teams": (("code", "name_en", "created_at"), ("id",), {"bu": "north"}),
    "/api/v1/segments/{segment_id}/history": (("seq", "at"), ("seq",), {}),
    "/api/v1/segments/{segment_id}/members": (("profile_id",), ("profile_id",), {}),
    "/api/v1/profiles/{profile_id}/timeline": (("at",), ("seq",), {}),
    "/api/v1/profiles/{profile_id}/consent/history": (
        ("given_at", "recorded_at"),
        ("seq",),
        {},
    ),
}


@pytest.fixture
def moved(
    app: FastAPI, engine: Engine, session: Session, ctx: Context, clock: FixedClock
) -> tuple[TestClient, dict[str, str]]:
    """The group admin, with ``MANY`` rows (at least) in each list of ``MOVED``, most of them
    made at one instant (the clock is fixed), so that pages end inside runs of equal keys;
    and the ids the nested lists' paths need."""
    make_group(session, ctx, ("north", "south", "east", "west"))
    client = TestClient(app, headers=ADMIN, raise_server_exceptions=False)
    source, _ = make_source(session, ctx, "north")
    feed = make_feed(engine, session, source, clock)
    feed(
        {"type": "identify", "userId": "p1", "traits": {"phone": "13800138000"}},
        *({"type": "track", "userId": "p1", "event": f"Step {n}"} for n in range(MANY)),
    )
    profile = session.scalars(select(ProfileRow.id)).one()

    def made(path: str, body: dict[str, Any], **params: str) -> dict[str, Any]:
        answer = client.post(path, json=body, params=params)
        assert answer.status_code == 201, (path, answer.text)
        return answer.json()  # type: ignore[no-any-return]

    owner = make_user(session, ctx, "owner@example.com", "north", "bu_admin")
    segment = made("/api/v1/segments", {"code": "all", "name": "All", "rule": RULE, "bu": "north"})
    made(
        "/api/v1/roles",
        {"code": "viewer", "name_zh": "看", "name_en": "Viewer", "permissions": ["segments.read"]},
    )
    for n in range(MANY):
        name = f"n{(n * 3) % MANY}"  # not the creation order
        made(
            "/api/v1/tag-categories",
            {"code": name, "name_zh": name, "name_en": name, "bu": "north"},
        )
        made(
            "/api/v1/sharing-policies",
            {
                "owner": "north",
                "reader": "south",
                "resource": ("traits", "tags")[n % 2],
                "names": ["*"],
            },
        )
        made("/api/v1/sales/teams", {"code": name, "name_zh": name, "name_en": name, "bu": "north"})
    for n in range(MANY):  # then straight into the tables, in the session's one transaction
        name = f"n{(n * 3) % MANY}"
        consent.record_consent(
            session,
            ctx,
            profile,
            ConsentIn(purpose="marketing", status=("granted", "withdrawn")[n % 2]),
        )
        session.add_all(
            [
                ApiKeyRow(
                    id=new_id(),
                    name=name,
                    user_id=owner.id,
                    bu_id=source.bu_id,
                    scopes=["segments.read"],
                    secret_hash="0" * 64,
                    created_at=clock.now(),
                    expires_at=clock.now() + timedelta(days=n % 2),
                ),
                EdgeRow(
                    id=new_id(),
                    a_id=new_id(),
                    b_id=new_id(),
                    status="conflict",
                    first_at=clock.now(),
                    first_bu_id=source.bu_id,
                    first_source_id=source.id,
                    first_message_id=f"m{n}",
                    first_seq=n,
                    seen_count=1,
                    updated_at=clock.now() + timedelta(seconds=n % 2),
                ),
                RejectionRow(
                    source_id=source.id,
                    type=("phone", "email")[n % 2],
                    reason=name,
                    bu_id=source.bu_id,
                    count=n % 2,
                    example="x",
                    last_seen_at=clock.now(),
                ),
                ReviewRow(
                    id=new_id(),
                    left_id=profile,
                    right_id=new_id(),
                    match_weight=(8.0, 7.25)[n % 2],
                    match_probability=0.9,
                    comparisons={},
                    model_version="t",
                    status="open",
                    created_at=clock.now(),
                ),
                DeadLetterRow(
                    id=new_id(),
                    bu_id=source.bu_id,
                    source_id=source.id,
                    origin="api",
                    reason=("invalid_event", "plan_violation")[n % 2],
                    detail="",
                    errors=[],
                    ref="t",
                    payload="{}",
                    received_at=clock.now(),
                    status="waiting",
                ),
                PlanViolationRow(
                    source_id=source.id,
                    event=f"Step {n % 2}",
                    path=f"properties.{name}",
                    kind="type",
                    bu_id=source.bu_id,
                    count=n % 2,
                    first_seen_at=clock.now(),
                    last_seen_at=clock.now(),
                    example_message_id="m",
                ),
                MemberRow(segment_id=segment["id"], profile_id=new_id(), entered_at=clock.now()),
                ChangeRow(
                    segment_id=segment["id"],
                    profile_id=profile,
                    kind=("enter", "exit")[n % 2],
                    cause="event",
                    at=clock.now(),
                ),
            ]
        )
    session.commit()
    return client, {"source_id": source.id, "segment_id": segment["id"], "profile_id": profile}


def _key(value: Any) -> Any:  # Any: a JSON value of a list's row
    """A row's value as it compares: times as times, whatever their precision on the wire."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


@pytest.mark.parametrize("route", list(MOVED))
def test_every_moved_list_walks_every_row_once_in_order(
    moved: tuple[TestClient, dict[str, str]], route: str
) -> None:
    client, ids = moved
    path = route.format(**ids)
    sorts, ident, filters = MOVED[route]
    everything = walk(client, path, limit=200, **filters)
    keys = [tuple(r[f] for f in ident) for r in everything]
    assert len(keys) >= MANY and len(set(keys)) == len(keys)
    for field in sorts:
        for descending in (False, True):
            rows = walk(client, path, limit=2, sort=f"-{field}" if descending else field, **filters)
            walked = [tuple(r[f] for f in ident) for r in rows]
            assert sorted(walked) == sorted(keys), (field, descending)  # each row once
            if field in rows[0]:  # a shape may not show a sort key (tag categories' times)
                order = [(_key(r[field]), *walked[i]) for i, r in enumerate(rows)]
                assert order == sorted(order, reverse=descending), (field, descending)


@pytest.mark.parametrize("route", list(MOVED))
def test_bad_parameters_of_every_moved_list_are_named(
    moved: tuple[TestClient, dict[str, str]], route: str
) -> None:
    client, ids = moved
    path, filters = route.format(**ids), MOVED[route][2]
    unknown = client.get(path, params={**filters, "sort": "secret_hash"})
    assert problem_names(unknown, "sort"), unknown.text
    assert MOVED[route][0][0] in unknown.json()["detail"]
    for limit in (0, 201, "many"):
        assert problem_names(client.get(path, params={**filters, "limit": limit}), "limit")
    for cursor in ("garbage", "eyJ4Ijoi", "%%%", "A" * 2000):
        answer = client.get(path, params={**filters, "cursor": cursor})
        assert problem_names(answer, "cursor"), (cursor, answer.text)
    first = client.get(path, params={**filters, "limit": 1}).json()
    assert first["next_cursor"]
    elsewhere = client.get("/api/v1/segments", params={"cursor": first["next_cursor"]})
    assert problem_names(elsewhere, "cursor") and "another list" in elsewhere.text


def test_moved_lists_keep_their_filters(moved: tuple[TestClient, dict[str, str]]) -> None:
    client, ids = moved
    assert walk(client, "/api/v1/sharing-policies", resource="scores") == []
    assert len(walk(client, "/api/v1/sharing-policies", resource="tags")) == 2
    assert [r["code"] for r in walk(client, "/api/v1/roles", builtin="false")] == ["viewer"]
    assert len(walk(client, "/api/v1/tag-categories", bu="south")) == 0
    assert walk(client, "/api/v1/identity/rejections", source_id="nope") == []
    assert walk(client, "/api/v1/identity/reviews", status="accepted") == []
    assert walk(client, "/api/v1/dead-letters", status="replayed") == []
    assert len(walk(client, "/api/v1/dead-letters", reason="plan_violation")) == 2
    bad_status = client.get("/api/v1/dead-letters", params={"status": "lost"})
    assert problem_names(bad_status, "status")
    assert walk(client, "/api/v1/sales/teams", bu="south") == []
    history = f"/api/v1/segments/{ids['segment_id']}/history"
    changes = walk(client, history, limit=2)
    later = walk(client, history, limit=2, after=str(changes[1]["seq"]))  # the old way still
    assert later == changes[2:]
    assert walk(client, history, profile_id="nobody") == []
    timeline = f"/api/v1/profiles/{ids['profile_id']}/timeline"
    assert [e["name"] for e in walk(client, timeline, event="Step 1")] == ["Step 1"]
    consent_history = f"/api/v1/profiles/{ids['profile_id']}/consent/history"
    assert len(walk(client, consent_history, purpose="marketing", channel="any")) == MANY
    assert len(walk(client, "/api/v1/dictionary", kind="metric", limit=3)) >= 1


def test_a_unit_pages_through_its_own_rows_of_the_moved_lists(
    app: FastAPI, session: Session, ctx: Context, moved: tuple[TestClient, dict[str, str]]
) -> None:
    make_user(session, ctx, "sam@south.example.com", "south", "bu_admin")
    south = signed_in(app, "sam@south.example.com")
    assert [u["code"] for u in walk(south, "/api/v1/business-units", limit=1)] == ["south"]
    for path in (
        "/api/v1/identity/conflicts",
        "/api/v1/identity/rejections",
        "/api/v1/dead-letters",
        "/api/v1/api-keys",
    ):
        assert walk(south, path, limit=1) == [], path
    assert len(walk(south, "/api/v1/sharing-policies", limit=2)) == MANY  # south receives them


def test_a_forged_cursor_of_a_list_held_in_memory_is_refused(admin: TestClient) -> None:
    forged = write_cursor(PageRequest("roles", "code"), 12, 13)
    assert problem_names(admin.get("/api/v1/roles", params={"cursor": forged}), "cursor")
    made = admin.get("/api/v1/roles", params={"limit": 1}).json()["next_cursor"]
    again = admin.get("/api/v1/roles", params={"cursor": made, "sort": "-code"})
    assert problem_names(again, "cursor")


def test_a_page_of_a_generic_list_has_a_plain_name_in_the_openapi_document(app: FastAPI) -> None:
    document = app.openapi()
    names = set(document["components"]["schemas"])
    assert {"SegmentPage", "TeamPage", "RejectionPage", "TimelineEntryPage"} <= names
    assert not [n for n in names if n.startswith("Page_")]
    answer = document["paths"]["/api/v1/sales/teams"]["get"]["responses"]["200"]
    schema = answer["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/TeamPage"}
