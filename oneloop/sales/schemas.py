"""Shapes at the sales domain's edges: settings, teams, leads, opportunities, reports."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Strategy = Literal["round_robin", "least_loaded", "capacity_weighted"]
LeadStatus = Literal[
    "new", "pooled", "assigned", "contacted", "qualified", "converted", "disqualified"
]
Stage = Literal["discovery", "proposal", "negotiation", "won", "lost"]
CODE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"


class Trigger(BaseModel):
    """What makes a customer a lead: entering a segment, a score reaching a threshold, or an
    event (a form such as ``Demo Requested``). Imports from a CRM create leads directly."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["segment_entered", "score_at_least", "event"]
    segment: str | None = Field(default=None, description="segment code (segment_entered)")
    score: str | None = Field(default=None, description="score model code (score_at_least)")
    at_least: float | None = Field(default=None, description="threshold (score_at_least)")
    event: str | None = Field(default=None, max_length=255, description="event name (event)")

    @model_validator(mode="after")
    def _complete(self) -> Trigger:
        needed = {
            "segment_entered": ("segment",),
            "score_at_least": ("score", "at_least"),
            "event": ("event",),
        }[self.kind]
        missing = [name for name in needed if getattr(self, name) in (None, "")]
        if missing:
            raise ValueError(f"a {self.kind} trigger needs {', '.join(missing)}")
        return self

    @property
    def label(self) -> str:
        """The lead's source as reports group it: ``segment:high_intent``, ``event:Demo
        Requested``, ``score:intent>=80``."""
        if self.kind == "segment_entered":
            return f"segment:{self.segment}"
        if self.kind == "event":
            return f"event:{self.event}"
        return f"score:{self.score}>={self.at_least:g}"


class SlaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    first_contact_minutes: int = Field(
        default=60, ge=1, le=60 * 24 * 30, description="working minutes from creation"
    )
    warn_before_minutes: int = Field(default=15, ge=0, description="warn the owner this early")
    escalate_on_breach: bool = Field(default=True, description="notify the team's manager")
    reassign_after_breach_minutes: int | None = Field(
        default=None, ge=1, description="re-route a lead still not contacted this long after"
    )


class SalesSettings(BaseModel):
    """One unit's sales settings; every field has a default, so an empty document is valid."""

    model_config = ConfigDict(extra="forbid")

    triggers: list[Trigger] = Field(default_factory=list)
    sla: SlaSettings = Field(default_factory=SlaSettings)
    calendar: dict[str, Any] | None = Field(
        default=None,
        description=(
            "working hours and holidays (docs/calendars.md); none: Asia/Shanghai, "
            "Mon-Fri 9:00-18:00 with China's public holidays"
        ),
    )
    max_open_per_rep: int = Field(default=30, ge=1, le=10_000, description="claim limit")
    recall_after_hours: float = Field(
        default=48, gt=0, le=24 * 365, description="an owned lead untouched this long is recalled"
    )
    notify_channel: str = Field(default="email", max_length=64)


class TeamIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=CODE_PATTERN)
    name_zh: str = Field(min_length=1, max_length=200)
    name_en: str = Field(min_length=1, max_length=200)
    strategy: Strategy = "round_robin"
    manager: str | None = Field(default=None, description="the manager's email")
    bu: str | None = Field(default=None, description="unit code (group-wide callers)")


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320)
    capacity: int = Field(default=30, ge=0, le=10_000)
    weight: float = Field(default=1.0, gt=0, le=100)
    on_duty: bool = True


class Member(BaseModel):
    user_id: str
    email: str
    display_name: str
    capacity: int
    weight: float
    on_duty: bool
    open_leads: int


class Team(BaseModel):
    id: str
    bu: str
    code: str
    name_zh: str
    name_en: str
    strategy: Strategy
    manager_user_id: str | None
    members: list[Member]


class RoutingTableInfo(BaseModel):
    id: str
    bu: str
    version: int
    name: str
    rules: int
    created_at: datetime
    created_by: str


class LeadOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    bu_id: str
    profile_id: str
    status: LeadStatus
    owner_user_id: str | None
    team_id: str | None
    source: str
    campaign: str | None
    reasons: list[dict[str, Any]]
    context: dict[str, Any]
    routing: dict[str, Any]
    triggered_at: datetime
    created_at: datetime
    assigned_at: datetime | None
    contacted_at: datetime | None
    qualified_at: datetime | None
    closed_at: datetime | None
    close_reason: str | None
    sla_due_at: datetime | None
    sla_state: str
    recall_at: datetime | None


class TeamLoad(BaseModel):
    """A team's open leads: all, those waiting in the pool, and those whose SLA warned or
    breached. ``team_id`` None: leads no team took (no rule matched)."""

    team_id: str | None
    open: int = 0
    pooled: int = 0
    warning: int = 0
    breached: int = 0


class LeadPage(BaseModel):
    items: list[LeadOut]
    next_cursor: str | None


class Activity(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str
    actor: str
    owner_user_id: str | None
    at: datetime
    data: dict[str, Any]


class LeadIn(BaseModel):
    """A lead created by hand or imported from a CRM, for a customer found by an identifier."""

    model_config = ConfigDict(extra="forbid")

    identifier_type: str = Field(min_length=1, max_length=40, examples=["phone"])
    identifier: str = Field(min_length=1, max_length=255, examples=["13800138000"])
    source: str = Field(default="import", max_length=64)
    campaign: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=500)
    bu: str | None = None


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["contacted", "qualified", "disqualified"]
    reason: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _reason(self) -> StatusIn:
        if self.status == "disqualified" and not (self.reason or "").strip():
            raise ValueError("a disqualified lead needs a reason")
        return self


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, description="a rep's email; none: route again")


class OpportunityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    amount: Decimal = Field(ge=0, max_digits=16, decimal_places=2)
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    stage: Literal["discovery", "proposal", "negotiation"] = "discovery"


class StageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: Stage
    amount: Decimal | None = Field(default=None, ge=0, max_digits=16, decimal_places=2)
    reason: str | None = Field(default=None, max_length=500)


class Opportunity(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    lead_id: str
    profile_id: str
    owner_user_id: str | None
    name: str
    stage: Stage
    status: Literal["open", "won", "lost"]
    amount: Decimal
    currency: str
    created_at: datetime
    closed_at: datetime | None
    lost_reason: str | None


class FunnelRow(BaseModel):
    source: str
    campaign: str | None
    created: int
    assigned: int
    contacted: int
    qualified: int
    won: int


class HandoffStat(BaseModel):
    from_department: str
    to_department: str
    count: int
    median_hours: float


class HandoffReport(BaseModel):
    bu: str
    converted_customers: int
    handoffs_per_converted: float | None
    pairs: list[HandoffStat]
    # Where leads that never converted stopped: furthest status reached → count.
    where_leads_die: dict[str, int]
    disqualify_reasons: dict[str, int]
