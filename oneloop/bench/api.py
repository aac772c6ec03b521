"""``bench api``: realistic reads against the real server at a fixed rate.

``oneloop serve`` runs on 127.0.0.1 over a database holding the demo (a scratch one generated,
loaded and processed first, or ``--db`` for one ``make demo`` filled). A marketer's API key
then reads, in turn: a profile by phone, a page of a 360 timeline, the segment list, and a
GraphQL profile query — open loop, one request every 1/rate seconds whatever the answers do,
each timed from when it was due to be sent (so a slow answer delays nobody's clock). The
baseline is ``/healthz`` at the same rate for the same time, in the same run.
"""

from __future__ import annotations

import http.client
import itertools
import queue
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from sqlalchemy import select

from oneloop.bench.harness import (
    NO_PROGRESS,
    BenchFailed,
    BenchReport,
    Metrics,
    Progress,
    percentiles,
    served,
)
from oneloop.bench.harness import ratio as ratio_of
from oneloop.collect import consumers
from oneloop.core.config import Settings
from oneloop.core.context import system_context
from oneloop.core.db import create_db_engine, session_factory
from oneloop.demo.generate import generate
from oneloop.demo.load import load_demo, role_user_email
from oneloop.governance import signin
from oneloop.governance.schemas import ApiKeyIn
from oneloop.governance.service import unit_row
from oneloop.identity.models import IdentifierRow
from oneloop.migrations import upgrade
from oneloop.profiles.models import ProfileUnitRow

UNIT = "appliances"  # the demo's largest unit
CLIENTS = 32  # connections: enough that the rate never waits for a free one
TARGETS = 200  # phones and profiles drawn from the data
GRAPHQL = (
    "query($id: ID!) { profile(id: $id) { id identifiers { type value } "
    "tags { code } scores { code value } segments { code } "
    "timeline(first: 10) { edges { node { name at } } } } }"
)


@dataclass
class Request:
    kind: str
    method: str
    path: str
    body: bytes | None = None


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)


def run(
    settings: Settings,
    *,
    rate_per_s: float = 200.0,
    seconds: float = 20.0,
    customers: int = 2_000,
    seed: int = 7,
    db_url: str | None = None,
    port: int = 18766,
    workers: int = 1,
    on_progress: Progress = NO_PROGRESS,
    say: Callable[[str], None] = lambda _: None,
) -> BenchReport:
    with tempfile.TemporaryDirectory() as tmp:
        url = db_url or f"sqlite:///{tmp}/api.db"
        if db_url is None:
            say(f"generating, loading and processing a {customers:,}-customer demo")
            _demo(settings, url, Path(tmp) / "demo", customers, seed)
        token, phones, profiles = _caller(settings, url)
        requests = _requests(phones, profiles)
        env = {"ONELOOP_RUN_CONSUMERS": "false", "ONELOOP_LOG_LEVEL": "WARNING"}
        with served(url, port, workers, **env):
            say(f"reads at {rate_per_s:g}/s for {seconds:g} s")
            ours = _load(port, token, requests, rate_per_s, seconds, on_progress)
            say(f"/healthz at {rate_per_s:g}/s for {seconds:g} s")
            base = _load(port, token, [Request("healthz", "GET", "/healthz")], rate_per_s,
                         seconds, on_progress)  # fmt: skip
    every = [s for samples in ours.latencies.values() for s in samples]
    if not every:
        raise BenchFailed("no read was answered")
    cuts, base_cuts = percentiles(every), percentiles(base.latencies.get("healthz", []))
    metrics: Metrics = {
        "rps": round(len(every) / seconds, 1),
        "p50_ms": cuts["p50_ms"],
        "p95_ms": cuts["p95_ms"],
        "p99_ms": cuts["p99_ms"],
        "errors": sum(ours.errors.values()),
        "target_rps": rate_per_s,
        "workers": workers,
        "seconds": seconds,
    }
    for kind, samples in sorted(ours.latencies.items()):
        metrics[f"{kind}_p99_ms"] = percentiles(samples)["p99_ms"]
    baseline: Metrics = {
        "rps": round(len(base.latencies.get("healthz", [])) / seconds, 1),
        "p50_ms": base_cuts["p50_ms"],
        "p99_ms": base_cuts["p99_ms"],
        "errors": sum(base.errors.values()),
    }
    return BenchReport(
        name="api",
        metrics=metrics,
        baseline=baseline,
        ratio=ratio_of(metrics["p99_ms"], baseline["p99_ms"]),
        notes=[
            "reads in turn: profile by phone, a 20-entry timeline page, the segment list, a "
            f"GraphQL profile query; a marketer's API key of {UNIT}; open loop, timed from "
            "when each request was due",
            f"errors by kind: {ours.errors or 'none'}",
        ],
    )


