"""``bench ingest``: acknowledged events per second through the real HTTP tracking API.

It starts ``oneloop serve`` on 127.0.0.1 against a scratch database, sends batches of 100
realistic Segment events from several keep-alive connections for a fixed time, counts only
what was acknowledged (HTTP 200), and afterwards checks that every acknowledged event is in the
log exactly once. The baseline, in the same run, is the simplest raw write of the same events
with the same guarantees: ``sqlite3`` (or ``psycopg``) batched inserts, a commit per batch, the
same ``synchronous`` setting, a unique index on the message id.
"""

from __future__ import annotations

import base64
import http.client
import sqlite3
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from sqlalchemy import select

from oneloop.bench.harness import (
    NO_PROGRESS,
    BenchReport,
    Metrics,
    Progress,
    percentiles,
    rate,
    served,
)
from oneloop.bench.harness import ratio as ratio_of
from oneloop.collect import service as collect
from oneloop.collect.models import EventRow
from oneloop.collect.schemas import SourceIn
from oneloop.core.config import Settings
from oneloop.core.context import system_context
from oneloop.core.db import SQLITE_SYNCHRONOUS, create_db_engine, scratch_database, session_factory
from oneloop.governance import service as governance
from oneloop.governance.schemas import BusinessUnitIn
from oneloop.migrations import upgrade

BATCH = 100
ID_WIDTH = 36  # SDKs send random UUIDs, the template slot fits one exactly
CONTEXT = {
    "library": {"name": "analytics.js", "version": "5.2.1"},
    "ip": "203.0.113.7",
    "locale": "zh-CN",
    "timezone": "Asia/Shanghai",
    "userAgent": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0 Safari/537.36"
    ),
    "page": {
        "path": "/industrial/pricing",
        "url": "https://galaxy.example.com/industrial/pricing?utm_source=baidu",
        "referrer": "https://www.baidu.com/",
        "title": "价格 Pricing | 星河工业设备",
    },
    "campaign": {"source": "baidu", "medium": "cpc", "name": "2026-q3-smart-factory"},
}
TEMPLATES: list[dict[str, object]] = [
    {"type": "page", "name": "Pricing", "properties": {"path": "/industrial/pricing"}},
    {
        "type": "track",
        "event": "Product Viewed",
        "properties": {"sku": "GX-AC-3000", "name": "空气压缩机 GX-3000", "price": 12800.0},
    },
    {
        "type": "track",
        "event": "Whitepaper Downloaded",
        "properties": {"title": "智能工厂白皮书 Smart Factory", "format": "pdf"},
    },
    {
        "type": "track",
        "event": "Order Completed",
        "properties": {"order_id": "SO-2026-0001", "revenue": 2399.0, "currency": "CNY"},
    },
    {
        "type": "identify",
        "traits": {"email": "li.lei@example.com", "phone": "+86 138 0013 8000", "name": "李雷"},
    },
]


def batch_template() -> list[bytes]:
    """A batch of 100 events serialised once, split where the message ids go."""
    marker = "\x00" * ID_WIDTH
    events = []
    for i in range(BATCH):
        event = dict(TEMPLATES[i % len(TEMPLATES)])
        event |= {
            "messageId": marker,
            "anonymousId": f"anon-{i:04d}",
            "userId": f"user-{i:04d}",
            "context": CONTEXT,
            "originalTimestamp": "2026-11-24T08:00:00.000Z",
        }
        events.append(event)
    body = orjson.dumps({"batch": events, "sentAt": "2026-11-24T08:00:00.100Z"})
    return body.split(orjson.dumps(marker)[1:-1])


@dataclass
class ClientTally:
    acked: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    refused: Counter[int] = field(default_factory=Counter)


