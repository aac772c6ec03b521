"""Shapes at the edges of collection."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from oneloop.governance.schemas import BuCode, Name

SourceKind = Literal["http", "file", "webhook"]


class SourceIn(BaseModel):
    bu: BuCode
    name: Name
    kind: SourceKind = "http"


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
    keys: list[WriteKey] = []


class NewWriteKey(BaseModel):
    """What `create` and `rotate` return: the source id and the only copy of the key."""

    id: str
    write_key: str
