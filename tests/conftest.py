"""Fixtures every suite shares: a fresh database per test, on SQLite and on a real PostgreSQL.

The PostgreSQL side needs ``ONELOOP_TEST_POSTGRES_URL`` (``make test`` sets it from
``scripts/test-postgres.sh``); without it those tests are skipped, unless
``ONELOOP_REQUIRE_POSTGRES=1`` (CI), where a missing server fails the run instead. The bus
tests start a real ``redis-server`` (Debian's package) the same way: skipped without the
binary, failed instead under ``ONELOOP_REQUIRE_REDIS=1``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from oneloop.api.app import create_app
from oneloop.collect.schemas import Source
from oneloop.core.clock import FixedClock
from oneloop.core.config import Settings
from oneloop.core.context import Context, system_context
from oneloop.core.db import create_db_engine, scratch_database, session_factory
from oneloop.governance import users
from oneloop.migrations import upgrade
from tests.factories import make_group, make_source
from tests.pipeline import Feed, make_feed
from tests.servers import REDIS_SERVER, RedisServer, running_redis

# argon2id at its real cost (~0.1 s a hash) would spend minutes of the suite on passwords; the
# tests check that hashing, verifying and lock-outs work, not what a guess costs an attacker.
users._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

# Rich sizes its tables to the terminal; under xdist there is none, and a narrow default
# would wrap the cells the CLI tests look for.
os.environ["COLUMNS"] = "200"


def _postgres_url() -> str | None:
    """This test worker's server: the variable may list one URL per xdist worker
    (``scripts/test-postgres.sh 2``), since workers sharing a cluster hold back each other's
    log consumers."""
    urls = [u for u in os.environ.get("ONELOOP_TEST_POSTGRES_URL", "").split(",") if u]
    if not urls:
        return None
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    return urls[index % len(urls)]


POSTGRES_URL = _postgres_url()
REQUIRE_POSTGRES = os.environ.get("ONELOOP_REQUIRE_POSTGRES") == "1"
REQUIRE_REDIS = os.environ.get("ONELOOP_REQUIRE_REDIS") == "1"

ADMIN_TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    if POSTGRES_URL is None:
        if REQUIRE_POSTGRES:
            pytest.fail("ONELOOP_REQUIRE_POSTGRES=1 but no ONELOOP_TEST_POSTGRES_URL is set")
        pytest.skip("no PostgreSQL server: set ONELOOP_TEST_POSTGRES_URL (make test does)")
    with scratch_database(POSTGRES_URL, "oneloop_test") as url:
        yield url


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A fresh, empty ``redis-server`` for one test, stopped afterwards."""
    if REDIS_SERVER is None:
        if REQUIRE_REDIS:
            pytest.fail("ONELOOP_REQUIRE_REDIS=1 but no redis-server is installed")
        pytest.skip("no redis-server binary: install the redis-server package (CI does)")
    with running_redis(REDIS_SERVER, tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'oneloop.db'}"


@pytest.fixture
def settings(db_url: str) -> Settings:
    # Consumers run where a test asks for them, never as a thread racing the test's own writes.
    return Settings(database_url=db_url, run_consumers=False, admin_token=ADMIN_TOKEN)


@pytest.fixture
def bare_engine(settings: Settings) -> Iterator[Engine]:
    """An engine on an empty database: no migration has run."""
    engine = create_db_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(bare_engine: Engine) -> Engine:
    upgrade(bare_engine)
    return bare_engine


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with session_factory(engine)() as s:
        yield s


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def ctx(clock: FixedClock) -> Context:
    return system_context(clock)


@pytest.fixture
def app(settings: Settings, engine: Engine) -> FastAPI:
    return create_app(settings, engine)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    # Server errors must come back as responses (the 500 contract), not be re-raised here.
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def source(session: Session, ctx: Context) -> Source:
    make_group(session, ctx)
    made, _ = make_source(session, ctx)
    return made


@pytest.fixture
def feed(engine: Engine, session: Session, source: Source, clock: FixedClock) -> Feed:
    """Ingest calls as the tracking API would, then run resolution and the profiles pipeline
    (profiles and segments tests: events in, what a user sees out)."""
    return make_feed(engine, session, source, clock)
