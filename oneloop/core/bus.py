"""The event bus: how one domain's changes reach the workers of another (journeys follow
segment entries and exits), in one process or spread over several.

The outbox is each domain's own append-only change table (``segments_change``,
``identity_change``): a domain registers a ``Feed`` that reads it after a position, and
nothing is written twice. Positions (``seq``) are commit order, which the domains guarantee by
a lock on their writers, so a reader that remembers the last position it finished never skips
a row that commits late.

Delivery is at-least-once per consumer group: a message read and not acknowledged comes again
(after a restart, or after ``claim_timeout_ms`` to another reader of the group), so a
subscriber must tolerate a repeat; each message carries its feed position ``seq``, which is
the key to deduplicate on. Two groups each get every message; the readers of one group share
them.

Two implementations: ``LocalBus`` (the default) reads the feeds from the database with a
durable offset per group and topic (``core_bus_offset``); ``RedisBus`` (``ONELOOP_BUS_URL``)
reads Redis streams that the ``Relay`` task fills, with Redis consumer groups
(``oneloop/core/bus_redis.py``). Core imports no domain: the domains register their feeds
when their package is imported.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, TypeAlias, TypeVar

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from oneloop.core.clock import Clock, SystemClock
from oneloop.core.config import Settings
from oneloop.core.errors import FieldError, NotFound, Unavailable, ValidationFailed
from oneloop.core.models import BusOffsetRow

if TYPE_CHECKING:
    from oneloop.core.bus_redis import Relay

# A JSON document: what a message body may hold, so that every transport can carry it.
JsonValue: TypeAlias = str | int | float | bool | list["JsonValue"] | dict[str, "JsonValue"] | None
Body: TypeAlias = dict[str, JsonValue]

GROUP = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
RELAY = "@relay"  # the relay's row in core_bus_offset; GROUP refuses the name, so no group has it
READ_LIMIT = 100
POLL_S = 0.2  # how often a blocking LocalBus read looks at the database again


class BusUnavailable(Unavailable):
    """The bus's server is down or unreachable: retry later; nothing was acknowledged."""

    code = "bus-unavailable"
    title = "Bus unavailable"


@dataclass(frozen=True)
class Message:
    """One change of a feed. ``key`` is what ordering matters for (the profile id): a
    subscriber that partitions work should partition on it. ``ref`` is where the transport
    holds the message (a Redis stream entry id), which ``ack`` needs; it is not part of the
    message, so a re-sent copy of a message is equal to the first."""

    topic: str
    seq: int
    key: str
    body: Body
    at: datetime
    ref: str = field(default="", compare=False)

    def as_json(self) -> Body:
        return {
            "topic": self.topic,
            "seq": self.seq,
            "key": self.key,
            "at": self.at.isoformat(),
            "body": self.body,
        }


class Feed(Protocol):
    """A domain's change table as a topic. ``after`` returns the changes after ``seq`` in
    ``seq`` order, at most ``limit``, and must never return later a row with a smaller
    ``seq`` than one it already returned (the domain's writers ensure commit order)."""

    topic: str

    def after(self, session: Session, seq: int, limit: int) -> list[Message]: ...

    def latest(self, session: Session) -> int:
        """The newest position (0 when empty)."""
        ...


@dataclass(frozen=True)
class GroupStatus:
    """Where a consumer group stands on a topic: ``acked_seq`` (LocalBus: everything up to it
    is acknowledged), ``pending`` (Redis: read, not yet acknowledged) and ``lag`` (Redis:
    entries not yet read); None where the implementation does not know it."""

    name: str
    acked_seq: int | None = None
    pending: int | None = None
    lag: int | None = None


@dataclass(frozen=True)
class TopicStatus:
    topic: str
    latest_seq: int
    relayed_seq: int | None = None
    stream_length: int | None = None
    groups: tuple[GroupStatus, ...] = ()


