"""Sharing policies between business units (issue 7, part 1): which of a unit's traits,
tags, scores or events another unit may read.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ID = sa.String(length=26)


def upgrade() -> None:
    op.create_table(
        "governance_sharing_policy",
        sa.Column("id", ID, nullable=False),
        sa.Column("owner_bu_id", ID, nullable=False),
        sa.Column("reader_bu_id", ID, nullable=False),
        sa.Column("resource", sa.String(length=16), nullable=False),
        sa.Column("names", JSON, nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_bu_id"],
            ["governance_business_unit.id"],
            name=op.f("fk_governance_sharing_policy_owner_bu_id_governance_business_unit"),
        ),
        sa.ForeignKeyConstraint(
            ["reader_bu_id"],
            ["governance_business_unit.id"],
            name=op.f("fk_governance_sharing_policy_reader_bu_id_governance_business_unit"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_sharing_policy")),
    )
    for column in ("owner_bu_id", "reader_bu_id"):
        op.create_index(
            op.f(f"ix_governance_sharing_policy_{column}"),
            "governance_sharing_policy",
            [column],
            unique=False,
        )


def downgrade() -> None:
    for column in ("owner_bu_id", "reader_bu_id"):
        op.drop_index(
            op.f(f"ix_governance_sharing_policy_{column}"), table_name="governance_sharing_policy"
        )
    op.drop_table("governance_sharing_policy")
