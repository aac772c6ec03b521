"""Sharing policies between units: who may make them, who sees them, and what they open."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from oneloop.core.context import Context
from oneloop.identity.service import find_profile
from oneloop.profiles import score_models, traits
from oneloop.profiles import service as profiles
from oneloop.profiles.schemas import TagAssignIn, TagCategoryIn, TagIn
from tests.conftest import ADMIN
from tests.factories import make_group, make_source, make_user, signed_in
from tests.pipeline import Feed

TRAIT = {"name": "orders_90d", "event": "Order Completed", "aggregate": "count"}
INTENT = {
    "code": "intent",
    "name_zh": "购买意向",
    "name_en": "Intent",
    "rules": [{"id": "order", "event": "Order Completed", "points": 10}],
}
POLICY = {"owner": "north", "reader": "south", "resource": "traits", "names": ["orders_90d"]}


def test_a_unit_shares_its_own_data_only(app: FastAPI, session: Session, ctx: Context) -> None:
    make_group(session, ctx, ("north", "south", "east"))
    make_user(session, ctx, "ada@north.example.com", "north", "bu_admin")
    make_user(session, ctx, "mia@north.example.com", "north", "marketer")
    make_user(session, ctx, "sam@south.example.com", "south", "bu_admin")
    north = signed_in(app, "ada@north.example.com")
    made = north.post("/api/v1/sharing-policies", json=POLICY)
    assert made.status_code == 201, made.text
    # Not another unit's data, not with itself, not with an unknown unit, not by a marketer.
    assert (
        north.post(
            "/api/v1/sharing-policies", json={**POLICY, "owner": "south", "reader": "east"}
        ).status_code
        == 404
    )
    assert (
        north.post("/api/v1/sharing-policies", json={**POLICY, "reader": "north"}).status_code
        == 422
    )
    unknown = north.post("/api/v1/sharing-policies", json={**POLICY, "reader": "mars"})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["path"] == "reader"
    bad = north.post("/api/v1/sharing-policies", json={**POLICY, "resource": "passwords"})
    assert bad.status_code == 422
    marketer = signed_in(app, "mia@north.example.com")
    assert marketer.post("/api/v1/sharing-policies", json=POLICY).status_code == 403

    south = signed_in(app, "sam@south.example.com")
    listed = south.get("/api/v1/sharing-policies").json()["items"]
    assert [p["id"] for p in listed] == [made.json()["id"]]
    assert south.delete(f"/api/v1/sharing-policies/{made.json()['id']}").status_code == 404
    assert north.delete(f"/api/v1/sharing-policies/{made.json()['id']}").status_code == 204
    admin = TestClient(app, headers=ADMIN)
    assert admin.get("/api/v1/sharing-policies").json() == {"items": [], "next_cursor": None}


def test_a_policy_widens_what_a_unit_sees_of_a_shared_customer(
    app: FastAPI, session: Session, ctx: Context, feed: Feed
) -> None:
    """Wang Fang bought in north and called south's hotline. South's admin sees her (she
    touched south), but north's traits, tags, scores and events only as north shares them:
    order summary traits, not raw events (the issue's example), then the orders too."""
    south_source, _ = make_source(session, ctx, "south", name="热线 Hotline")
    traits.create_trait(session, ctx, TRAIT, bu="north")
    score_models.create_model(session, ctx, INTENT, bu="north")
    profiles.create_category(
        session, ctx, TagCategoryIn(code="value", name_zh="价值", name_en="Value", bu="north")
    )
    vip = profiles.create_tag(
        session, ctx, TagIn(code="vip", category="value", name_zh="贵宾", name_en="VIP", bu="north")
    )
    session.commit()
    feed(
        {"type": "identify", "userId": "n-1", "traits": {"phone": "137 1111 2222"}},
        {"type": "track", "userId": "n-1", "event": "Order Completed", "properties": {"total": 5}},
        {"type": "page", "userId": "n-1", "name": "Pricing"},
    )
    feed(
        {"type": "identify", "userId": "s-1", "traits": {"phone": "13711112222"}}, into=south_source
    )
    person = find_profile(session, ctx, "phone", "13711112222")
    assert person is not None and person == find_profile(session, ctx, "user_id", "south:s-1")
    profiles.assign_tag(session, ctx, person, vip.id, TagAssignIn(reason="big order"))
    session.commit()
    make_user(session, ctx, "sam@south.example.com", "south", "bu_admin")
    sam = signed_in(app, "sam@south.example.com")

    def seen() -> tuple[list[tuple[str, str | None]], list[str], list[str], list[str]]:
        body = sam.get(f"/api/v1/profiles/{person}").json()
        shown = [(t["name"], t["shared_by"]) for t in body["traits"] if t["kind"] == "shared"]
        events = [e["name"] for e in sam.get(f"/api/v1/profiles/{person}/timeline").json()["items"]]
        return shown, [t["code"] for t in body["tags"]], [s["code"] for s in body["scores"]], events

    assert seen() == ([], [], [], ["Identify"])
    admin = TestClient(app, headers=ADMIN)
    for resource, names in (("traits", ["orders_90d"]), ("tags", ["vip"]), ("scores", ["*"])):
        policy = {"owner": "north", "reader": "south", "resource": resource, "names": names}
        assert admin.post("/api/v1/sharing-policies", json=policy).status_code == 201
    assert seen() == ([("orders_90d", "north")], ["vip"], ["intent"], ["Identify"])
    orders = {
        "owner": "north",
        "reader": "south",
        "resource": "events",
        "names": ["Order Completed"],
    }
    assert admin.post("/api/v1/sharing-policies", json=orders).status_code == 201
    assert sorted(seen()[3]) == ["Identify", "Order Completed"]  # not north's page views
