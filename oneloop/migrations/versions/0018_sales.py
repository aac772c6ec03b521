"""Leads, the lead pool, routing tables, sales teams, opportunities and hand-offs (issue 9).

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ID = sa.String(length=26)
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# At most one open lead per customer per unit.
OPEN = sa.text("status IN ('new', 'pooled', 'assigned', 'contacted', 'qualified')")


def upgrade() -> None:
    op.create_table(
        "sales_handoff",
        sa.Column("id", SEQ, autoincrement=True, nullable=False),
        sa.Column("bu_id", ID, nullable=False),
        sa.Column("profile_id", ID, nullable=False),
        sa.Column("lead_id", ID, nullable=True),
        sa.Column("from_department", sa.String(length=32), nullable=False),
        sa.Column("to_department", sa.String(length=32), nullable=False),
        sa.Column("held_seconds", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_handoff")),
    )
    op.create_index("ix_sales_handoff_bu_id_at", "sales_handoff", ["bu_id", "at"], unique=False)
    op.create_index("ix_sales_handoff_profile_id", "sales_handoff", ["profile_id"], unique=False)
    op.create_table(
        "sales_lead",
        sa.Column("id", ID, nullable=False),
        sa.Column("bu_id", ID, nullable=False),
        sa.Column("profile_id", ID, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("owner_user_id", ID, nullable=True),
        sa.Column("team_id", ID, nullable=True),
        sa.Column("reasons", JSON, nullable=False),
        sa.Column("context", JSON, nullable=False),
        sa.Column("routing", JSON, nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("campaign", sa.String(length=200), nullable=True),
        sa.Column("triggered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("contacted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("qualified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("close_reason", sa.String(length=500), nullable=True),
        sa.Column("sla_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sla_warn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sla_reassign_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sla_state", sa.String(length=16), nullable=False),
        sa.Column("sla_next_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recall_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_touched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_lead")),
    )
    op.create_index("ix_sales_lead_bu_id_status", "sales_lead", ["bu_id", "status"], unique=False)
    op.create_index(
        "ix_sales_lead_owner_user_id_status",
        "sales_lead",
        ["owner_user_id", "status"],
        unique=False,
    )
    op.create_index("ix_sales_lead_profile_id", "sales_lead", ["profile_id"], unique=False)
    op.create_index("ix_sales_lead_recall_at", "sales_lead", ["recall_at"], unique=False)
    op.create_index("ix_sales_lead_sla_next_at", "sales_lead", ["sla_next_at"], unique=False)
    op.create_index(
        "uq_sales_lead_open",
        "sales_lead",
        ["bu_id", "profile_id"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )
    op.create_table(
        "sales_lead_activity",
        sa.Column("id", SEQ, autoincrement=True, nullable=False),
        sa.Column("lead_id", ID, nullable=False),
        sa.Column("bu_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("owner_user_id", ID, nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_lead_activity")),
    )
    op.create_index(
        "ix_sales_lead_activity_bu_id_at", "sales_lead_activity", ["bu_id", "at"], unique=False
    )
    op.create_index(
        "ix_sales_lead_activity_lead_id", "sales_lead_activity", ["lead_id"], unique=False
    )
    op.create_table(
        "sales_opportunity",
        sa.Column("id", ID, nullable=False),
        sa.Column("bu_id", ID, nullable=False),
        sa.Column("lead_id", ID, nullable=False),
        sa.Column("profile_id", ID, nullable=False),
        sa.Column("owner_user_id", ID, nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lost_reason", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_opportunity")),
    )
    op.create_index(
        "ix_sales_opportunity_bu_id_status", "sales_opportunity", ["bu_id", "status"], unique=False
    )
    op.create_index("ix_sales_opportunity_lead_id", "sales_opportunity", ["lead_id"], unique=False)
    op.create_table(
        "sales_routing_table",
        sa.Column("id", ID, nullable=False),
        sa.Column("bu_id", ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("xml", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_routing_table")),
        sa.UniqueConstraint("bu_id", "version", name=op.f("uq_sales_routing_table_bu_id_version")),
    )
    op.create_table(
        "sales_settings",
        sa.Column("bu_id", ID, nullable=False),
        sa.Column("document", JSON, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("bu_id", name=op.f("pk_sales_settings")),
    )
    op.create_table(
        "sales_team",
        sa.Column("id", ID, nullable=False),
        sa.Column("bu_id", ID, nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name_zh", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("strategy", sa.String(length=32), nullable=False),
        sa.Column("manager_user_id", ID, nullable=True),
        sa.Column("last_user_id", ID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_team")),
        sa.UniqueConstraint("bu_id", "code", name=op.f("uq_sales_team_bu_id_code")),
    )
    op.create_table(
        "sales_team_member",
        sa.Column("team_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("bu_id", ID, nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("on_duty", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "user_id", name=op.f("pk_sales_team_member")),
    )
    op.create_index("ix_sales_team_member_user_id", "sales_team_member", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_sales_team_member_user_id", table_name="sales_team_member")
    op.drop_table("sales_team_member")
    op.drop_table("sales_team")
    op.drop_table("sales_settings")
    op.drop_table("sales_routing_table")
    op.drop_index("ix_sales_opportunity_lead_id", table_name="sales_opportunity")
    op.drop_index("ix_sales_opportunity_bu_id_status", table_name="sales_opportunity")
    op.drop_table("sales_opportunity")
    op.drop_index("ix_sales_lead_activity_lead_id", table_name="sales_lead_activity")
    op.drop_index("ix_sales_lead_activity_bu_id_at", table_name="sales_lead_activity")
    op.drop_table("sales_lead_activity")
    op.drop_index(
        "uq_sales_lead_open", table_name="sales_lead", sqlite_where=OPEN, postgresql_where=OPEN
    )
    op.drop_index("ix_sales_lead_sla_next_at", table_name="sales_lead")
    op.drop_index("ix_sales_lead_recall_at", table_name="sales_lead")
    op.drop_index("ix_sales_lead_profile_id", table_name="sales_lead")
    op.drop_index("ix_sales_lead_owner_user_id_status", table_name="sales_lead")
    op.drop_index("ix_sales_lead_bu_id_status", table_name="sales_lead")
    op.drop_table("sales_lead")
    op.drop_index("ix_sales_handoff_profile_id", table_name="sales_handoff")
    op.drop_index("ix_sales_handoff_bu_id_at", table_name="sales_handoff")
    op.drop_table("sales_handoff")
