"""The bus on Redis Streams, for work spread over processes (DESIGN.md, Scale).

The ``Relay`` task runs in the worker beside the log's consumers: it copies each feed's new
messages into the stream ``oneloop:{topic}`` (``XADD``, trimmed to about
``ONELOOP_BUS_STREAM_MAXLEN`` entries) and then moves its cursor (``core_bus_offset``, group
``@relay``) in the worker's transaction. A crash between the two sends that batch again:
at-least-once, and each entry carries its feed ``seq`` so that subscribers deduplicate. A
Redis that is down costs only the relay: it logs, backs off and leaves its cursor where it
was, and the consumers' other work goes on.

``RedisBus`` reads with consumer groups (created at the stream's start, ``MKSTREAM``, on first
use): ``XREADGROUP`` hands each entry to one reader of the group, ``XACK`` ends it, and
``XAUTOCLAIM`` hands an entry left unacknowledged longer than the claim timeout (its reader
died) to the next reader that asks.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy.orm import Session, sessionmaker

from oneloop.core.bus import (
    READ_LIMIT,
    RELAY,
    BusUnavailable,
    Feed,
    GroupStatus,
    Message,
    TopicStatus,
    check_group,
    feeds,
    get_feed,
    lock_offset,
    move_offset,
    offsets,
)
from oneloop.core.clock import Clock

log = logging.getLogger(__name__)

STREAM_PREFIX = "oneloop:"
RELAY_BATCH = 500
CONNECT_TIMEOUT_S = 2.0
COMMAND_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0  # a subscriber's socket: a blocking read must return before this
MAX_BLOCK_MS = 25_000
FIRST_BACKOFF = timedelta(seconds=1)
MOST_BACKOFF = timedelta(seconds=60)


def stream_key(topic: str) -> str:
    return f"{STREAM_PREFIX}{topic}"


def connect(url: str, socket_timeout: float = COMMAND_TIMEOUT_S) -> redis.Redis:
    """A client that tries each command once: the relay backs off on its own schedule and a
    subscriber's loop reads again, whereas the client's own retries would hold the worker
    loop for seconds on every step while Redis is down."""
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=socket_timeout,
        retry=Retry(NoBackoff(), 0),
    )


def where(client: redis.Redis) -> str:
    """The server's address for messages, never the URL (it may hold a password)."""
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


def _unavailable(client: redis.Redis, exc: redis.RedisError) -> BusUnavailable:
    return BusUnavailable(
        f"the bus at {where(client)} did not answer ({type(exc).__name__}: {exc}); retry shortly"
    )


# --- the relay ------------------------------------------------------------------------------


@dataclass
class Relay:
    """A worker task (``run(session, clock) -> int``): one batch per feed into its stream.

    ``feeds`` defaults to every registered feed, looked up at each run so that a domain
    imported after the relay was made is relayed too.
    """

    client: redis.Redis
    maxlen: int | None = None
    feeds: Sequence[Feed] | None = None
    batch: int = RELAY_BATCH
    name: str = "bus.relay"
    failures: int = 0
    retry_at: datetime | None = None

    @classmethod
    def from_url(cls, url: str, *, maxlen: int | None = None) -> Relay:
        return cls(connect(url), maxlen=maxlen)

    def run(self, session: Session, clock: Clock) -> int:
        """Moves nothing while backing off; a Redis error ends the run with what was moved
        so far (whose cursors commit with the caller's transaction) and is not raised."""
        now = clock.now()
        if self.retry_at is not None and now < self.retry_at:
            return 0
        moved = 0
        for feed in feeds() if self.feeds is None else self.feeds:
            seq = lock_offset(session, RELAY, feed.topic, clock)
            messages = feed.after(session, seq, self.batch)
            if not messages:
                continue
            try:
                self._send(feed.topic, messages)
            except redis.RedisError as exc:
                self._failed(exc, now)
                return moved
            move_offset(session, RELAY, feed.topic, messages[-1].seq, clock)
            moved += len(messages)
        if self.failures:
            log.info("bus.relay_recovered", extra={"failures": self.failures})
        self.failures, self.retry_at = 0, None
        return moved

    def _send(self, topic: str, messages: Sequence[Message]) -> None:
        pipe = self.client.pipeline(transaction=False)
        key = stream_key(topic)
        for message in messages:
            pipe.xadd(key, _entry(message), maxlen=self.maxlen, approximate=True)
        pipe.execute()

    def _failed(self, exc: redis.RedisError, now: datetime) -> None:
        self.failures += 1
        wait = min(FIRST_BACKOFF * 2 ** (self.failures - 1), MOST_BACKOFF)
        self.retry_at = now + wait
        log.warning(
            "bus.relay_failed",
            extra={
                "bus": where(self.client),
                "error": f"{type(exc).__name__}: {exc}"[:300],
                "failures": self.failures,
                "retry_in_s": wait.total_seconds(),
            },
        )


def _entry(message: Message) -> dict[str, str]:
    return {
        "seq": str(message.seq),
        "key": message.key,
        "at": message.at.isoformat(),
        "body": orjson.dumps(message.body).decode(),
    }


