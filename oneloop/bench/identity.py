"""``bench identity``: resolution throughput and accuracy on the demo's identity mess, and our
probabilistic matching configuration on FEBRL4.

A demo group is generated (or an existing demo directory used), loaded into a scratch SQLite
database and resolved by the log consumer exactly as the worker runs it. The baseline is the
simplest resolver there is, in the same run: connected components (union-find, in memory)
over the same normalised identifiers, with no limits, no shared-identifier detection and
nothing stored. It is faster and less precise: the ratio and the precision gap are the price
and the point of the rules.

Demo scores are pairwise over every record of the truth file. Many records carry nothing any
resolver can link (one anonymous visit from a fresh cookie), so the ``demo_linkable_*``
figures repeat the scoring over the records whose identifiers were seen together with another
identifier somewhere in the data, which is the ceiling of deterministic resolution.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from oneloop.bench.febrl import run_febrl4
from oneloop.bench.harness import NO_PROGRESS, BenchReport, Metrics, Progress, rate, ratio
from oneloop.collect import consumers
from oneloop.collect.log import Position, read_after
from oneloop.collect.models import EventRow
from oneloop.core.config import Settings
from oneloop.core.context import system_context
from oneloop.core.db import create_db_engine, session_factory
from oneloop.demo.generate import generate
from oneloop.demo.load import load_demo
from oneloop.identity.probabilistic import run_match
from oneloop.identity.resolver import ResolveConsumer, extract, unit_codes
from oneloop.identity.rules import DEFAULT_RULES
from oneloop.identity.scoring import Truth, predict, read_truth, resolved, scores
from oneloop.migrations import upgrade

BATCH = 1000


def run(
    *,
    customers: int = 2000,
    seed: int = 7,
    demo_dir: Path | None = None,
    febrl: bool = True,
    on_progress: Progress = NO_PROGRESS,
) -> BenchReport:
    with tempfile.TemporaryDirectory(prefix="oneloop-bench-identity-") as tmp:
        where = demo_dir or Path(tmp) / "demo"
        if demo_dir is None:
            generate(where, customers=customers, seed=seed)
        engine = create_db_engine(Settings(database_url=f"sqlite:///{tmp}/bench.db"))
        upgrade(engine)
        sessions = session_factory(engine)
        with sessions() as session:
            load_demo(session, system_context(), where)
        truth = read_truth(where / "truth" / "identities.csv")
        metrics, baseline = _measure(sessions, truth, on_progress)
        engine.dispose()
    if febrl:
        metrics |= run_febrl4()
    return BenchReport(
        name="identity",
        metrics=metrics,
        baseline=baseline,
        ratio=ratio(metrics["resolve_events_per_s"], baseline["resolve_events_per_s"]),
        notes=[
            f"demo: {demo_dir or f'{customers} customers, seed {seed}'}",
            "demo_* are after deterministic resolution and probabilistic matching (auto-merges "
            "only; queued pairs are not counted); demo_deterministic_* before matching",
        ],
    )


def _measure(
    sessions: sessionmaker[Session], truth: Truth, on_progress: Progress
) -> tuple[Metrics, Metrics]:
    consumer = ResolveConsumer()
    with sessions() as session:
        total = session.query(EventRow).count()
    done = 0
    started = time.perf_counter()
    while True:
        step = consumers.step(sessions, consumer, batch=BATCH)
        done += step.processed + step.failed
        on_progress(done, total)
        if step.processed + step.failed == 0:
            break
    seconds = time.perf_counter() - started
    with sessions() as session:
        deterministic = scores(resolved(session, truth, DEFAULT_RULES), truth.person)
        started = time.perf_counter()
        matched = run_match(session, system_context(), DEFAULT_RULES, retrain=True)
        session.commit()
        match_seconds = time.perf_counter() - started
        predicted = resolved(session, truth, DEFAULT_RULES)
        by_message, by_identifier, base_seconds = _components(session)
    base = predict(truth, by_message, by_identifier, DEFAULT_RULES)
    ours, base_all = scores(predicted, truth.person), scores(base, truth.person)
    linkable = {
        name: person
        for name, person in truth.person.items()
        if not base[name].startswith(("single:", "unresolved:"))
    }
    ours_linkable, base_linkable = scores(predicted, linkable), scores(base, linkable)
    metrics: Metrics = {
        "events": done,
        "resolve_seconds": round(seconds, 2),
        "resolve_events_per_s": rate(done, seconds),
        "demo_deterministic_precision": round(deterministic.precision, 4),
        "demo_deterministic_recall": round(deterministic.recall, 4),
        "demo_deterministic_f1": round(deterministic.f1, 4),
        "match_seconds": round(match_seconds, 2),
        "match_records": matched.records,
        "match_merged": matched.merged,
        "match_queued": matched.queued,
        "demo_precision": round(ours.precision, 4),
        "demo_recall": round(ours.recall, 4),
        "demo_f1": round(ours.f1, 4),
        "demo_records": ours.records,
        "demo_persons": ours.persons,
        "demo_profiles": ours.profiles,
        "demo_linkable_records": len(linkable),
        "demo_linkable_precision": round(ours_linkable.precision, 4),
        "demo_linkable_recall": round(ours_linkable.recall, 4),
        "demo_linkable_f1": round(ours_linkable.f1, 4),
    }
    baseline: Metrics = {
        "resolve_events_per_s": rate(done, base_seconds),
        "demo_precision": round(base_all.precision, 4),
        "demo_recall": round(base_all.recall, 4),
        "demo_f1": round(base_all.f1, 4),
        "demo_profiles": base_all.profiles,
        "demo_linkable_precision": round(base_linkable.precision, 4),
        "demo_linkable_recall": round(base_linkable.recall, 4),
        "demo_linkable_f1": round(base_linkable.f1, 4),
    }
    return metrics, baseline


def _components(session: Session) -> tuple[dict[str, str], dict[tuple[str, str], str], float]:
    """Union-find over every event's normalised identifiers; timed from reading the log to
    the last union, as the resolver's step is."""
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(x: tuple[str, str]) -> tuple[str, str]:
        root = x
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    units = unit_codes(session)
    first: dict[str, tuple[str, str]] = {}
    sizes: dict[tuple[str, str], int] = {}
    started = time.perf_counter()
    position = Position()
    while events := read_after(session, position, 5000):
        for event in events:
            keys = [(k.type, k.value) for k in extract(event, DEFAULT_RULES, units).keys]
            if not keys:
                continue
            first[event.message_id] = keys[0]
            root = find(keys[0])
            for key in keys[1:]:
                other = find(key)
                if other != root:
                    parent[other] = root
        position = events[-1].position
    seconds = time.perf_counter() - started
    for key in parent:
        root = find(key)
        sizes[root] = sizes.get(root, 0) + 1

    def cluster(key: tuple[str, str]) -> str:
        root = find(key)
        return ("single:" if sizes[root] == 1 else "") + f"{root[0]}:{root[1]}"

    by_message = {m: cluster(k) for m, k in first.items()}
    by_identifier = {k: cluster(k) for k in parent}
    return by_message, by_identifier, seconds
