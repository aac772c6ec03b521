"""What sales does becomes data the rest of the loop reads: events in the log (so the 360
timeline and attribution see a lead assigned or an opportunity won) and hand-offs between
departments (so a unit sees how many times a customer changed hands, and how long each
department held them)."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from oneloop.collect import service as collect
from oneloop.collect.ingest import ingest
from oneloop.collect.spec import Message, parse_message
from oneloop.core.ids import new_id
from oneloop.identity import service as identity
from oneloop.profiles import service as profiles
from oneloop.sales.models import HandoffRow

log = logging.getLogger(__name__)

SOURCE_NAME = "OneLoop sales"
ORIGIN = "sales"
PENDING = "sales.pending_events"  # session.info key of a batch's events (``batched``)


class Subject(Protocol):
    """A lead or an opportunity: whose customer, in which unit."""

    id: str
    bu_id: str
    profile_id: str
    owner_user_id: str | None


def emit(
    session: Session,
    subject: Subject,
    name: str,
    at: datetime,
    properties: dict[str, Any],  # Any: JSON
) -> None:
    """Write ``name`` to the log as the unit's internal source, carrying one identifier of
    the customer so that resolution puts it on their profile."""
    message = _message(session, subject, name, at, properties)
    if message is None:
        log.warning("sales.event.unanchored", extra={"profile": subject.profile_id, "event": name})
        return
    pending: list[tuple[str, Message]] | None = session.info.get(PENDING)
    if pending is not None:
        pending.append((subject.bu_id, message))
        return
    source = collect.internal_source(session, subject.bu_id, SOURCE_NAME)
    ingest(session, source, [message], received_at=at, origin=ORIGIN, ref=subject.id)


@contextmanager
def batched(session: Session, at: datetime) -> Iterator[None]:
    """The events the block emits go to the log together at its end, one write per unit: a
    worker's batch of leads costs one ingest, not one per lead. Nothing is written when the
    block fails (its transaction rolls back anyway)."""
    pending: list[tuple[str, Message]] = []
    session.info[PENDING] = pending
    try:
        yield
    finally:
        session.info.pop(PENDING, None)
    by_unit: dict[str, list[Message]] = defaultdict(list)
    for bu_id, message in pending:
        by_unit[bu_id].append(message)
    for bu_id, messages in by_unit.items():
        source = collect.internal_source(session, bu_id, SOURCE_NAME)
        ingest(session, source, messages, received_at=at, origin=ORIGIN, ref="batch")


def _message(
    session: Session,
    subject: Subject,
    name: str,
    at: datetime,
    properties: dict[str, Any],  # Any: JSON
) -> Message | None:
    anchor = identity.anchor_identifier(session, subject.profile_id, subject.bu_id)
    if anchor is None:
        return None
    kind, value = anchor
    raw: dict[str, Any] = {  # Any: JSON
        "type": "track",
        "event": name,
        "messageId": f"sales-{new_id(at)}",
        "timestamp": at.isoformat(),
        "properties": {
            "subject_id": subject.id,
            "owner_user_id": subject.owner_user_id,
            **properties,
        },
        "context": {},
    }
    if kind == "user_id":
        raw["userId"] = value
    elif kind == "anonymous_id":
        raw["anonymousId"] = value
    elif kind == "device_id":
        raw["context"]["device"] = {"id": value}
    else:
        raw["context"]["traits"] = {kind: value}
    parsed = parse_message(raw, (), at)
    if not isinstance(parsed, Message):  # our own event: a bug, not the customer's data
        raise ValueError(f"sales wrote an invalid event: {parsed.detail}")
    return parsed


def handoff(session: Session, subject: Subject, to: str, at: datetime, reason: str) -> None:
    """Record that the customer's owning department in the unit changed to ``to``; nothing
    when it already is ``to``. Before any hand-off, marketing holds a customer from their
    first touch of the unit."""
    last = session.scalar(
        select(HandoffRow)
        .where(HandoffRow.bu_id == subject.bu_id, HandoffRow.profile_id == subject.profile_id)
        .order_by(HandoffRow.id.desc())
        .limit(1)
    )
    held_by = "marketing" if last is None else last.to_department
    if held_by == to:
        return
    since = (
        last.at
        if last is not None
        else profiles.first_seen_in(session, subject.profile_id, subject.bu_id) or at
    )
    session.add(
        HandoffRow(
            bu_id=subject.bu_id,
            profile_id=subject.profile_id,
            lead_id=subject.id,
            from_department=held_by,
            to_department=to,
            held_seconds=max(0.0, (at - since).total_seconds()),
            reason=reason,
            at=at,
        )
    )
