from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Column, Engine, MetaData, String, Table, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, StatementError

from oneloop.core.config import Settings
from oneloop.core.db import UTCDateTime, as_unavailable, create_db_engine, is_transient


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Engine:
    return create_db_engine(Settings(database_url=f"sqlite:///{tmp_path / 'sub' / 'x.db'}"))


def test_sqlite_is_tuned_for_durability(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 5000


def test_sqlite_synchronous_follows_settings(tmp_path: Path) -> None:
    engine = create_db_engine(
        Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", sqlite_synchronous="EXTRA")
    )
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 3


def test_sqlite_file_folder_is_created(tmp_path: Path, sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert (tmp_path / "sub" / "x.db").exists()


def _times_table() -> Table:
    return Table(
        "t_times",
        MetaData(),
        Column("k", String(8), primary_key=True),
        Column("at", UTCDateTime(timezone=True)),
    )


def test_utc_datetime_round_trips_aware(engine: Engine) -> None:
    table = _times_table()
    table.create(engine)
    shanghai = timezone(timedelta(hours=8))
    with engine.begin() as conn:
        conn.execute(
            insert(table), [{"k": "a", "at": datetime(2026, 5, 1, 9, 30, tzinfo=shanghai)}]
        )
        got = conn.execute(select(table.c.at)).scalar_one()
    assert got == datetime(2026, 5, 1, 1, 30, tzinfo=UTC)
    assert got.tzinfo is not None and got.utcoffset() == timedelta(0)


def test_utc_datetime_refuses_naive(engine: Engine) -> None:
    table = _times_table()
    table.create(engine)
    with pytest.raises(StatementError, match="naive datetime"), engine.begin() as conn:
        conn.execute(insert(table), [{"k": "a", "at": datetime(2026, 5, 1)}])


def test_locked_sqlite_is_transient_and_maps_to_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    engine = create_db_engine(Settings(database_url=f"sqlite:///{path}", sqlite_busy_timeout_ms=50))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError) as caught, engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert is_transient(caught.value)
    err = as_unavailable(caught.value)
    assert err.retry_after >= 1 and "busy" in err.detail


@pytest.mark.postgres
def test_scratch_database_is_dropped_even_with_a_connection_left_open(
    postgres_url: str,
) -> None:
    """The per-test database must go away although a test leaked a connection to it."""
    import psycopg

    from oneloop.core.db import scratch_database

    def dsn(url: str) -> str:
        return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

    with scratch_database(postgres_url, "oneloop_scratch") as url:
        leaked = psycopg.connect(dsn(url))
        leaked.execute("SELECT 1")
    with psycopg.connect(dsn(postgres_url)) as admin:
        left = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (make_url(url).database,)
        ).fetchone()
    assert left is None
    with pytest.raises(psycopg.OperationalError):
        leaked.execute("SELECT 1")
