"""The BOLA matrix: a user of unit A asks for unit B's objects through every API route.

The routes are read from the app's own OpenAPI document, not listed by hand, so a new route
is in the matrix the day it is added; a route whose path names an object this test cannot
provide fails the test until it is taught to. For each route taking an object id, A's admin
(the widest role a unit has) asking for B's object must get what they get for an object that
does not exist at all: 404, never 403, which would confirm the object is there. List, search
and count routes must not show B's rows. And nothing of B's may change on the way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session

from oneloop.collect.models import DeadLetterRow
from oneloop.collect.service import PREFIX_SHOWN
from oneloop.core.clock import FixedClock
from oneloop.core.context import Context
from oneloop.identity.models import ReviewRow
from tests.conftest import ADMIN
from tests.factories import make_group, make_source, make_user, signed_in
from tests.pipeline import make_feed

MISSING_ID = "01ZZZZZZZZZZZZZZZZZZZZZZZZ"
MISSING_CODE = "nowhere"

# Objects that are the group's by design, readable by every unit: not B's to hide.
GROUP_WIDE = {
    "/api/v1/roles/{code}": "roles are the group's matrix; a unit admin reads, never changes",
    "/api/v1/dictionary/{key}": "the data dictionary is read by everyone in the group",
    "/api/v1/dictionary/{key}/versions": "the data dictionary is read by everyone in the group",
}

SEGMENT_RULE = {"trait": "city", "op": "eq", "value": "南京"}
TRAIT = {
    "name": "orders_90d",
    "description": "近 90 天订单数 Orders in the last 90 days",
    "event": "Order Completed",
    "aggregate": "count",
    "window": {"amount": 90, "unit": "days"},
}
MODEL = {
    "code": "intent",
    "name_zh": "购买意向",
    "name_en": "Purchase intent",
    "half_life_days": 30,
    "rules": [{"id": "order", "event": "Order Completed", "points": 10}],
}

# A valid body for each route that changes an object, so that what answers is the object's
# lookup, not the body's validation. (path, method) -> JSON body, or ("csv", text).
BODIES: dict[tuple[str, str], Any] = {
    ("/api/v1/tracking-plans/{plan_id}", "put"): {"bu": "north", "name": "P2", "events": {}},
    ("/api/v1/sources/{source_id}/tracking-plan", "put"): {"plan_id": None},
    ("/api/v1/sources/{source_id}", "patch"): {"is_enabled": False},
    ("/api/v1/sources/{source_id}/keys", "post"): {"revoke_old": True},
    ("/api/v1/business-units/{code}", "patch"): {"name_en": "Taken over"},
    ("/api/v1/users/{user_id}", "patch"): {"display_name": "Taken over"},
    ("/api/v1/users/{user_id}/memberships/{bu}", "put"): {"role": "marketer"},
    ("/api/v1/profiles/{profile_id}/unmerge", "post"): {
        "merge_id": MISSING_ID,
        "reason": "testing isolation",
    },
    ("/api/v1/identity/reviews/{review_id}", "post"): {"accept": True},
    ("/api/v1/score-models/{model_id}", "put"): MODEL,
    ("/api/v1/traits/{trait_id}", "put"): TRAIT,
    ("/api/v1/profiles/{profile_id}/tags/{tag_id}", "put"): {"reason": "testing isolation"},
    ("/api/v1/tags/{tag_id}/bulk", "post"): ("csv", "type,value\nphone,13900000001\n"),
    ("/api/v1/segments/{segment_id}", "put"): {"name": "Taken over", "rule": SEGMENT_RULE},
    ("/api/v1/profiles/{profile_id}/consent", "post"): {
        "purpose": "marketing",
        "status": "granted",
    },
    ("/api/v1/privacy/requests/{request_id}/reject", "post"): {"reason": "testing isolation"},
    ("/api/v1/leads/{lead_id}/return", "post"): {"reason": "testing isolation"},
    ("/api/v1/leads/{lead_id}/status", "post"): {"status": "contacted"},
    ("/api/v1/leads/{lead_id}/assign", "post"): {},
    ("/api/v1/leads/{lead_id}/convert", "post"): {"name": "Taken over", "amount": "1"},
    ("/api/v1/opportunities/{opportunity_id}/stage", "post"): {"stage": "proposal"},
    ("/api/v1/sales/teams/{team}/members", "put"): {"email": "ann@north.example.com"},
}

# Required query parameters, likewise.
QUERIES: dict[tuple[str, str], dict[str, str]] = {
    ("/api/v1/profiles/{profile_id}/tags/{tag_id}", "delete"): {"reason": "testing isolation"},
    ("/api/v1/tags/{tag_id}/bulk", "post"): {"reason": "testing isolation"},
    ("/api/v1/profiles/{profile_id}/may-contact", "get"): {"purpose": "marketing"},
    # a team is named by its code within a unit: a group-wide caller names the unit
    ("/api/v1/sales/teams/{team}", "get"): {"bu": "south"},
    ("/api/v1/sales/teams/{team}/members", "put"): {"bu": "south"},
    ("/api/v1/sales/teams/{team}/members/{email}", "delete"): {"bu": "south"},
}

# A unit's one document of its kind, which a unit may not have yet: 404 until it exists.
SINGLETONS = {"/api/v1/sales/routing-table", "/api/v1/sales/routing-table.dmn"}


@dataclass
class Other:
    """Unit B's objects: the id to put in each path parameter, and every string of B's that
    must not show up in what A sees."""

    params: dict[str, str]
    markers: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def other(engine: Engine, session: Session, ctx: Context, clock: FixedClock, app: FastAPI) -> Other:
    make_group(session, ctx)
    make_source(session, ctx, "north")
    south, write_key = make_source(session, ctx, "south", name="南区官网 South web")
    feed = make_feed(engine, session, south, clock)
    feed(
        {
            "type": "identify",
            "userId": "b-1",
            "traits": {"phone": "13900000001", "email": "bee@south.example.com", "city": "南京"},
        },
        {"type": "track", "userId": "b-1", "event": "Order Completed", "properties": {"total": 99}},
        {"type": "identify", "userId": "b-2", "traits": {"email": "bea@south.example.com"}},
        {"type": "track", "userId": "b-3", "event": ""},  # invalid: a dead letter of B's
    )
    admin = TestClient(app, raise_server_exceptions=False, headers=ADMIN)

    def made(path: str, body: dict[str, Any], **params: str) -> dict[str, Any]:
        answer = admin.post(path, json=body, params=params)
        assert answer.status_code == 201, (path, answer.text)
        return answer.json()  # type: ignore[no-any-return]

    plan = made("/api/v1/tracking-plans", {"bu": "south", "name": "南区计划", "events": {}})
    made(
        "/api/v1/tag-categories",
        {"code": "intent", "name_zh": "意向", "name_en": "Intent", "bu": "south"},
    )
    tag = made(
        "/api/v1/tags",
        {
            "code": "vip_south",
            "category": "intent",
            "name_zh": "南区贵宾",
            "name_en": "VIP",
            "bu": "south",
        },
    )
    trait = made("/api/v1/traits", TRAIT, bu="south")
    model = made("/api/v1/score-models", MODEL, bu="south")
    segment = made(
        "/api/v1/segments",
        {"code": "nanjing", "name": "南京 Nanjing", "rule": SEGMENT_RULE, "bu": "south"},
    )
    found = [
        admin.get("/api/v1/identity/lookup", params={"type": "user_id", "value": f"south:b-{n}"})
        for n in (1, 2)
    ]
    assert all(f.status_code == 200 for f in found), [f.text for f in found]
    profiles = [f.json()["profile_id"] for f in found]
    assert (
        admin.put(
            f"/api/v1/profiles/{profiles[0]}/tags/{tag['id']}", json={"reason": "vip"}
        ).status_code
        == 201
    )
    bob = make_user(session, ctx, "bob@south.example.com", "south", "marketer")
    key = signed_in(app, "bob@south.example.com").post(
        "/api/v1/api-keys", json={"name": "south BI", "scopes": ["segments.read"]}
    )
    assert key.status_code == 201, key.text
    make_user(session, ctx, "cleo@south.example.com", "south", "compliance_officer")
    dsar = signed_in(app, "cleo@south.example.com").post(
        "/api/v1/privacy/requests", json={"kind": "access", "profile_id": profiles[0]}
    )
    assert dsar.status_code == 201, dsar.text
    # South lets north read its order traits: north may list the policy, never withdraw it.
    shared = made(
        "/api/v1/sharing-policies",
        {"owner": "south", "reader": "north", "resource": "traits", "names": ["orders_90d"]},
    )
    review = ReviewRow(
        id="01REVIEWSOUTH0000000000000",
        left_id=profiles[0],
        right_id=profiles[1],
        match_weight=8.0,
        match_probability=0.9,
        comparisons={},
        model_version="t",
        status="open",
        created_at=clock.now(),
    )
    session.add(review)
    session.commit()
    team = made(
        "/api/v1/sales/teams",
        {"code": "nanjing_team", "name_zh": "南京组", "name_en": "Nanjing", "bu": "south"},
    )
    assert (
        admin.put(
            "/api/v1/sales/teams/nanjing_team/members",
            params={"bu": "south"},
            json={"email": "bob@south.example.com"},
        ).status_code
        == 200
    )
    lead = made(
        "/api/v1/leads",
        {
            "identifier_type": "user_id",
            "identifier": "south:b-1",
            "source": "南区导入",
            "bu": "south",
        },
    )
    taken = admin.post(
        f"/api/v1/leads/{lead['id']}/assign", json={"email": "bob@south.example.com"}
    )
    assert taken.status_code == 200, taken.text
    deal = made(f"/api/v1/leads/{lead['id']}/convert", {"name": "南区大单", "amount": "1000"})
    dead = session.scalar(select(DeadLetterRow.id).where(DeadLetterRow.source_id == south.id))
    assert dead is not None
    make_user(session, ctx, "ann@north.example.com", "north", "bu_admin")
    params = {
        "source_id": south.id,
        "dead_letter_id": dead,
        "plan_id": plan["id"],
        "code": "south",
        "bu": "south",
        "user_id": bob.id,
        "key_id": key.json()["id"],
        "profile_id": profiles[0],
        "tag_id": tag["id"],
        "model_id": model["id"],
        "trait_id": trait["id"],
        "segment_id": segment["id"],
        "review_id": review.id,
        "request_id": dsar.json()["request"]["id"],
        "policy_id": shared["id"],
        "prefix": write_key[:PREFIX_SHOWN],
        "lead_id": lead["id"],
        "opportunity_id": deal["id"],
        "team": team["code"],
        "email": "bob@south.example.com",
    }
    markers = {
        **{n: v for n, v in params.items() if n not in {"code", "bu", "policy_id", "email"}},
        "second profile": profiles[1],
        "phone": "13900000001",
        "email": "bee@south.example.com",
        "user email": "bob@south.example.com",
        "source name": "南区官网",
        "plan name": "南区计划",
        "tag name": "南区贵宾",
        "lead source": "南区导入",
        "opportunity name": "南区大单",
    }
    return Other(params, markers)


def api_routes(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/api/v1/")
        for method, operation in operations.items()
    ]


def call(client: TestClient, path: str, method: str, values: dict[str, str]) -> Any:
    url = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
    body, query = BODIES.get((path, method)), QUERIES.get((path, method))
    if isinstance(body, tuple):
        csv = {"Content-Type": "text/csv"}
        return client.request(method, url, content=body[1], headers=csv, params=query)
    return client.request(method, url, json=body, params=query)


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the ones a request may touch without changing data:
    the audit log (denials are recorded), sign-in state and the consumers' bookkeeping."""
    skip = re.compile(r"governance_(audit|session|login_attempt|api_key)|core_|alembic")
    with engine.connect() as conn:
        return {
            table: sorted(
                (tuple(map(str, row)) for row in conn.execute(text(f'SELECT * FROM "{table}"'))),
            )
            for table in inspect(engine).get_table_names()
            if not skip.match(table)
        }


