"""``bench segments``: a small run on SQLite, and the generated people checked against what the
pipeline itself computes from their events. No timed assertions: speed lives in the report."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from oneloop.bench import segments
from oneloop.cli.main import app
from oneloop.collect import consumers
from oneloop.collect.ingest import ingest
from oneloop.collect.spec import parse_batch
from oneloop.core.config import Settings
from oneloop.core.context import system_context
from oneloop.core.db import create_db_engine, session_factory
from oneloop.identity import service as identity
from oneloop.migrations import upgrade
from oneloop.profiles import scores, traits
from oneloop.profiles.models import (
    ProfileEventRow,
    ProfileRow,
    ProfileUnitRow,
    ScoreHistoryRow,
    ScoreRow,
    TraitRow,
)

runner = CliRunner()


def test_bench_segments_reports_the_issue_keys_with_counts_equal_to_hand_written_sql(
    tmp_path: Path,
) -> None:
    out = tmp_path / "segments.json"
    args = ["--profiles", "2000", "--events", "300", "--rate", "20", "--seconds", "2"]
    result = runner.invoke(app, ["bench", "segments", *args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert set(report) >= {"name", "metrics", "baseline", "ratio", "env"}
    metrics, baseline = report["metrics"], report["baseline"]
    assert report["name"] == "segments" and metrics["profiles"] == 2000
    for key in ("full_eval_s_max", "estimate_ms_max", "events_per_s", "event_to_entry_p99_ms"):
        assert metrics[key] > 0, key
    assert baseline["full_eval_s_max"] > 0 and report["ratio"] > 0
    for code in segments.RULES:
        members = metrics[f"{code}_members"]
        assert 0 < members < 2000, code  # every rule picks someone, and not everyone
        assert baseline[f"{code}_members"] == members, code
    assert metrics["event_to_entry_p99_ms"] >= metrics["event_to_entry_p50_ms"]
    assert metrics["latency_events"] == 40 and metrics["live_events"] == 300


def test_generated_people_are_what_the_pipeline_computes_from_their_events(
    tmp_path: Path,
) -> None:
    engine = create_db_engine(Settings(database_url=f"sqlite:///{tmp_path}/people.db"))
    upgrade(engine)
    setup, made = segments.populate(engine, 300, seed=3)
    assert made.profiles == made.added == 300 and made.events > 300 * 4
    sessions = session_factory(engine)
    ctx = system_context()
    with sessions() as session:
        stats = session.execute(
            select(
                ProfileEventRow.profile_id,
                func.min(ProfileEventRow.at),
                func.max(ProfileEventRow.at),
                func.count(),
            ).group_by(ProfileEventRow.profile_id)
        ).all()
        rows = session.scalars(select(ProfileRow))
        profiles = {p.id: (p.first_seen_at, p.last_seen_at, p.events) for p in rows}
        assert {pid: (first, last, n) for pid, first, last, n in stats} == profiles
        unit_ids = set(session.scalars(select(ProfileUnitRow.profile_id)))
        assert unit_ids == set(profiles)
        assert max(session.scalars(select(ProfileEventRow.seq))) < 0  # older than the log
        # recomputing every trait and score from the events changes nothing
        assert traits.recompute(session, ctx, bu=segments.SHOP) == 0
        stored = dict(session.execute(select(ScoreRow.profile_id, ScoreRow.value)).all())
        awards = session.scalar(select(func.count()).select_from(ScoreHistoryRow))
        assert stored and 300 * 0.2 < len(stored) < 300 * 0.5
        scores.recompute(session, ctx, bu=segments.SHOP)
        session.flush()
        again = dict(session.execute(select(ScoreRow.profile_id, ScoreRow.value)).all())
        assert set(again) == set(stored)
        assert all(math.isclose(again[p], v, rel_tol=1e-4) for p, v in stored.items())
        assert session.scalar(select(func.count()).select_from(ScoreHistoryRow)) == awards
        cities = session.scalar(
            select(func.count()).select_from(TraitRow).where(TraitRow.key == "golden:city")
        )
        assert 300 * 0.65 < (cities or 0) < 300 * 0.95
        session.rollback()
        # a new event of a generated person lands on their own profile
        person = identity.find_profile(session, ctx, "user_id", f"{segments.SHOP}:m0000007")
        assert person in profiles
        now = datetime.now(UTC)
        call = {"type": "track", "event": "Coupon Claimed", "userId": "m0000007", "messageId": "t"}
        messages, invalid = parse_batch({"batch": [call]}, now)
        ingest(
            session, setup.shop_source, messages, invalid, received_at=now, origin="api", ref="t"
        )
        session.commit()
    consumers.drain(sessions, consumers.registered(), tasks=consumers.registered_tasks())
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(ProfileRow)) == 300
        new = select(ProfileEventRow.profile_id).where(ProfileEventRow.seq > 0)
        assert session.scalars(new).one() == person
    engine.dispose()
