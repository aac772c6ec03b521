"""Shapes at the edges of the profiles domain (API, CLI --json)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from oneloop.identity.schemas import GoldenRecord, Identifier


class TimelineEntry(BaseModel):
    seq: int
    at: datetime
    name: str
    type: str
    department: str
    bu_id: str
    source_id: str
    properties: dict[str, Any]  # Any: JSON as the sender sent it


class Timeline(BaseModel):
    profile_id: str
    entries: list[TimelineEntry]
    next_cursor: str | None = Field(None, description="pass as ?cursor= for the next page")


class TraitValue(BaseModel):
    name: str
    value: Any  # Any: a JSON scalar
    kind: str = Field(description="computed, golden, or shared (another unit's, by a policy)")
    updated_at: datetime
    shared_by: str | None = Field(
        default=None, description="for a shared trait: the code of the unit that shares it"
    )


class ProfileTag(BaseModel):
    tag_id: str
    code: str
    name_zh: str
    name_en: str
    category: str
    source: str
    set_by: str
    set_at: datetime
    reason: str
    expires_at: datetime | None


class ProfileSummary(BaseModel):
    id: str
    first_seen_at: datetime
    last_seen_at: datetime
    events: int
    business_units: list[str]


class MatchedIdentifier(BaseModel):
    type: str
    value: str = Field(description="as stored (normalised); masked without pii:read")


class ProfileMatch(ProfileSummary):
    """A search's answer: the profile, and the identifier that found it (none for a OneID)."""

    identifier: MatchedIdentifier | None


class Profile(ProfileSummary):
    """The 360 view: the OneID with everything the platform knows and computed."""

    identifiers: list[Identifier]
    golden: GoldenRecord
    traits: list[TraitValue]
    tags: list[ProfileTag]
    scores: list[dict[str, Any]]  # Any: the score service's read shape
    segments: list[dict[str, Any]]  # Any: the segment service's read shape


class TagCategoryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", examples=["intent"])
    name_zh: str = Field(min_length=1, max_length=200, examples=["意向"])
    name_en: str = Field(min_length=1, max_length=200, examples=["Intent"])
    bu: str | None = Field(None, description="business unit code; default: your own")


class TagCategory(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    bu_id: str
    code: str
    name_zh: str
    name_en: str


class TagIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", examples=["high_intent"])
    category: str = Field(description="category code", examples=["intent"])
    name_zh: str = Field(min_length=1, max_length=200, examples=["高意向"])
    name_en: str = Field(min_length=1, max_length=200, examples=["High intent"])
    description: str = Field("", max_length=2000)
    rule: dict[str, Any] | None = Field(
        None, description="a segment-language rule: the tag is set while it holds"
    )  # Any: the AST, validated by the segment language
    expires_after_days: float | None = Field(None, gt=0, le=3650)
    bu: str | None = Field(None, description="business unit code; default: your own")


class Tag(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    bu_id: str
    category_id: str
    code: str
    name_zh: str
    name_en: str
    description: str
    kind: str
    rule: dict[str, Any] | None  # Any: the AST
    expires_after_days: float | None
    version: int


class TagAssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500, examples=["met at the Shanghai summit"])
    expires_at: datetime | None = None


class BulkTagResult(BaseModel):
    rows: int
    tagged: int
    already: int
    not_found: int
    invalid: list[dict[str, Any]]  # Any: row number, field, message