class Bus(Protocol):
    """What a subscriber uses. ``read`` returns up to ``limit`` messages for ``group``
    (waiting up to ``block_ms`` when there are none); ``ack`` says they are done. Until
    acknowledged, a message is delivered again to the group, so handle each idempotently
    (by ``seq``)."""

    def read(
        self, group: str, topic: str, limit: int = READ_LIMIT, block_ms: int = 0
    ) -> list[Message]: ...

    def ack(self, group: str, topic: str, messages: Sequence[Message]) -> None: ...

    def status(self) -> list[TopicStatus]: ...

    def close(self) -> None: ...


# --- the registry of feeds ------------------------------------------------------------------

_FEEDS: dict[str, Feed] = {}
F = TypeVar("F", bound=Feed)


def register_feed(feed: F) -> F:
    """Called by a domain when its package is imported; registering a topic again replaces
    it (a module imported twice)."""
    _FEEDS[feed.topic] = feed
    return feed


def feeds() -> list[Feed]:
    return list(_FEEDS.values())


def get_feed(topic: str, among: Sequence[Feed] | None = None) -> Feed:
    known = {f.topic: f for f in (feeds() if among is None else among)}
    if topic not in known:
        names = ", ".join(sorted(known)) or "none"
        raise NotFound(f"no topic {topic!r} on the bus; topics: {names}", topic=topic)
    return known[topic]


def check_group(group: str) -> str:
    if not GROUP.fullmatch(group):
        raise ValidationFailed(
            f"{group!r} is not a consumer group name",
            [FieldError(("group",), "1-100 letters, digits and . _ : -, not starting with one")],
        )
    return group


# --- durable offsets ------------------------------------------------------------------------


