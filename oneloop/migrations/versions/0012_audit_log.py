"""The audit log (issue 7): ``governance_audit``, append-only and hash-chained.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOG_POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "governance_audit",
        sa.Column("seq", LOG_POSITION, autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("bu_id", sa.String(length=26), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=64), nullable=False),
        sa.Column("object_id", sa.String(length=200), nullable=True),
        sa.Column("origin", sa.String(length=200), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("detail", JSON, nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_governance_audit")),
    )
    with op.batch_alter_table("governance_audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_governance_audit_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_governance_audit_actor"), ["actor"], unique=False)
        batch_op.create_index(batch_op.f("ix_governance_audit_at"), ["at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_governance_audit_object_id"), ["object_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("governance_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_governance_audit_object_id"))
        batch_op.drop_index(batch_op.f("ix_governance_audit_at"))
        batch_op.drop_index(batch_op.f("ix_governance_audit_actor"))
        batch_op.drop_index(batch_op.f("ix_governance_audit_action"))
    op.drop_table("governance_audit")
