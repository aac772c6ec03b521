"""The bus's delivery contract, on both implementations (the database bus and Redis Streams)
and both databases: every group gets every message in order, the readers of a group share
them, what is not acknowledged comes again, and the relay is at-least-once through a crash and
a Redis outage. The feed here is a list the test appends to: what is tested is the bus."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from oneloop.collect import consumers
from oneloop.core.bus import (
    RELAY,
    Bus,
    BusUnavailable,
    LocalBus,
    Message,
    bus_for,
    bus_tasks,
    offsets,
)
from oneloop.core.bus_redis import (
    FIRST_BACKOFF,
    READ_TIMEOUT_S,
    RedisBus,
    Relay,
    connect,
    stream_key,
)
from oneloop.core.clock import FixedClock
from oneloop.core.config import Settings
from oneloop.core.db import session_factory
from oneloop.core.errors import NotFound, ValidationFailed
from tests.servers import RedisServer

TOPIC = "test.things"
AT = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@dataclass
class ListFeed:
    """A feed over a list: ``add`` is a domain committing changes."""

    topic: str = TOPIC
    items: list[Message] = field(default_factory=list)

    def add(self, n: int) -> list[int]:
        start = len(self.items) + 1
        for seq in range(start, start + n):
            self.items.append(Message(TOPIC, seq, f"p{seq % 3}", {"n": seq, "名": "上海"}, AT))
        return list(range(start, start + n))

    def after(self, session: Session, seq: int, limit: int) -> list[Message]:
        return [m for m in self.items if m.seq > seq][:limit]

    def latest(self, session: Session) -> int:
        return self.items[-1].seq if self.items else 0


@dataclass
class Harness:
    """One bus implementation over one database: ``reader(name)`` is a subscriber process
    (on the database bus, the readers of one process share one bus), ``restart`` forgets
    every reader, ``publish`` runs the worker's bus tasks."""

    kind: str
    sessions: sessionmaker[Session]
    feed: ListFeed
    clock: FixedClock
    server: RedisServer | None
    claim_timeout_ms: int = 60_000
    _readers: dict[str, Bus] = field(default_factory=dict)
    _relay: Relay | None = None

    def reader(self, name: str = "a", claim_timeout_ms: int | None = None) -> Bus:
        timeout = self.claim_timeout_ms if claim_timeout_ms is None else claim_timeout_ms
        if self.kind == "local":
            name = "process"
        if name not in self._readers:
            if self.server is None:
                bus: Bus = LocalBus(
                    self.sessions, feeds=[self.feed], claim_timeout_ms=timeout, clock=self.clock
                )
            else:
                bus = RedisBus(
                    connect(self.server.url, READ_TIMEOUT_S),
                    self.sessions,
                    consumer=name,
                    claim_timeout_ms=timeout,
                    feeds=[self.feed],
                )
            self._readers[name] = bus
        return self._readers[name]

    @property
    def relay(self) -> Relay:
        assert self.server is not None
        if self._relay is None:
            self._relay = Relay(connect(self.server.url), maxlen=10_000, feeds=[self.feed])
        return self._relay

    def publish(self) -> None:
        if self.server is not None:
            consumers.drain(self.sessions, [], tasks=[self.relay], clock=self.clock)

    def restart(self) -> None:
        self.close()
        self._readers.clear()

    def close(self) -> None:
        for bus in self._readers.values():
            bus.close()


def _harness(
    kind: str, engine: Engine, request: pytest.FixtureRequest, clock: FixedClock
) -> Iterator[Harness]:
    server = request.getfixturevalue("redis_server") if kind == "redis" else None
    harness = Harness(kind, session_factory(engine), ListFeed(), clock, server)
    yield harness
    harness.close()


@pytest.fixture(params=["local", "redis"])
def bus(request: pytest.FixtureRequest, engine: Engine, clock: FixedClock) -> Iterator[Harness]:
    yield from _harness(request.param, engine, request, clock)


@pytest.fixture
def redis_bus(
    request: pytest.FixtureRequest, engine: Engine, clock: FixedClock
) -> Iterator[Harness]:
    yield from _harness("redis", engine, request, clock)


def seqs(messages: list[Message]) -> list[int]:
    return [m.seq for m in messages]


def read_all(bus: Bus, group: str, *, ack: bool = True) -> list[Message]:
    found: list[Message] = []
    while batch := bus.read(group, TOPIC, limit=4):
        found += batch
        if ack:
            bus.ack(group, TOPIC, batch)
    return found


