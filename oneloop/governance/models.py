"""Governance tables: the group and its business units, and the people who sign in.

Minimal for the spine (issue 3); the governance issue adds roles as a matrix, API keys,
sessions and consent. The audit log (issue 7) is here: append-only and hash-chained.
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
    __tablename__ = "governance_user"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    bu_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("governance_business_unit.id"), index=True
    )
    role: Mapped[str] = mapped_column(String(32))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


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