def test_a_unit_cannot_reach_another_units_objects(
    other: Other, app: FastAPI, engine: Engine, session: Session, tmp_path: Path
) -> None:
    ann = signed_in(app, "ann@north.example.com")
    admin = TestClient(app, raise_server_exceptions=False, headers=ADMIN)
    missing = {
        name: (MISSING_CODE if name in {"code", "bu"} else MISSING_ID) for name in other.params
    }
    before = snapshot(engine)
    covered: list[str] = []
    for path, method, _ in api_routes(app):
        names = re.findall(r"\{(\w+)\}", path)
        if not names or path in GROUP_WIDE:
            continue
        unknown = [n for n in names if n not in other.params]
        assert not unknown, (
            f"{method.upper()} {path}: teach the BOLA matrix a B object for {unknown}"
        )
        theirs = call(ann, path, method, other.params)
        nothing = call(ann, path, method, missing)
        where = f"{method.upper()} {path}"
        assert theirs.status_code == 404, (where, theirs.status_code, theirs.text[:300])
        assert nothing.status_code == 404, (where, nothing.status_code, nothing.text[:300])
        assert theirs.json()["title"] == nothing.json()["title"], where
        asked = set(other.params.values())  # a 404 may repeat what was asked for
        for marker in set(other.markers.values()) - asked:
            assert marker not in theirs.text, (where, marker)
        if method == "get":  # the object is real: the group sees it
            seen = call(admin, path, method, other.params)
            assert seen.status_code == 200, (where, "admin", seen.status_code, seen.text[:300])
        covered.append(where)
    session.expire_all()
    assert snapshot(engine) == before, "a request of unit A changed unit B's data"
    assert len(covered) >= 40
    (tmp_path / "bola-routes.txt").write_text("\n".join(covered))


