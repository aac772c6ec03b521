"""Reading the event log in commit order, from a durable position.

A position is ``(tx, seq)``. On SQLite writers are serialised, so ``seq`` order is commit order
and ``tx`` is always 0. On PostgreSQL it is not: a transaction can take seq 10, another seq 11
and commit first; a reader that remembered "after 11" would skip 10 forever. So every row
carries the id of the transaction that wrote it, and a reader only takes rows whose
transaction is older than the oldest one still running (``pg_snapshot_xmin``): those are all
final, committed or rolled back, so nothing can later appear behind the position. Ordered by
``(tx, seq)``, a reader sees every row exactly once; a row of a long transaction waits until it
has committed, which is the price of never skipping.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import literal_column, select, tuple_
from sqlalchemy.orm import Session

from oneloop.collect.models import EventRow

# Every transaction older than this has ended; rows written by them can no longer appear.
PG_HORIZON = literal_column("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")


@dataclass(frozen=True, order=True)
class Position:
    tx: int = 0
    seq: int = 0


START = Position()


@dataclass(frozen=True)
class LoggedEvent:
    """One event as consumers see it (a read-only copy of its log row)."""

    seq: int
    tx: int
    bu_id: str
    source_id: str
    message_id: str
    type: str
    event: str | None
    name: str | None
    user_id: str | None
    anonymous_id: str | None
    group_id: str | None
    previous_id: str | None
    timestamp: datetime
    received_at: datetime
    properties: dict[str, Any] | None  # Any: JSON values as the sender sent them
    traits: dict[str, Any] | None
    context: dict[str, Any] | None
    identifiers: list[list[str]]

    @property
    def position(self) -> Position:
        return Position(self.tx, self.seq)


COLUMNS = [getattr(EventRow, f) for f in LoggedEvent.__dataclass_fields__]


def read_after(session: Session, position: Position, limit: int) -> list[LoggedEvent]:
    """Up to ``limit`` events after ``position`` in commit order, never one that could still be
    followed by an earlier commit."""
    query = select(*COLUMNS).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        query = query.where(
            tuple_(EventRow.tx, EventRow.seq) > tuple_(position.tx, position.seq),
            EventRow.tx < PG_HORIZON,
        ).order_by(EventRow.tx, EventRow.seq)
    else:
        query = query.where(EventRow.seq > position.seq).order_by(EventRow.seq)
    return [LoggedEvent(*row) for row in session.execute(query)]


def read_seqs(session: Session, seqs: Sequence[int]) -> list[LoggedEvent]:
    """Given events by their log position (dead-letter replay of a consumer's failure)."""
    rows = session.execute(select(*COLUMNS).where(EventRow.seq.in_(list(seqs))))
    return sorted((LoggedEvent(*row) for row in rows), key=lambda e: e.seq)
