"""Shapes at the edges of privacy requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Channel = Literal["web", "email", "letter", "phone", "in_person", "other"]


class PrivacyRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["access", "erasure", "objection"] = Field(
        description="access: a copy of everything held; erasure: remove the person's PII "
        "everywhere; objection: no more profiling (scores, segments, rule tags)"
    )
    profile_id: str = Field(max_length=64, description="the person's OneID (any merged id too)")
    channel: Channel = Field(default="web", description="how the person asked")
    note: str = Field(
        default="", max_length=500, description="a reference (ticket, letter): never PII"
    )
    execute: bool = Field(
        default=False, description="carry it out now (the group only); else it waits"
    )


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=500, examples=["identity not verified"])


class PrivacyRequest(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    profile_id: str
    bu_id: str
    status: Literal["received", "completed", "rejected"]
    received_at: datetime
    due_at: datetime = Field(description="the legal deadline: one month after receipt")
    completed_at: datetime | None
    requested_by: str
    channel: str
    note: str
    result: dict[str, Any] | None = Field(  # Any: counts per table, or the rejection's reason
        description="what was done: counts per table for an erasure, never values"
    )
    is_overdue: bool = False


class Executed(BaseModel):
    request: PrivacyRequest
    document: dict[str, Any] | None = Field(  # Any: the export, JSON
        default=None, description="for an access request: everything held about the person"
    )
