"""Events in the way the tracking API takes them (``parse_batch`` + ``ingest``), then the
worker's consumers and tasks: what a test then asserts is what a user would see."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from oneloop.collect import consumers
from oneloop.collect.consumers import Task
from oneloop.collect.ingest import ingest
from oneloop.collect.schemas import Source
from oneloop.collect.spec import parse_batch
from oneloop.core.clock import FixedClock
from oneloop.core.db import session_factory
from oneloop.governance.consent_tracking import ConsentConsumer, IdentityFollower
from oneloop.identity.resolver import ResolveConsumer
from oneloop.profiles.live import IdentityChanges, ProfilesConsumer

Feed = Callable[..., None]


def make_feed(
    engine: Engine, session: Session, source: Source, clock: FixedClock, tasks: Sequence[Task] = ()
) -> Feed:
    """``feed``, with more of the worker's tasks run after the consumers (a bus relay)."""
    counter = iter(range(10_000))
    run_tasks = [IdentityChanges(clock=clock), IdentityFollower(clock=clock), *tasks]

    def run(*calls: dict[str, object], into: Source = source) -> None:
        batch = [
            {"messageId": f"m{next(counter)}", "timestamp": clock.now().isoformat(), **c}
            for c in calls
        ]
        messages, invalid = parse_batch({"batch": batch}, clock.now())
        ingest(session, into, messages, invalid, received_at=clock.now(), origin="api", ref="t")
        session.commit()
        consumers.drain(
            session_factory(engine),
            [ResolveConsumer(), ProfilesConsumer(clock=clock), ConsentConsumer(clock=clock)],
            tasks=run_tasks,
            clock=clock,
        )
        session.expire_all()

    return run
