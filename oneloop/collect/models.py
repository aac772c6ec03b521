"""Collection tables: sources and their write keys (issue 4, part 1)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from oneloop.core.db import Base, UTCDateTime
from oneloop.core.ids import ID_LENGTH


class SourceRow(Base):
    """Where events come from: a site's SDK (http), a file export (file), a webhook."""

    __tablename__ = "collect_source"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    bu_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("governance_business_unit.id"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class WriteKeyRow(Base):
    """A write key, stored as its SHA-256: keys are long random tokens, so a fast hash is safe
    and lets the ingest path find the key by an index lookup."""

    __tablename__ = "collect_write_key"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    source_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("collect_source.id"), index=True
    )
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
