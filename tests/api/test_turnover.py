"""A keep-alive connection is closed after ``ONELOOP_MAX_REQUESTS_PER_CONNECTION`` answers, so
that with several server processes a connection moves to the one with time to spare."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from oneloop.api.app import create_app
from oneloop.core.config import Settings


def closes(settings: Settings, engine: Engine, limit: int, answers: int) -> list[bool]:
    app = create_app(settings.model_copy(update={"max_requests_per_connection": limit}), engine)
    with TestClient(app) as client:  # one client address: one connection to the app
        said = [client.get("/healthz").headers.get("connection") for _ in range(answers)]
    return [value == "close" for value in said]


def test_every_nth_answer_on_a_connection_closes_it(settings: Settings, engine: Engine) -> None:
    assert closes(settings, engine, 3, 7) == [False, False, True, False, False, True, False]


def test_zero_keeps_connections_open(settings: Settings, engine: Engine) -> None:
    assert closes(settings, engine, 0, 5) == [False] * 5
