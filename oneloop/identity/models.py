"""Identity tables: profiles (OneIDs), identifiers and the edges between them, merges (the
history), pins, events' profiles, the change feed for downstream domains, and rule versions.

Events point at profiles (``identity_event.profile_id``), so a merge is one UPDATE by profile
and a timeline is one index range; each event also keeps the ids of the identifiers it carried,
so an unmerge can reassign it by its identifiers. Edges keep the evidence: the earliest event
that carried both identifiers, which is what a merge explanation shows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from oneloop.core.db import Base, Json, LogPosition, UTCDateTime
from oneloop.core.ids import ID_LENGTH

VALUE_LENGTH = 300  # wechat_openid is `<app id>:<openid>`; every other value is ≤ 255


class ProfileRow(Base):
    """A OneID. A profile absorbed by a merge keeps its row, pointing at the survivor, so an
    old id given out (in an export, a CRM field) still finds the person."""

    __tablename__ = "identity_profile"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    merged_into: Mapped[str | None] = mapped_column(String(ID_LENGTH), index=True)


class IdentifierRow(Base):
    __tablename__ = "identity_identifier"
    __table_args__ = (UniqueConstraint("type", "value"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    type: Mapped[str] = mapped_column(String(40))
    value: Mapped[str] = mapped_column(String(VALUE_LENGTH))
    profile_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    # Distinct neighbours per type over edges that are not cut: what decides `shared`.
    degree: Mapped[dict[str, int]] = mapped_column(Json)
    shared_reason: Mapped[str | None] = mapped_column(String(300))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    first_bu_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    first_source_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    first_message_id: Mapped[str] = mapped_column(String(255))


class EdgeRow(Base):
    """Evidence that two identifiers are one person. ``kind``: event (seen on one event),
    match (the probabilistic matcher, with its weight), steward (a review accepted).
    ``status``: linked (the partition used it), conflict (refused by a limit or a pin: kept
    for review), shared (an end is a shared identifier), cut (a steward unmerged along it;
    never used again)."""

    __tablename__ = "identity_edge"
    __table_args__ = (UniqueConstraint("a_id", "b_id"), Index("ix_identity_edge_b_id", "b_id"))

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    a_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    b_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    kind: Mapped[str] = mapped_column(String(16), default="event")
    match_weight: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(300))
    first_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    first_bu_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    first_source_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    first_message_id: Mapped[str] = mapped_column(String(255))
    first_seq: Mapped[int] = mapped_column(BigInteger)
    seen_count: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class PinRow(Base):
    """Do not merge: two identifiers a steward said are different people. The graph and the
    matcher both respect it."""

    __tablename__ = "identity_pin"
    __table_args__ = (UniqueConstraint("a_id", "b_id"), Index("ix_identity_pin_b_id", "b_id"))

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    a_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    b_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    reason: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class MergeRow(Base):
    """One change of the partition, explained. ``kind``: merge (absorbed → survivor), split
    (an unmerge or a shared identifier took identifiers out of ``survivor_id`` into
    ``absorbed_id``). ``identifiers`` lists the ids that moved, which is what unmerge undoes."""

    __tablename__ = "identity_merge"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    survivor_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    absorbed_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    rule: Mapped[str] = mapped_column(String(300))
    edge_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    match_weight: Mapped[float | None] = mapped_column(Float)
    bu_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    source_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    message_id: Mapped[str | None] = mapped_column(String(255))
    evidence_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    identifiers: Mapped[list[str]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(200))
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    undone_by: Mapped[str | None] = mapped_column(String(200))
    undo_reason: Mapped[str | None] = mapped_column(String(500))


class EventProfileRow(Base):
    """Which profile an event of the log belongs to (its strongest identifier's)."""

    __tablename__ = "identity_event"

    seq: Mapped[int] = mapped_column(LogPosition, primary_key=True, autoincrement=False)
    profile_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), index=True)
    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    identifiers: Mapped[list[str]] = mapped_column(Json)
    has_traits: Mapped[bool] = mapped_column(Boolean)


class ChangeRow(Base):
    """The change feed: profiles created, merged, split. Traits and segments read it in
    order to recompute what a merge or unmerge changed."""

    __tablename__ = "identity_change"

    seq: Mapped[int] = mapped_column(LogPosition, primary_key=True, autoincrement=True)
    profile_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    other_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class RulesetRow(Base):
    __tablename__ = "identity_ruleset"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    version: Mapped[str] = mapped_column(String(16))
    document: Mapped[dict[str, Any]] = mapped_column(Json)  # Any: the YAML document as given
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(200))


class RejectionRow(Base):
    """Identifiers a source sends that do not normalise (an 8-digit "phone", an e-mail
    without a domain), counted per source, type and reason with the latest example: the
    data engineer's list of what to fix at the source."""

    __tablename__ = "identity_rejection"

    source_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    type: Mapped[str] = mapped_column(String(40), primary_key=True)
    reason: Mapped[str] = mapped_column(String(40), primary_key=True)
    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    count: Mapped[int] = mapped_column(BigInteger)
    example: Mapped[str] = mapped_column(String(200))
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class MatchModelRow(Base):
    """A trained probabilistic model (Splink settings with m and u), kept per version; the
    newest is used to score."""

    __tablename__ = "identity_match_model"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    version: Mapped[str] = mapped_column(String(40))
    document: Mapped[str] = mapped_column(Text)  # TrainedModel.to_json()
    record_count: Mapped[int] = mapped_column(Integer)
    trained_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(200))


class ReviewRow(Base):
    """A candidate pair between the review and auto-merge weights, for a data steward: the
    per-comparison weights say why. ``status``: open, accepted, rejected."""

    __tablename__ = "identity_review"
    __table_args__ = (UniqueConstraint("left_id", "right_id"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    left_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    right_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    match_weight: Mapped[float] = mapped_column(Float)
    match_probability: Mapped[float] = mapped_column(Float)
    comparisons: Mapped[dict[str, Any]] = mapped_column(
        Json
    )  # Any: level and weight per comparison
    model_version: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(String(500))


class MatchKeyRow(Base):
    """The matcher's blocking keys per profile record (``profile|source``), so a profile that
    changed finds the records it must be compared with by an index lookup, not a scan."""

    __tablename__ = "identity_match_key"
    __table_args__ = (Index("ix_identity_match_key_profile_id", "profile_id"),)

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    profile_id: Mapped[str] = mapped_column(String(ID_LENGTH))
