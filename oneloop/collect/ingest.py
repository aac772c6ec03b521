"""Writing received events into the log: de-duplicated, dead-lettered, counted. The one door.

The HTTP tracking API, the file importers, dead-letter replay and the demo loader all call
``ingest``; it runs inside the caller's transaction, so "acknowledged" can mean "committed".

De-duplication is per source on ``messageId``. The unique key is a 64-bit hash of
(source, messageId, probe): 8 bytes keep the random-insert index small. When an insert hits an
existing key, the stored row's source and message id are compared: the same means a duplicate,
different means a hash collision, and the event moves on to the next probe. So a collision can
never drop an event, and no source can suppress another's.

The hot path is Core ``INSERT … ON CONFLICT DO NOTHING RETURNING``, one statement for the batch
(SQLAlchemy's insertmanyvalues), no ORM objects per event.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Column, MetaData, Table, Text, insert, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from oneloop.collect import plan_check
from oneloop.collect.models import DeadLetterRow, EventRow, IngestBatchRow
from oneloop.collect.schemas import Source
from oneloop.collect.spec import Invalid, Message
from oneloop.core.ids import new_id
from oneloop.governance import pii

EVENTS: Table = EventRow.__table__  # type: ignore[assignment]  # a mapped class's Table
DEAD_LETTERS: Table = DeadLetterRow.__table__  # type: ignore[assignment]
LEDGER: Table = IngestBatchRow.__table__  # type: ignore[assignment]
MAX_PROBES = 8
# The writing transaction's id, so log readers can tell when every earlier writer has finished.
PG_TX_ID = literal_column("pg_current_xact_id()::text::bigint")


@dataclass(frozen=True)
class SourceKey:
    """Enough of a source to file a dead letter under (a log consumer has no ``Source``)."""

    id: str
    bu_id: str


@dataclass
class IngestResult:
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    violations: int = 0
    refused: list[Invalid] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)

    def add(self, other: IngestResult) -> None:
        self.received += other.received
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.dead_lettered += other.dead_lettered
        self.violations += other.violations
        self.refused.extend(other.refused)
        self.seqs.extend(other.seqs)


def ingest(
    session: Session,
    source: Source,
    messages: Sequence[Message],
    invalid: Sequence[Invalid] = (),
    *,
    received_at: datetime,
    origin: str,
    ref: str,
    keep_refused: bool = True,
) -> IngestResult:
    """Store ``messages`` once each and ``invalid`` as dead letters; the caller commits.

    Everything refused (``invalid``, and events a tracking plan blocks) is in ``result.refused``;
    it is stored as new dead letters unless ``keep_refused`` is false, which dead-letter replay
    uses because the refused items are dead letters already.
    """
    result = IngestResult(received=len(messages) + len(invalid))
    unique: dict[str, Message] = {}
    for message in messages:
        unique.setdefault(message.message_id, message)
    result.duplicates = len(messages) - len(unique)
    kept = list(unique.values())
    # A tracking plan (collect/plan_check.py) keeps or blocks each event; without one, no query.
    verdict = plan_check.check(session, source, kept) if source.tracking_plan_id else None
    if verdict is not None:
        kept, invalid = verdict.kept, [*invalid, *verdict.blocked]
    # Sensitive personal data (an id-card number) never reaches the log in clear; checked
    # against the plan first, so that a plan may still require its format.
    guard = pii.protector(session)
    if guard is not None:
        kept = [_protected(guard, m) for m in kept]
    inserted = _insert_once(session, source, kept, received_at, origin)
    result.accepted = len(inserted)
    result.duplicates += len(kept) - len(inserted)
    result.seqs = sorted(inserted.values())
    if verdict is not None:
        result.violations = plan_check.record_violations(
            session,
            source,
            verdict,
            accepted=inserted,
            at=received_at,
            include_blocked=keep_refused,
        )
    if invalid:
        if keep_refused:
            dead_letter(session, source, invalid, received_at=received_at, origin=origin, ref=ref)
            result.dead_lettered = len(invalid)
        result.refused = list(invalid)
    last = max((m.timestamp for m in kept), default=None)
    session.execute(
        insert(LEDGER).values(
            bu_id=source.bu_id,
            source_id=source.id,
            origin=origin,
            at=received_at,
            received=result.received,
            accepted=result.accepted,
            duplicates=result.duplicates,
            dead_lettered=result.dead_lettered,
            violations=result.violations,
            last_event_at=last,
        )
    )
    return result


def dead_letter(
    session: Session,
    source: Source | SourceKey,
    invalid: Iterable[Invalid],
    *,
    received_at: datetime,
    origin: str,
    ref: str,
) -> list[str]:
    """Keep refused calls whole, with the reason, for a later replay; returns their ids.
    Whole but for sensitive values, which are kept protected as the log keeps them (a call
    that is not JSON at all cannot be looked into, and is kept as received)."""
    invalid = list(invalid)
    guard = pii.protector(session) if invalid else None
    rows = [
        {
            "id": new_id(received_at),
            "bu_id": source.bu_id,
            "source_id": source.id,
            "origin": origin,
            "reason": item.reason,
            "detail": item.detail[:4000],
            "errors": [{"path": e.path, "msg": e.msg} for e in item.errors],
            "ref": ref[:300],
            "message_id": item.message_id,
            "payload": payload_text(item.raw if guard is None else guard.document(item.raw)),
            "received_at": received_at,
            "status": "waiting",
            "attempts": 0,
            "resolved_at": None,
        }
        for item in invalid
    ]
    if rows:
        session.execute(insert(DEAD_LETTERS), rows)
    return [r["id"] for r in rows]


def _protected(guard: pii.Protector, m: Message) -> Message:
    documents = (m.properties, m.traits, m.context)
    properties, traits, context = protected = tuple(guard.document(d) for d in documents)
    if all(a is b for a, b in zip(protected, documents, strict=True)):
        return m  # the common case: nothing sensitive, nothing copied
    return replace(m, properties=properties, traits=traits, context=context)


def payload_text(raw: object) -> str:
    """What was received, as text: JSON for a parsed document, the text itself otherwise."""
    if isinstance(raw, bytes):
        return raw.decode("utf-8", errors="replace")
    if isinstance(raw, str):
        return raw
    return orjson.dumps(raw, default=str).decode()


def dedupe_key(source_id: str, message_id: str, probe: int = 0) -> int:
    digest = hashlib.blake2b(
        f"{source_id}\x00{message_id}\x00{probe}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


def _insert_once(
    session: Session,
    source: Source,
    messages: list[Message],
    received_at: datetime,
    origin: str,
) -> dict[str, int]:
    """Insert the messages not yet in the log; returns message id → seq of those inserted."""
    inserted: dict[str, int] = {}
    pending = {m.message_id: m for m in messages}
    if not pending:
        return inserted
    for probe in range(MAX_PROBES):
        # Each pending event tries the next key of its chain; two may share a key by collision,
        # and then only the first can take it.
        claimants: dict[int, list[str]] = {}
        for mid in pending:
            claimants.setdefault(dedupe_key(source.id, mid, probe), []).append(mid)
        rows = [
            _row(source, pending[mids[0]], key, received_at, origin)
            for key, mids in claimants.items()
        ]
        if session.get_bind().dialect.name == "sqlite":
            rows = [_sqlite_row(r) for r in rows]
        for key, seq in session.execute(_insert_statement(session), rows):
            mid = claimants.pop(key)[0]
            inserted[mid] = seq
            del pending[mid]
        # The other keys are taken: by the same event sent before (a duplicate, done), or by
        # another event (a collision: try the next key).
        if claimants:
            stored = session.execute(
                select(EventRow.dedupe_key, EventRow.source_id, EventRow.message_id).where(
                    EventRow.dedupe_key.in_(claimants)
                )
            )
            for key, source_id, message_id in stored:
                if source_id == source.id and message_id in claimants[key]:
                    del pending[message_id]
        if not pending:
            return inserted
    raise RuntimeError(f"{len(pending)} events found no free dedupe key in {MAX_PROBES} probes")


def _insert_statement(session: Session) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        stmt = postgresql.insert(EVENTS).values(tx=PG_TX_ID)
        table = EVENTS
    else:
        stmt = sqlite.insert(SQLITE_EVENTS)
        table = SQLITE_EVENTS
    return stmt.on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(
        table.c.dedupe_key, table.c.seq
    )


def _sqlite_events() -> Table:
    """``collect_event`` as the SQLite hot path writes it: the JSON and time columns as the
    text SQLite stores anyway, serialised by ``_row`` in one pass, so SQLAlchemy runs no
    per-value type processing for the ~20 values of each event (a third of the insert's cost).
    Reads go through ``EventRow``, whose types parse exactly this text back."""
    plain = {"properties", "traits", "context", "identifiers", *TIME_COLUMNS}
    columns = [
        Column(
            c.name,
            Text() if c.name in plain else c.type,
            primary_key=c.primary_key,
            default=c.default.arg if c.default is not None else None,  # type: ignore[attr-defined]
        )
        for c in EVENTS.columns
    ]
    return Table(EVENTS.name, MetaData(), *columns)


TIME_COLUMNS = ("timestamp", "original_timestamp", "sent_at", "received_at")
SQLITE_EVENTS = _sqlite_events()
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's own DateTime format on SQLite


@functools.lru_cache(maxsize=4096)
def _sqlite_time(value: datetime) -> str:
    """Cached: a batch's events share their received and sent times, and often their own."""
    return value.astimezone(UTC).strftime(SQLITE_TIME)


def _sqlite_row(row: dict[str, object]) -> dict[str, object]:
    for name in ("properties", "traits", "context", "identifiers"):
        value = row[name]
        row[name] = None if value is None else orjson.dumps(value, default=str).decode()
    for name in TIME_COLUMNS:
        value = row[name]
        if isinstance(value, datetime):
            row[name] = _sqlite_time(value)
    return row


def _row(
    source: Source, m: Message, key: int, received_at: datetime, origin: str
) -> dict[str, object]:
    return {
        "dedupe_key": key,
        "bu_id": source.bu_id,
        "source_id": source.id,
        "message_id": m.message_id,
        "origin": origin,
        "type": m.type,
        "event": m.event,
        "name": m.name,
        "user_id": m.user_id,
        "anonymous_id": m.anonymous_id,
        "group_id": m.group_id,
        "previous_id": m.previous_id,
        "timestamp": m.timestamp,
        "original_timestamp": m.original_timestamp,
        "sent_at": m.sent_at,
        "received_at": received_at,
        "properties": m.properties,
        "traits": m.traits,
        "context": m.context,
        "identifiers": m.identifiers,
    }
