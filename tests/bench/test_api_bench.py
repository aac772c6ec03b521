"""``bench api``: a small run against the real server reports the issue's keys, with every
read answered. No timed assertions: speed lives in the report."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from oneloop.cli.main import app
from tests.servers import free_port


def test_bench_api_reports_the_issue_keys(tmp_path: Path) -> None:
    out = tmp_path / "api.json"
    args = ["bench", "api", "--customers", "50", "--rate", "20", "--seconds", "1"]
    result = CliRunner().invoke(app, [*args, "--port", str(free_port()), "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text("utf-8"))
    metrics = report["metrics"]
    for key in ("rps", "p50_ms", "p95_ms", "p99_ms"):
        assert metrics[key] > 0, key
    assert metrics["errors"] == 0, report["notes"]
    assert {"by_phone_p99_ms", "timeline_p99_ms", "segments_p99_ms", "graphql_p99_ms"} <= set(
        metrics
    )
    assert report["baseline"]["p99_ms"] > 0 and report["baseline"]["errors"] == 0
