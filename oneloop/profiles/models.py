"""Profile tables: what the platform knows of a person, kept current from the event log.

The profiles domain keeps its own projection of the log (``profiles_event``: an event with the
profile it belongs to now, its department and its time) because the timeline, computed traits,
scores and segment rules all ask "which of this person's events, in which window", and that
wants an index on ``(profile_id, at)`` that the append-only log must not carry. The identity
domain decides who an event belongs to; merges and splits reach this projection through its
change feed.

Typed value columns (``num``, ``text``, ``at``) next to the JSON value let a segment rule
compare a trait with an index instead of parsing JSON on a million rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from oneloop.core.db import Base, Json, JsonScalar, LogPosition, UTCDateTime
from oneloop.core.ids import ID_LENGTH

NAME_LENGTH = 64
KEY_LENGTH = 120
TEXT_LENGTH = 300  # longer strings are kept in ``value`` only and compared there


class ProfileRow(Base):
    """A live OneID as the profiles domain sees it; the row goes when the profile is merged
    away (the identity domain still answers for the old id)."""

    __tablename__ = "profiles_profile"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True), index=True)
    events: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class ProfileUnitRow(Base):
    """The business units a profile has touched: a unit's users see exactly these profiles."""

    __tablename__ = "profiles_profile_unit"
    __table_args__ = (Index("ix_profiles_profile_unit_bu_id_profile_id", "bu_id", "profile_id"),)

    profile_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    last_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class ProfileEventRow(Base):
    """One log event of a profile. ``name`` is the track event's name, or ``Page Viewed``,
    ``Screen Viewed``, ``Identify``, ``Group``, ``Alias`` for the other calls (a page's own
    name is in ``properties.name``)."""

    __tablename__ = "profiles_event"
    __table_args__ = (
        Index("ix_profiles_event_profile_id_at", "profile_id", "at"),
        Index("ix_profiles_event_name_at", "name", "at"),
    )

    seq: Mapped[int] = mapped_column(LogPosition, primary_key=True, autoincrement=False)
    profile_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    source_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    type: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(255))
    department: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    properties: Mapped[dict[str, Any]] = mapped_column(Json)  # Any: JSON values as sent


class EventCountRow(Base):
    """Per profile, unit and event name: how many, the first and the last. Rules such as "did
    X", "never did Y", "did X at least 3 times" or "first did X before …" without a window or
    a property filter read this (one row per person and name) instead of every event, and it
    is rewritten from ``profiles_event`` whenever a profile's events change."""

    __tablename__ = "profiles_event_count"
    __table_args__ = (
        Index("ix_profiles_event_count_name_bu_id_profile_id", "name", "bu_id", "profile_id"),
    )

    profile_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    last_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class TraitDefRow(Base):
    """A computed trait, as data: an aggregation over a profile's events (see ``traits``).
    ``bu_id`` is the group's id for a trait computed over every unit's events."""

    __tablename__ = "profiles_trait_def"
    __table_args__ = (UniqueConstraint("bu_id", "name"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    description: Mapped[str] = mapped_column(Text)
    definition: Mapped[dict[str, Any]] = mapped_column(Json)  # Any: the validated document
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    # The data dictionary's metric the trait computes (``revenue``): its meaning, unit,
    # currency and tax treatment are the dictionary's, the same in every unit.
    metric: Mapped[str | None] = mapped_column(String(100), index=True)


class TraitRow(Base):
    """A profile's value of one trait. ``key`` is a computed trait's id, or ``golden:FIELD``
    for a golden-record field."""

    __tablename__ = "profiles_trait"
    __table_args__ = (
        Index("ix_profiles_trait_key_num", "key", "num"),
        Index("ix_profiles_trait_key_text", "key", "text"),
        Index("ix_profiles_trait_key_at", "key", "at"),
    )

    profile_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    value: Mapped[Any] = mapped_column(JsonScalar)  # Any: a JSON scalar
    num: Mapped[float | None] = mapped_column(Float)
    text: Mapped[str | None] = mapped_column(String(TEXT_LENGTH))
    at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class TagCategoryRow(Base):
    """A branch of the tag system (标签体系): lifecycle stage, interest, value tier, intent."""

    __tablename__ = "profiles_tag_category"
    __table_args__ = (UniqueConstraint("bu_id", "code"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    code: Mapped[str] = mapped_column(String(NAME_LENGTH))
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class TagRow(Base):
    """A tag. ``kind``: manual (people set it), rule (set while ``rule``, a segment-language
    rule, holds). Score models set manual-kind tags through their thresholds."""

    __tablename__ = "profiles_tag"
    __table_args__ = (UniqueConstraint("bu_id", "code"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    category_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    code: Mapped[str] = mapped_column(String(NAME_LENGTH))
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    rule: Mapped[dict[str, Any] | None] = mapped_column(Json)  # Any: a segment-language AST
    expires_after_days: Mapped[float | None] = mapped_column(Float)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class ProfileTagRow(Base):
    """A tag a profile carries now. ``source``: manual, import, rule, score."""

    __tablename__ = "profiles_profile_tag"
    __table_args__ = (
        Index("ix_profiles_profile_tag_tag_id_profile_id", "tag_id", "profile_id"),
        Index("ix_profiles_profile_tag_expires_at", "expires_at"),
    )

    profile_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    tag_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    set_by: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    reason: Mapped[str] = mapped_column(String(500))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))


class TagHistoryRow(Base):
    """Every tag set, removed or expired, and by whom: the 'why' behind a tag."""

    __tablename__ = "profiles_tag_history"
    __table_args__ = (Index("ix_profiles_tag_history_profile_id_at", "profile_id", "at"),)

    id: Mapped[int] = mapped_column(LogPosition, primary_key=True, autoincrement=True)
    profile_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    tag_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    action: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    by: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(500))
    at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class ScoreModelRow(Base):
    """A points model (engagement, purchase intent …): rules, decay and thresholds as data."""

    __tablename__ = "profiles_score_model"
    __table_args__ = (UniqueConstraint("bu_id", "code"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    code: Mapped[str] = mapped_column(String(NAME_LENGTH))
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    definition: Mapped[dict[str, Any]] = mapped_column(Json)  # Any: the validated document
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class ScoreRow(Base):
    """A profile's score in one model: ``value`` as it stood at ``as_of`` (decay continues
    from there; the sweep brings it forward)."""

    __tablename__ = "profiles_score"
    __table_args__ = (Index("ix_profiles_score_model_id_value", "model_id", "value"),)

    profile_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    model_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class ScoreHistoryRow(Base):
    """Points given: which rule, for which event, how many, and the score after. A rep reads
    this to see why a lead is hot."""

    __tablename__ = "profiles_score_history"
    __table_args__ = (
        Index("ix_profiles_score_history_profile_id_model_id_at", "profile_id", "model_id", "at"),
    )

    id: Mapped[int] = mapped_column(LogPosition, primary_key=True, autoincrement=True)
    profile_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    model_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    seq: Mapped[int | None] = mapped_column(LogPosition)
    rule: Mapped[str] = mapped_column(String(NAME_LENGTH))
    points: Mapped[float] = mapped_column(Float)
    value_after: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class SettingRow(Base):
    """A versioned configuration document of the profiles domain (``departments``: which
    department each event belongs to)."""

    __tablename__ = "profiles_setting"

    name: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(Json)  # Any: the validated document
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(200))
