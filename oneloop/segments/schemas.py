"""Shapes at the edges of the segments domain (API, CLI --json).

A rule travels as a plain JSON object: the segment language (``language.py``) validates it
and names the path of a bad node, which a pydantic union could only do less precisely.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

CODE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
RULE_EXAMPLE: dict[str, Any] = {  # Any: a JSON document
    "and": [
        {"trait": "city", "op": "in", "value": ["上海", "Shanghai"]},
        {"event": "Order Completed", "count": {"op": "gte", "value": 2}},
        {"event": "Page Viewed", "within": {"amount": 30, "unit": "days"}},
        {"not": {"tag": "unsubscribed"}},
    ]
}
RULE_DESCRIPTION = "a segment-language rule (see oneloop/segments/language.py)"


class SegmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=CODE_PATTERN, examples=["repeat_buyers_sh"])
    name: str = Field(min_length=1, max_length=200, examples=["上海复购客户 Repeat buyers SH"])
    description: str = Field("", max_length=2000)
    rule: dict[str, Any] = Field(description=RULE_DESCRIPTION, examples=[RULE_EXAMPLE])
    bu: str | None = Field(
        None, description="business unit code; default: your own (the group for HQ)"
    )
    owner: str | None = Field(None, max_length=200, description="who answers for it; default: you")
    is_live: bool = Field(True, description="follow profile changes as they happen")


class SegmentUpdate(BaseModel):
    """The whole of what may change (PUT); code and business unit are fixed, because other
    rules name a segment by its code."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=2000)
    rule: dict[str, Any] = Field(description=RULE_DESCRIPTION, examples=[RULE_EXAMPLE])
    owner: str | None = Field(None, max_length=200, description="default: unchanged")
    is_live: bool = True


class Segment(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    bu_id: str
    code: str
    name: str
    description: str
    owner: str
    rule: dict[str, Any]  # Any: the validated AST
    is_live: bool
    size: int
    version: int
    evaluated_at: datetime | None
    created_at: datetime
    updated_at: datetime


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: dict[str, Any] = Field(description=RULE_DESCRIPTION, examples=[RULE_EXAMPLE])
    bu: str | None = Field(None, description="evaluate in this business unit; default: your own")


class Estimate(BaseModel):
    """How many profiles a rule holds for. ``is_estimate``: counted on a random sample of
    ``sampled`` of the ``candidates`` and scaled, which the label says."""

    count: int
    is_estimate: bool
    candidates: int
    sampled: int
    label: str


class Preview(Estimate):
    exact_count: int | None = Field(description="the exact count, when cheap or asked for")
    sample_ids: list[str] = Field(description="a few profiles the rule holds for")


class SegmentMember(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    profile_id: str
    entered_at: datetime
    fields: dict[str, Any] = Field(
        default_factory=dict,
        description="the golden-record fields asked for; masked without pii:read",
    )  # Any: JSON scalars


class MemberPage(BaseModel):
    segment_id: str
    members: list[SegmentMember]
    next_cursor: str | None = Field(None, description="pass as ?cursor= for the next page")


class SegmentChange(BaseModel):
    """A profile entered or left a segment, why (``cause``) and when."""

    model_config = ConfigDict(from_attributes=True)

    seq: int
    segment_id: str
    profile_id: str
    kind: str = Field(description="enter or exit")
    cause: str = Field(description="event, trait, tag, score, merge, split, time, rule or full")
    at: datetime


class Evaluation(BaseModel):
    segment_id: str
    entered: int
    exited: int
    size: int
    evaluated_at: datetime


class Membership(BaseModel):
    """A segment a profile is in now (the 360 view lists these)."""

    segment_id: str
    code: str
    name: str
    bu_id: str
    entered_at: datetime
