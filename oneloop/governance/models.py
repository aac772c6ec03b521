"""Governance tables: the group and its business units, and the people who sign in.

Users hold roles in units (memberships); the built-in roles are in ``roles.py``, custom ones
here. Console sessions and API keys are stored as hashes. The audit log is append-only and
hash-chained.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, String
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
