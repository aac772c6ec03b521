"""Tracking plans, a source's plan, and the per-source violation counters.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "collect_tracking_plan",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("bu_id", sa.String(length=26), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        # Plain JSON on PostgreSQL too: it keeps the author's key order (see the model).
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["bu_id"],
            ["governance_business_unit.id"],
            name=op.f("fk_collect_tracking_plan_bu_id_governance_business_unit"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collect_tracking_plan")),
        sa.UniqueConstraint("bu_id", "name", name=op.f("uq_collect_tracking_plan_bu_id_name")),
    )
    op.create_table(
        "collect_plan_violation",
        sa.Column("source_id", sa.String(length=26), nullable=False),
        sa.Column("event", sa.String(length=255), nullable=False),
        sa.Column("path", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("bu_id", sa.String(length=26), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("example_message_id", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint(
            "source_id", "event", "path", "kind", name=op.f("pk_collect_plan_violation")
        ),
    )
    # A plain ADD COLUMN on SQLite too (batch mode copies the table only when it must).
    with op.batch_alter_table("collect_source") as batch_op:
        batch_op.add_column(sa.Column("tracking_plan_id", sa.String(length=26), nullable=True))


def downgrade() -> None:
    # Not in batch mode: SQLite (3.35+) drops a plain column in place, while a batch would
    # rebuild collect_source, which fails once write keys reference its rows.
    op.drop_column("collect_source", "tracking_plan_id")
    op.drop_table("collect_plan_violation")
    op.drop_table("collect_tracking_plan")
