"""Sharing policies between units: who may make them, who sees them, and what they open."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from oneloop.core.context import Context
from tests.conftest import ADMIN
from tests.factories import make_group, make_user, signed_in

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
    assert [p["id"] for p in south.get("/api/v1/sharing-policies").json()] == [made.json()["id"]]
    assert south.delete(f"/api/v1/sharing-policies/{made.json()['id']}").status_code == 404
    assert north.delete(f"/api/v1/sharing-policies/{made.json()['id']}").status_code == 204
    admin = TestClient(app, headers=ADMIN)
    assert admin.get("/api/v1/sharing-policies").json() == []
