"""Collection tables: sources and write keys, the event log, dead letters, the ingest ledger,
consumer cursors and import runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from oneloop.core.db import Base, Json, LogPosition, UTCDateTime
from oneloop.core.ids import ID_LENGTH


class SourceRow(Base):
    """Where events come from: a site's SDK (http), a file export (file), a webhook."""

    __tablename__ = "collect_source"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    bu_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("governance_business_unit.id"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    # No foreign key, on purpose: SQLite can neither drop a column that has one nor rebuild
    # this table while write keys point at it, so `oneloop db downgrade` would fail on real
    # data. collect/plans.py keeps the reference valid (a plan in use cannot be deleted).
    tracking_plan_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))


class WriteKeyRow(Base):
    """A write key, stored as its SHA-256: keys are long random tokens, so a fast hash is safe
    and lets the ingest path find the key by an index lookup."""

    __tablename__ = "collect_write_key"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    source_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("collect_source.id"), index=True
    )
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))


class EventRow(Base):
    """The append-only event log: every accepted call, once.

    ``dedupe_key`` is a 64-bit hash of (source, messageId). Random message ids make the unique
    index the dominant insert cost (each insert dirties a random leaf page, which the WAL then
    writes whole), so the key is kept to 8 bytes instead of ~70 bytes of text; a hash collision
    is detected by comparing the stored source and message id, and probed past (see ingest).
    ``tx`` is the PostgreSQL transaction id that wrote the row (0 on SQLite), which the log
    readers use so that rows committed out of ``seq`` order are never skipped.
    There are deliberately no foreign keys: the log is written on the hot path and never
    updated; the source and BU it names are never deleted.
    """

    __tablename__ = "collect_event"
    __table_args__ = (Index("ix_collect_event_tx_seq", "tx", "seq"),)

    seq: Mapped[int] = mapped_column(LogPosition, primary_key=True, autoincrement=True)
    tx: Mapped[int] = mapped_column(BigInteger, default=0)
    dedupe_key: Mapped[int] = mapped_column(BigInteger, unique=True)
    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    source_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    message_id: Mapped[str] = mapped_column(String(255))
    origin: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(16))
    event: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    anonymous_id: Mapped[str | None] = mapped_column(String(255))
    group_id: Mapped[str | None] = mapped_column(String(255))
    previous_id: Mapped[str | None] = mapped_column(String(255))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    original_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    properties: Mapped[dict[str, Any] | None] = mapped_column(Json)
    traits: Mapped[dict[str, Any] | None] = mapped_column(Json)
    context: Mapped[dict[str, Any] | None] = mapped_column(Json)
    identifiers: Mapped[list[list[str]]] = mapped_column(Json)


class DeadLetterRow(Base):
    """What was received but could not be accepted, kept whole with the reason, for replay."""

    __tablename__ = "collect_dead_letter"
    __table_args__ = (Index("ix_collect_dead_letter_source_id_status", "source_id", "status"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    source_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    origin: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(40), index=True)
    detail: Mapped[str] = mapped_column(Text)
    errors: Mapped[list[dict[str, str]]] = mapped_column(Json)
    ref: Mapped[str] = mapped_column(String(300))
    message_id: Mapped[str | None] = mapped_column(String(255))
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))


class IngestBatchRow(Base):
    """One row per ingest call (a request, an import chunk, a replay): the ledger source
    statistics are summed from. Insert-only, so concurrent requests never wait on a shared
    counter row."""

    __tablename__ = "collect_ingest_batch"
    __table_args__ = (Index("ix_collect_ingest_batch_source_id_at", "source_id", "at"),)

    id: Mapped[int] = mapped_column(LogPosition, primary_key=True, autoincrement=True)
    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    source_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    origin: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    received: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)
    duplicates: Mapped[int] = mapped_column(Integer)
    dead_lettered: Mapped[int] = mapped_column(Integer)
    violations: Mapped[int] = mapped_column(Integer)
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))


class CursorRow(Base):
    """How far a consumer has read the log: the (tx, seq) of the last event it processed."""

    __tablename__ = "collect_cursor"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    tx: Mapped[int] = mapped_column(BigInteger)
    seq: Mapped[int] = mapped_column(BigInteger)
    processed: Mapped[int] = mapped_column(BigInteger)
    failed: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class ImportRunRow(Base):
    """One run of a file import: its counts so far and the last row done, to resume from."""

    __tablename__ = "collect_import_run"
    __table_args__ = (
        Index("ix_collect_import_run_source_id_file_sha256", "source_id", "file_sha256"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    source_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("collect_source.id"))
    file_name: Mapped[str] = mapped_column(String(500))
    file_sha256: Mapped[str] = mapped_column(String(64))
    mapping: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    rows_read: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)
    duplicates: Mapped[int] = mapped_column(Integer)
    dead_lettered: Mapped[int] = mapped_column(Integer)
    last_row: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))


class CatalogEntryRow(Base):
    """What a source actually sends: each call type and event name with the property keys seen,
    how often, first and last. Kept by a log consumer; read when writing a tracking plan and by
    the segment builder's suggestions."""

    __tablename__ = "collect_catalog_entry"

    source_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    type: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    count: Mapped[int] = mapped_column(BigInteger)
    keys: Mapped[list[str]] = mapped_column(Json)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class TrackingPlanRow(Base):
    """A tracking plan: per event name a JSON Schema for ``properties``, one for identify
    ``traits``, and what to do with events the plan does not name (see collect/plans.py).

    ``document`` is plain JSON, not JSONB, even on PostgreSQL: it is never queried inside, and
    JSON keeps the author's key order, so an exported plan reads like the one imported.
    ``version`` goes up on every change; compiled validators are cached per (id, version).
    """

    __tablename__ = "collect_tracking_plan"
    __table_args__ = (UniqueConstraint("bu_id", "name"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("governance_business_unit.id"))
    name: Mapped[str] = mapped_column(String(200))
    mode: Mapped[str] = mapped_column(String(8))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class PlanViolationRow(Base):
    """How often a source broke its plan, per event name, property path and kind of problem
    (a JSON Schema keyword such as ``type`` or ``required``, or ``unplanned``).

    ``event`` is the track event's name, or "" for identify traits. ``path`` names array items
    as ``[]`` (``properties.products[].price``) so one bad field is one row, whatever its index.
    Upserted once per ingest batch with the batch's counts added (see ``plans.record_violations``).
    """

    __tablename__ = "collect_plan_violation"

    source_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    event: Mapped[str] = mapped_column(String(255), primary_key=True)
    path: Mapped[str] = mapped_column(String(300), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    count: Mapped[int] = mapped_column(BigInteger)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    example_message_id: Mapped[str] = mapped_column(String(255))