def _demo(settings: Settings, url: str, out: Path, customers: int, seed: int) -> None:
    generate(out, customers=customers, seed=seed)
    engine = create_db_engine(settings.model_copy(update={"database_url": url}))
    try:
        upgrade(engine)
        sessions = session_factory(engine)
        with sessions() as session:
            load_demo(session, system_context(), out)
            session.commit()
        consumers.drain(sessions, consumers.registered(), tasks=consumers.registered_tasks())
    finally:
        engine.dispose()


def _caller(settings: Settings, url: str) -> tuple[str, list[str], list[str]]:
    """An API key of the unit's demo marketer, and phones and profiles of the unit to ask for."""
    engine = create_db_engine(settings.model_copy(update={"database_url": url}))
    try:
        with session_factory(engine)() as session:
            ctx = system_context()
            made = signin.create_api_key(
                session,
                ctx,
                ApiKeyIn(
                    name="bench api",
                    scopes=["profiles.read", "segments.read", "identity.read", "consent.read"],
                    user=role_user_email("marketer", UNIT),
                    bu=UNIT,
                ),
            )
            session.commit()
            bu_id = unit_row(session, UNIT).id
            profiles = list(
                session.scalars(
                    select(ProfileUnitRow.profile_id)
                    .where(ProfileUnitRow.bu_id == bu_id)
                    .order_by(ProfileUnitRow.profile_id)
                    .limit(TARGETS)
                )
            )
            phones = list(
                session.scalars(
                    select(IdentifierRow.value)
                    .where(IdentifierRow.type == "phone", IdentifierRow.profile_id.in_(profiles))
                    .limit(TARGETS)
                )
            )
    finally:
        engine.dispose()
    if not profiles or not phones:
        raise BenchFailed(f"the database has no customers of {UNIT} to read")
    return made.token, phones, profiles


def _requests(phones: list[str], profiles: list[str]) -> list[Request]:
    out = []
    for phone, profile in zip(itertools.cycle(phones), profiles, strict=False):
        query = orjson.dumps({"query": GRAPHQL, "variables": {"id": profile}})
        out += [
            Request("by_phone", "GET", f"/api/v1/profiles?type=phone&value={_quote(phone)}"),
            Request("timeline", "GET", f"/api/v1/profiles/{profile}/timeline?limit=20"),
            Request("segments", "GET", "/api/v1/segments"),
            Request("graphql", "POST", "/graphql", query),
        ]
    return out


def _quote(value: str) -> str:
    return value.replace("+", "%2B")


def _load(
    port: int,
    token: str,
    requests: list[Request],
    rate_per_s: float,
    seconds: float,
    tick: Progress,
) -> Tally:
    """Send ``requests`` round-robin, one due every 1/rate s, for ``seconds``."""
    total = max(1, round(rate_per_s * seconds))
    due: queue.Queue[tuple[float, Request] | None] = queue.Queue()
    tally = Tally()
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while (item := due.get()) is not None:
            at, request = item
            wait = at - time.perf_counter()
            if wait > 0:
                time.sleep(wait)  # open loop: send when due
            try:
                conn.request(request.method, request.path, body=request.body, headers=headers)
                answer = conn.getresponse()
                answer.read()
                ok = answer.status == 200
            except (TimeoutError, OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                ok = False
            took = time.perf_counter() - at
            with lock:
                if ok:
                    tally.latencies.setdefault(request.kind, []).append(took)
                else:
                    tally.errors[request.kind] = tally.errors.get(request.kind, 0) + 1
        conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    start = time.perf_counter() + 0.2
    for k in range(total):
        due.put((start + k / rate_per_s, requests[k % len(requests)]))
    for _ in threads:
        due.put(None)
    while any(t.is_alive() for t in threads):
        tick(min(int(time.perf_counter() - start), int(seconds)), int(seconds))
        threads[0].join(timeout=0.5)
    for thread in threads:
        thread.join()
    return tally
