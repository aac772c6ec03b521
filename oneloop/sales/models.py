"""Tables of the sales domain: teams and their reps, routing tables, leads and their history,
opportunities, and hand-offs between departments.

Every table carries ``bu_id``: a unit's sales data is its own, and it is the key the tables
would be sharded on.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Float, Index, Integer, Numeric, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from oneloop.core.db import Base, Json, LogPosition, UTCDateTime
from oneloop.core.ids import ID_LENGTH

# Statuses in which a lead still needs work: at most one such lead per customer per unit.
OPEN_STATUSES = ("new", "pooled", "assigned", "contacted", "qualified")
_OPEN_SQL = "status IN ('new', 'pooled', 'assigned', 'contacted', 'qualified')"


class UnitSettingsRow(Base):
    """A unit's sales settings (triggers, SLA, calendar, pool limits) as one validated
    document, with a version for optimistic concurrency."""

    __tablename__ = "sales_settings"

    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(Json)  # Any: the validated settings
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(200))


class TeamRow(Base):
    __tablename__ = "sales_team"
    __table_args__ = (UniqueConstraint("bu_id", "code"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    code: Mapped[str] = mapped_column(String(64))
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    strategy: Mapped[str] = mapped_column(String(32))
    manager_user_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    # Round-robin's place: the rep who got the team's last lead.
    last_user_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class TeamMemberRow(Base):
    __tablename__ = "sales_team_member"
    __table_args__ = (Index("ix_sales_team_member_user_id", "user_id"),)

    team_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    capacity: Mapped[int] = mapped_column(Integer)
    weight: Mapped[float] = mapped_column(Float)
    on_duty: Mapped[bool] = mapped_column(Boolean)
    # When the rep last got a lead of this team: least-loaded's tie-break, kept here so that
    # routing reads one row per rep instead of the rep's whole lead history.
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))


class RoutingTableRow(Base):
    """Every uploaded version of a unit's routing table is kept; the newest one routes."""

    __tablename__ = "sales_routing_table"
    __table_args__ = (UniqueConstraint("bu_id", "version"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    xml: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(200))


class LeadRow(Base):
    __tablename__ = "sales_lead"
    __table_args__ = (
        # At most one open lead per customer per unit, enforced by the database itself so that
        # two triggers racing each other cannot both create one.
        Index(
            "uq_sales_lead_open",
            "bu_id",
            "profile_id",
            unique=True,
            sqlite_where=text(_OPEN_SQL),
            postgresql_where=text(_OPEN_SQL),
        ),
        Index("ix_sales_lead_bu_id_status", "bu_id", "status"),
        Index("ix_sales_lead_owner_user_id_status", "owner_user_id", "status"),
        Index("ix_sales_lead_profile_id", "profile_id"),
        Index("ix_sales_lead_sla_next_at", "sla_next_at"),
        Index("ix_sales_lead_recall_at", "recall_at"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    profile_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    status: Mapped[str] = mapped_column(String(16))
    owner_user_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    team_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    # Why the lead exists: the first trigger, and later ones that enriched it.
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(Json)  # Any: trigger documents
    # What a rep needs to start: scores, recent activity, source campaign, firmographics.
    context: Mapped[dict[str, Any]] = mapped_column(Json)  # Any: snapshot of the profile
    # Which rule row and which strategy chose the owner (or why the pool got the lead).
    routing: Mapped[dict[str, Any]] = mapped_column(Json)  # Any: decision record
    source: Mapped[str] = mapped_column(String(64))
    campaign: Mapped[str | None] = mapped_column(String(200))
    triggered_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    contacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    qualified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    close_reason: Mapped[str | None] = mapped_column(String(500))
    # First-contact SLA: deadlines computed on the unit's working calendar at creation.
    sla_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    sla_warn_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    sla_reassign_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    sla_state: Mapped[str] = mapped_column(String(16))
    # When the clock task must next look at this lead (warn, breach, reassign); null: never.
    sla_next_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    # When an owned lead nobody touched goes back to the pool; null: not owned.
    recall_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    last_touched_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))


class LeadActivityRow(Base):
    """A lead's history: every status change, assignment, claim, return, recall, SLA step."""

    __tablename__ = "sales_lead_activity"
    __table_args__ = (
        Index("ix_sales_lead_activity_lead_id", "lead_id"),
        Index("ix_sales_lead_activity_bu_id_at", "bu_id", "at"),
    )

    id: Mapped[int] = mapped_column(LogPosition, primary_key=True, autoincrement=True)
    lead_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    owner_user_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    data: Mapped[dict[str, Any]] = mapped_column(Json)  # Any: per kind


class OpportunityRow(Base):
    __tablename__ = "sales_opportunity"
    __table_args__ = (
        Index("ix_sales_opportunity_bu_id_status", "bu_id", "status"),
        Index("ix_sales_opportunity_lead_id", "lead_id"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    lead_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    profile_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    owner_user_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    name: Mapped[str] = mapped_column(String(200))
    stage: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(8))  # open, won, lost
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    lost_reason: Mapped[str | None] = mapped_column(String(500))


class HandoffRow(Base):
    """A change of owning department along a customer's journey in one unit, with how long
    the previous department held the customer."""

    __tablename__ = "sales_handoff"
    __table_args__ = (
        Index("ix_sales_handoff_bu_id_at", "bu_id", "at"),
        Index("ix_sales_handoff_profile_id", "profile_id"),
    )

    id: Mapped[int] = mapped_column(LogPosition, primary_key=True, autoincrement=True)
    bu_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    profile_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    lead_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    from_department: Mapped[str] = mapped_column(String(32))
    to_department: Mapped[str] = mapped_column(String(32))
    held_seconds: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
