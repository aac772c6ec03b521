"""A server process remembers what an API key may do for a few seconds (``KeyContexts``):
calls skip the key's lookups, yet a change made through the process takes effect at once and
one made elsewhere within the configured seconds."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, update
from sqlalchemy.orm import Session

from oneloop.api.app import create_app
from oneloop.core.clock import FixedClock
from oneloop.core.config import Settings
from oneloop.core.context import Context
from oneloop.governance import signin
from oneloop.governance.models import ApiKeyRow
from oneloop.governance.schemas import ApiKeyIn
from tests.factories import make_group, make_user


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
def keyed(settings: Settings, engine: Engine, ticks: Ticks, clock: FixedClock) -> FastAPI:
    app = create_app(settings.model_copy(update={"api_key_cache_seconds": 5}), engine)
    state = app.state.oneloop
    object.__setattr__(state, "clock", clock)
    state.keys.monotonic = ticks
    return app


@pytest.fixture
def token(session: Session, ctx: Context) -> str:
    make_group(session, ctx)
    make_user(session, ctx, "ada@north.example.com", "north", "marketer")
    made = signin.create_api_key(
        session,
        ctx,
        ApiKeyIn(name="BI", scopes=["segments.read"], user="ada@north.example.com", bu="north"),
    )
    session.commit()
    return made.token


def key_lookups(engine: Engine) -> list[str]:
    seen: list[str] = []

    def count(_conn: object, _cursor: object, sql: str, *_: object) -> None:
        if sql.lstrip().upper().startswith("SELECT") and "governance_api_key" in sql:
            seen.append(sql)

    event.listen(engine, "before_cursor_execute", count)
    return seen


def whoami(client: TestClient, token: str) -> int:
    return client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code


def test_a_key_is_looked_up_once_while_remembered(
    keyed: FastAPI, engine: Engine, token: str
) -> None:
    with TestClient(keyed) as client:
        seen = key_lookups(engine)
        assert [whoami(client, token) for _ in range(5)] == [200] * 5
    assert len(seen) == 1


def test_a_revoke_through_this_process_takes_effect_at_once(
    keyed: FastAPI, session: Session, token: str
) -> None:
    with TestClient(keyed) as client:
        assert whoami(client, token) == 200
        row = session.get(ApiKeyRow, token.removeprefix(signin.KEY_PREFIX).partition("_")[0])
        assert row is not None
        row.revoked_at = row.created_at
        session.commit()  # a flush of an access row in this process
        assert whoami(client, token) == 401


def test_a_revoke_elsewhere_is_seen_within_the_seconds(
    keyed: FastAPI, engine: Engine, token: str, ticks: Ticks
) -> None:
    with TestClient(keyed) as client:
        assert whoami(client, token) == 200
        with engine.begin() as conn:  # another process: no ORM flush here
            conn.execute(update(ApiKeyRow).values(revoked_at=ApiKeyRow.created_at))
        ticks.now = 4.9
        assert whoami(client, token) == 200
        ticks.now = 5.1
        assert whoami(client, token) == 401


def test_a_remembered_key_still_expires_on_time(
    keyed: FastAPI, token: str, clock: FixedClock
) -> None:
    with TestClient(keyed) as client:
        assert whoami(client, token) == 200
        clock.advance(timedelta(days=400))
        assert whoami(client, token) == 401


def test_a_wrong_secret_is_never_served_from_memory(keyed: FastAPI, token: str) -> None:
    with TestClient(keyed) as client:
        assert whoami(client, token) == 200
        assert whoami(client, token[:-2] + "xx") == 401