# --- delivery -------------------------------------------------------------------------------


def test_every_group_gets_every_message_in_order(bus: Harness) -> None:
    sent = bus.feed.add(10)
    bus.publish()
    reader = bus.reader()
    journeys = read_all(reader, "journeys")
    assert seqs(journeys) == sent
    assert journeys[0] == bus.feed.items[0]  # topic, seq, key, body and time survive the trip
    assert journeys[0].body == {"n": 1, "名": "上海"}
    assert seqs(read_all(reader, "sales")) == sent  # another group: all of them again
    assert read_all(reader, "journeys") == []  # acknowledged: not again

    more = bus.feed.add(3)
    bus.publish()
    assert seqs(read_all(reader, "journeys")) == more


def test_the_readers_of_one_group_share_its_messages(bus: Harness) -> None:
    sent = bus.feed.add(6)
    bus.publish()
    a, b = bus.reader("a"), bus.reader("b")
    first = a.read("journeys", TOPIC, limit=2)
    second = b.read("journeys", TOPIC, limit=2)
    third = a.read("journeys", TOPIC, limit=10)
    assert sorted(seqs(first + second + third)) == sent  # each message to one reader
    assert len(set(seqs(first + second + third))) == len(sent)
    for reader, batch in ((a, first), (b, second), (a, third)):
        reader.ack("journeys", TOPIC, batch)
    assert a.read("journeys", TOPIC) == [] and b.read("journeys", TOPIC) == []


def test_a_message_not_acknowledged_comes_again_after_a_restart(bus: Harness) -> None:
    sent = bus.feed.add(5)
    bus.publish()
    reader = bus.reader("worker-1")
    done = reader.read("journeys", TOPIC, limit=2)
    reader.ack("journeys", TOPIC, done)
    reader.read("journeys", TOPIC, limit=2)  # handled, then the process died before acking

    bus.restart()  # the same worker name again (Redis), or a new process (database)
    again = read_all(bus.reader("worker-1", claim_timeout_ms=0), "journeys")
    assert seqs(again) == sent[2:]  # the unacknowledged ones and the rest, not the acked


def test_a_dead_readers_messages_go_to_another_after_the_claim_timeout(bus: Harness) -> None:
    sent = bus.feed.add(4)
    bus.publish()
    ticks = [0.0]
    if bus.kind == "local":  # one process: its readers are threads sharing one LocalBus
        shared = LocalBus(
            bus.sessions, feeds=[bus.feed], claim_timeout_ms=60_000, now=lambda: ticks[0]
        )
        dead, alive, patient = shared, shared, shared
    else:
        dead, alive = bus.reader("dead"), bus.reader("alive", claim_timeout_ms=0)
        patient = bus.reader("patient")
    lost = dead.read("journeys", TOPIC, limit=2)
    assert seqs(lost) == sent[:2]
    rest = patient.read("journeys", TOPIC, limit=10)
    assert seqs(rest) == sent[2:]  # within the timeout: the dead reader's are not handed out
    patient.ack("journeys", TOPIC, rest)
    ticks[0] = 61.0  # the database bus's clock; Redis's alive reader has a timeout of 0
    claimed = alive.read("journeys", TOPIC, limit=10)
    assert seqs(claimed) == sent[:2]
    alive.ack("journeys", TOPIC, claimed)
    assert alive.read("journeys", TOPIC) == []


def test_acknowledged_positions_survive_a_restart_of_the_database_bus(
    engine: Engine, clock: FixedClock
) -> None:
    feed = ListFeed()
    sent = feed.add(6)
    sessions = session_factory(engine)
    first = LocalBus(sessions, feeds=[feed], clock=clock)
    got = first.read("journeys", TOPIC, limit=4)
    first.ack("journeys", TOPIC, got[2:])  # out of order: 3 and 4 first
    with sessions() as session:
        assert offsets(session).get(("journeys", TOPIC), 0) == 0  # 1 and 2 still open
    first.ack("journeys", TOPIC, got[:2])
    with sessions() as session:
        assert offsets(session)[("journeys", TOPIC)] == 4
    again = LocalBus(sessions, feeds=[feed], clock=clock)
    assert seqs(read_all(again, "journeys")) == sent[4:]
    (status,) = again.status()
    assert status.latest_seq == 6 and [(g.name, g.acked_seq) for g in status.groups] == [
        ("journeys", 6)
    ]


def test_a_blocking_read_returns_what_is_there_without_waiting(bus: Harness) -> None:
    sent = bus.feed.add(2)
    bus.publish()
    assert seqs(bus.reader().read("journeys", TOPIC, limit=10, block_ms=5_000)) == sent


