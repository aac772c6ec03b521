"""One person's events, for a privacy request: all of them (access), and the same events
without what identifies them (erasure).

An erased person's events stay, so that counts, funnels and revenue still add up; their ids,
traits and context go, and their properties keep numbers and what names nobody. Dead letters
keep a refused payload whole, so a letter that carries one of the person's values loses its
payload: it could never be replayed for them anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from oneloop.collect.models import DeadLetterRow, EventRow
from oneloop.core.db import in_chunks
from oneloop.governance.scrub import PiiValues, scrub


def export(session: Session, seqs: Sequence[int]) -> list[dict[str, Any]]:  # Any: JSON
    out: list[dict[str, Any]] = []
    for part in in_chunks(seqs):
        for e in session.scalars(
            select(EventRow).where(EventRow.seq.in_(part)).order_by(EventRow.seq)
        ):
            out.append(
                {
                    "seq": e.seq,
                    "type": e.type,
                    "event": e.event,
                    "name": e.name,
                    "timestamp": e.timestamp.isoformat(),
                    "received_at": e.received_at.isoformat(),
                    "bu_id": e.bu_id,
                    "source_id": e.source_id,
                    "message_id": e.message_id,
                    "user_id": e.user_id,
                    "anonymous_id": e.anonymous_id,
                    "properties": e.properties,
                    "traits": e.traits,
                    "context": e.context,
                }
            )
    return out


def values_in(session: Session, seqs: Sequence[int], pii: PiiValues) -> list[str]:
    """Collect the person's values from their events (ids, identifiers, traits) into ``pii``;
    the message ids, to find their dead letters by."""
    messages: list[str] = []
    for part in in_chunks(seqs):
        for e in session.scalars(select(EventRow).where(EventRow.seq.in_(part))):
            for value in (e.user_id, e.anonymous_id, e.previous_id):
                pii.add(value)
            for _, value in e.identifiers or []:
                pii.add(value)
            pii.add_all(e.traits or {})
            pii.add_all((e.context or {}).get("traits") or {})
            messages.append(e.message_id)
    return messages


def scrub_events(session: Session, seqs: Sequence[int], pii: PiiValues) -> int:
    """The events without the person in them; how many were changed."""
    changed = 0
    for part in in_chunks(seqs):
        for e in session.scalars(select(EventRow).where(EventRow.seq.in_(part))):
            before = (e.user_id, e.anonymous_id, e.traits, e.context, e.identifiers, e.properties)
            e.user_id = e.anonymous_id = e.previous_id = e.group_id = None
            e.traits, e.context, e.identifiers = None, None, []
            e.properties = scrub(e.properties, pii) if e.properties else e.properties
            changed += before != (
                e.user_id,
                e.anonymous_id,
                e.traits,
                e.context,
                e.identifiers,
                e.properties,
            )
    session.flush()
    return changed


def erase_dead_letters(session: Session, messages: Sequence[str], pii: PiiValues) -> int:
    """Empty the dead letters of the person's messages and every one whose payload carries
    one of their values. A scan of the letters' text: an erasure is rare and must be whole."""
    found = 0
    clauses = [DeadLetterRow.payload.contains(v, autoescape=True) for v in pii.searchable()]
    for part in in_chunks(sorted(set(messages))):
        clauses.append(DeadLetterRow.message_id.in_(part))
    for part in in_chunks(clauses):
        for row in session.scalars(
            select(DeadLetterRow).where(or_(*part), DeadLetterRow.payload != "")
        ):
            row.payload, row.detail, row.errors = "", "erased", []
            row.status = "erased"
            found += 1
    session.flush()
    return found
