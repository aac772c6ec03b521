"""Privacy requests (DSAR), the suppression list and objections to profiling (issue 7).

Kept apart from ``models.py`` by concept: these tables are about one person's rights, the
others about who may do what.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from oneloop.core.db import Base, Json, UTCDateTime
from oneloop.core.ids import ID_LENGTH


class PrivacyRequestRow(Base):
    """A data subject's request: access, erasure or objection to profiling, with the deadline
    the law gives (GDPR: one month) and what was done. ``profile_id`` is the OneID the request
    was made for; after an erasure it names nobody any more."""

    __tablename__ = "governance_privacy_request"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    profile_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    # The unit that received the request: its compliance officers follow it up.
    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True), index=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    requested_by: Mapped[str] = mapped_column(String(200))
    # How the person asked (email, letter, hotline) and a reference: never their PII.
    channel: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(String(500))
    # Any: counts per table for an erasure, the export's size for an access request.
    result: Mapped[dict[str, Any] | None] = mapped_column(Json)


class SuppressionRow(Base):
    """An erased person's identifier, as a salted hash: new events carrying it are not
    resolved to a profile again, and the hash cannot be read back into the identifier."""

    __tablename__ = "governance_suppression"

    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class ExclusionRow(Base):
    """A profile kept out of profiling: no scores, segments or rule tags. ``reason``: the
    person objected to profiling, or was erased (what is left of them is counted in
    aggregates, never targeted)."""

    __tablename__ = "governance_exclusion"

    profile_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    reason: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    since: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class SecretRow(Base):
    """Random values made once per database, such as the suppression list's salt."""

    __tablename__ = "governance_secret"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
