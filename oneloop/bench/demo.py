"""``bench demo``: how fast the demo generator writes a group's worth of data.

The baseline is the raw floor of the same output: the generated events parsed back and written
again with nothing but ``json.dumps`` and a buffered file, so the ratio shows what generating
(choosing people, journeys, identity mess) costs over just serialising.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from oneloop.bench.harness import NO_PROGRESS, BenchReport, Progress, rate, ratio, timed
from oneloop.demo.generate import generate


def run(
    *, customers: int = 5000, seed: int = 7, on_progress: Progress = NO_PROGRESS
) -> BenchReport:
    with tempfile.TemporaryDirectory(prefix="oneloop-bench-demo-") as tmp:
        out = Path(tmp) / "demo"
        with timed() as gen:
            summary = generate(out, customers=customers, seed=seed, on_progress=on_progress)
        docs = [
            json.loads(line)
            for path in sorted((out / "events").glob("*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines()
        ]
        with timed() as raw, (Path(tmp) / "raw.jsonl").open("w", encoding="utf-8") as fh:
            for doc in docs:
                fh.write(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n")
        total_bytes = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    events_per_s = rate(summary.events, gen.seconds)
    raw_per_s = rate(len(docs), raw.seconds)
    return BenchReport(
        name="demo",
        metrics={
            "customers": customers,
            "events": summary.events,
            "seconds": round(gen.seconds, 3),
            "customers_per_s": rate(customers, gen.seconds),
            "events_per_s": events_per_s,
            "mb_written": round(total_bytes / 1e6, 2),
        },
        baseline={"events_per_s": raw_per_s, "seconds": round(raw.seconds, 3)},
        ratio=ratio(events_per_s, raw_per_s),
        notes=[f"seed {seed}; baseline re-serialises the same events with json.dumps only"],
    )
