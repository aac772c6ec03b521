"""``bench leads``: from a trigger event committed to the lead's assignment recorded.

A scratch database gets the demo's B2B set-up (the shipped routing table, its nine teams with
two reps each) and a ``Demo Requested`` trigger. Then new customers ask for a demo at a steady
rate — each an identify with the province and industry the table routes by, then the event —
while the log's consumers and the worker's tasks run in a thread exactly as ``oneloop serve``
runs them. For every lead: the time from its event's commit to the lead's assignment (or its
pooling, when no rule or rep takes it), both stamped by the same wall clock.

``decisions_per_s`` is the routing table's own rate: ``decide`` over every lead's facts in a
loop, SpiffWorkflow's DMN engine included. The baseline is the same trigger-to-assignment
done by the simplest raw means, in the same run: a ``sqlite3`` writer commits trigger rows at
the same rate, and a poller with the worker's idle wait assigns each to a rep round-robin in
one ``INSERT … SELECT`` and commits — no identity, no profile, no table, no SLA.
"""

from __future__ import annotations

import random
import sqlite3
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from oneloop.bench.harness import (
    NO_PROGRESS,
    BenchFailed,
    BenchReport,
    Progress,
    consumers_at_work,
    ingest_calls,
    paced,
    percentiles,
    rate,
    timed,
)
from oneloop.bench.harness import ratio as ratio_of
from oneloop.collect import service as collect
from oneloop.collect.models import EventRow
from oneloop.collect.schemas import Source, SourceIn
from oneloop.core.config import Settings
from oneloop.core.context import system_context
from oneloop.core.db import create_db_engine, scratch_database, session_factory
from oneloop.demo.sales import REPS_PER_TEAM, UNIT, rep_email, teams
from oneloop.governance import service as governance
from oneloop.governance import users
from oneloop.governance.schemas import BusinessUnitIn, UserIn
from oneloop.migrations import upgrade
from oneloop.sales import config, routing
from oneloop.sales.leads import facts_of
from oneloop.sales.models import LeadRow
from oneloop.sales.routing import DMN_DIR
from oneloop.sales.schemas import MemberIn, TeamIn

IDLE_WAIT_S = 0.5  # consumers.run_forever's default: the server's own pause when idle
BASELINE_MAX = 2_000  # the raw baseline's delays are steady: this many samples tell them
WAIT_S = 120.0
# Where demo customers come from, in the spellings the demo uses (the table takes both).
PROVINCES = ["上海", "江苏", "浙江", "广东", "北京", "四川", "湖北", "Guangdong", "Zhejiang",
             "Bavaria", "山东", "福建", "辽宁", "陕西"]  # fmt: skip
INDUSTRIES = ["汽车零部件", "电子制造", "新能源", "机械制造", "Electronics", "Automotive parts",
              "食品饮料", "化工"]  # fmt: skip


@dataclass
class Run:
    delays_s: list[float]
    assigned: int
    pooled: int
    seconds: float
    facts: list[dict[str, object]]


