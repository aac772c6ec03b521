"""Users who sign in to the console, each belonging to one unit.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "governance_user",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("bu_id", sa.String(length=26), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["bu_id"],
            ["governance_business_unit.id"],
            name=op.f("fk_governance_user_bu_id_governance_business_unit"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_user")),
        sa.UniqueConstraint("email", name=op.f("uq_governance_user_email")),
    )
    with op.batch_alter_table("governance_user") as batch_op:
        batch_op.create_index(batch_op.f("ix_governance_user_bu_id"), ["bu_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("governance_user") as batch_op:
        batch_op.drop_index(batch_op.f("ix_governance_user_bu_id"))
    op.drop_table("governance_user")
