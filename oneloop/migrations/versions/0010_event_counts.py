"""Per profile, unit and event name: count, first and last (``profiles_event_count``), filled
from the events already projected.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "profiles_event_count",
        sa.Column("profile_id", sa.String(length=26), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("bu_id", sa.String(length=26), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "profile_id", "name", "bu_id", name=op.f("pk_profiles_event_count")
        ),
    )
    with op.batch_alter_table("profiles_event_count", schema=None) as batch_op:
        batch_op.create_index(
            "ix_profiles_event_count_name_bu_id_profile_id",
            ["name", "bu_id", "profile_id"],
            unique=False,
        )
    op.execute(
        "INSERT INTO profiles_event_count (profile_id, name, bu_id, count, first_at, last_at) "
        "SELECT profile_id, name, bu_id, COUNT(*), MIN(at), MAX(at) FROM profiles_event "
        "GROUP BY profile_id, name, bu_id"
    )


def downgrade() -> None:
    with op.batch_alter_table("profiles_event_count", schema=None) as batch_op:
        batch_op.drop_index("ix_profiles_event_count_name_bu_id_profile_id")
    op.drop_table("profiles_event_count")
