"""``bench store``: how fast can rows reach disk, raw, on SQLite and PostgreSQL?

The raw ceiling (``sqlite3``/``psycopg`` executemany, a commit per batch, the same durability
settings we run with) is the most any ingest path of ours can hope for; the same rows through
our engine (SQLAlchemy Core, our pragmas and pool) show what the layer costs. Rows look like
events: a BU, a message id, a time and a JSON document of about 400 bytes.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Column, DateTime, MetaData, String, Table, Text, insert
from sqlalchemy.engine import make_url

from oneloop.bench.harness import (
    NO_PROGRESS,
    BenchReport,
    Metrics,
    Progress,
    percentiles,
    rate,
    ratio,
)
from oneloop.core.config import Settings
from oneloop.core.db import SQLITE_SYNCHRONOUS, create_db_engine, scratch_database
from oneloop.core.ids import new_id

Row = tuple[str, str, str, datetime, str]
BatchWriter = Callable[[list[Row]], None]

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_rows(count: int) -> list[Row]:
    rows = []
    for i in range(count):
        payload = {
            "type": "track",
            "event": "Product Viewed",
            "properties": {"sku": f"SKU-{i % 997:04d}", "price": 1999.0, "name": "空气净化器"},
            "context": {"ip": "10.0.0.1", "locale": "zh-CN", "userAgent": "Mozilla/5.0 " * 12},
        }
        at = T0 + timedelta(seconds=i)
        rows.append((new_id(at), "bench", f"msg-{i}", at, json.dumps(payload, ensure_ascii=False)))
    return rows


def _run_batches(rows: list[Row], batch: int, write: BatchWriter, tick: Progress) -> Metrics:
    """Write in batches; each batch is one transaction, so its latency is a commit's latency."""
    latencies: list[float] = []
    start = time.perf_counter()
    for lo in range(0, len(rows), batch):
        t = time.perf_counter()
        write(rows[lo : lo + batch])
        latencies.append(time.perf_counter() - t)
        tick(lo + batch, len(rows))
    seconds = time.perf_counter() - start
    return {"rows_per_s": rate(len(rows), seconds), **percentiles(latencies)}


SQLITE_DDL = (
    "CREATE TABLE ev (id VARCHAR(26) PRIMARY KEY, bu_id VARCHAR(32), message_id VARCHAR(64), "
    "at TEXT, doc TEXT)"
)


COLUMNS = ("id", "bu_id", "message_id", "at", "doc")


def _core_table(name: str) -> Table:
    return Table(
        name,
        MetaData(),
        Column("id", String(26), primary_key=True),
        Column("bu_id", String(32)),
        Column("message_id", String(64)),
        Column("at", DateTime(timezone=True)),
        Column("doc", Text),
    )


def _core_writer(settings: Settings, table: Table) -> tuple[BatchWriter, Callable[[], None]]:
    engine = create_db_engine(settings)
    table.create(engine)

    def write(rows: list[Row]) -> None:
        values = [dict(zip(COLUMNS, r, strict=True)) for r in rows]
        with engine.begin() as conn:
            conn.execute(insert(table), values)

    def close() -> None:
        table.drop(engine)
        engine.dispose()

    return write, close


def bench_sqlite(
    rows: list[Row], batch: int, tick: Progress, settings: Settings
) -> tuple[Metrics, Metrics]:
    with tempfile.TemporaryDirectory(prefix="oneloop-bench-") as tmp:
        raw_path = Path(tmp) / "raw.db"
        conn = sqlite3.connect(raw_path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(SQLITE_SYNCHRONOUS[settings.sqlite_synchronous])
        conn.execute(SQLITE_DDL)

        def raw_write(chunk: list[Row]) -> None:
            conn.executemany(
                "INSERT INTO ev VALUES (?, ?, ?, ?, ?)",
                [(a, b, c, d.isoformat(), e) for a, b, c, d, e in chunk],
            )
            conn.commit()

        raw = _run_batches(rows, batch, raw_write, tick)
        conn.close()
        core_url = f"sqlite:///{Path(tmp) / 'core.db'}"
        core_settings = settings.model_copy(update={"database_url": core_url})
        write, close = _core_writer(core_settings, _core_table("ev"))
        try:
            core = _run_batches(rows, batch, write, tick)
        finally:
            close()
    return raw, core


def bench_postgres(
    rows: list[Row], batch: int, tick: Progress, url: str, settings: Settings
) -> tuple[Metrics, Metrics]:
    import psycopg
    from psycopg import sql

    name = f"bench_store_{new_id().lower()}"
    table = sql.Identifier(name)
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (id varchar(26) PRIMARY KEY, bu_id varchar(32), "
                "message_id varchar(64), at timestamptz, doc text)"
            ).format(table)
        )
        conn.commit()
        insert_sql = sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s, %s)").format(table)

        def raw_write(chunk: list[Row]) -> None:
            with conn.cursor() as cur:
                cur.executemany(insert_sql, chunk)
            conn.commit()

        try:
            raw = _run_batches(rows, batch, raw_write, tick)
        finally:
            conn.execute(sql.SQL("DROP TABLE {}").format(table))
            conn.commit()
    core_settings = settings.model_copy(update={"database_url": url})
    write, close = _core_writer(core_settings, _core_table(name))
    try:
        core = _run_batches(rows, batch, write, tick)
    finally:
        close()
    return raw, core


def run(
    settings: Settings,
    *,
    rows: int = 50_000,
    batch: int = 500,
    postgres_url: str | None = None,
    on_progress: Progress = NO_PROGRESS,
) -> BenchReport:
    data = make_rows(rows)
    notes: list[str] = []
    sqlite_raw, sqlite_core = bench_sqlite(data, batch, on_progress, settings)
    metrics: Metrics = {"rows": rows, "batch": batch}
    baseline: Metrics = {"sqlite_rows_per_s": sqlite_raw["rows_per_s"]}
    metrics |= {f"sqlite_raw_{k}": v for k, v in sqlite_raw.items()}
    metrics |= {f"sqlite_core_{k}": v for k, v in sqlite_core.items()}
    if postgres_url:
        with scratch_database(postgres_url, "oneloop_bench", or_same=True) as url:
            pg_raw, pg_core = bench_postgres(data, batch, on_progress, url, settings)
        baseline["postgres_rows_per_s"] = pg_raw["rows_per_s"]
        metrics |= {f"postgres_raw_{k}": v for k, v in pg_raw.items()}
        metrics |= {f"postgres_core_{k}": v for k, v in pg_core.items()}
    else:
        metrics["postgres_raw_rows_per_s"] = None
        notes.append("no PostgreSQL URL given (--postgres-url): PostgreSQL not measured")
    notes.append(f"sqlite synchronous={settings.sqlite_synchronous}, WAL; one commit per batch")
    return BenchReport(
        name="store",
        metrics=metrics,
        baseline=baseline,
        ratio=ratio(sqlite_core["rows_per_s"], sqlite_raw["rows_per_s"]),
        notes=notes,
    )
