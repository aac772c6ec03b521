"""Identity's changes on the bus, topic ``identity.profiles``: a profile created, merged
(``other_id`` was absorbed into ``profile_id``) or split (identifiers of ``profile_id`` moved
to ``other_id``), for workers that keep something per profile outside this process.

``identity_change`` is the outbox; its writers all hold the resolver's cursor, so ``seq``
order is commit order and a reader by ``seq`` skips nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from oneloop.core.bus import Message, register_feed
from oneloop.identity.models import ChangeRow

TOPIC = "identity.profiles"
KINDS = {"created": "created", "merge": "merged", "split": "split"}


@dataclass(frozen=True)
class ProfileChangesFeed:
    topic: str = TOPIC

    def after(self, session: Session, seq: int, limit: int) -> list[Message]:
        rows = session.execute(
            select(
                ChangeRow.seq,
                ChangeRow.profile_id,
                ChangeRow.kind,
                ChangeRow.other_id,
                ChangeRow.at,
            )
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
                    "profile_id": r.profile_id,
                    "kind": KINDS.get(r.kind, r.kind),
                    "other_id": r.other_id,
                    "at": r.at.isoformat(),
                },
                at=r.at,
            )
            for r in rows
        ]

    def latest(self, session: Session) -> int:
        return session.scalar(select(func.max(ChangeRow.seq))) or 0


FEED = register_feed(ProfileChangesFeed())