def lock_offset(session: Session, group: str, topic: str, clock: Clock) -> int:
    """The group's position on the topic, creating it at 0; on PostgreSQL the row stays
    locked until the transaction ends, so two relays (or two ackers) take turns."""
    query = select(BusOffsetRow.seq).where(
        BusOffsetRow.consumer_group == group, BusOffsetRow.topic == topic
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    seq = session.scalar(query)
    if seq is None:
        session.execute(
            insert(BusOffsetRow).values(
                consumer_group=group, topic=topic, seq=0, updated_at=clock.now()
            )
        )
        session.flush()
        seq = session.scalar(query)
    return int(seq or 0)


def move_offset(session: Session, group: str, topic: str, seq: int, clock: Clock) -> None:
    """Forward only: a late writer with an older position must not move it back."""
    session.execute(
        update(BusOffsetRow)
        .where(
            BusOffsetRow.consumer_group == group,
            BusOffsetRow.topic == topic,
            BusOffsetRow.seq < seq,
        )
        .values(seq=seq, updated_at=clock.now())
    )


def offsets(session: Session) -> dict[tuple[str, str], int]:
    """Every ``(group, topic) → seq``, the relay's included (group ``RELAY``)."""
    rows = session.execute(
        select(BusOffsetRow.consumer_group, BusOffsetRow.topic, BusOffsetRow.seq)
    )
    return {(group, topic): seq for group, topic, seq in rows}


# --- one process: the database is the bus ---------------------------------------------------


@dataclass
class _Delivery:
    message: Message
    at: float  # time.monotonic() when handed out
    is_acked: bool = False


@dataclass
class _Lease:
    """What this process has handed out of one topic to one group: ``offset`` is durable
    (everything up to it is acknowledged), ``read_upto`` the newest position handed out, and
    ``out`` the messages between the two in ``seq`` order."""

    offset: int
    read_upto: int
    out: dict[int, _Delivery] = field(default_factory=dict)


class LocalBus:
    """The bus of one process: reads each feed from the database after the group's durable
    offset; ``ack`` moves the offset over the acknowledged prefix. The readers of a group in
    this process share its messages; a message not acknowledged within ``claim_timeout_ms``
    is handed out again, and a restart starts again from the offset, so nothing is lost.

    Two processes reading the same group each get every message (there is no lease across
    processes): spread a group over processes with Redis (``ONELOOP_BUS_URL``).
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        feeds: Sequence[Feed] | None = None,
        claim_timeout_ms: int = 60_000,
        clock: Clock | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._feeds = feeds
        self._claim_timeout_s = claim_timeout_ms / 1000
        self._clock = clock or SystemClock()
        self._now = now
        self._lock = threading.Lock()
        self._leases: dict[tuple[str, str], _Lease] = {}

    def read(
        self, group: str, topic: str, limit: int = READ_LIMIT, block_ms: int = 0
    ) -> list[Message]:
        feed = get_feed(topic, self._feeds)
        check_group(group)
        deadline = time.monotonic() + max(block_ms, 0) / 1000
        while True:
            found = self._take(feed, group, limit)
            left = deadline - time.monotonic()
            if found or left <= 0:
                return found
            time.sleep(min(POLL_S, left))  # polling the database: no notification to wait on

    def ack(self, group: str, topic: str, messages: Sequence[Message]) -> None:
        get_feed(topic, self._feeds)
        check_group(group)
        with self._lock:
            lease = self._leases.get((group, topic))
            if lease is None:
                return  # nothing was handed out here: nothing to acknowledge
            for message in messages:
                if (out := lease.out.get(message.seq)) is not None:
                    out.is_acked = True
            done = lease.offset
            for seq, out in lease.out.items():
                if not out.is_acked:
                    break
                done = seq
            if done == lease.offset:
                return
            with self._sessions() as session, session.begin():
                lock_offset(session, group, topic, self._clock)
                move_offset(session, group, topic, done, self._clock)
            lease.offset = done
            lease.out = {s: o for s, o in lease.out.items() if s > done}

    def status(self) -> list[TopicStatus]:
        with self._sessions() as session:
            known = offsets(session)
            return [
                TopicStatus(
                    topic=feed.topic,
                    latest_seq=feed.latest(session),
                    groups=tuple(
                        GroupStatus(name=group, acked_seq=seq)
                        for (group, topic), seq in sorted(known.items())
                        if topic == feed.topic and group != RELAY
                    ),
                )
                for feed in (feeds() if self._feeds is None else self._feeds)
            ]

    def close(self) -> None:
        """Nothing to release: the sessions belong to the caller."""

    def _take(self, feed: Feed, group: str, limit: int) -> list[Message]:
        """Messages handed out too long ago and not acknowledged first, else new ones."""
        with self._lock:
            now = self._now()
            lease = self._lease(group, feed.topic)
            stale = [
                out
                for out in lease.out.values()
                if not out.is_acked and now - out.at >= self._claim_timeout_s
            ][:limit]
            if stale:
                for out in stale:
                    out.at = now
                return [out.message for out in stale]
            with self._sessions() as session:
                found = feed.after(session, lease.read_upto, limit)
            for message in found:
                lease.out[message.seq] = _Delivery(message, now)
            if found:
                lease.read_upto = found[-1].seq
            return found

    def _lease(self, group: str, topic: str) -> _Lease:
        lease = self._leases.get((group, topic))
        if lease is None:
            with self._sessions() as session:
                offset = session.scalar(
                    select(BusOffsetRow.seq).where(
                        BusOffsetRow.consumer_group == group, BusOffsetRow.topic == topic
                    )
                )
            lease = self._leases[(group, topic)] = _Lease(offset or 0, offset or 0)
        return lease


# --- choosing ------------------------------------------------------------------------------


def bus_for(
    settings: Settings, sessions: sessionmaker[Session], *, consumer: str | None = None
) -> Bus:
    """Redis when ``ONELOOP_BUS_URL`` is set, else the database. ``consumer`` names this
    reader within its groups on Redis (default: host and process id)."""
    if not settings.bus_url:
        return LocalBus(sessions, claim_timeout_ms=settings.bus_claim_timeout_ms)
    from oneloop.core.bus_redis import RedisBus

    return RedisBus.from_url(
        settings.bus_url,
        sessions,
        consumer=consumer,
        claim_timeout_ms=settings.bus_claim_timeout_ms,
    )


def bus_tasks(settings: Settings) -> list[Relay]:
    """The tasks the worker runs beside the consumers for the bus: the relay into Redis when
    a bus URL is set; none for the database bus, whose subscribers read the feeds directly.
    Callers add them to ``registered_tasks()`` explicitly."""
    if not settings.bus_url:
        return []
    from oneloop.core.bus_redis import Relay

    return [Relay.from_url(settings.bus_url, maxlen=settings.bus_stream_maxlen or None)]
