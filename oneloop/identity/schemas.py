"""Identity's shapes at the edges: a profile's identity explained, unmerge and pin requests,
the golden record with lineage."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Identifier(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    type: str
    value: str
    first_seen_at: datetime
    last_seen_at: datetime
    first_source_id: str
    first_message_id: str
    shared_reason: str | None = Field(
        description="why this identifier links nobody (seen with too many people), or null"
    )


class Link(BaseModel):
    """An edge: two identifiers seen on one event, and what the graph made of it."""

    id: str
    a: str = Field(description="identifier id")
    b: str = Field(description="identifier id")
    status: str = Field(description="linked, conflict, shared or cut")
    reason: str | None
    first_at: datetime = Field(description="time of the earliest event that carried both")
    first_message_id: str
    first_source_id: str
    seen_count: int
    other_profile_id: str | None = Field(
        description="for a refused link leaving this profile: the profile on the other side"
    )


class Merge(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str = Field(description="merge (absorbed_id joined survivor_id) or split")
    survivor_id: str = Field(description="the profile the identifiers moved into")
    absorbed_id: str = Field(description="the profile the identifiers moved out of")
    rule: str
    edge_id: str | None
    match_weight: float | None
    source_id: str | None
    message_id: str | None
    evidence_at: datetime | None
    identifiers: list[str]
    created_at: datetime
    created_by: str
    undone_at: datetime | None
    undone_by: str | None
    undo_reason: str | None


class Pin(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    a_id: str
    b_id: str
    reason: str
    created_by: str
    created_at: datetime


class IdentityExplanation(BaseModel):
    profile_id: str
    requested_id: str = Field(description="the id asked for; an absorbed profile's id redirects")
    absorbed_ids: list[str]
    identifiers: list[Identifier]
    links: list[Link]
    history: list[Merge]
    pins: list[Pin]


class IdentifierRef(BaseModel):
    type: str = Field(min_length=1, max_length=40, examples=["phone"])
    value: str = Field(min_length=1, max_length=300, examples=["+86 138 0013 8000"])


class UnmergeIn(BaseModel):
    """Split a profile: undo one merge of its history, or detach one identifier."""

    merge_id: str | None = Field(default=None, description="a merge of the profile's history")
    identifier: IdentifierRef | None = Field(default=None, description="detach this identifier")
    reason: str = Field(min_length=3, max_length=500, examples=["two brothers share one e-mail"])

    @model_validator(mode="after")
    def _one_target(self) -> UnmergeIn:
        if (self.merge_id is None) == (self.identifier is None):
            raise ValueError("give exactly one of merge_id or identifier")
        return self


class UnmergeOut(BaseModel):
    profile_id: str
    split_off: list[str] = Field(description="profiles that now hold the detached identifiers")
    cut_links: int


class PinIn(BaseModel):
    a: str = Field(description="a profile id")
    b: str = Field(description="another profile id")
    reason: str = Field(min_length=3, max_length=500)


class Observation(BaseModel):
    value: Any  # Any: a trait value as the source sent it (string, number, boolean)
    count: int
    first_at: datetime
    last_at: datetime
    source_id: str
    source_name: str
    message_id: str = Field(description="the latest event or record that carried this value")


class GoldenField(BaseModel):
    value: Any  # Any: the surviving trait value
    rule: str
    source_id: str
    source_name: str
    message_id: str
    observed_at: datetime
    history: list[Observation] = Field(description="every value seen, newest first")


class GoldenRecord(BaseModel):
    profile_id: str
    fields: dict[str, GoldenField]
    events_read: int


class Review(BaseModel):
    """A candidate pair for a data steward, with the weight of each comparison."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    left_id: str
    right_id: str
    match_weight: float
    match_probability: float
    comparisons: dict[str, Any]  # Any: {"level": label, "match_weight": float} per comparison
    model_version: str
    status: str
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    note: str | None


class ReviewDecision(BaseModel):
    accept: bool
    note: str | None = Field(default=None, max_length=500)


class MatchRun(BaseModel):
    records: int
    candidates: int
    merged: int
    queued: int
    refused: int
    model_version: str


class Rejection(BaseModel):
    """Identifiers a source sends that do not normalise, counted, with the latest example."""

    model_config = ConfigDict(from_attributes=True)

    source_id: str
    type: str
    reason: str = Field(description="e.g. phone_invalid, email_invalid, openid_without_app")
    count: int
    example: str
    last_seen_at: datetime


class RebuildOut(BaseModel):
    profiles: int = Field(description="live profiles re-partitioned")
    merges: int
    splits: int
