"""Governance tables: the group and its business units, and the people who sign in.

Users hold roles in units (memberships); the built-in roles are in ``roles.py``, custom ones
here. Console sessions and API keys are stored as hashes. The audit log is append-only and
hash-chained.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from oneloop.core.db import Base, Json, LogPosition, UTCDateTime
from oneloop.core.ids import ID_LENGTH

# Where a unit is when nobody says otherwise (issue 6): the group's zone, and so its units'.
DEFAULT_TIME_ZONE = "Asia/Shanghai"


class BusinessUnitRow(Base):
    """The group (HQ, no parent) and its business units (事业部), as a tree."""

    __tablename__ = "governance_business_unit"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("governance_business_unit.id"), index=True
    )
    # An IANA name: times are stored in UTC, and rules count calendar days in this zone.
    time_zone: Mapped[str] = mapped_column(String(64), server_default=DEFAULT_TIME_ZONE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class UserRow(Base):
    """A person who signs in. What they may do, and where, is in their memberships."""

    __tablename__ = "governance_user"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))


class MembershipRow(Base):
    """A user's role in one unit. A user may hold several (a regional manager over two units);
    a membership of the group itself makes the user group-wide (HQ)."""

    __tablename__ = "governance_membership"

    user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("governance_user.id"), primary_key=True
    )
    bu_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("governance_business_unit.id"), primary_key=True, index=True
    )
    # A built-in role (code, ``governance.roles``) or a custom one (``governance_role``).
    role: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class RoleRow(Base):
    """A custom role: the built-in ones live in code, so that a new permission reaches them
    with the release that brings it; admins add their own here."""

    __tablename__ = "governance_role"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    permissions: Mapped[list[str]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class SessionRow(Base):
    """A console sign-in. The cookie carries a random token; only its SHA-256 is stored, so a
    copy of the database does not sign anyone in."""

    __tablename__ = "governance_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("governance_user.id"), index=True
    )
    # The unit the user acts in now; a user with several memberships switches it.
    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("governance_business_unit.id"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    origin: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class ApiKeyRow(Base):
    """A machine's credential: acts as its user in one unit, with at most ``scopes`` of the
    user's permissions, until it expires or is revoked. The secret is stored as a SHA-256:
    it is 256 random bits, so a slow hash would add nothing but latency to every call."""

    __tablename__ = "governance_api_key"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("governance_user.id"), index=True
    )
    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("governance_business_unit.id"))
    scopes: Mapped[list[str]] = mapped_column(Json)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))


class LoginAttemptRow(Base):
    """Every sign-in attempt, by address and by email, whether the account exists or not: the
    rate limit counts by address, the lock-out by email, and an unknown email locks out just
    as a known one does, so that the answer never tells which accounts exist."""

    __tablename__ = "governance_login_attempt"

    id: Mapped[int] = mapped_column(LogPosition, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True), index=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    ip: Mapped[str] = mapped_column(String(64), index=True)
    # failure | success | unlock (an admin's): a success or an unlock ends a run of failures.
    kind: Mapped[str] = mapped_column(String(16))


class AuditRow(Base):
    """One audited act (issue 7). Append-only: ``hash`` covers every other column, including
    ``prev_hash``, the hash of the entry before it, so editing or deleting an entry breaks the
    chain at that point (``oneloop audit verify``). ``seq`` is given by the writer under the
    audit lock, not by a sequence, so it is gapless in a chain nobody has touched."""

    __tablename__ = "governance_audit"

    seq: Mapped[int] = mapped_column(LogPosition, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(200), index=True)
    # No foreign key: the log outlives what it names, and a unit may be gone one day.
    bu_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(200), index=True)
    origin: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(16))
    # Any: a small JSON object of ids and counts, never PII values.
    detail: Mapped[dict[str, Any] | None] = mapped_column(Json)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class ConsentRow(Base):
    """The consent in force per profile × purpose × channel (issue 7, part 4): the newest
    decision of the history (latest ``given_at``, ties by arrival), kept so that
    ``may_contact`` is one primary-key read. ``history_seq`` is the record that decided."""

    __tablename__ = "governance_consent"

    profile_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32), primary_key=True)
    # ``any`` for purposes without a channel, and for a decision about a purpose as a whole.
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    legal_basis: Mapped[str] = mapped_column(String(32))
    given_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    history_seq: Mapped[int] = mapped_column(LogPosition)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class ConsentHistoryRow(Base):
    """Every consent decision received, append-only: a decision is never edited or deleted.
    Only ``profile_id`` moves, to the profile the person is now (a merge's survivor, or the
    part an unmerge gave its old id back); ``recorded_profile_id`` keeps the one it was
    recorded against. A decision from tracking names its log event (``event_seq``, unique
    per purpose and channel, so a replayed event adds nothing) and message id as proof."""

    __tablename__ = "governance_consent_history"
    __table_args__ = (
        Index("ix_governance_consent_history_profile_id_given_at", "profile_id", "given_at"),
        UniqueConstraint("event_seq", "purpose", "channel"),
    )

    seq: Mapped[int] = mapped_column(LogPosition, primary_key=True, autoincrement=True)
    profile_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    recorded_profile_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    purpose: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    legal_basis: Mapped[str] = mapped_column(String(32))
    # When the person decided (a tracked event's own time); ``recorded_at``: when we learnt it.
    given_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    # The unit that recorded it (None: the group or the platform itself).
    bu_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    # A tracking source's id, or api, cli, import.
    source: Mapped[str] = mapped_column(String(ID_LENGTH))
    event_seq: Mapped[int | None] = mapped_column(LogPosition)
    message_id: Mapped[str | None] = mapped_column(String(255))
    proof: Mapped[str | None] = mapped_column(String(500))
    recorded_by: Mapped[str] = mapped_column(String(200))


# --- the data dictionary (issue 7, parts 3 and 7) ------------------------------------------------


class DictionaryEntryRow(Base):
    """One field or metric of the data dictionary as it stands now (its newest version):
    what it means, its unit, currency and tax treatment, who owns it, how personal it is,
    and where it comes from. Every change adds a ``DictionaryVersionRow``."""

    __tablename__ = "governance_dictionary_entry"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    description_zh: Mapped[str] = mapped_column(Text)
    description_en: Mapped[str] = mapped_column(Text)
    data_type: Mapped[str] = mapped_column(String(16))
    unit: Mapped[str | None] = mapped_column(String(32))
    currency: Mapped[str | None] = mapped_column(String(3))
    includes_tax: Mapped[bool | None] = mapped_column(Boolean)
    # None: the group (HQ) owns it. A default entry exists before any unit does.
    owner_bu_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("governance_business_unit.id")
    )
    classification: Mapped[str] = mapped_column(String(16), index=True)
    pii_kind: Mapped[str | None] = mapped_column(String(16))
    # Any: a list of {kind, name, event, note}, validated by dictionary_schemas.LineageItem
    lineage: Mapped[list[dict[str, Any]]] = mapped_column(Json)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(200))


class DictionaryVersionRow(Base):
    """An entry as it was at one version: who changed what, when, and why. ``change`` is
    ``installed`` (the shipped defaults) or ``edited`` (a person), so that installing a
    newer release's defaults never overwrites what someone decided."""

    __tablename__ = "governance_dictionary_version"

    key: Mapped[str] = mapped_column(
        String(100), ForeignKey("governance_dictionary_entry.key"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Any: the entry's fields as of this version (dictionary_schemas.EntryIn, minus the note)
    document: Mapped[dict[str, Any]] = mapped_column(Json)
    changed: Mapped[list[str]] = mapped_column(Json)
    change: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(String(500))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    changed_by: Mapped[str] = mapped_column(String(200))


class SharingPolicyRow(Base):
    """One unit lets another read some of its data about the customers they share: which
    resource (computed traits, tags, scores, events) and which names of it (``["*"]``: all).
    Only what is named is shared, and only for profiles the reader already sees (those that
    touched the reader's unit): a policy widens what a unit sees of a customer, never which
    customers it sees."""

    __tablename__ = "governance_sharing_policy"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    owner_bu_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("governance_business_unit.id"), index=True
    )
    reader_bu_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("governance_business_unit.id"), index=True
    )
    resource: Mapped[str] = mapped_column(String(16))
    names: Mapped[list[str]] = mapped_column(Json)
    note: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(200))
