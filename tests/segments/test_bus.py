"""Segment entries and exits reach bus subscribers: events in through ingest, resolved,
projected, segments refreshed, and the ``segments.membership`` topic read by a consumer group
on the database bus and on Redis (relayed by the worker's bus task)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from oneloop.collect import consumers
from oneloop.collect.ingest import ingest
from oneloop.collect.schemas import Source
from oneloop.collect.spec import parse_batch
from oneloop.core.bus import RELAY, Bus, LocalBus, Message, offsets
from oneloop.core.bus_redis import FIRST_BACKOFF, RedisBus, Relay, connect
from oneloop.core.clock import FixedClock
from oneloop.core.context import Context
from oneloop.core.db import session_factory
from oneloop.identity.resolver import ResolveConsumer
from oneloop.profiles.live import IdentityChanges, ProfilesConsumer
from oneloop.segments import service
from oneloop.segments.feed import TOPIC
from oneloop.segments.models import ChangeRow
from oneloop.segments.schemas import SegmentIn
from tests.factories import make_group, make_source
from tests.pipeline import make_feed
from tests.servers import RedisServer

Send = Callable[..., None]


@pytest.fixture(params=["local", "redis"])
def relay(request: pytest.FixtureRequest) -> Iterator[Relay | None]:
    """The worker's bus task when the test runs on Redis; none on the database bus."""
    if request.param == "local":
        yield None
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    made = Relay(connect(server.url), maxlen=10_000)
    yield made
    made.client.close()


@pytest.fixture
def send(
    engine: Engine, session: Session, source: Source, clock: FixedClock, relay: Relay | None
) -> Send:
    """Ingest calls as the tracking API would, then run the worker once: the consumers, the
    profiles' identity task and, on Redis, the relay."""
    return make_feed(engine, session, source, clock, [relay] if relay else [])


def subscriber(engine: Engine, relay: Relay | None, name: str = "journeys-1") -> Bus:
    sessions = session_factory(engine)
    if relay is None:
        return LocalBus(sessions)
    return RedisBus(relay.client, sessions, consumer=name)


def read_all(bus: Bus, group: str) -> list[Message]:
    found: list[Message] = []
    while batch := bus.read(group, TOPIC, limit=50):
        found += batch
        bus.ack(group, TOPIC, batch)
    return found


def make_shanghai(session: Session, ctx: Context) -> str:
    rule = {"trait": "city", "op": "eq", "value": "上海"}
    made = service.create_segment(
        session, ctx, SegmentIn(code="shanghai", name="上海客户", rule=rule, bu="north")
    )
    session.commit()
    return made.id


def test_entering_and_leaving_a_segment_is_published_in_order(
    session: Session, ctx: Context, engine: Engine, send: Send, relay: Relay | None
) -> None:
    segment_id = make_shanghai(session, ctx)
    send({"type": "identify", "userId": "u1", "traits": {"city": "上海"}})
    send({"type": "identify", "userId": "u2", "traits": {"city": "北京"}})
    send({"type": "identify", "userId": "u1", "traits": {"city": "北京"}})

    bus = subscriber(engine, relay)
    got = read_all(bus, "journeys")
    recorded = session.execute(select(ChangeRow.seq, ChangeRow.at).order_by(ChangeRow.seq)).all()
    assert [m.seq for m in got] == [seq for seq, _ in recorded]
    entered, exited = got
    profile_id = entered.key
    assert [m.topic for m in got] == [TOPIC, TOPIC]
    assert entered.body == {
        "segment_id": segment_id,
        "segment_code": "shanghai",
        "bu_id": service.get_segment(session, ctx, segment_id).bu_id,
        "profile_id": profile_id,
        "kind": "entered",
        "cause": "event",
        "at": recorded[0].at.isoformat(),
    }
    assert exited.key == profile_id and exited.at == recorded[1].at
    assert (exited.body["kind"], exited.body["cause"]) == ("exited", "event")

    assert [m.seq for m in read_all(bus, "sales")] == [m.seq for m in got]  # another group
    assert read_all(bus, "journeys") == []
    bus.close()


def test_redis_down_does_not_stop_the_consumers_and_entries_arrive_when_it_is_back(
    session: Session,
    ctx: Context,
    engine: Engine,
    clock: FixedClock,
    redis_server: RedisServer,
) -> None:
    make_group(session, ctx)
    source: Source = make_source(session, ctx)[0]
    relay = Relay(connect(redis_server.url))
    sessions = session_factory(engine)
    worker = [ResolveConsumer(), ProfilesConsumer(clock=clock)]
    tasks = [IdentityChanges(clock=clock), relay]
    make_shanghai(session, ctx)
    redis_server.stop()

    for n, city in enumerate(["上海", "北京"]):
        call = {"type": "identify", "userId": "u1", "traits": {"city": city}}
        batch = [{**call, "messageId": f"m{n}"}]
        messages, invalid = parse_batch({"batch": batch}, clock.now())
        ingest(session, source, messages, invalid, received_at=clock.now(), origin="api", ref="t")
        session.commit()
        consumers.drain(sessions, worker, tasks=tasks, clock=clock)  # raises nothing

    kinds = session.scalars(select(ChangeRow.kind).order_by(ChangeRow.seq)).all()
    assert kinds == ["enter", "exit"]  # the consumers did their work
    with sessions() as s:
        assert offsets(s).get((RELAY, TOPIC), 0) == 0
    assert relay.failures >= 1

    redis_server.start()
    clock.advance(FIRST_BACKOFF * 2**relay.failures)
    consumers.drain(sessions, worker, tasks=tasks, clock=clock)
    got = read_all(RedisBus(relay.client, sessions, consumer="j"), "journeys")
    assert [m.body["kind"] for m in got] == ["entered", "exited"]