def test_lists_and_searches_never_show_another_units_rows(other: Other, app: FastAPI) -> None:
    ann = signed_in(app, "ann@north.example.com")
    admin = TestClient(app, raise_server_exceptions=False, headers=ADMIN)
    seen_by_group: set[str] = set()
    lists = [
        path
        for path, method, _ in api_routes(app)
        if method == "get" and "{" not in path and not path.startswith("/api/v1/auth/")
    ]
    assert len(lists) >= 15
    for path in lists:
        mine = ann.get(path)
        allowed = (200, 404, 422) if path in SINGLETONS else (200, 422)
        assert mine.status_code in allowed, (path, mine.status_code, mine.text[:300])
        leaked = [name for name, marker in other.markers.items() if marker in mine.text]
        assert not leaked, (path, leaked)
        group = admin.get(path)
        seen_by_group |= {name for name, marker in other.markers.items() if marker in group.text}
    # The lists are not empty by accident: the group sees B's rows in them.
    assert {
        "segment_id",
        "tag_id",
        "trait_id",
        "model_id",
        "plan_id",
        "dead_letter_id",
    } <= seen_by_group
    assert {"user_id", "key_id", "review_id", "request_id"} <= seen_by_group

    for kind, value in (
        ("phone", "13900000001"),
        ("email", "bee@south.example.com"),
        ("user_id", "south:b-1"),
    ):
        assert (
            ann.get("/api/v1/identity/lookup", params={"type": kind, "value": value}).status_code
            == 404
        )
        assert ann.get("/api/v1/profiles", params={"type": kind, "value": value}).status_code in (
            404,
            422,
        )
    counted = ann.post("/api/v1/segments/preview", json={"rule": SEGMENT_RULE})
    assert counted.status_code == 200 and counted.json()["count"] == 0
    assert (
        admin.post("/api/v1/segments/preview", json={"rule": SEGMENT_RULE, "bu": "south"}).json()[
            "count"
        ]
        == 1
    )
    pinned = ann.post(
        "/api/v1/identity/pins",
        json={
            "a": other.params["profile_id"],
            "b": other.markers["second profile"],
            "reason": "testing",
        },
    )
    assert pinned.status_code == 404
    replayed = ann.post(
        "/api/v1/dead-letters/replay", params={"ids": other.params["dead_letter_id"]}
    )
    assert replayed.status_code in (200, 404) and json.loads(replayed.text).get("replayed", 0) == 0