def run(
    settings: Settings,
    *,
    leads: int = 10_000,
    rate_per_s: float = 20.0,
    seed: int = 7,
    postgres_url: str | None = None,
    on_progress: Progress = NO_PROGRESS,
) -> BenchReport:
    with tempfile.TemporaryDirectory() as tmp:
        if postgres_url:
            with scratch_database(postgres_url, "oneloop_bench", or_same=True) as url:
                ours = _ours(settings, url, leads, rate_per_s, seed, on_progress)
        else:
            ours = _ours(
                settings, f"sqlite:///{tmp}/leads.db", leads, rate_per_s, seed, on_progress
            )
        base = _baseline(Path(tmp) / "raw.db", min(leads, BASELINE_MAX), rate_per_s)
    table = routing.load_table()
    with timed() as deciding:
        for facts in ours.facts:
            routing.decide(table, facts)
    cuts, base_cuts = percentiles(ours.delays_s), percentiles(base)
    metrics: dict[str, float | int | str | None] = {
        "trigger_to_assign_p50_ms": cuts["p50_ms"],
        "trigger_to_assign_p95_ms": cuts["p95_ms"],
        "trigger_to_assign_p99_ms": cuts["p99_ms"],
        "decisions_per_s": rate(len(ours.facts), deciding.seconds),
        "leads": len(ours.delays_s),
        "assigned": ours.assigned,
        "pooled": ours.pooled,
        "rate_per_s": rate(leads, ours.seconds),
        "database": "postgresql" if postgres_url else "sqlite",
    }
    baseline: dict[str, float | int | str | None] = {
        "trigger_to_assign_p50_ms": base_cuts["p50_ms"],
        "trigger_to_assign_p99_ms": base_cuts["p99_ms"],
        "method": "sqlite3 trigger rows, a poller assigning round-robin in one INSERT SELECT",
        "triggers": min(leads, BASELINE_MAX),
    }
    return BenchReport(
        name="leads",
        metrics=metrics,
        baseline=baseline,
        ratio=ratio_of(metrics["trigger_to_assign_p99_ms"], baseline["trigger_to_assign_p99_ms"]),
        notes=[
            "trigger: the Demo Requested event's commit; assignment: the lead's assigned_at "
            "(or, for a lead no rule or rep took, its pooling), on the same wall clock",
            f"{len(teams())} teams × {REPS_PER_TEAM} reps, the shipped industrial_routing.dmn",
        ],
    )


def _ours(
    settings: Settings, url: str, leads: int, rate_per_s: float, seed: int, tick: Progress
) -> Run:
    engine = create_db_engine(settings.model_copy(update={"database_url": url}))
    try:
        upgrade(engine)
        sessions = session_factory(engine)
        source = _setup(sessions)
        rng = random.Random(seed)  # noqa: S311 - synthetic data
        tag = uuid.uuid4().hex[:8]
        stop = threading.Event()
        failures: list[BaseException] = []
        worker = threading.Thread(
            target=consumers_at_work, args=(sessions, stop, failures), daemon=True
        )
        worker.start()
        committed: dict[str, datetime] = {}
        started = time.perf_counter()
        try:
            for k in paced(leads, rate_per_s):
                message_id = f"bench-{tag}-{k}"
                ingest_calls(sessions, source, _calls(rng, f"{tag}-{k}", message_id))
                committed[message_id] = datetime.now(UTC)
                tick(k + 1, leads)
            sent = time.perf_counter() - started
            deadline = time.monotonic() + WAIT_S
            while not failures and time.monotonic() < deadline:
                if _decided(sessions) >= leads:
                    break
                time.sleep(0.2)  # the worker is catching up
        finally:
            stop.set()
            worker.join(timeout=60)
        if failures:
            raise BenchFailed(f"the worker stopped: {failures[0]!r}") from failures[0]
        return _collect(sessions, committed, leads, sent)
    finally:
        engine.dispose()


def _setup(sessions: sessionmaker[Session]) -> Source:
    ctx = system_context()
    with sessions() as session:
        governance.create_business_unit(
            session, ctx, BusinessUnitIn(code="galaxy", name_zh="星河集团", name_en="Galaxy")
        )
        governance.create_business_unit(
            session,
            ctx,
            BusinessUnitIn(code=UNIT, name_zh="工业事业部", name_en="Industrial", parent="galaxy"),
        )
        password = uuid.uuid4().hex
        for team in teams():
            config.create_team(
                session,
                ctx,
                TeamIn(
                    code=team["code"], name_zh=team["name_zh"], name_en=team["name_en"],
                    strategy=team["strategy"], bu=UNIT,  # type: ignore[arg-type]
                ),
            )  # fmt: skip
            for n in range(1, REPS_PER_TEAM + 1):
                email = rep_email(team["code"], n)
                users.create_user(
                    session,
                    ctx,
                    UserIn(email=email, display_name=email, password=password, bu=UNIT,
                           role="sales_rep"),
                )  # fmt: skip
                member = MemberIn(email=email, capacity=10_000)
                config.set_member(session, ctx, team["code"], member, UNIT)
        table = (DMN_DIR / "industrial_routing.dmn").read_bytes()
        config.upload_table(session, ctx, table, UNIT)
        trigger = {"kind": "event", "event": "Demo Requested"}
        config.set_settings(session, ctx, {"triggers": [trigger], "max_open_per_rep": 10_000}, UNIT)
        made = collect.create_source(session, ctx, SourceIn(bu=UNIT, name="官网 Web"))
        session.commit()
        return collect.get_source(session, ctx, made.id)


