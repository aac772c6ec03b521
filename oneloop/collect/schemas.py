"""Shapes at the edges of collection."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from oneloop.governance.schemas import BuCode, Name

# ``internal``: events OneLoop writes itself (a lead's status, an opportunity won); no key.
SourceKind = Literal["http", "file", "webhook", "internal"]
CreatableKind = Literal["http", "file", "webhook"]


class SourceIn(BaseModel):
    bu: BuCode
    name: Name
    kind: CreatableKind = "http"


class WriteKey(BaseModel):
    """A key as listed: its prefix only; the full key is shown once, when it is made."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class Source(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    bu_id: str
    name: str
    kind: SourceKind
    is_enabled: bool
    created_at: datetime
    tracking_plan_id: str | None = None
    keys: list[WriteKey] = []


class NewWriteKey(BaseModel):
    """What `create` and `rotate` return: the source id and the only copy of the key."""

    id: str
    write_key: str


class MinuteCount(BaseModel):
    minute: datetime
    events: int


class SourceStats(BaseModel):
    """A source's health as a data engineer reads it: what came in, what became of it."""

    source_id: str
    received: int
    accepted: int
    duplicates: int
    dead_lettered: int
    violations: int
    last_event_at: datetime | None
    last_received_at: datetime | None
    per_minute: list[MinuteCount]


class DeadLetter(BaseModel):
    """What was received and refused, kept whole: ``payload`` is the raw text as it came."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    bu_id: str
    source_id: str
    origin: str
    reason: str
    detail: str
    errors: list[dict[str, str]]
    ref: str
    message_id: str | None
    payload: str
    received_at: datetime
    status: str
    attempts: int
    resolved_at: datetime | None


class DeadLetterPage(BaseModel):
    items: list[DeadLetter]
    next_cursor: str | None


class ReplayReport(BaseModel):
    """``replayed`` entered the log now, ``already_stored`` were in it already (a duplicate),
    ``still_refused`` failed again and stay waiting with the new reason."""

    selected: int
    replayed: int
    already_stored: int
    still_refused: int


class CatalogEntry(BaseModel):
    """One call type and event name a source sends, with the property keys seen."""

    model_config = ConfigDict(from_attributes=True)

    type: str
    name: str
    count: int
    keys: list[str]
    first_seen_at: datetime
    last_seen_at: datetime
