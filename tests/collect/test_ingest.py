from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from oneloop.collect import ingest as ingest_module
from oneloop.collect.ingest import ingest
from oneloop.collect.models import DeadLetterRow, EventRow, IngestBatchRow
from oneloop.collect.spec import parse_batch
from oneloop.core.context import Context
from tests.factories import make_group, make_source

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def _track(mid: str, **extra: object) -> dict[str, object]:
    return {"type": "track", "event": "Order Completed", "userId": "u1", "messageId": mid, **extra}


def _ingest(session: Session, source, batch: list[object]):  # type: ignore[no-untyped-def]
    messages, invalid = parse_batch({"batch": batch}, NOW)
    result = ingest(session, source, messages, invalid, received_at=NOW, origin="api", ref="test")
    session.commit()
    return result


def test_events_are_stored_once_per_source_and_message_id(session: Session, ctx: Context) -> None:
    make_group(session, ctx)
    north, _ = make_source(session, ctx, "north")
    south, _ = make_source(session, ctx, "south")
    first = _ingest(session, north, [_track("m1"), _track("m2"), _track("m1")])
    assert (first.accepted, first.duplicates) == (2, 1)
    again = _ingest(session, north, [_track("m1"), _track("m2"), _track("m3")])
    assert (again.accepted, again.duplicates) == (1, 2)
    # The same message id from another source is another event: no tenant can suppress another's.
    other = _ingest(session, south, [_track("m1")])
    assert (other.accepted, other.duplicates) == (1, 0)
    rows = session.execute(select(EventRow.source_id, EventRow.message_id)).all()
    assert sorted(rows) == sorted(
        [(north.id, "m1"), (north.id, "m2"), (north.id, "m3"), (south.id, "m1")]
    )
    ledger = session.execute(
        select(func.sum(IngestBatchRow.received), func.sum(IngestBatchRow.duplicates))
    ).one()
    assert tuple(ledger) == (7, 3)


def test_a_hash_collision_never_drops_an_event(
    session: Session, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_group(session, ctx)
    source, _ = make_source(session, ctx)
    # Every message id hashes to the same key at probe 0: the second must probe on, not vanish.
    real = ingest_module.dedupe_key
    monkeypatch.setattr(
        ingest_module, "dedupe_key", lambda s, m, p=0: 42 if p == 0 else real(s, m, p)
    )
    assert _ingest(session, source, [_track("a")]).accepted == 1
    assert _ingest(session, source, [_track("b"), _track("c")]).accepted == 2
    retry = _ingest(session, source, [_track("a"), _track("b"), _track("c")])
    assert (retry.accepted, retry.duplicates) == (0, 3)
    assert session.scalar(select(func.count()).select_from(EventRow)) == 3


def test_invalid_events_become_dead_letters_with_their_paths(
    session: Session, ctx: Context
) -> None:
    make_group(session, ctx)
    source, _ = make_source(session, ctx)
    result = _ingest(
        session,
        source,
        [_track("ok"), {"type": "track", "event": "X", "messageId": "no-ids"}, "junk"],
    )
    assert (result.accepted, result.dead_lettered) == (1, 2)
    letters = session.scalars(select(DeadLetterRow).order_by(DeadLetterRow.id)).all()
    assert [dl.errors[0]["path"] for dl in letters] == ["batch[1].userId", "batch[2]"]
    assert letters[0].message_id == "no-ids" and letters[0].status == "waiting"


def test_skew_is_corrected_unless_the_client_set_the_timestamp(
    session: Session, ctx: Context
) -> None:
    make_group(session, ctx)
    source, _ = make_source(session, ctx)
    # The device clock runs 1 hour fast: it made the call at its 09:59 and sent it at its 10:00.
    device = {"originalTimestamp": "2026-11-23T09:59:00Z", "sentAt": "2026-11-23T10:00:00Z"}
    explicit = {"timestamp": "2026-01-01T00:00:00+08:00", "sentAt": "2026-11-23T10:00:00Z"}
    _ingest(session, source, [_track("skew", **device), _track("explicit", **explicit)])
    stamps = dict(session.execute(select(EventRow.message_id, EventRow.timestamp)).all())
    assert stamps["skew"] == NOW - timedelta(minutes=1)
    assert stamps["explicit"] == datetime(2025, 12, 31, 16, 0, tzinfo=UTC)
