"""Errors are a contract: problem+json, one shape, the bad field named, no stack traces."""

from __future__ import annotations

import sqlite3

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError, OperationalError

from oneloop.core.errors import Conflict, NotFound, RateLimited

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}


class Thing(BaseModel):
    name: str = Field(min_length=1)
    size: int


@pytest.fixture
def probe(app: FastAPI) -> FastAPI:
    """Routes that fail on purpose, mounted for the test only."""
    router = APIRouter(prefix="/_probe")

    @router.post("/things")
    def make_thing(thing: Thing) -> Thing:
        return thing

    @router.get("/missing")
    def missing() -> None:
        raise NotFound("no segment with id 'x'", segment_id="x")

    @router.get("/conflict")
    def conflict() -> None:
        raise Conflict("lead is already claimed", lead_id="L1")

    @router.get("/slow-down")
    def slow_down() -> None:
        raise RateLimited("too many requests for this write key", retry_after=7)

    @router.get("/locked")
    def locked() -> None:
        raise OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))

    @router.get("/sql")
    def sql() -> None:
        raise IntegrityError(
            "INSERT INTO governance_user (email) VALUES (?)",
            {"email": "x@y.cn"},
            sqlite3.IntegrityError("UNIQUE constraint failed: governance_user.email"),
        )

    @router.get("/bug")
    def bug() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    app.include_router(router)
    return app


def _problem(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body.keys() >= PROBLEM_KEYS
    assert body["type"] == f"/problems/{code}" and body["status"] == status
    return body


def test_unknown_route_is_problem_404(client: TestClient) -> None:
    body = _problem(client.get("/no/such/thing"), 404, "not-found")
    assert body["instance"] == "/no/such/thing"
    assert "/no/such/thing" in body["detail"]


def test_wrong_method_is_problem_405(client: TestClient) -> None:
    body = _problem(client.post("/healthz"), 405, "method-not-allowed")
    assert "POST" in body["detail"]


def test_bad_body_is_422_naming_each_field(client: TestClient, probe: FastAPI) -> None:
    body = _problem(
        client.post("/_probe/things", json={"name": "", "size": "big"}), 422, "validation-failed"
    )
    paths = {e["path"] for e in body["errors"]}
    assert paths == {"body.name", "body.size"}
    assert "body.name" in body["detail"]


def test_malformed_json_is_422_not_500(client: TestClient, probe: FastAPI) -> None:
    response = client.post(
        "/_probe/things", content=b"{not json", headers={"content-type": "application/json"}
    )
    _problem(response, 422, "validation-failed")


def test_domain_errors_map_with_their_context(client: TestClient, probe: FastAPI) -> None:
    body = _problem(client.get("/_probe/missing"), 404, "not-found")
    assert body["segment_id"] == "x"
    assert _problem(client.get("/_probe/conflict"), 409, "conflict")["lead_id"] == "L1"


def test_rate_limit_says_when_to_retry(client: TestClient, probe: FastAPI) -> None:
    response = client.get("/_probe/slow-down")
    _problem(response, 429, "rate-limited")
    assert response.headers["retry-after"] == "7"


def test_locked_database_is_503_with_retry_after(client: TestClient, probe: FastAPI) -> None:
    response = client.get("/_probe/locked")
    _problem(response, 503, "unavailable")
    assert int(response.headers["retry-after"]) >= 1


def test_bug_is_500_without_stack_or_secrets(client: TestClient, probe: FastAPI) -> None:
    response = client.get("/_probe/bug", headers={"X-Request-ID": "req-42"})
    body = _problem(response, 500, "internal-error")
    assert body["request_id"] == "req-42"
    assert "hunter2" not in response.text and "Traceback" not in response.text
    assert "RuntimeError" not in response.text


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-1"}).headers["x-request-id"] == "abc-1"
    )
    made = client.get("/healthz", headers={"X-Request-ID": "<script>"}).headers["x-request-id"]
    assert made != "<script>" and len(made) == 26


def test_a_database_error_does_not_show_its_sql(client: TestClient, probe: FastAPI) -> None:
    response = client.get("/_probe/sql")
    assert response.status_code == 500
    assert "governance_user" not in response.text and "INSERT" not in response.text
    assert "x@y.cn" not in response.text


def test_every_answer_carries_the_security_headers(client: TestClient) -> None:
    for path in ("/", "/healthz", "/api/v1/segments", "/no/such/page"):
        headers = client.get(path).headers
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["x-frame-options"] == "DENY", path
        assert headers["referrer-policy"] == "same-origin", path
    page = client.get("/").headers
    assert "frame-ancestors 'none'" in page["content-security-policy"]
    assert "script-src 'self'" in page["content-security-policy"]