# --- the relay ------------------------------------------------------------------------------


def test_a_relay_crash_before_its_commit_sends_the_batch_again_and_seq_dedupes(
    redis_bus: Harness,
) -> None:
    sent = redis_bus.feed.add(5)
    relay = redis_bus.relay
    with redis_bus.sessions() as session, session.begin():
        assert relay.run(session, redis_bus.clock) == 5  # XADD done…
        session.rollback()  # …and the worker died before its transaction committed
    with redis_bus.sessions() as session:
        assert offsets(session).get((RELAY, TOPIC), 0) == 0
    redis_bus.publish()
    assert redis_bus.relay.client.xlen(stream_key(TOPIC)) == 10  # the batch went twice

    got = read_all(redis_bus.reader(), "journeys")
    assert sorted(seqs(got)) == sorted(sent * 2)
    seen: set[int] = set()
    handled = [m for m in got if m.seq not in seen and not seen.add(m.seq)]
    assert seqs(handled) == sent  # deduplicated by seq, still in order
    with redis_bus.sessions() as session:
        assert offsets(session)[(RELAY, TOPIC)] == 5
    (status,) = redis_bus.reader().status()
    assert (status.latest_seq, status.relayed_seq, status.stream_length) == (5, 5, 10)
    assert [(g.name, g.pending) for g in status.groups] == [("journeys", 0)]


def test_redis_down_stops_only_the_relay_and_the_messages_arrive_once_it_is_back(
    redis_bus: Harness, redis_server: RedisServer
) -> None:
    redis_server.stop()
    sent = redis_bus.feed.add(3)
    redis_bus.publish()  # raises nothing into the worker loop
    relay = redis_bus.relay
    assert relay.failures == 1 and relay.retry_at is not None
    with redis_bus.sessions() as session:
        assert offsets(session).get((RELAY, TOPIC), 0) == 0  # the cursor stayed
    with pytest.raises(BusUnavailable, match="did not answer"):
        redis_bus.reader().read("journeys", TOPIC)

    redis_server.start()
    redis_bus.publish()
    with redis_bus.sessions() as session:
        assert offsets(session).get((RELAY, TOPIC), 0) == 0  # backing off: not tried yet
    redis_bus.clock.advance(FIRST_BACKOFF)
    redis_bus.publish()
    assert relay.failures == 0
    assert seqs(read_all(redis_bus.reader(), "journeys")) == sent


def test_the_relay_backs_off_longer_after_each_failure(engine: Engine, clock: FixedClock) -> None:
    feed = ListFeed()
    feed.add(1)
    relay = Relay(connect("redis://127.0.0.1:1/0"), feeds=[feed])  # nothing listens there
    sessions = session_factory(engine)
    waits = []
    for _ in range(8):
        if relay.retry_at is not None:
            assert consumers.run_task(sessions, relay, clock) == 0  # too early: not tried
            clock.at = relay.retry_at
        assert consumers.run_task(sessions, relay, clock) == 0
        assert relay.retry_at is not None
        waits.append((relay.retry_at - clock.now()).total_seconds())
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60]
    assert relay.failures == 8


# --- choosing and refusing ------------------------------------------------------------------


def test_bus_for_follows_the_bus_url_setting(settings: Settings, engine: Engine) -> None:
    sessions = session_factory(engine)
    assert isinstance(bus_for(settings, sessions), LocalBus)
    assert bus_tasks(settings) == []
    on_redis = settings.model_copy(update={"bus_url": "redis://127.0.0.1:1/0"})
    chosen = bus_for(on_redis, sessions, consumer="w1")
    assert isinstance(chosen, RedisBus) and chosen.consumer == "w1"
    (relay,) = bus_tasks(on_redis)
    assert isinstance(relay, Relay) and relay.maxlen == settings.bus_stream_maxlen
    chosen.close()


def test_an_unknown_topic_or_a_bad_group_is_refused(bus: Harness) -> None:
    reader = bus.reader()
    with pytest.raises(NotFound, match=r"no topic 'nope\.nothing'.*test\.things"):
        reader.read("journeys", "nope.nothing")
    with pytest.raises(NotFound, match="nope"):
        reader.ack("journeys", "nope.nothing", [])
    for bad in ("", "@relay", "has space", "x" * 101):
        with pytest.raises(ValidationFailed) as caught:
            reader.read(bad, TOPIC)
        assert caught.value.errors[0].loc == ("group",)
