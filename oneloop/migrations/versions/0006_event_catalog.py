"""The event catalogue: what each source sends, kept by a log consumer.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "collect_catalog_entry",
        sa.Column("source_id", sa.String(length=26), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("bu_id", sa.String(length=26), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("keys", JSON, nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source_id", "type", "name", name=op.f("pk_collect_catalog_entry")),
    )
    with op.batch_alter_table("collect_catalog_entry") as batch_op:
        batch_op.create_index(batch_op.f("ix_collect_catalog_entry_bu_id"), ["bu_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("collect_catalog_entry") as batch_op:
        batch_op.drop_index(batch_op.f("ix_collect_catalog_entry_bu_id"))
    op.drop_table("collect_catalog_entry")