def _calls(rng: random.Random, user: str, message_id: str) -> list[dict[str, Any]]:
    """A new customer tells who they are, then asks for a demo."""
    traits = {"province": rng.choice(PROVINCES), "industry": rng.choice(INDUSTRIES),
              "company": f"Bench Co {user}"}  # fmt: skip
    return [
        {"type": "identify", "userId": user, "traits": traits, "messageId": f"{message_id}-id"},
        {"type": "track", "userId": user, "event": "Demo Requested", "messageId": message_id,
         "properties": {"campaign": "bench"}},
    ]  # fmt: skip


def _decided(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return len(session.scalars(select(LeadRow.id).where(LeadRow.status != "new")).all())


def _collect(
    sessions: sessionmaker[Session], committed: dict[str, datetime], leads: int, sent: float
) -> Run:
    with sessions() as session:
        seq_to_message = dict(
            session.execute(
                select(EventRow.seq, EventRow.message_id).where(
                    EventRow.message_id.in_(list(committed))
                )
            ).all()
        )
        rows = list(session.scalars(select(LeadRow)))
        delays, assigned, pooled, facts = [], 0, 0, []
        for lead in rows:
            message = seq_to_message.get(lead.reasons[0].get("seq"))
            if message is None:
                continue
            decided = lead.assigned_at or lead.updated_at
            delays.append((decided - committed[message]).total_seconds())
            assigned += lead.status == "assigned"
            pooled += lead.status == "pooled"
            facts.append(facts_of(session, lead))
    if len(delays) < leads:
        raise BenchFailed(f"{leads - len(delays)} of {leads} triggers made no decided lead")
    return Run(delays, assigned, pooled, sent, facts)


def _baseline(path: Path, leads: int, rate_per_s: float) -> list[float]:
    """The same triggers and assignments by hand: a writer, a poller, one wall clock."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.executescript(
        """
        PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
        CREATE TABLE trig(id INTEGER PRIMARY KEY, at REAL);
        CREATE TABLE rep(n INTEGER PRIMARY KEY);
        CREATE TABLE assigned(trig_id INTEGER PRIMARY KEY, rep INTEGER, at REAL);
        """
    )
    db.executemany("INSERT INTO rep VALUES (?)", [(n,) for n in range(18)])
    db.close()
    done = threading.Event()

    def poll() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        while True:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO assigned SELECT t.id, t.id % 18, ? FROM trig t "
                "WHERE t.id > (SELECT coalesce(max(trig_id), 0) FROM assigned)",
                (time.time(),),
            )
            conn.execute("COMMIT")
            (left,) = conn.execute(
                "SELECT count(*) FROM trig WHERE id NOT IN (SELECT trig_id FROM assigned)"
            ).fetchone()
            if done.is_set() and left == 0:
                break
            time.sleep(IDLE_WAIT_S)
        conn.close()

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    writer = sqlite3.connect(path, isolation_level=None)
    for k in paced(leads, rate_per_s):  # paced as ours is
        writer.execute("INSERT INTO trig(id, at) VALUES (?, ?)", (k + 1, time.time()))
    done.set()
    poller.join(timeout=WAIT_S)
    rows = writer.execute(
        "SELECT assigned.at - trig.at FROM trig JOIN assigned ON assigned.trig_id = trig.id"
    ).fetchall()
    writer.close()
    return [max(0.0, delay) for (delay,) in rows]
