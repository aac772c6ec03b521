"""Segment entries and exits on the bus, topic ``segments.membership`` (issue 6: "enter/exit
is recorded with a timestamp and published on the bus (journeys will subscribe)").

``segments_change`` is the outbox: the bus reads it by ``seq``, which its writers keep in
commit order (``live.lock_feed``), so nothing is written twice and nothing is skipped. The
segment's code and business unit come in the same query (an outer join: a deleted segment's
history keeps its id, with ``segment_code`` and ``bu_id`` null). Messages are keyed by the
profile id, the order that matters to a journey; ``bu_id`` lets a subscriber keep to a unit.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from oneloop.core.bus import Message, register_feed
from oneloop.segments.models import ChangeRow, SegmentRow

TOPIC = "segments.membership"
KINDS = {"enter": "entered", "exit": "exited"}


@dataclass(frozen=True)
class MembershipFeed:
    topic: str = TOPIC

    def after(self, session: Session, seq: int, limit: int) -> list[Message]:
        rows = session.execute(
            select(
                ChangeRow.seq,
                ChangeRow.segment_id,
                SegmentRow.code,
                SegmentRow.bu_id,
                ChangeRow.profile_id,
                ChangeRow.kind,
                ChangeRow.cause,
                ChangeRow.at,
            )
            .select_from(ChangeRow)
            .outerjoin(SegmentRow, SegmentRow.id == ChangeRow.segment_id)
            .where(ChangeRow.seq > seq)
            .order_by(ChangeRow.seq)
            .limit(limit)
        )
        return [
            Message(
                topic=self.topic,
                seq=r.seq,
                key=r.profile_id,
                body={
                    "segment_id": r.segment_id,
                    "segment_code": r.code,
                    "bu_id": r.bu_id,
                    "profile_id": r.profile_id,
                    "kind": KINDS.get(r.kind, r.kind),
                    "cause": r.cause,
                    "at": r.at.isoformat(),
                },
                at=r.at,
            )
            for r in rows
        ]

    def latest(self, session: Session) -> int:
        return session.scalar(select(func.max(ChangeRow.seq))) or 0


FEED = register_feed(MembershipFeed())
