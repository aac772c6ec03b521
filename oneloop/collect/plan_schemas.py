"""Shapes of tracking plans at the edges: the YAML/JSON document a data engineer writes, the
plan as stored, and the violation counters as read.

A plan file looks like this (``oneloop/demo/plans/industrial.yaml`` is a full one)::

    name: Industrial web
    mode: allow            # allow: keep a violating event and count it; block: dead-letter it
    unplanned: allow       # a track event the plan does not name: allow (counted) or block
    traits:                # JSON Schema for identify traits (optional)
      type: object
      properties: {email: {type: string, format: email}}
    events:
      Order Completed:
        description: an order is paid
        properties:        # JSON Schema for the event's properties
          type: object
          required: [order_id, total]
          properties: {order_id: {type: string}, total: {type: number}}

The schemas are JSON Schema 2020-12; they are checked against its meta-schema when a plan is
saved, not modelled here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from oneloop.governance.schemas import BuCode, Name

PlanMode = Literal["allow", "block"]
EventName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]


def _json_schema(value: object) -> object:
    if isinstance(value, dict | bool):
        return value
    raise ValueError("must be a JSON Schema: an object (or true, or false)")


# A JSON Schema is arbitrary JSON by definition (an object, or true/false); its meta-schema
# check in collect/plans.py is what validates it. The check before the union keeps pydantic
# from naming each union member in the error path.
JsonSchema = Annotated[dict[str, Any] | bool, BeforeValidator(_json_schema)]


class EventPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = None
    properties: JsonSchema = Field(
        default_factory=dict, description="JSON Schema for the event's properties; {} allows any"
    )


class PlanSpec(BaseModel):
    """The portable plan: what ``export`` writes and ``import`` reads. It names no business
    unit, so a plan written for one unit can be imported into another."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    mode: PlanMode = Field(
        default="allow",
        description="what a violation of a planned event or of the traits does: allow (keep "
        "the event, count the violation) or block (dead-letter the event)",
    )
    unplanned: PlanMode = Field(
        default="allow",
        description="track events the plan does not name: allow (keep, count) or block",
    )
    traits: JsonSchema | None = Field(
        default=None, description="JSON Schema for identify traits; none: not checked"
    )
    events: dict[EventName, EventPlan] = Field(
        default_factory=dict, description="per track event name, its plan"
    )


class PlanIn(PlanSpec):
    """A plan to create: the portable plan and the business unit it belongs to (which the API
    also takes as ``?bu=`` and the CLI as ``--bu``, so an exported file can be sent as is)."""

    bu: BuCode | None = None


class TrackingPlan(PlanSpec):
    id: str
    bu_id: str
    version: int
    created_at: datetime
    updated_at: datetime


class SourcePlanIn(BaseModel):
    """Attach a plan to a source, or detach it with ``null``."""

    plan_id: str | None


class ViolationCount(BaseModel):
    """How many events broke the plan in one way: one event name, property path and kind."""

    model_config = ConfigDict(from_attributes=True)

    source_id: str
    call: Literal["track", "identify"]
    event: str | None = Field(description="the track event's name; null for identify traits")
    path: str = Field(description="e.g. properties.total, or properties.products[].price")
    kind: str = Field(
        description="the JSON Schema keyword that failed (type, required, …) or unplanned"
    )
    count: int
    first_seen_at: datetime
    last_seen_at: datetime
    example_message_id: str
