"""Time-ordered ids (ULID): they sort by creation time, so B-tree inserts stay append-only and a
page of rows ordered by id is also ordered by time. 26 characters of Crockford base32."""

from __future__ import annotations

from datetime import datetime
from typing import NewType

from ulid import ULID

BusinessUnitId = NewType("BusinessUnitId", str)
UserId = NewType("UserId", str)

ID_LENGTH = 26


def new_id(at: datetime | None = None) -> str:
    """A new ULID; pass ``at`` (from the context's clock) to make the time part deterministic."""
    return str(ULID.from_datetime(at) if at is not None else ULID())
