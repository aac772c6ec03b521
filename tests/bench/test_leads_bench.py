"""``bench leads``: a small run through the command line, on SQLite and PostgreSQL, reports
the issue's keys with every trigger accounted for. No timed assertions: speed lives in the
report."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from oneloop.cli.main import app


def test_bench_leads_reports_the_issue_keys(db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "leads.json"
    env = {"ONELOOP_BENCH_POSTGRES_URL": db_url if db_url.startswith("postgresql") else ""}
    result = CliRunner().invoke(
        app, ["bench", "leads", "--leads", "30", "--rate", "30", "--json", str(out)], env=env
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text("utf-8"))
    metrics = report["metrics"]
    for key in ("trigger_to_assign_p50_ms", "trigger_to_assign_p99_ms", "decisions_per_s"):
        assert metrics[key] > 0, key
    assert metrics["leads"] == 30 and metrics["assigned"] + metrics["pooled"] == 30
    assert metrics["database"] == ("postgresql" if db_url.startswith("postgresql") else "sqlite")
    assert report["baseline"]["trigger_to_assign_p99_ms"] > 0 and report["ratio"] > 0
