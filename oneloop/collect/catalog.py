"""The event catalogue: what each source really sends, kept current from the log.

A data engineer writing a tracking plan starts from what arrives (names, property keys, how
often); the segment builder suggests event names and properties from it. It is the first
consumer of the log, and the model for later ones: aggregate the batch in memory, then one
read and one write per distinct key, inside the step's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from oneloop.collect import service
from oneloop.collect.consumers import register
from oneloop.collect.log import LoggedEvent
from oneloop.collect.models import CatalogEntryRow
from oneloop.collect.schemas import CatalogEntry
from oneloop.core.context import Context

MAX_KEYS = 200  # a source sending ever-new property names must not grow a row without bound


@dataclass
class _Seen:
    bu_id: str
    count: int = 0
    keys: set[str] = field(default_factory=set)
    first: datetime | None = None
    last: datetime | None = None


def _name(event: LoggedEvent) -> str:
    return event.event or event.name or ""


def _keys(event: LoggedEvent) -> Sequence[str]:
    bag = event.traits if event.type == "identify" else event.properties
    return list(bag) if isinstance(bag, dict) else []


class CatalogConsumer:
    name = "collect.catalog"

    def handle(self, session: Session, events: Sequence[LoggedEvent]) -> None:
        seen: dict[tuple[str, str, str], _Seen] = {}
        for event in events:
            key = (event.source_id, event.type, _name(event)[:255])
            entry = seen.setdefault(key, _Seen(event.bu_id))
            entry.count += 1
            entry.keys.update(_keys(event))
            entry.first = min(entry.first or event.timestamp, event.timestamp)
            entry.last = max(entry.last or event.timestamp, event.timestamp)
        stored = {
            (row.source_id, row.type, row.name): row
            for row in session.scalars(
                select(CatalogEntryRow).where(
                    tuple_(
                        CatalogEntryRow.source_id, CatalogEntryRow.type, CatalogEntryRow.name
                    ).in_(list(seen))
                )
            )
        }
        for key, entry in seen.items():
            row = stored.get(key)
            assert entry.first is not None and entry.last is not None
            if row is None:
                session.add(
                    CatalogEntryRow(
                        source_id=key[0],
                        type=key[1],
                        name=key[2],
                        bu_id=entry.bu_id,
                        count=entry.count,
                        keys=sorted(entry.keys)[:MAX_KEYS],
                        first_seen_at=entry.first,
                        last_seen_at=entry.last,
                    )
                )
                continue
            row.count += entry.count
            row.keys = sorted(set(row.keys) | entry.keys)[:MAX_KEYS]
            row.first_seen_at = min(row.first_seen_at, entry.first)
            row.last_seen_at = max(row.last_seen_at, entry.last)
        session.flush()


register(CatalogConsumer())


def list_catalog(session: Session, ctx: Context, source_id: str) -> list[CatalogEntry]:
    """A source's catalogue, most frequent first."""
    source = service.get_source(session, ctx, source_id)  # BU check, NotFound for another's
    rows = session.scalars(
        select(CatalogEntryRow)
        .where(CatalogEntryRow.source_id == source.id)
        .order_by(CatalogEntryRow.count.desc(), CatalogEntryRow.name)
    )
    return [CatalogEntry.model_validate(r) for r in rows]
