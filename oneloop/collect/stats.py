"""Source health, summed from the ingest ledger (one insert-only row per ingest call).

Reading the ledger rather than counting the log keeps the numbers honest about what the log
cannot show: duplicates and dead letters never reach it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from oneloop.collect import service
from oneloop.collect.models import IngestBatchRow
from oneloop.collect.schemas import MinuteCount, SourceStats
from oneloop.core.context import Context

WINDOW_MINUTES = 60


def source_stats(session: Session, ctx: Context, source_id: str, *, now: datetime) -> SourceStats:
    """Totals since the source was made, and accepted events per minute over the last hour."""
    source = service.get_source(session, ctx, source_id)  # BU check, NotFound for another's
    ledger = IngestBatchRow
    totals = session.execute(
        select(
            func.coalesce(func.sum(ledger.received), 0),
            func.coalesce(func.sum(ledger.accepted), 0),
            func.coalesce(func.sum(ledger.duplicates), 0),
            func.coalesce(func.sum(ledger.dead_lettered), 0),
            func.coalesce(func.sum(ledger.violations), 0),
            func.max(ledger.last_event_at),
            func.max(ledger.at),
        ).where(ledger.source_id == source.id)
    ).one()
    end = now.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(minutes=WINDOW_MINUTES)
    bucket = _minute(session, ledger.at).label("minute")
    rows = session.execute(
        select(bucket, func.sum(ledger.accepted))
        .where(ledger.source_id == source.id, ledger.at >= start, ledger.at < end)
        .group_by(bucket)
    ).all()
    counts = {_as_minute(minute): int(n) for minute, n in rows}
    minutes = [start + timedelta(minutes=i) for i in range(WINDOW_MINUTES)]
    return SourceStats(
        source_id=source.id,
        received=totals[0],
        accepted=totals[1],
        duplicates=totals[2],
        dead_lettered=totals[3],
        violations=totals[4],
        last_event_at=_utc(totals[5]),
        last_received_at=_utc(totals[6]),
        per_minute=[MinuteCount(minute=m, events=counts.get(m, 0)) for m in minutes],
    )


def _minute(session: Session, column: ColumnElement[datetime]) -> ColumnElement[object]:
    """The minute a time falls in; the one place the two databases differ here."""
    if session.get_bind().dialect.name == "sqlite":
        return func.strftime("%Y-%m-%d %H:%M", column)
    return func.date_trunc("minute", column)


def _as_minute(value: object) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.strptime(str(value), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def _utc(value: datetime | None) -> datetime | None:
    """Aggregates skip the column type, so SQLite hands back its text or a naive time."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
