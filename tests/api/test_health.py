from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from oneloop.api.app import create_app
from oneloop.core.config import Settings
from oneloop.migrations import downgrade, head_revision


def test_healthz_answers_while_the_process_runs(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_readyz_when_database_is_current(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["revision"] == head_revision()


def test_readyz_refuses_a_database_behind_the_code(settings: Settings, engine: Engine) -> None:
    downgrade(engine, "0001")
    with TestClient(create_app(settings, engine)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "oneloop db upgrade" in response.json()["detail"]
    assert response.json()["revision"] == "0001"


def test_readyz_when_the_database_is_unreachable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(database_url=f"sqlite:///{tmp_path}/missing-dir/../nope/x.db")
    (tmp_path / "nope").mkdir()
    (tmp_path / "nope" / "x.db").mkdir()  # a folder where the file should be: cannot open
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["type"] == "/problems/unavailable"
