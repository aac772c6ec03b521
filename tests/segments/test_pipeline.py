"""Segments live from the real pipeline: events in through ingest, resolved, projected by the
profiles consumer, which calls ``segments.live.refresh``; a merge moves the absorbed profile
out of its segments."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine, select
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
from oneloop.profiles.models import ProfileRow
from oneloop.segments import service
from oneloop.segments.models import ChangeRow, MemberRow
from oneloop.segments.schemas import SegmentIn
from tests.factories import make_group, make_source

Feed = Callable[..., None]


@pytest.fixture
def feed(engine: Engine, session: Session, ctx: Context, clock: FixedClock) -> Feed:
    make_group(session, ctx)
    source: Source = make_source(session, ctx)[0]
    counter = iter(range(10_000))

    def run(*calls: dict[str, object]) -> None:
        batch = [
            {"messageId": f"m{next(counter)}", "timestamp": clock.now().isoformat(), **c}
            for c in calls
        ]
        messages, invalid = parse_batch({"batch": batch}, clock.now())
        ingest(session, source, messages, invalid, received_at=clock.now(), origin="api", ref="t")
        session.commit()
        consumers.drain(
            session_factory(engine),
            [ResolveConsumer(), ProfilesConsumer(clock=clock)],
            tasks=[IdentityChanges(clock=clock)],
            clock=clock,
        )
        session.expire_all()

    return run


def test_events_move_profiles_in_and_a_merge_moves_the_absorbed_out(
    session: Session, ctx: Context, feed: Feed
) -> None:
    bought = {"event": "Order Completed"}
    segment = service.create_segment(
        session, ctx, SegmentIn(code="buyers", name="购买者 Buyers", rule=bought, bu="north")
    )
    session.commit()
    feed({"type": "track", "anonymousId": "a1", "event": "Order Completed", "properties": {}})
    feed({"type": "track", "userId": "u1", "event": "Order Completed", "properties": {}})
    members = set(session.scalars(select(MemberRow.profile_id)))
    assert len(members) == 2
    causes = session.execute(select(ChangeRow.kind, ChangeRow.cause)).all()
    assert [tuple(c) for c in causes] == [("enter", "event"), ("enter", "event")]

    feed({"type": "identify", "anonymousId": "a1", "userId": "u1", "traits": {}})
    survivor = session.scalars(select(ProfileRow.id)).one()
    assert set(session.scalars(select(MemberRow.profile_id))) == {survivor}
    (absorbed,) = members - {survivor}
    left = session.execute(
        select(ChangeRow.kind, ChangeRow.cause).where(ChangeRow.profile_id == absorbed)
    ).all()
    assert [tuple(c) for c in left][-1] == ("exit", "merge")
    assert service.get_segment(session, ctx, segment.id).size == 1
