"""Segment tables: the rules, who is in each now, and every entry and exit.

``segments_change`` is append-only and ordered: it is the history a marketer reads ("entered
on …") and the feed journeys subscribe to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from oneloop.core.db import Base, Json, LogPosition, UTCDateTime
from oneloop.core.ids import ID_LENGTH


class SegmentRow(Base):
    """A named rule. ``bu_id`` is the group's id for a group-wide (HQ) segment."""

    __tablename__ = "segments_segment"
    __table_args__ = (UniqueConstraint("bu_id", "code"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(200))
    rule: Mapped[dict[str, Any]] = mapped_column(Json)  # Any: the validated AST
    is_live: Mapped[bool] = mapped_column(Boolean)
    size: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class MemberRow(Base):
    __tablename__ = "segments_member"
    __table_args__ = (Index("ix_segments_member_profile_id", "profile_id"),)

    segment_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    profile_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class ChangeRow(Base):
    """A profile entered or left a segment. ``cause``: event, merge, split, tag, score, time,
    rule (the segment's rule changed), full (a full re-evaluation found it)."""

    __tablename__ = "segments_change"
    __table_args__ = (
        Index("ix_segments_change_segment_id_at", "segment_id", "at"),
        Index("ix_segments_change_profile_id", "profile_id"),
    )

    seq: Mapped[int] = mapped_column(LogPosition, primary_key=True, autoincrement=True)
    segment_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    profile_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    kind: Mapped[str] = mapped_column(String(8))
    cause: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
