"""The notification outbox: one row per message, written in the transaction that decided to
send it, delivered later by ``oneloop.channels.outbox.deliver_due``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from oneloop.core.db import Base, UTCDateTime
from oneloop.core.ids import ID_LENGTH


class OutboxRow(Base):
    """One notification and where its delivery stands.

    ``status``: ``pending`` (waiting for ``next_attempt_at``), ``sending`` (claimed by a
    deliverer, committed before the send), ``sent``, ``failed`` (refused, or too many
    attempts), ``unknown`` (a deliverer stopped between claim and outcome: it may or may not
    have gone out, and is not sent again). ``(bu_id, dedupe_key)`` is unique: the same
    message enqueued twice is one row, and one unit cannot suppress another's messages."""

    __tablename__ = "channels_outbox"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("governance_business_unit.id"))
    dedupe_key: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    markdown: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("bu_id", "dedupe_key"),
        # The deliverer's question: which pending rows are due?
        Index("ix_channels_outbox_status_next_attempt_at", "status", "next_attempt_at"),
    )
