"""Sources (one BU each) and their hashed write keys.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "collect_source",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("bu_id", sa.String(length=26), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("is_enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["bu_id"],
            ["governance_business_unit.id"],
            name=op.f("fk_collect_source_bu_id_governance_business_unit"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collect_source")),
    )
    with op.batch_alter_table("collect_source") as batch_op:
        batch_op.create_index(batch_op.f("ix_collect_source_bu_id"), ["bu_id"], unique=False)

    op.create_table(
        "collect_write_key",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("source_id", sa.String(length=26), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["collect_source.id"],
            name=op.f("fk_collect_write_key_source_id_collect_source"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collect_write_key")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_collect_write_key_key_hash")),
    )
    with op.batch_alter_table("collect_write_key") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_collect_write_key_source_id"), ["source_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("collect_write_key") as batch_op:
        batch_op.drop_index(batch_op.f("ix_collect_write_key_source_id"))

    op.drop_table("collect_write_key")
    with op.batch_alter_table("collect_source") as batch_op:
        batch_op.drop_index(batch_op.f("ix_collect_source_bu_id"))

    op.drop_table("collect_source")