def _client(port: int, key: str, parts: list[bytes], until: float, tally: ClientTally) -> None:
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    headers = {"Content-Type": "application/json", "Authorization": auth}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while time.perf_counter() < until:
        ids = [str(uuid.uuid4()) for _ in range(BATCH)]
        body = parts[0] + b"".join(i.encode() + p for i, p in zip(ids, parts[1:], strict=True))
        start = time.perf_counter()
        try:
            conn.request("POST", "/v1/batch", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            tally.refused[0] += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            continue
        tally.latencies.append(time.perf_counter() - start)
        if response.status == 200:
            tally.acked.extend(ids)
        else:
            tally.refused[response.status] += 1
    conn.close()


def _prepare(database_url: str) -> str:
    """Migrate, make a group, a unit and an HTTP source; return its write key."""
    engine = create_db_engine(Settings(database_url=database_url))
    upgrade(engine)
    ctx = system_context()
    with session_factory(engine)() as session, session.begin():
        governance.create_business_unit(
            session, ctx, BusinessUnitIn(code="galaxy", name_zh="星河集团", name_en="Galaxy")
        )
        governance.create_business_unit(
            session,
            ctx,
            BusinessUnitIn(code="bench", name_zh="压测", name_en="Bench", parent="galaxy"),
        )
        key = collect.create_source(session, ctx, SourceIn(bu="bench", name="bench")).write_key
    engine.dispose()
    return key


def _stored_once(database_url: str, acked: list[str]) -> int:
    engine = create_db_engine(Settings(database_url=database_url))
    try:
        with engine.connect() as conn:
            counts = Counter(conn.scalars(select(EventRow.message_id)))
    finally:
        engine.dispose()
    return sum(1 for mid in acked if counts[mid] == 1)


def _measure_api(
    database_url: str, port: int, seconds: float, connections: int, tick: Progress
) -> Metrics:
    key = _prepare(database_url)
    parts = batch_template()
    tallies = [ClientTally() for _ in range(connections)]
    with served(database_url, port, ONELOOP_RUN_CONSUMERS="false", ONELOOP_LOG_LEVEL="WARNING"):
        start = time.perf_counter()
        until = start + seconds
        threads = [
            threading.Thread(
                target=_client,
                args=(port, key, parts, until, tallies[i]),
            )
            for i in range(connections)
        ]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            tick(min(int(time.perf_counter() - start), int(seconds)), int(seconds))
            threads[0].join(timeout=0.5)
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
    acked = [mid for t in tallies for mid in t.acked]
    latencies = [s for t in tallies for s in t.latencies]
    refused: Counter[int] = Counter()
    for t in tallies:
        refused.update(t.refused)
    pct = percentiles(latencies)
    return {
        "events_per_s": rate(len(acked), elapsed),
        "p50_ms": pct["p50_ms"],
        "p95_ms": pct["p95_ms"],
        "p99_ms": pct["p99_ms"],
        "acked": len(acked),
        "stored_once": _stored_once(database_url, acked),
        "requests": len(latencies),
        "not_acked_requests": sum(refused.values()),
        "seconds": round(elapsed, 2),
        "connections": connections,
    }


def _raw_rows() -> Iterator[list[tuple[str, str]]]:
    """The same events as the API got, as (message id, JSON) rows in batches of 100. The JSON
    is serialised once up front: the baseline pays for nothing but the inserts."""
    parts = batch_template()
    docs = [orjson.dumps(e).decode() for e in orjson.loads(b"".join(parts))["batch"]]
    while True:
        yield [(str(uuid.uuid4()), doc) for doc in docs]


def _timed_batches(write: Callable[[list[tuple[str, str]]], None], seconds: float) -> Metrics:
    """Write batches of the raw rows, a commit each, for ``seconds``."""
    done, latencies = 0, []
    start = time.perf_counter()
    for rows in _raw_rows():
        t = time.perf_counter()
        write(rows)
        latencies.append(time.perf_counter() - t)
        done += len(rows)
        if time.perf_counter() - start >= seconds:
            break
    elapsed = time.perf_counter() - start
    return {"events_per_s": rate(done, elapsed), **percentiles(latencies), "events": done}


def _raw_sqlite(path: Path, synchronous: str, seconds: float) -> Metrics:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(SQLITE_SYNCHRONOUS[synchronous])
    conn.execute("CREATE TABLE ev (seq INTEGER PRIMARY KEY, message_id TEXT NOT NULL, doc TEXT)")
    conn.execute("CREATE UNIQUE INDEX ev_message_id ON ev (message_id)")

    def write(rows: list[tuple[str, str]]) -> None:
        conn.executemany("INSERT INTO ev (message_id, doc) VALUES (?, ?)", rows)
        conn.commit()

    try:
        return _timed_batches(write, seconds)
    finally:
        conn.close()


def _raw_postgres(url: str, seconds: float) -> Metrics:
    import psycopg
    from sqlalchemy.engine import make_url

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "CREATE TABLE bench_raw_ev (seq bigserial PRIMARY KEY, message_id text NOT NULL, "
            "doc jsonb, UNIQUE (message_id))"
        )
        conn.commit()

        def write(rows: list[tuple[str, str]]) -> None:
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO bench_raw_ev (message_id, doc) VALUES (%s, %s)", rows)
            conn.commit()

        try:
            return _timed_batches(write, seconds)
        finally:
            conn.execute("DROP TABLE bench_raw_ev")
            conn.commit()


def run(
    settings: Settings,
    *,
    seconds: float = 10.0,
    connections: int = 4,
    port: int = 18765,
    postgres_url: str | None = None,
    on_progress: Progress = NO_PROGRESS,
) -> BenchReport:
    notes = [
        f"{connections} keep-alive connections, batches of {BATCH} events, {seconds:.0f} s; "
        "one uvicorn worker; log consumers off (ingest only)",
    ]
    if postgres_url:
        with scratch_database(postgres_url, "oneloop_bench", or_same=True) as url:
            metrics = _measure_api(url, port, seconds, connections, on_progress)
            baseline = _raw_postgres(url, seconds)
        notes.append("store: PostgreSQL; baseline: psycopg executemany, a commit per batch")
        store = "postgresql"
    else:
        with tempfile.TemporaryDirectory(prefix="oneloop-bench-ingest-") as tmp:
            url = f"sqlite:///{Path(tmp) / 'ingest.db'}"
            metrics = _measure_api(url, port, seconds, connections, on_progress)
            baseline = _raw_sqlite(Path(tmp) / "raw.db", settings.sqlite_synchronous, seconds)
        notes.append(
            f"store: SQLite WAL synchronous={settings.sqlite_synchronous}; baseline: sqlite3 "
            "executemany with a unique index on the message id, a commit per batch"
        )
        store = "sqlite"
    metrics = {"store": store, **metrics}
    if metrics["stored_once"] != metrics["acked"]:
        notes.append("WARNING: some acknowledged events are not in the log exactly once")
    return BenchReport(
        name="ingest",
        metrics=metrics,
        baseline=baseline,
        ratio=ratio_of(metrics["events_per_s"], baseline["events_per_s"]),
        notes=notes,
    )
