"""``bench identity``: a small run through the command line scores the planted duplicates
(``demo_*``) beside every record (``demo_all_*``), for us and the union-find baseline. No
timed assertions: speed lives in the report."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from oneloop.cli.main import app


def test_bench_identity_scores_the_planted_duplicates_and_every_record(tmp_path: Path) -> None:
    out = tmp_path / "identity.json"
    # 150 customers: fewer leave the matcher's EM too few matches to train on
    result = CliRunner().invoke(
        app, ["bench", "identity", "--customers", "150", "--no-febrl", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text("utf-8"))
    metrics, baseline = report["metrics"], report["baseline"]
    for key in (
        "demo_precision",
        "demo_recall",
        "demo_f1",
        "demo_all_precision",
        "demo_all_recall",
    ):
        assert 0 < metrics[key] <= 1 and 0 < baseline[key] <= 1, key
    # the planted duplicates are some of the records: not those no evidence ties to anyone
    assert 0 < metrics["demo_records"] < metrics["demo_all_records"]
    # union-find joins everything any evidence joins: it misses no planted pair, ...
    assert baseline["demo_recall"] == 1.0
    # ... and scored without the records nobody can place, both resolvers do no worse
    assert metrics["demo_recall"] >= metrics["demo_all_recall"]
    assert baseline["demo_recall"] >= baseline["demo_all_recall"]
    # the rules' point: union-find merges the switchboards and family computers too
    assert metrics["demo_precision"] > baseline["demo_precision"]
    assert metrics["demo_deterministic_recall"] <= metrics["demo_recall"]
