"""Notification outbox (issue 9, part 5): one row per notification, sent at most once.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=26)
AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "channels_outbox",
        sa.Column("id", ID, nullable=False),
        sa.Column("bu_id", ID, nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=True),
        sa.Column("markdown", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", AT, nullable=False),
        sa.Column("claimed_at", AT, nullable=True),
        sa.Column("sent_at", AT, nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("created_at", AT, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", AT, nullable=False),
        sa.ForeignKeyConstraint(
            ["bu_id"],
            ["governance_business_unit.id"],
            name=op.f("fk_channels_outbox_bu_id_governance_business_unit"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channels_outbox")),
        sa.UniqueConstraint(
            "bu_id", "dedupe_key", name=op.f("uq_channels_outbox_bu_id_dedupe_key")
        ),
    )
    op.create_index(
        "ix_channels_outbox_status_next_attempt_at",
        "channels_outbox",
        ["status", "next_attempt_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_channels_outbox_status_next_attempt_at", table_name="channels_outbox")
    op.drop_table("channels_outbox")
