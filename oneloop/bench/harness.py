"""What every benchmark shares: timing, percentiles, the machine, and the JSON report.

A report is ``{"name", "metrics", "baseline", "ratio", "env"}``. The baseline is the same work
done by the simplest raw means in the same run, so ``ratio`` (ours / baseline on the headline
metric) stays meaningful on a noisy shared machine where absolute numbers do not.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from oneloop import __version__
from oneloop.collect import consumers
from oneloop.collect.ingest import ingest
from oneloop.collect.schemas import Source
from oneloop.collect.spec import parse_batch
from oneloop.core.db import is_transient

Progress = Callable[[int, int], None]
Metrics = dict[str, float | int | str | None]


def _no_progress(done: int, total: int) -> None:
    """Progress sink for callers that do not show any."""


NO_PROGRESS: Progress = _no_progress


@dataclass
class BenchReport:
    name: str
    metrics: Metrics
    baseline: Metrics
    ratio: float | None
    env: dict[str, str | int | None] = field(default_factory=lambda: machine())
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n", encoding="utf-8")


def machine() -> dict[str, str | int | None]:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "oneloop": __version__,
    }


def percentiles(samples_s: list[float]) -> dict[str, float]:
    """p50/p95/p99 in milliseconds; needs at least two samples to mean anything."""
    if len(samples_s) < 2:
        only = samples_s[0] * 1000 if samples_s else 0.0
        return {"p50_ms": only, "p95_ms": only, "p99_ms": only}
    cuts = statistics.quantiles(samples_s, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49] * 1000, 3),
        "p95_ms": round(cuts[94] * 1000, 3),
        "p99_ms": round(cuts[98] * 1000, 3),
    }


@dataclass
class Stopwatch:
    seconds: float = 0.0


@contextmanager
def timed() -> Iterator[Stopwatch]:
    watch = Stopwatch()
    start = time.perf_counter()
    try:
        yield watch
    finally:
        watch.seconds = time.perf_counter() - start


def paced(total: int, rate_per_s: float) -> Iterator[int]:
    """0 … total-1, each yielded at its due time (one every 1/rate s from the first): an
    open-loop sender, whose schedule does not slow down when the system under test does."""
    started = time.perf_counter()
    for k in range(total):
        pause = started + k / rate_per_s - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        yield k


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else float("inf")


def ratio(ours: float | int | str | None, base: float | int | str | None) -> float | None:
    if not isinstance(ours, int | float) or not isinstance(base, int | float) or not base:
        return None
    return round(ours / base, 3)


@contextmanager
def served(database_url: str, port: int, workers: int = 1, **env: str) -> Iterator[str]:
    """A real ``oneloop serve`` on 127.0.0.1:``port`` (already migrated) with ``workers``
    processes, until the block ends.

    Benches and network tests talk to the process users run, not to an in-process app.
    """
    environ = {**os.environ, "ONELOOP_DATABASE_URL": database_url, **env}
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(  # noqa: S603  # our own interpreter and fixed arguments
            [
                sys.executable,
                "-m",
                "oneloop",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=environ,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"{base}/healthz", timeout=1).close()  # noqa: S310
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        proc.kill()
                        output.seek(0)
                        text = output.read().decode(errors="replace")
                        raise RuntimeError(f"the server did not start:\n{text}") from None
                    time.sleep(0.1)  # polling a starting process
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=30)


class BenchFailed(RuntimeError):
    """The run measured something wrong (counts that disagree, entries that never came)."""


def ingest_calls(
    sessions: sessionmaker[Session], source: Source, calls: list[dict[str, Any]]
) -> int:
    """One tracking batch, committed (acknowledged); retried while the database is busy, as an
    SDK retries a 503. The number of retries."""
    retries = 0
    while True:
        now = datetime.now(UTC)
        batch = [{**c, "timestamp": now.isoformat()} for c in calls]
        messages, invalid = parse_batch({"batch": batch}, now)
        if invalid:
            raise BenchFailed(f"a generated call was refused: {invalid[0].detail}")
        try:
            with sessions() as session:
                ingest(session, source, messages, received_at=now, origin="api", ref="bench")
                session.commit()
            return retries
        except DBAPIError as exc:
            if not is_transient(exc):
                raise
            retries += 1


def consumers_at_work(
    sessions: sessionmaker[Session], stop: threading.Event, failures: list[BaseException]
) -> None:
    """The log's consumers and the worker's tasks, as ``oneloop serve`` runs them, until
    ``stop``; a failure is kept for the measuring thread, which fails the run."""
    try:
        consumers.run_forever(
            sessions, consumers.registered(), stop, tasks=consumers.registered_tasks()
        )
    except BaseException as exc:  # reported by the measuring thread
        failures.append(exc)
