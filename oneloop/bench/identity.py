"""``bench identity``: resolution throughput and accuracy on the demo's identity mess, and our
probabilistic matching configuration on FEBRL4.

A demo group is generated (or an existing demo directory used), loaded into a scratch SQLite
database and resolved by the log consumer exactly as the worker runs it. The baseline is the
simplest resolver there is, in the same run: connected components (union-find, in memory)
over the same normalised identifiers, with no limits, no shared-identifier detection and
nothing stored. It is faster and less precise: the ratio and the precision gap are the price
and the point of the rules.

Demo scores are pairwise, on the demo's planted duplicates (issue 5): the records the truth
file gives one person that evidence in the data ties together. Which those are is derived
from the data and the truth, not from any resolver (``scoring.planted_groups``): per true
person, her records are joined when they carry the same identifier, normalised as the
resolver reads it (``extract``: 138 0013 8000 and +8613800138000 meet), except an identifier
that records of more than one person carry (a switchboard, a family computer,
test@test.com), which is evidence of nothing. The data's other events count as evidence too
(the truth names an event only where an identifier first showed, yet a later login is what
ties a cookie to an account). Each connected component is a planted identity:
``demo_recall`` is the share of pairs within one that we put in one profile;
``demo_precision`` the share of the pairs we put together, among the ``demo_records`` in a
planted identity of two or more, that are one person. A record alone in its planted identity
(one visit from a fresh cookie, an order known only by a masked phone) shares no evidence
with any other record of its person, so no resolver can place it: it is left out of both.

``demo_all_*`` score every record of the truth file, those too: their recall is capped near
the share of true pairs that evidence joins at all (about 0.46 on the demo), and their
precision counts the anonymous page views on a household's shared computer, which go to the
one member who signed in there, as no identifier tells who sat at the keyboard.
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
from oneloop.identity.scoring import (
    Components,
    Key,
    Truth,
    planted_groups,
    predict,
    reachable,
    read_truth,
    record_keys,
    resolved,
    scores,
)
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
            "demo_* score the planted duplicates (records evidence ties to their person), "
            "demo_all_* every record; both after deterministic resolution and probabilistic "
            "matching (auto-merges only; queued pairs are not counted); "
            "demo_deterministic_* before matching",
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
        planted = _planted(session, truth)
        before = resolved(session, truth, DEFAULT_RULES)
        started = time.perf_counter()
        matched = run_match(session, system_context(), DEFAULT_RULES, retrain=True)
        session.commit()
        match_seconds = time.perf_counter() - started
        predicted = resolved(session, truth, DEFAULT_RULES)
        by_message, by_identifier, base_seconds = _components(session)
    base = predict(truth, by_message, by_identifier, DEFAULT_RULES)
    ours, deterministic, base_planted = (
        reachable(p, truth.person, planted) for p in (predicted, before, base)
    )
    everyone, base_everyone = scores(predicted, truth.person), scores(base, truth.person)
    metrics: Metrics = {
        "events": done,
        "resolve_seconds": round(seconds, 2),
        "resolve_events_per_s": rate(done, seconds),
        "demo_precision": round(ours.precision, 4),
        "demo_recall": round(ours.recall, 4),
        "demo_f1": round(ours.f1, 4),
        "demo_records": ours.records,
        "demo_deterministic_precision": round(deterministic.precision, 4),
        "demo_deterministic_recall": round(deterministic.recall, 4),
        "demo_deterministic_f1": round(deterministic.f1, 4),
        "match_seconds": round(match_seconds, 2),
        "match_records": matched.records,
        "match_merged": matched.merged,
        "match_queued": matched.queued,
        "demo_all_precision": round(everyone.precision, 4),
        "demo_all_recall": round(everyone.recall, 4),
        "demo_all_f1": round(everyone.f1, 4),
        "demo_all_records": everyone.records,
        "demo_persons": everyone.persons,
        "demo_profiles": everyone.profiles,
    }
    baseline: Metrics = {
        "resolve_events_per_s": rate(done, base_seconds),
        "demo_precision": round(base_planted.precision, 4),
        "demo_recall": round(base_planted.recall, 4),
        "demo_f1": round(base_planted.f1, 4),
        "demo_all_precision": round(base_everyone.precision, 4),
        "demo_all_recall": round(base_everyone.recall, 4),
        "demo_all_f1": round(base_everyone.f1, 4),
        "demo_profiles": base_everyone.profiles,
    }
    return metrics, baseline


def _planted(session: Session, truth: Truth) -> dict[str, str]:
    """Each truth record's planted identity (``scoring.planted_groups``): an event's
    identifiers as ``extract`` reads them from the log, a file record's from the truth (its
    event in the log has a message id of the importer's making) as ``predict`` reads them;
    every other event of the log is evidence."""
    units = unit_codes(session)
    events = {n.split("\t", 1)[1]: n for n in truth.identifiers if n.startswith("events/")}
    keys: dict[str, list[Key]] = {}
    evidence: list[list[Key]] = []
    position = Position()
    while batch := read_after(session, position, 5000):
        for event in batch:
            found = [(k.type, k.value) for k in extract(event, DEFAULT_RULES, units).keys]
            name = events.get(event.message_id)
            if name is not None:
                keys[name] = found
            elif len(found) > 1:
                evidence.append(found)
        position = batch[-1].position
    for name, identifiers in truth.identifiers.items():
        if name not in keys:  # a file record, or an event the log refused
            keys[name] = record_keys(*name.split("\t", 1), identifiers, DEFAULT_RULES)
    return planted_groups(truth.person, keys, evidence)


def _components(session: Session) -> tuple[dict[str, str], dict[tuple[str, str], str], float]:
    """Union-find over every event's normalised identifiers; timed from reading the log to
    the last union, as the resolver's step is."""
    components = Components()
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
            components.join(keys)
        position = events[-1].position
    seconds = time.perf_counter() - started
    for key in components.parent:
        root = components.find(key)
        sizes[root] = sizes.get(root, 0) + 1

    def cluster(key: tuple[str, str]) -> str:
        root = components.find(key)
        return ("single:" if sizes[root] == 1 else "") + f"{root[0]}:{root[1]}"

    by_message = {m: cluster(k) for m, k in first.items()}
    by_identifier = {k: cluster(k) for k in components.parent}
    return by_message, by_identifier, seconds
