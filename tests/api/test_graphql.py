"""GraphQL at /graphql (issue 8, part 2): REST's authentication, checks and masking through
the same service functions; data loaders that keep a page of members to a bounded number of
statements; limits that refuse a costly document before it runs; errors with codes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from oneloop.core.context import Context
from oneloop.governance.models import AuditRow
from oneloop.identity import service as identity
from oneloop.profiles import score_models
from oneloop.profiles import service as profiles
from oneloop.profiles.schemas import TagAssignIn, TagCategoryIn, TagIn
from oneloop.segments import service as segments
from oneloop.segments.schemas import SegmentIn
from tests.conftest import ADMIN
from tests.factories import make_user, signed_in
from tests.pipeline import Feed

NAME = "张伟"
PHONE = "13800138000"
EMAIL = "zhang.wei@galaxy-mail.cn"
MASKED_PHONE = "138****8000"
INTENT = {
    "code": "intent",
    "name_zh": "购买意向",
    "name_en": "Intent",
    "rules": [{"id": "order", "event": "Order Completed", "points": 10}],
}

PROFILE_360 = """
query ($type: String!, $value: String!) {
  profileByIdentifier(type: $type, value: $value) {
    id events businessUnits
    identifiers { type value }
    goldenRecord { fields { name value sourceName observedAt history { value count } } }
    identityHistory { kind rule }
    tags { code category reason }
    scores { code value }
    scoreHistory(first: 5) { modelCode points event }
    segments { code name }
    consent { purpose channel allowed isDefault }
    timeline(first: 2) {
      edges { cursor node { name properties } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""

MEMBERS = """
query ($id: ID!, $first: Int!) {
  segment(id: $id) {
    size
    members(first: $first) {
      edges { node {
        id events businessUnits identifiers { type value }
        tags { code } scores { code value } segments { code }
      } }
      pageInfo { hasNextPage }
    }
  }
}
"""


@dataclass
class Person:
    profile_id: str
    segment_id: str


def gql(
    client: TestClient,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    answer = client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """Every SQL statement the engine runs meanwhile."""
    seen: list[str] = []

    def count(_conn: object, _cursor: object, sql: str, *_: object) -> None:
        seen.append(sql)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def pii_reads(session: Session) -> list[AuditRow]:
    session.expire_all()
    query = select(AuditRow).where(AuditRow.action == "pii.read").order_by(AuditRow.seq)
    return list(session.scalars(query))


@pytest.fixture
def person(feed: Feed, session: Session, ctx: Context) -> Person:
    """张伟 in north with his name, phone and e-mail, an order (10 points), a page view, a
    manual tag, and a segment he is in."""
    score_models.create_model(session, ctx, INTENT, bu="north")
    profiles.create_category(
        session, ctx, TagCategoryIn(code="value", name_zh="价值", name_en="Value", bu="north")
    )
    profiles.create_tag(
        session, ctx, TagIn(code="vip", category="value", name_zh="贵宾", name_en="VIP", bu="north")
    )
    session.commit()
    feed(
        {
            "type": "identify",
            "userId": "u1",
            "traits": {"name": NAME, "phone": PHONE, "email": EMAIL, "city": "上海"},
        },
        {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"total": 5}},
        {"type": "page", "userId": "u1", "name": "Pricing", "properties": {"path": "/pricing"}},
    )
    found = identity.find_profile(session, ctx, "user_id", "north:u1")
    assert found is not None
    vip = next(t for t in profiles.list_tags(session, ctx) if t.code == "vip")
    profiles.assign_tag(session, ctx, found, vip.id, TagAssignIn(reason="met at the summit"))
    rule = {"trait": "city", "op": "eq", "value": "上海"}
    made = segments.create_segment(
        session, ctx, SegmentIn(code="sh", name="上海", rule=rule, bu="north")
    )
    session.commit()
    return Person(found, made.id)


# --- authentication ---------------------------------------------------------------------------


def test_a_request_without_credentials_is_a_401_before_anything_runs(
    client: TestClient, engine: Engine
) -> None:
    with statements(engine) as seen:
        answer = client.post("/graphql", json={"query": "{ segments { edges { cursor } } }"})
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "/problems/unauthenticated"
    assert seen == []
    wrong = client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401


def test_get_is_refused_even_signed_in_and_reads_nothing(
    app: FastAPI, session: Session, ctx: Context, person: Person
) -> None:
    """A GET with the session cookie could come from another site's page: refused, so no
    audited read happens on a request the user did not make."""
    make_user(session, ctx, "ada@north.example.com", "north", "bu_admin")
    browser = signed_in(app, "ada@north.example.com")
    query = f'{{ profile(id: "{person.profile_id}") {{ identifiers {{ value }} }} }}'
    answer = browser.get("/graphql", params={"query": query})
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    assert answer.json()["type"] == "/problems/method-not-allowed"
    assert PHONE not in answer.text
    assert browser.get("/graphql", headers={"Accept": "text/html"}).status_code == 405  # no IDE
    assert pii_reads(session) == []


def test_a_signed_in_post_needs_the_csrf_token(
    app: FastAPI, session: Session, ctx: Context, person: Person
) -> None:
    make_user(session, ctx, "ada@north.example.com", "north", "bu_admin")
    browser = signed_in(app, "ada@north.example.com")
    query = {"query": f'{{ profile(id: "{person.profile_id}") {{ id }} }}'}
    token = browser.headers.pop("X-CSRF-Token")
    refused = browser.post("/graphql", json=query)
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    browser.headers["X-CSRF-Token"] = token
    assert browser.post("/graphql", json=query).json() == {
        "data": {"profile": {"id": person.profile_id}}
    }


# --- the profile ----------------------------------------------------------------------------


def test_profile_by_identifier_is_normalised_as_rest_and_shows_the_360_view(
    app: FastAPI, session: Session, ctx: Context, person: Person
) -> None:
    make_user(session, ctx, "ada@north.example.com", "north", "bu_admin")
    ada = signed_in(app, "ada@north.example.com")
    for written in ("138 0013 8000", "+86 138-0013-8000", PHONE):
        rest = ada.get("/api/v1/profiles", params={"type": "phone", "value": written})
        body = gql(ada, PROFILE_360, {"type": "phone", "value": written})
        assert "errors" not in body, body
        assert body["data"]["profileByIdentifier"]["id"] == rest.json()["id"] == person.profile_id
    found = body["data"]["profileByIdentifier"]
    assert {"type": "phone", "value": f"+86{PHONE}"} in found["identifiers"]
    golden = {f["name"]: f for f in found["goldenRecord"]["fields"]}
    assert golden["name"]["value"] == NAME and golden["name"]["history"] == [
        {"value": NAME, "count": 1}
    ]
    assert golden["city"]["sourceName"] == "官网 Web"
    assert found["tags"] == [{"code": "vip", "category": "value", "reason": "met at the summit"}]
    assert found["scores"] == [{"code": "intent", "value": 10.0}]
    assert found["scoreHistory"] == [
        {"modelCode": "intent", "points": 10.0, "event": "Order Completed"}
    ]
    assert found["segments"] == [{"code": "sh", "name": "上海"}]
    marketing_email = next(
        c for c in found["consent"] if (c["purpose"], c["channel"]) == ("marketing", "email")
    )
    assert marketing_email == {
        "purpose": "marketing",
        "channel": "email",
        "allowed": False,
        "isDefault": True,
    }
    # The same answer as REST's 360 view, field by field.
    rest = ada.get(f"/api/v1/profiles/{person.profile_id}").json()
    assert found["events"] == rest["events"] and found["businessUnits"] == rest["business_units"]
    assert [i["value"] for i in found["identifiers"]] == [i["value"] for i in rest["identifiers"]]
    assert [t["code"] for t in found["tags"]] == [t["code"] for t in rest["tags"]]


def test_the_timeline_is_a_cursor_paged_connection(client: TestClient, person: Person) -> None:
    query = """query ($id: ID!, $after: String) { profile(id: $id) {
        timeline(first: 2, after: $after) {
          edges { cursor node { name } } pageInfo { hasNextPage endCursor } } } }"""
    names: list[str] = []
    after = None
    for _ in range(5):
        body = gql(client, query, {"id": person.profile_id, "after": after}, ADMIN)
        page = body["data"]["profile"]["timeline"]
        names += [e["node"]["name"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        assert page["edges"][-1]["cursor"] == page["pageInfo"]["endCursor"]
        after = page["pageInfo"]["endCursor"]
    rest = client.get(f"/api/v1/profiles/{person.profile_id}/timeline", headers=ADMIN).json()
    assert names == [e["name"] for e in rest["items"]] and len(names) == 3


# --- authorisation and masking -----------------------------------------------------------------


def test_a_unit_sees_nothing_of_another_units_profiles_and_segments(
    app: FastAPI, session: Session, ctx: Context, person: Person
) -> None:
    make_user(session, ctx, "sam@south.example.com", "south", "bu_admin")
    south = signed_in(app, "sam@south.example.com")
    asked = gql(
        south,
        """query ($id: ID!, $sid: ID!) {
          byId: profile(id: $id) { id }
          byPhone: profileByIdentifier(type: "phone", value: "13800138000") { id }
          segment(id: $sid) { id members { edges { node { id } } } }
          segments { edges { node { id } } }
        }""",
        {"id": person.profile_id, "sid": person.segment_id},
    )
    assert asked["data"] == {
        "byId": None,
        "byPhone": None,
        "segment": None,
        "segments": {"edges": []},
    }
    assert codes(asked) == ["NOT_FOUND"] * 3
    assert person.profile_id not in str(asked["data"]) and "张" not in str(asked)


def test_a_marketer_sees_masked_values_and_nothing_is_audited(
    app: FastAPI, session: Session, ctx: Context, person: Person
) -> None:
    make_user(session, ctx, "mia@north.example.com", "north", "marketer")
    mia = signed_in(app, "mia@north.example.com")
    body = gql(mia, PROFILE_360, {"type": "phone", "value": PHONE})
    assert "errors" not in body, body
    found = body["data"]["profileByIdentifier"]
    assert {"type": "phone", "value": MASKED_PHONE} in found["identifiers"]
    golden = {f["name"]: f for f in found["goldenRecord"]["fields"]}
    assert golden["name"]["value"] == "张*" and golden["phone"]["value"] == MASKED_PHONE
    assert golden["name"]["history"][0]["value"] == "张*"
    members = gql(mia, MEMBERS, {"id": person.segment_id, "first": 10})
    node = members["data"]["segment"]["members"]["edges"][0]["node"]
    assert {"type": "phone", "value": MASKED_PHONE} in node["identifiers"]
    for text in (str(body), str(members)):
        assert PHONE not in text and NAME not in text and EMAIL not in text
    assert pii_reads(session) == []


def test_pii_read_shows_clear_values_and_audits_once_per_profile_or_segment(
    app: FastAPI, session: Session, ctx: Context, person: Person
) -> None:
    make_user(session, ctx, "cleo@north.example.com", "north", "sales_manager")
    cleo = signed_in(app, "cleo@north.example.com")
    body = gql(cleo, PROFILE_360, {"type": "phone", "value": PHONE})
    found = body["data"]["profileByIdentifier"]
    assert {"type": "phone", "value": f"+86{PHONE}"} in found["identifiers"]
    assert NAME in str(found["goldenRecord"])
    reads = pii_reads(session)
    assert [(r.object_type, r.object_id, r.actor) for r in reads] == [
        ("profile", person.profile_id, reads[0].actor)
    ]
    assert reads[0].actor != "system"
    assert {"name", "phone", "email"} <= set(reads[0].detail["fields"])
    assert PHONE not in str(reads[0].detail) and NAME not in str(reads[0].detail)

    gql(cleo, MEMBERS, {"id": person.segment_id, "first": 10})
    last = pii_reads(session)[-1]
    assert (last.object_type, last.object_id, last.detail["rows"]) == (
        "segment",
        person.segment_id,
        1,
    )


def test_a_field_the_role_may_not_read_is_null_with_forbidden_and_the_rest_answers(
    app: FastAPI, session: Session, ctx: Context, person: Person
) -> None:
    make_user(session, ctx, "cora@north.example.com", "north", "compliance_officer")
    cora = signed_in(app, "cora@north.example.com")
    body = gql(
        cora,
        f'{{ profile(id: "{person.profile_id}") {{ id consent {{ purpose }} segments {{ code }} }}'
        " segments { edges { cursor } } }",
    )
    assert body["data"]["profile"]["id"] == person.profile_id
    assert body["data"]["profile"]["segments"] == []  # the 360 view's rule: none, not an error
    assert body["data"]["segments"] is None
    assert codes(body) == ["FORBIDDEN"]
    assert body["errors"][0]["path"] == ["segments"]
    assert body["errors"][0]["extensions"]["permission"] == "segments.read"


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "value", "argument", "says"),
    [
        ("passport", "E1234", "type", "is not one of"),
        ("phone", "12", "value", "phone"),
        ("phone", "1" * 301, "value", "at most 300"),
    ],
)
def test_a_bad_identifier_names_the_argument_and_why(
    client: TestClient, person: Person, type_: str, value: str, argument: str, says: str
) -> None:
    body = gql(
        client,
        "query ($t: String!, $v: String!) { profileByIdentifier(type: $t, value: $v) { id } }",
        {"t": type_, "v": value},
        ADMIN,
    )
    assert body["data"] == {"profileByIdentifier": None}
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["errors"][0]["argument"] == argument
    assert says in error["extensions"]["errors"][0]["message"]
    assert argument in error["message"]


def test_an_unknown_profile_is_not_found(client: TestClient, person: Person) -> None:
    body = gql(client, '{ profile(id: "01NOBODY") { id } }', headers=ADMIN)
    assert body["data"] == {"profile": None}
    assert codes(body) == ["NOT_FOUND"]
    assert body["errors"][0]["extensions"]["profile_id"] == "01NOBODY"


@pytest.mark.parametrize(
    ("query", "argument"),
    [
        ("{ segments(first: 101) { edges { cursor } } }", "first"),
        ("{ segments(first: 0) { edges { cursor } } }", "first"),
        ('{ segments(after: "not-a-cursor") { edges { cursor } } }', "after"),
    ],
)
def test_page_arguments_are_bounded(
    client: TestClient, person: Person, query: str, argument: str
) -> None:
    body = gql(client, query, headers=ADMIN)
    assert codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["errors"][0]["argument"] == argument


def test_a_bug_answers_with_the_request_id_and_no_stack(
    client: TestClient, person: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(segments, "list_segments", broken)
    answer = client.post(
        "/graphql",
        json={"query": "{ segments { edges { cursor } } }"},
        headers={**ADMIN, "X-Request-ID": "req-42"},
    )
    body = answer.json()
    assert codes(body) == ["INTERNAL_SERVER_ERROR"]
    assert body["errors"][0]["extensions"]["request_id"] == "req-42"
    assert "secret" not in answer.text and "Traceback" not in answer.text


# --- limits ---------------------------------------------------------------------------------


def _deep(levels: int) -> str:
    inner = "id"
    for _ in range(levels):
        inner = f"members {{ edges {{ node {{ segments {{ code }} {inner} }} }} }}"
    return f'{{ segment(id: "x") {{ {inner} }} }}'


@pytest.mark.parametrize(
    ("query", "says"),
    [
        (_deep(4), "exceeds maximum operation depth"),
        (
            "{ "
            + " ".join(f"a{i}: segments {{ pageInfo {{ hasNextPage }} }}" for i in range(16))
            + " }",
            "aliases",
        ),
        ("{ segments { edges { " + "cursor " * 2_000 + "} } }", "tokens"),
    ],
    ids=["too-deep", "too-many-aliases", "too-big"],
)
def test_a_costly_document_is_refused_before_any_sql(
    client: TestClient, engine: Engine, query: str, says: str
) -> None:
    with statements(engine) as seen:
        body = gql(client, query, headers=ADMIN)
    assert body.get("data") is None
    assert set(codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}
    assert says in body["errors"][0]["message"]
    assert seen == []


def test_the_deepest_useful_query_is_allowed(client: TestClient, person: Person) -> None:
    query = """{ segments { edges { node { members { edges { node {
        goldenRecord { fields { history { value } } } } } } } } } }"""
    body = gql(client, query, headers=ADMIN)
    assert "errors" not in body, body


# --- data loaders ---------------------------------------------------------------------------


def test_a_page_of_members_costs_the_same_statements_for_5_or_25_members(
    app: FastAPI, engine: Engine, session: Session, ctx: Context, feed: Feed
) -> None:
    make_user(session, ctx, "ada@north.example.com", "north", "bu_admin")
    ada = signed_in(app, "ada@north.example.com")
    score_models.create_model(session, ctx, INTENT, bu="north")
    profiles.create_category(
        session, ctx, TagCategoryIn(code="value", name_zh="价值", name_en="Value", bu="north")
    )
    vip = profiles.create_tag(
        session, ctx, TagIn(code="vip", category="value", name_zh="贵宾", name_en="VIP", bu="north")
    )
    session.commit()
    calls: list[dict[str, object]] = []
    for i in range(30):
        city = "杭州" if i < 5 else "上海"
        calls.append(
            {
                "type": "identify",
                "userId": f"u{i}",
                "traits": {"phone": f"1390000{i:04d}", "city": city},
            }
        )
        calls.append({"type": "track", "userId": f"u{i}", "event": "Order Completed"})
    feed(*calls)
    for i in range(0, 30, 3):
        found = identity.find_profile(session, ctx, "user_id", f"north:u{i}")
        assert found is not None
        profiles.assign_tag(session, ctx, found, vip.id, TagAssignIn(reason="batch"))
    small = segments.create_segment(
        session,
        ctx,
        SegmentIn(
            code="hz", name="杭州", rule={"trait": "city", "op": "eq", "value": "杭州"}, bu="north"
        ),
    )
    large = segments.create_segment(
        session,
        ctx,
        SegmentIn(
            code="sh", name="上海", rule={"trait": "city", "op": "eq", "value": "上海"}, bu="north"
        ),
    )
    session.commit()
    counted = {}
    for made in (small, large):
        with statements(engine) as seen:
            body = gql(ada, MEMBERS, {"id": made.id, "first": 100})
        assert "errors" not in body, body
        edges = body["data"]["segment"]["members"]["edges"]
        assert all(e["node"]["scores"] == [{"code": "intent", "value": 10.0}] for e in edges)
        assert all(e["node"]["identifiers"] for e in edges)
        counted[len(edges)] = len(seen)
    assert set(counted) == {5, 25}
    assert counted[5] == counted[25], counted
