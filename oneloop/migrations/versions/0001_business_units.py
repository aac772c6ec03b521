"""The group and its business units.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "governance_business_unit",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name_zh", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.String(length=26), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["governance_business_unit.id"],
            name=op.f("fk_governance_business_unit_parent_id_governance_business_unit"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_business_unit")),
        sa.UniqueConstraint("code", name=op.f("uq_governance_business_unit_code")),
    )
    with op.batch_alter_table("governance_business_unit") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_governance_business_unit_parent_id"), ["parent_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("governance_business_unit") as batch_op:
        batch_op.drop_index(batch_op.f("ix_governance_business_unit_parent_id"))
    op.drop_table("governance_business_unit")
