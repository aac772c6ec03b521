"""Profiles tests feed events the way the tracking API does (``parse_batch`` + ``ingest``),
then run resolution and the profiles pipeline: what a test asserts is what a user would see."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from oneloop.collect import consumers
from oneloop.collect.ingest import ingest
from oneloop.collect.schemas import Source
from oneloop.collect.spec import parse_batch
from oneloop.core.clock import FixedClock
from oneloop.core.context import Context
from oneloop.core.db import session_factory
from oneloop.identity.resolver import ResolveConsumer
from oneloop.profiles.live import IdentityChanges, ProfilesConsumer
from tests.factories import make_group, make_source

Feed = Callable[..., None]


@pytest.fixture
def source(session: Session, ctx: Context) -> Source:
    make_group(session, ctx)
    made, _ = make_source(session, ctx)
    return made


@pytest.fixture
def feed(engine: Engine, session: Session, source: Source, clock: FixedClock) -> Feed:
    """Ingest calls as the HTTP API would, then run resolution and the profiles pipeline."""
    counter = iter(range(10_000))

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
            [ResolveConsumer(), ProfilesConsumer(clock=clock)],
            tasks=[IdentityChanges(clock=clock)],
            clock=clock,
        )
        session.expire_all()

    return run