def _message(topic: str, ref: str, fields: dict[str, str]) -> Message:
    return Message(
        topic=topic,
        seq=int(fields["seq"]),
        key=fields["key"],
        body=orjson.loads(fields["body"]),
        at=datetime.fromisoformat(fields["at"]),
        ref=ref,
    )


# --- subscribers ----------------------------------------------------------------------------


class RedisBus:
    """Consumer groups on the relayed streams. ``consumer`` names this reader within its
    groups: readers with different names share a group's messages."""

    def __init__(
        self,
        client: redis.Redis,
        sessions: sessionmaker[Session],
        *,
        consumer: str | None = None,
        claim_timeout_ms: int = 60_000,
        feeds: Sequence[Feed] | None = None,
    ) -> None:
        self.client = client
        self.consumer = consumer or f"{socket.gethostname()}:{os.getpid()}"
        self._sessions = sessions
        self._claim_timeout_ms = claim_timeout_ms
        self._feeds = feeds
        self._groups: set[tuple[str, str]] = set()

    @classmethod
    def from_url(
        cls,
        url: str,
        sessions: sessionmaker[Session],
        *,
        consumer: str | None = None,
        claim_timeout_ms: int = 60_000,
    ) -> RedisBus:
        return cls(
            connect(url, READ_TIMEOUT_S),
            sessions,
            consumer=consumer,
            claim_timeout_ms=claim_timeout_ms,
        )

    def read(
        self, group: str, topic: str, limit: int = READ_LIMIT, block_ms: int = 0
    ) -> list[Message]:
        """Entries another reader left unacknowledged past the claim timeout first, else new
        ones. ``block_ms`` 0 does not wait (Redis's BLOCK 0 would wait for ever)."""
        get_feed(topic, self._feeds)
        check_group(group)
        key = stream_key(topic)
        try:
            self._ensure_group(key, group)
            try:
                return self._read(key, group, topic, limit, block_ms)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                # The stream was deleted (FLUSHALL, a new server): make the group again.
                self._groups.discard((key, group))
                self._ensure_group(key, group)
                return self._read(key, group, topic, limit, block_ms)
        except redis.RedisError as exc:
            raise _unavailable(self.client, exc) from exc

    def ack(self, group: str, topic: str, messages: Sequence[Message]) -> None:
        get_feed(topic, self._feeds)
        check_group(group)
        refs = [m.ref for m in messages if m.ref]
        if not refs:
            return
        try:
            self.client.xack(stream_key(topic), group, *refs)
        except redis.RedisError as exc:
            raise _unavailable(self.client, exc) from exc

    def status(self) -> list[TopicStatus]:
        with self._sessions() as session:
            known = offsets(session)
            latest = {f.topic: f.latest(session) for f in self._all_feeds()}
        found = []
        try:
            for topic, seq in latest.items():
                key = stream_key(topic)
                groups = self.client.xinfo_groups(key) if self.client.exists(key) else []
                found.append(
                    TopicStatus(
                        topic=topic,
                        latest_seq=seq,
                        relayed_seq=known.get((RELAY, topic), 0),
                        stream_length=int(self.client.xlen(key)),
                        groups=tuple(
                            GroupStatus(
                                name=str(g["name"]),
                                pending=int(g["pending"]),
                                lag=None if g.get("lag") is None else int(g["lag"]),
                            )
                            for g in groups
                        ),
                    )
                )
        except redis.RedisError as exc:
            raise _unavailable(self.client, exc) from exc
        return found

    def close(self) -> None:
        self.client.close()

    def _all_feeds(self) -> list[Feed]:
        return feeds() if self._feeds is None else list(self._feeds)

    def _ensure_group(self, key: str, group: str) -> None:
        """From the stream's first entry, so a new group gets what the stream still holds."""
        if (key, group) in self._groups:
            return
        try:
            self.client.xgroup_create(key, group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups.add((key, group))

    def _read(self, key: str, group: str, topic: str, limit: int, block_ms: int) -> list[Message]:
        claimed = self._claim(key, group, topic, limit)
        if claimed:
            return claimed
        block = min(block_ms, MAX_BLOCK_MS) if block_ms > 0 else None
        answer = self.client.xreadgroup(group, self.consumer, {key: ">"}, count=limit, block=block)
        return [
            _message(topic, ref, fields)
            for _, entries in answer or []
            for ref, fields in entries
            if ref is not None
        ]

    def _claim(self, key: str, group: str, topic: str, limit: int) -> list[Message]:
        """``XAUTOCLAIM``: entries idle past the timeout become this reader's. Entries trimmed
        away before anyone acknowledged them come back as deleted: logged, since that group
        has lost them (the stream's MAXLEN is too small for how far it fell behind)."""
        answer = self.client.xautoclaim(
            key, group, self.consumer, self._claim_timeout_ms, start_id="0-0", count=limit
        )
        entries, deleted = answer[1], answer[2] if len(answer) > 2 else []
        if deleted:
            log.warning(
                "bus.messages_trimmed",
                extra={"topic": topic, "group": group, "lost": len(deleted)},
            )
        return [_message(topic, ref, fields) for ref, fields in entries if ref is not None]
