"""Core tables: only what the platform itself keeps, never a domain's data."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from oneloop.core.db import Base, UTCDateTime


class BusOffsetRow(Base):
    """How far a consumer group has acknowledged a topic (``LocalBus``), or how far the relay
    has copied it into Redis (the reserved group ``@relay``): every message of the topic up to
    ``seq`` is done, so a restart reads on from there and nothing is lost."""

    __tablename__ = "core_bus_offset"

    consumer_group: Mapped[str] = mapped_column(String(100), primary_key=True)
    topic: Mapped[str] = mapped_column(String(100), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
